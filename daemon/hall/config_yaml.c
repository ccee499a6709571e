/* daemon/hall/config_yaml.c: the config parser's shared YAML helpers (errors, keys, values). */
#include "daemon/hall/config_internal.h"
#include "daemon/hall/calendar.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 3, 4))) int cfg_fail(parser *p, const yaml_node_t *n, const char *fmt,
                                                   ...)
{
    if (p->failed)
        return -1;
    p->failed = 1;
    int off = snprintf(p->err, p->errlen, "%s:%zu: ", p->origin,
                       n ? (size_t)n->start_mark.line + 1 : (size_t)1);
    if (off < 0 || (size_t)off >= p->errlen)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + off, p->errlen - (size_t)off, fmt, ap);
    va_end(ap);
    return -1;
}

yaml_node_t *cfg_node(parser *p, int idx)
{
    return yaml_document_get_node(&p->doc, idx);
}

const char *cfg_scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* A mapping's keys, checked against the allowed ones. */
int cfg_check_keys(parser *p, yaml_node_t *map, const char *what, const char *const *allowed)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return cfg_fail(p, map, "%s: expected a mapping", what);
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *k = cfg_node(p, pr->key);
        const char *ks = cfg_scalar(k);
        if (!ks)
            return cfg_fail(p, k, "%s: keys must be plain strings", what);
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, ks) == 0)
                ok = 1;
        if (!ok)
            return cfg_fail(p, k, "%s: unknown key '%s'", what, ks);
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < pr; q++)
            if (strcmp(cfg_scalar(cfg_node(p, q->key)), ks) == 0)
                return cfg_fail(p, k, "%s: key '%s' given twice", what, ks);
    }
    return 0;
}

yaml_node_t *cfg_get(parser *p, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        const char *ks = cfg_scalar(cfg_node(p, pr->key));
        if (ks && strcmp(ks, key) == 0)
            return cfg_node(p, pr->value);
    }
    return NULL;
}

int cfg_get_str(parser *p, yaml_node_t *map, const char *what, const char *key, bool required,
                char *out, size_t cap)
{
    yaml_node_t *n = cfg_get(p, map, key);
    if (!n) {
        if (required)
            return cfg_fail(p, map, "%s: '%s' is required", what, key);
        return 0;
    }
    const char *s = cfg_scalar(n);
    if (!s)
        return cfg_fail(p, n, "%s.%s: expected a string", what, key);
    if (strlen(s) >= cap)
        return cfg_fail(p, n, "%s.%s: longer than %zu characters", what, key, cap - 1);
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

int cfg_parse_int(parser *p, yaml_node_t *n, const char *what, int64_t lo, int64_t hi, int64_t *out)
{
    const char *s = cfg_scalar(n);
    if (!s || !*s)
        return cfg_fail(p, n, "%s: expected an integer", what);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return cfg_fail(p, n, "%s: '%s' is not an integer", what, s);
    if (v < lo || v > hi)
        return cfg_fail(p, n, "%s: %lld is out of range %" PRId64 "..%" PRId64, what, v, lo, hi);
    *out = v;
    return 0;
}

int cfg_get_int(parser *p, yaml_node_t *map, const char *what, const char *key, int64_t lo,
                int64_t hi, int64_t *out)
{
    yaml_node_t *n = cfg_get(p, map, key);
    if (!n)
        return 0; /* keep the default */
    char w[128];
    snprintf(w, sizeof w, "%s.%s", what, key);
    return cfg_parse_int(p, n, w, lo, hi, out);
}

/* Whether s[at..at+1] are two digits and s[at+2] is ':'. sscanf's %2d
 * alone would also take " 9", "+9" and "-1". */
bool cfg_two_digits_colon(const char *s, size_t at)
{
    return isdigit((unsigned char)s[at]) && isdigit((unsigned char)s[at + 1]) && s[at + 2] == ':';
}

int cfg_parse_hhmm(parser *p, yaml_node_t *n, const char *what, int *out)
{
    const char *s = cfg_scalar(n);
    int h, m;
    char tail;
    if (!s || strlen(s) != 5 || !cfg_two_digits_colon(s, 0) || !isdigit((unsigned char)s[3]) ||
        !isdigit((unsigned char)s[4]) || sscanf(s, "%2d:%2d%c", &h, &m, &tail) != 2 || h > 23 ||
        m > 59)
        return cfg_fail(p, n, "%s: expected a time HH:MM, got '%s'", what, s ? s : "?");
    *out = h * 60 + m;
    return 0;
}

int cfg_parse_date(const char *s, size_t n, int32_t *day)
{
    return hall_day_parse(s, n, day);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* A list of dates and "A..B" ranges, sorted. */
int cfg_parse_dates(parser *p, yaml_node_t *n, const char *what, int32_t **out, int *count)
{
    *out = NULL;
    *count = 0;
    if (!n)
        return 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return cfg_fail(p, n, "%s: expected a list of dates", what);
    size_t cap = 16, len = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v)
        return cfg_fail(p, n, "%s: out of memory", what);
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = cfg_node(p, *it);
        const char *s = cfg_scalar(e);
        int32_t a, b;
        const char *dots = s ? strstr(s, "..") : NULL;
        int bad = !s;
        if (!bad && dots)
            bad = cfg_parse_date(s, (size_t)(dots - s), &a) ||
                  cfg_parse_date(dots + 2, strlen(dots + 2), &b) || b < a || b - a > 366;
        else if (!bad) {
            bad = cfg_parse_date(s, strlen(s), &a);
            b = a;
        }
        if (bad) {
            free(v);
            return cfg_fail(p, e, "%s: '%s' is not a date YYYY-MM-DD or a range A..B", what,
                            s ? s : "?");
        }
        for (int32_t d = a; d <= b; d++) {
            if (len == cap) {
                int32_t *nv = realloc(v, (cap *= 2) * sizeof *v);
                if (!nv) {
                    free(v);
                    return cfg_fail(p, e, "%s: out of memory", what);
                }
                v = nv;
            }
            v[len++] = d;
        }
    }
    qsort(v, len, sizeof *v, cmp_i32);
    *out = v;
    *count = (int)len;
    return 0;
}

int cfg_parse_id(parser *p, yaml_node_t *map, const char *what, const char *key, char *out)
{
    if (cfg_get_str(p, map, what, key, true, out, HALL_ID_MAX + 1))
        return -1;
    if (!*out)
        return cfg_fail(p, cfg_get(p, map, key), "%s.%s: must not be empty", what, key);
    for (const char *c = out; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-')
            return cfg_fail(p, cfg_get(p, map, key),
                            "%s.%s: '%s' may hold only letters, digits, _ and -", what, key, out);
    return 0;
}

/* Resolves a list of ids to indexes via `lookup`. */
int cfg_parse_refs(parser *p, const hall_config *c, yaml_node_t *n, const char *what,
                   const char *kind, lookup_fn lookup, int *out, int *count)
{
    *count = 0;
    if (!n || n->type != YAML_SEQUENCE_NODE)
        return cfg_fail(p, n, "%s: expected a list of %s ids", what, kind);
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = cfg_node(p, *it);
        const char *s = cfg_scalar(e);
        if (!s)
            return cfg_fail(p, e, "%s: expected a %s id", what, kind);
        int idx = lookup(c, s, strlen(s));
        if (idx < 0)
            return cfg_fail(p, e, "%s: unknown %s '%s'", what, kind, s);
        for (int i = 0; i < *count; i++)
            if (out[i] == idx)
                return cfg_fail(p, e, "%s: %s '%s' listed twice", what, kind, s);
        if (*count == HALL_MAX_LIST)
            return cfg_fail(p, e, "%s: more than %d entries", what, HALL_MAX_LIST);
        out[(*count)++] = idx;
    }
    return 0;
}

/* A top-level list of mappings: allocates `size`-byte items. */
int cfg_parse_list(parser *p, yaml_node_t *root, const char *key, bool required, size_t size,
                   void **items, int *count, yaml_node_t **list)
{
    yaml_node_t *n = cfg_get(p, root, key);
    *list = n;
    *items = NULL;
    *count = 0;
    if (!n) {
        if (required)
            return cfg_fail(p, root, "'%s' is required", key);
        return 0;
    }
    if (n->type != YAML_SEQUENCE_NODE)
        return cfg_fail(p, n, "%s: expected a list", key);
    size_t len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (len > HALL_MAX_ITEMS)
        return cfg_fail(p, n, "%s: more than %d entries", key, HALL_MAX_ITEMS);
    if (required && len == 0)
        return cfg_fail(p, n, "%s: needs at least one entry", key);
    *items = calloc(len ? len : 1, size);
    if (!*items)
        return cfg_fail(p, n, "%s: out of memory", key);
    *count = (int)len;
    return 0;
}

yaml_node_t *cfg_item(parser *p, yaml_node_t *list, int i)
{
    return cfg_node(p, list->data.sequence.items.start[i]);
}

int cfg_parse_roles(parser *p, yaml_node_t *n, const char *what, uint32_t *mask)
{
    if (!n)
        return 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return cfg_fail(p, n, "%s: expected a list of roles", what);
    *mask = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = cfg_node(p, *it);
        const char *s = cfg_scalar(e);
        int r = s ? hall_role_from_name(s) : -1;
        if (r < 0)
            return cfg_fail(p, e, "%s: unknown role '%s'", what, s ? s : "?");
        *mask |= HALL_ROLE_BIT(r);
    }
    return 0;
}
