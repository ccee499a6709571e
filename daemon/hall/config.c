/* daemon/hall/config.c: parses and checks the hall's YAML configuration.
 *
 * libyaml builds a document tree that keeps each node's line, so every
 * error says "FILE:LINE: what is wrong". Unknown keys are errors (a typo
 * must not silently fall back to a default). Parsing does no I/O: it gets
 * the text, from a file or from the WAL. */
#include "daemon/hall/config.h"
#include "daemon/hall/calendar.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static const char *const role_names[HALL_ROLE__COUNT] = {"system",  "kiosk",      "window",
                                                         "display", "department", "admin"};

const char *hall_window_order_name(hall_window_order o)
{
    return o == HALL_ORDER_LINES ? "lines" : "earliest";
}

const char *hall_role_name(hall_role r)
{
    return (unsigned)r < HALL_ROLE__COUNT ? role_names[r] : "?";
}

int hall_role_from_name(const char *s)
{
    for (int i = 1; i < HALL_ROLE__COUNT; i++)
        if (strcmp(s, role_names[i]) == 0)
            return i;
    return -1;
}

typedef struct parser {
    yaml_document_t doc;
    const char *origin;
    char *err;
    size_t errlen;
    int failed;
} parser;

__attribute__((format(printf, 3, 4))) static int fail(parser *p, const yaml_node_t *n,
                                                      const char *fmt, ...)
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

static yaml_node_t *node(parser *p, int idx)
{
    return yaml_document_get_node(&p->doc, idx);
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* A mapping's keys, checked against the allowed ones. */
static int check_keys(parser *p, yaml_node_t *map, const char *what, const char *const *allowed)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return fail(p, map, "%s: expected a mapping", what);
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *k = node(p, pr->key);
        const char *ks = scalar(k);
        if (!ks)
            return fail(p, k, "%s: keys must be plain strings", what);
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, ks) == 0)
                ok = 1;
        if (!ok)
            return fail(p, k, "%s: unknown key '%s'", what, ks);
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < pr; q++)
            if (strcmp(scalar(node(p, q->key)), ks) == 0)
                return fail(p, k, "%s: key '%s' given twice", what, ks);
    }
    return 0;
}

static yaml_node_t *get(parser *p, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        const char *ks = scalar(node(p, pr->key));
        if (ks && strcmp(ks, key) == 0)
            return node(p, pr->value);
    }
    return NULL;
}

static int get_str(parser *p, yaml_node_t *map, const char *what, const char *key, bool required,
                   char *out, size_t cap)
{
    yaml_node_t *n = get(p, map, key);
    if (!n) {
        if (required)
            return fail(p, map, "%s: '%s' is required", what, key);
        return 0;
    }
    const char *s = scalar(n);
    if (!s)
        return fail(p, n, "%s.%s: expected a string", what, key);
    if (strlen(s) >= cap)
        return fail(p, n, "%s.%s: longer than %zu characters", what, key, cap - 1);
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

static int parse_int(parser *p, yaml_node_t *n, const char *what, int64_t lo, int64_t hi,
                     int64_t *out)
{
    const char *s = scalar(n);
    if (!s || !*s)
        return fail(p, n, "%s: expected an integer", what);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return fail(p, n, "%s: '%s' is not an integer", what, s);
    if (v < lo || v > hi)
        return fail(p, n, "%s: %lld is out of range %" PRId64 "..%" PRId64, what, v, lo, hi);
    *out = v;
    return 0;
}

static int get_int(parser *p, yaml_node_t *map, const char *what, const char *key, int64_t lo,
                   int64_t hi, int64_t *out)
{
    yaml_node_t *n = get(p, map, key);
    if (!n)
        return 0; /* keep the default */
    char w[128];
    snprintf(w, sizeof w, "%s.%s", what, key);
    return parse_int(p, n, w, lo, hi, out);
}

/* Whether s[at..at+1] are two digits and s[at+2] is ':'. sscanf's %2d
 * alone would also take " 9", "+9" and "-1". */
static bool two_digits_colon(const char *s, size_t at)
{
    return isdigit((unsigned char)s[at]) && isdigit((unsigned char)s[at + 1]) && s[at + 2] == ':';
}

static int parse_hhmm(parser *p, yaml_node_t *n, const char *what, int *out)
{
    const char *s = scalar(n);
    int h, m;
    char tail;
    if (!s || strlen(s) != 5 || !two_digits_colon(s, 0) || !isdigit((unsigned char)s[3]) ||
        !isdigit((unsigned char)s[4]) || sscanf(s, "%2d:%2d%c", &h, &m, &tail) != 2 || h > 23 ||
        m > 59)
        return fail(p, n, "%s: expected a time HH:MM, got '%s'", what, s ? s : "?");
    *out = h * 60 + m;
    return 0;
}

static int parse_date(const char *s, size_t n, int32_t *day)
{
    return hall_day_parse(s, n, day);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* A list of dates and "A..B" ranges, sorted. */
static int parse_dates(parser *p, yaml_node_t *n, const char *what, int32_t **out, int *count)
{
    *out = NULL;
    *count = 0;
    if (!n)
        return 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(p, n, "%s: expected a list of dates", what);
    size_t cap = 16, len = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v)
        return fail(p, n, "%s: out of memory", what);
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = node(p, *it);
        const char *s = scalar(e);
        int32_t a, b;
        const char *dots = s ? strstr(s, "..") : NULL;
        int bad = !s;
        if (!bad && dots)
            bad = parse_date(s, (size_t)(dots - s), &a) ||
                  parse_date(dots + 2, strlen(dots + 2), &b) || b < a || b - a > 366;
        else if (!bad) {
            bad = parse_date(s, strlen(s), &a);
            b = a;
        }
        if (bad) {
            free(v);
            return fail(p, e, "%s: '%s' is not a date YYYY-MM-DD or a range A..B", what,
                        s ? s : "?");
        }
        for (int32_t d = a; d <= b; d++) {
            if (len == cap) {
                int32_t *nv = realloc(v, (cap *= 2) * sizeof *v);
                if (!nv) {
                    free(v);
                    return fail(p, e, "%s: out of memory", what);
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

static int parse_id(parser *p, yaml_node_t *map, const char *what, const char *key, char *out)
{
    if (get_str(p, map, what, key, true, out, HALL_ID_MAX + 1))
        return -1;
    if (!*out)
        return fail(p, get(p, map, key), "%s.%s: must not be empty", what, key);
    for (const char *c = out; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-')
            return fail(p, get(p, map, key), "%s.%s: '%s' may hold only letters, digits, _ and -",
                        what, key, out);
    return 0;
}

/* Resolves a list of ids to indexes via `lookup`. */
typedef int (*lookup_fn)(const hall_config *c, const char *id, size_t n);

static int parse_refs(parser *p, const hall_config *c, yaml_node_t *n, const char *what,
                      const char *kind, lookup_fn lookup, int *out, int *count)
{
    *count = 0;
    if (!n || n->type != YAML_SEQUENCE_NODE)
        return fail(p, n, "%s: expected a list of %s ids", what, kind);
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = node(p, *it);
        const char *s = scalar(e);
        if (!s)
            return fail(p, e, "%s: expected a %s id", what, kind);
        int idx = lookup(c, s, strlen(s));
        if (idx < 0)
            return fail(p, e, "%s: unknown %s '%s'", what, kind, s);
        for (int i = 0; i < *count; i++)
            if (out[i] == idx)
                return fail(p, e, "%s: %s '%s' listed twice", what, kind, s);
        if (*count == HALL_MAX_LIST)
            return fail(p, e, "%s: more than %d entries", what, HALL_MAX_LIST);
        out[(*count)++] = idx;
    }
    return 0;
}

/* A top-level list of mappings: allocates `size`-byte items. */
static int parse_list(parser *p, yaml_node_t *root, const char *key, bool required, size_t size,
                      void **items, int *count, yaml_node_t **list)
{
    yaml_node_t *n = get(p, root, key);
    *list = n;
    *items = NULL;
    *count = 0;
    if (!n) {
        if (required)
            return fail(p, root, "'%s' is required", key);
        return 0;
    }
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(p, n, "%s: expected a list", key);
    size_t len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (len > HALL_MAX_ITEMS)
        return fail(p, n, "%s: more than %d entries", key, HALL_MAX_ITEMS);
    if (required && len == 0)
        return fail(p, n, "%s: needs at least one entry", key);
    *items = calloc(len ? len : 1, size);
    if (!*items)
        return fail(p, n, "%s: out of memory", key);
    *count = (int)len;
    return 0;
}

static yaml_node_t *item(parser *p, yaml_node_t *list, int i)
{
    return node(p, list->data.sequence.items.start[i]);
}

static int parse_roles(parser *p, yaml_node_t *n, const char *what, uint32_t *mask)
{
    if (!n)
        return 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(p, n, "%s: expected a list of roles", what);
    *mask = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = node(p, *it);
        const char *s = scalar(e);
        int r = s ? hall_role_from_name(s) : -1;
        if (r < 0)
            return fail(p, e, "%s: unknown role '%s'", what, s ? s : "?");
        *mask |= HALL_ROLE_BIT(r);
    }
    return 0;
}

static void set_defaults(hall_config *c)
{
    strcpy(c->time_zone, "UTC");
    c->cal.open_min = 9 * 60;
    c->cal.close_min = 17 * 60;
    c->cal.working_weekdays = 0x3e; /* Monday to Friday */
    c->rules.claim_lease_ms = 300000;
    c->rules.no_show_grace_ms = 1800000;
    c->rules.return_behind = 3;
    c->rules.appointment_window_ms = 900000;
    c->rules.day_close_min = 17 * 60;
    c->rules.default_service_ms = 300000;
    c->limits.max_frame = 65536;
    c->limits.max_inflight = 128;
    c->limits.max_connections = 10000;
    c->limits.output_cap = 1 << 20;
    c->limits.hello_timeout_ms = 10000;
    c->limits.frame_timeout_ms = 10000;
    c->limits.kiosk_rate = 0;
    c->limits.kiosk_burst = 40;
    strcpy(c->tcp.addr, "127.0.0.1:7420");
    c->tcp.roles = HALL_ROLE_BIT(HALL_ROLE_KIOSK) | HALL_ROLE_BIT(HALL_ROLE_WINDOW) |
                   HALL_ROLE_BIT(HALL_ROLE_DISPLAY);
    c->unix_.roles = HALL_ROLE_BIT(HALL_ROLE_DEPARTMENT) | HALL_ROLE_BIT(HALL_ROLE_ADMIN);
    strcpy(c->http.addr, "127.0.0.1:7480");
    c->http.roles = c->tcp.roles;
    c->wal.segment_bytes = 64ull << 20;
    c->wal.disk_reserve_bytes = 256ull << 20;
    c->wal.commit_hold_us = -1; /* auto */
    c->wal.fsync = true;
    c->state.map_bytes = 64ull << 20;
}

static int parse_hall(parser *p, hall_config *c, yaml_node_t *h)
{
    static const char *const keys[] = {"id", "name", "time_zone", "utc_offset", "start_ms", NULL};
    if (!h)
        return fail(p, NULL, "'hall' is required");
    if (check_keys(p, h, "hall", keys) || parse_id(p, h, "hall", "id", c->hall_id) ||
        get_str(p, h, "hall", "name", true, c->name, sizeof c->name) ||
        get_str(p, h, "hall", "time_zone", false, c->time_zone, sizeof c->time_zone))
        return -1;
    yaml_node_t *off = get(p, h, "utc_offset");
    if (off) {
        const char *s = scalar(off);
        int hh, mm;
        char sign, tail;
        if (!s || strlen(s) != 6 || !two_digits_colon(s, 1) || !isdigit((unsigned char)s[4]) ||
            !isdigit((unsigned char)s[5]) ||
            sscanf(s, "%c%2d:%2d%c", &sign, &hh, &mm, &tail) != 3 || (sign != '+' && sign != '-') ||
            hh > 14 || mm > 59)
            return fail(p, off, "hall.utc_offset: expected +HH:MM or -HH:MM, got '%s'",
                        s ? s : "?");
        c->cal.utc_offset_ms = (sign == '-' ? -1 : 1) * ((int64_t)hh * 60 + mm) * 60000;
    }
    yaml_node_t *st = get(p, h, "start_ms");
    if (st) {
        if (parse_int(p, st, "hall.start_ms", 0, INT64_MAX / 2, &c->start_ms))
            return -1;
        c->has_start_ms = true;
    }
    return 0;
}

static int parse_calendar(parser *p, hall_config *c, yaml_node_t *n)
{
    static const char *const keys[] = {
        "open", "close", "working_days", "holidays", "extra_working_days", NULL};
    static const char *const wd[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    if (!n)
        return 0;
    if (check_keys(p, n, "calendar", keys))
        return -1;
    yaml_node_t *o = get(p, n, "open"), *cl = get(p, n, "close");
    if ((o && parse_hhmm(p, o, "calendar.open", &c->cal.open_min)) ||
        (cl && parse_hhmm(p, cl, "calendar.close", &c->cal.close_min)))
        return -1;
    if (c->cal.close_min <= c->cal.open_min)
        return fail(p, cl ? cl : n, "calendar.close: must be later than calendar.open");
    yaml_node_t *w = get(p, n, "working_days");
    if (w) {
        if (w->type != YAML_SEQUENCE_NODE)
            return fail(p, w, "calendar.working_days: expected a list like [mon, tue]");
        c->cal.working_weekdays = 0;
        for (yaml_node_item_t *it = w->data.sequence.items.start; it < w->data.sequence.items.top;
             it++) {
            yaml_node_t *e = node(p, *it);
            const char *s = scalar(e);
            int found = -1;
            for (int i = 0; s && i < 7; i++)
                if (strcmp(s, wd[i]) == 0)
                    found = i;
            if (found < 0)
                return fail(p, e, "calendar.working_days: '%s' is not one of sun..sat",
                            s ? s : "?");
            c->cal.working_weekdays |= (uint8_t)(1u << found);
        }
    }
    return parse_dates(p, get(p, n, "holidays"), "calendar.holidays", &c->cal.holidays,
                       &c->cal.n_holidays) ||
           parse_dates(p, get(p, n, "extra_working_days"), "calendar.extra_working_days",
                       &c->cal.extra_days, &c->cal.n_extra_days);
}

static int parse_rules(parser *p, hall_config *c, yaml_node_t *n)
{
    static const char *const keys[] = {"claim_lease_s",
                                       "no_show_grace_s",
                                       "return_behind",
                                       "appointment_window_s",
                                       "day_close",
                                       "default_service_s",
                                       NULL};
    if (!n)
        return 0;
    int64_t lease = c->rules.claim_lease_ms / 1000, grace = c->rules.no_show_grace_ms / 1000,
            behind = c->rules.return_behind, appt = c->rules.appointment_window_ms / 1000,
            svc = c->rules.default_service_ms / 1000;
    if (check_keys(p, n, "rules", keys) ||
        get_int(p, n, "rules", "claim_lease_s", 1, 86400, &lease) ||
        get_int(p, n, "rules", "no_show_grace_s", 0, 86400, &grace) ||
        get_int(p, n, "rules", "return_behind", 0, 1000, &behind) ||
        get_int(p, n, "rules", "appointment_window_s", 0, 86400, &appt) ||
        get_int(p, n, "rules", "default_service_s", 1, 86400, &svc))
        return -1;
    yaml_node_t *dc = get(p, n, "day_close");
    if (dc && parse_hhmm(p, dc, "rules.day_close", &c->rules.day_close_min))
        return -1;
    c->rules.claim_lease_ms = lease * 1000;
    c->rules.no_show_grace_ms = grace * 1000;
    c->rules.return_behind = (int)behind;
    c->rules.appointment_window_ms = appt * 1000;
    c->rules.default_service_ms = svc * 1000;
    return 0;
}

static int parse_limits(parser *p, hall_config *c, yaml_node_t *n)
{
    static const char *const keys[] = {"max_frame",        "max_inflight",    "max_connections",
                                       "output_cap",       "hello_timeout_s", "frame_timeout_s",
                                       "kiosk_rate_per_s", "kiosk_burst",     NULL};
    if (!n)
        return 0;
    int64_t mf = c->limits.max_frame, mi = c->limits.max_inflight, mc = c->limits.max_connections,
            oc = (int64_t)c->limits.output_cap, ht = c->limits.hello_timeout_ms / 1000,
            ft = c->limits.frame_timeout_ms / 1000, kr = c->limits.kiosk_rate,
            kb = c->limits.kiosk_burst;
    if (check_keys(p, n, "limits", keys) ||
        get_int(p, n, "limits", "max_frame", 256, 16 << 20, &mf) ||
        get_int(p, n, "limits", "max_inflight", 1, 65536, &mi) ||
        get_int(p, n, "limits", "max_connections", 1, 1000000, &mc) ||
        get_int(p, n, "limits", "output_cap", 4096, (int64_t)1 << 32, &oc) ||
        get_int(p, n, "limits", "hello_timeout_s", 1, 3600, &ht) ||
        get_int(p, n, "limits", "frame_timeout_s", 1, 3600, &ft) ||
        get_int(p, n, "limits", "kiosk_rate_per_s", 0, 1000000, &kr) ||
        get_int(p, n, "limits", "kiosk_burst", 1, 1000000, &kb))
        return -1;
    c->limits.hello_timeout_ms = (uint32_t)ht * 1000;
    c->limits.frame_timeout_ms = (uint32_t)ft * 1000;
    c->limits.kiosk_rate = (uint32_t)kr;
    c->limits.kiosk_burst = (uint32_t)kb;
    c->limits.max_frame = (uint32_t)mf;
    c->limits.max_inflight = (uint32_t)mi;
    c->limits.max_connections = (uint32_t)mc;
    c->limits.output_cap = (uint64_t)oc;
    return 0;
}

static int parse_listener(parser *p, yaml_node_t *n, const char *what, const char *addr_key,
                          hall_listener *l)
{
    const char *const keys[] = {addr_key, "roles", NULL};
    if (!n)
        return 0;
    return check_keys(p, n, what, keys) ||
           get_str(p, n, what, addr_key, false, l->addr, sizeof l->addr) ||
           parse_roles(p, get(p, n, "roles"), what, &l->roles);
}

static int parse_wal(parser *p, hall_config *c, yaml_node_t *n)
{
    static const char *const keys[] = {"segment_bytes", "disk_reserve_bytes", "fsync",
                                       "commit_hold_us", NULL};
    if (!n)
        return 0;
    int64_t seg = (int64_t)c->wal.segment_bytes, res = (int64_t)c->wal.disk_reserve_bytes;
    int64_t hold = c->wal.commit_hold_us;
    if (check_keys(p, n, "wal", keys) ||
        get_int(p, n, "wal", "segment_bytes", 65536, (int64_t)1 << 34, &seg) ||
        get_int(p, n, "wal", "disk_reserve_bytes", 0, (int64_t)1 << 40, &res))
        return -1;
    yaml_node_t *h = get(p, n, "commit_hold_us");
    const char *hs = h ? scalar(h) : NULL;
    if (h && !(hs && strcmp(hs, "auto") == 0) &&
        get_int(p, n, "wal", "commit_hold_us", 0, 10000000, &hold))
        return -1;
    c->wal.commit_hold_us = hold;
    yaml_node_t *f = get(p, n, "fsync");
    if (f) {
        const char *s = scalar(f);
        if (s && strcmp(s, "always") == 0)
            c->wal.fsync = true;
        else if (s && strcmp(s, "none") == 0)
            c->wal.fsync = false;
        else
            return fail(p, f, "wal.fsync: expected 'always' or 'none'");
    }
    c->wal.segment_bytes = (uint64_t)seg;
    c->wal.disk_reserve_bytes = (uint64_t)res;
    return 0;
}

static int parse_state(parser *p, hall_config *c, yaml_node_t *n)
{
    static const char *const keys[] = {"map_bytes", NULL};
    if (!n)
        return 0;
    int64_t mb = (int64_t)c->state.map_bytes;
    if (check_keys(p, n, "state", keys) ||
        get_int(p, n, "state", "map_bytes", 1 << 20, (int64_t)1 << 40, &mb))
        return -1;
    c->state.map_bytes = (uint64_t)mb & ~(uint64_t)4095;
    return 0;
}

static int parse_log(parser *p, hall_config *c, yaml_node_t *n)
{
    static const char *const keys[] = {"level", NULL};
    static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
    if (!n)
        return 0;
    if (check_keys(p, n, "log", keys) ||
        get_str(p, n, "log", "level", false, c->log_level, sizeof c->log_level))
        return -1;
    if (!c->log_level[0])
        return 0;
    for (int i = 0; levels[i]; i++)
        if (strcmp(c->log_level, levels[i]) == 0)
            return 0;
    return fail(p, get(p, n, "level"), "log.level: expected error, warn, info or debug");
}

static int parse_pii(parser *p, hall_config *c, yaml_node_t *n)
{
    static const char *const keys[] = {"names", NULL};
    char v[16] = "mask";
    if (!n)
        return 0;
    if (check_keys(p, n, "pii", keys) || get_str(p, n, "pii", "names", false, v, sizeof v))
        return -1;
    if (strcmp(v, "mask") == 0)
        c->pii.keep_names = false;
    else if (strcmp(v, "keep") == 0)
        c->pii.keep_names = true;
    else
        return fail(p, get(p, n, "names"), "pii.names: expected mask or keep");
    return 0;
}

/* Duplicate ids among the first i items of an array of structs whose id is
 * at offset 0. */
static int check_dup(parser *p, yaml_node_t *list, const void *items, size_t size, int i,
                     const char *what)
{
    const char *id = (const char *)items + size * (size_t)i;
    for (int j = 0; j < i; j++)
        if (strcmp((const char *)items + size * (size_t)j, id) == 0)
            return fail(p, item(p, list, i), "%s: duplicate id '%s'", what, id);
    return 0;
}

static int parse_token(parser *p, hall_config *c, yaml_node_t *e, int i);

static int parse_catalogue(parser *p, hall_config *c, yaml_node_t *root)
{
    yaml_node_t *list;
    static const char *const line_keys[] = {"id", "name", "name_zh", "pickup", NULL};
    if (parse_list(p, root, "lines", true, sizeof(hall_line), (void **)&c->lines, &c->n_lines,
                   &list))
        return -1;
    for (int i = 0; i < c->n_lines; i++) {
        yaml_node_t *e = item(p, list, i);
        hall_line *l = &c->lines[i];
        if (check_keys(p, e, "lines[]", line_keys) || parse_id(p, e, "lines[]", "id", l->id) ||
            get_str(p, e, "lines[]", "name", false, l->name, sizeof l->name) ||
            get_str(p, e, "lines[]", "name_zh", false, l->name_zh, sizeof l->name_zh) ||
            check_dup(p, list, c->lines, sizeof *l, i, "lines"))
            return -1;
        if (strlen(l->id) > 4)
            return fail(p, e, "lines[].id: '%s' is longer than 4 characters (it prefixes numbers)",
                        l->id);
        yaml_node_t *pu = get(p, e, "pickup");
        if (pu) {
            const char *v = scalar(pu);
            if (v && strcmp(v, "true") == 0)
                l->pickup = true;
            else if (!v || strcmp(v, "false") != 0)
                return fail(p, pu, "lines[].pickup: expected true or false");
        }
    }
    if (parse_list(p, root, "departments", false, sizeof(hall_department), (void **)&c->departments,
                   &c->n_departments, &list))
        return -1;
    for (int i = 0; i < c->n_departments; i++) {
        yaml_node_t *e = item(p, list, i);
        hall_department *d = &c->departments[i];
        if (check_keys(p, e, "departments[]", line_keys) ||
            parse_id(p, e, "departments[]", "id", d->id) ||
            get_str(p, e, "departments[]", "name", false, d->name, sizeof d->name) ||
            get_str(p, e, "departments[]", "name_zh", false, d->name_zh, sizeof d->name_zh) ||
            check_dup(p, list, c->departments, sizeof *d, i, "departments"))
            return -1;
    }
    static const char *const mat_keys[] = {"code", "name", "name_zh", NULL};
    if (parse_list(p, root, "materials", false, sizeof(hall_material), (void **)&c->materials,
                   &c->n_materials, &list))
        return -1;
    for (int i = 0; i < c->n_materials; i++) {
        yaml_node_t *e = item(p, list, i);
        hall_material *m = &c->materials[i];
        if (check_keys(p, e, "materials[]", mat_keys) ||
            parse_id(p, e, "materials[]", "code", m->code) ||
            get_str(p, e, "materials[]", "name", false, m->name, sizeof m->name) ||
            get_str(p, e, "materials[]", "name_zh", false, m->name_zh, sizeof m->name_zh) ||
            check_dup(p, list, c->materials, sizeof *m, i, "materials"))
            return -1;
    }
    static const char *const svc_keys[] = {"code", "name", "name_zh",   "line", "departments",
                                           "kind", "days", "checklist", NULL};
    if (parse_list(p, root, "services", false, sizeof(hall_service), (void **)&c->services,
                   &c->n_services, &list))
        return -1;
    for (int i = 0; i < c->n_services; i++) {
        yaml_node_t *e = item(p, list, i);
        hall_service *s = &c->services[i];
        char line[HALL_ID_MAX + 1], kind[16];
        int64_t days = 0;
        if (check_keys(p, e, "services[]", svc_keys) ||
            parse_id(p, e, "services[]", "code", s->code) ||
            get_str(p, e, "services[]", "name", false, s->name, sizeof s->name) ||
            get_str(p, e, "services[]", "name_zh", false, s->name_zh, sizeof s->name_zh) ||
            check_dup(p, list, c->services, sizeof *s, i, "services") ||
            get_str(p, e, "services[]", "line", true, line, sizeof line) ||
            get_str(p, e, "services[]", "kind", true, kind, sizeof kind) ||
            get_int(p, e, "services[]", "days", 0, 3650, &days))
            return -1;
        s->line = hall_config_line(c, line, strlen(line));
        if (s->line < 0)
            return fail(p, get(p, e, "line"), "services[%s].line: unknown line '%s'", s->code,
                        line);
        if (strcmp(kind, "review") == 0)
            s->kind = HALL_SERVICE_REVIEW;
        else if (strcmp(kind, "instant") == 0)
            s->kind = HALL_SERVICE_INSTANT;
        else
            return fail(p, get(p, e, "kind"), "services[%s].kind: expected review or instant",
                        s->code);
        s->days = (int)days;
        char what[64];
        snprintf(what, sizeof what, "services[%s].departments", s->code);
        yaml_node_t *deps = get(p, e, "departments");
        if (!deps)
            return fail(p, e, "services[%s]: 'departments' is required", s->code);
        if (parse_refs(p, c, deps, what, "department", hall_config_department, s->departments,
                       &s->n_departments))
            return -1;
        if (s->n_departments == 0)
            return fail(p, deps, "%s: a service needs at least one department", what);
        if (s->kind == HALL_SERVICE_REVIEW && s->days < 1)
            return fail(p, e, "services[%s].days: a review service needs a time limit >= 1",
                        s->code);
        snprintf(what, sizeof what, "services[%s].checklist", s->code);
        yaml_node_t *cl = get(p, e, "checklist");
        if (!cl)
            return fail(p, e, "services[%s]: 'checklist' is required", s->code);
        if (parse_refs(p, c, cl, what, "material", hall_config_material, s->checklist,
                       &s->n_checklist))
            return -1;
    }
    static const char *const win_keys[] = {"id", "lines", "kind", "order", NULL};
    if (parse_list(p, root, "windows", false, sizeof(hall_window), (void **)&c->windows,
                   &c->n_windows, &list))
        return -1;
    for (int i = 0; i < c->n_windows; i++) {
        yaml_node_t *e = item(p, list, i);
        hall_window *w = &c->windows[i];
        if (check_keys(p, e, "windows[]", win_keys) || parse_id(p, e, "windows[]", "id", w->id) ||
            get_str(p, e, "windows[]", "kind", false, w->kind, sizeof w->kind) ||
            check_dup(p, list, c->windows, sizeof *w, i, "windows"))
            return -1;
        char what[64];
        snprintf(what, sizeof what, "windows[%s].lines", w->id);
        if (parse_refs(p, c, get(p, e, "lines"), what, "line", hall_config_line, w->lines,
                       &w->n_lines))
            return -1;
        if (w->n_lines == 0)
            return fail(p, e, "%s: a window serves at least one line", what);
        char order[16] = "earliest";
        if (get_str(p, e, "windows[]", "order", false, order, sizeof order))
            return -1;
        if (strcmp(order, "earliest") == 0)
            w->order = HALL_ORDER_EARLIEST;
        else if (strcmp(order, "lines") == 0)
            w->order = HALL_ORDER_LINES;
        else
            return fail(p, get(p, e, "order"), "windows[%s].order: expected earliest or lines",
                        w->id);
    }
    static const char *const tok_keys[] = {"token", "token_hash", "role", "id", NULL};
    if (parse_list(p, root, "tokens", true, sizeof(hall_token), (void **)&c->tokens, &c->n_tokens,
                   &list))
        return -1;
    for (int i = 0; i < c->n_tokens; i++) {
        yaml_node_t *e = item(p, list, i);
        hall_token *t = &c->tokens[i];
        char role[16];
        if (check_keys(p, e, "tokens[]", tok_keys) ||
            get_str(p, e, "tokens[]", "role", true, role, sizeof role) ||
            parse_id(p, e, "tokens[]", "id", t->id) || parse_token(p, c, e, i))
            return -1;
        int r = hall_role_from_name(role);
        if (r < 0)
            return fail(p, get(p, e, "role"), "tokens[].role: unknown role '%s'", role);
        t->role = (hall_role)r;
        if (t->role == HALL_ROLE_WINDOW && hall_config_window(c, t->id, strlen(t->id)) < 0)
            return fail(p, get(p, e, "id"), "tokens[].id: no window '%s'", t->id);
        if (t->role == HALL_ROLE_DEPARTMENT && hall_config_department(c, t->id, strlen(t->id)) < 0)
            return fail(p, get(p, e, "id"), "tokens[].id: no department '%s'", t->id);
        if (strlen(t->id) > 16)
            return fail(p, get(p, e, "id"), "tokens[].id: longer than 16 characters");
    }
    return 0;
}

static int hex_decode(const char *s, size_t n, uint8_t *out)
{
    size_t bin_len;
    return sodium_hex2bin(out, n / 2, s, n, NULL, &bin_len, NULL) == 0 && bin_len == n / 2 ? 0 : -1;
}

/* tokens[i]: `token: X` or `token_hash: "b2:SALT:HASH"` (hex, 16 and 32
 * bytes); every entry in the same form, every hash with the same salt. */
static int parse_token(parser *p, hall_config *c, yaml_node_t *e, int i)
{
    hall_token *t = &c->tokens[i];
    yaml_node_t *raw = get(p, e, "token"), *hashed = get(p, e, "token_hash");
    if (!raw == !hashed)
        return fail(p, e, "tokens[]: give either token or token_hash");
    if (i > 0 && (hashed != NULL) != c->tokens_hashed)
        return fail(p, e, "tokens[]: every entry gives token, or every one token_hash");
    c->tokens_hashed = hashed != NULL;
    if (raw) {
        if (get_str(p, e, "tokens[]", "token", true, t->token, sizeof t->token))
            return -1;
        if (strlen(t->token) < 8)
            return fail(p, e, "tokens[]: token for '%s' is shorter than 8 characters", t->id);
        for (int j = 0; j < i; j++)
            if (strcmp(c->tokens[j].token, t->token) == 0)
                return fail(p, e, "tokens[]: the same token is given twice");
        return 0;
    }
    char v[4 + 2 * HALL_TOKEN_SALT_LEN + 2 * HALL_TOKEN_HASH_LEN + 2];
    uint8_t salt[HALL_TOKEN_SALT_LEN];
    if (get_str(p, e, "tokens[]", "token_hash", true, v, sizeof v))
        return -1;
    const char *s = v + 3, *h = s + 2 * HALL_TOKEN_SALT_LEN + 1;
    if (strlen(v) != sizeof v - 2 || memcmp(v, "b2:", 3) != 0 || h[-1] != ':' ||
        hex_decode(s, 2 * HALL_TOKEN_SALT_LEN, salt) ||
        hex_decode(h, 2 * HALL_TOKEN_HASH_LEN, t->hash))
        return fail(p, hashed,
                    "tokens[].token_hash: expected \"b2:SALT:HASH\" (%d and %d hex "
                    "bytes)",
                    HALL_TOKEN_SALT_LEN, HALL_TOKEN_HASH_LEN);
    if (i == 0)
        memcpy(c->token_salt, salt, sizeof salt);
    else if (memcmp(c->token_salt, salt, sizeof salt) != 0)
        return fail(p, hashed, "tokens[].token_hash: every hash must have the same salt");
    for (int j = 0; j < i; j++)
        if (memcmp(c->tokens[j].hash, t->hash, sizeof t->hash) == 0)
            return fail(p, e, "tokens[]: the same token is given twice");
    return 0;
}

int hall_config_parse(const char *text, size_t len, const char *origin, hall_config **out,
                      char *err, size_t errlen)
{
    parser p = {.origin = origin, .err = err, .errlen = errlen};
    yaml_parser_t yp;
    hall_config *c = calloc(1, sizeof *c);
    if (!c || !yaml_parser_initialize(&yp)) {
        snprintf(err, errlen, "%s: out of memory", origin);
        free(c);
        return -1;
    }
    yaml_parser_set_input_string(&yp, (const unsigned char *)text, len);
    if (!yaml_parser_load(&yp, &p.doc)) {
        snprintf(err, errlen, "%s:%zu: YAML syntax: %s", origin, yp.problem_mark.line + 1,
                 yp.problem ? yp.problem : "error");
        yaml_parser_delete(&yp);
        free(c);
        return -1;
    }
    yaml_parser_delete(&yp);
    set_defaults(c);

    static const char *const top[] = {
        "hall",        "calendar",  "rules",    "limits",  "listeners", "wal", "state", "lines",
        "departments", "materials", "services", "windows", "tokens",    "pii", "log",   NULL};
    static const char *const lkeys[] = {"tcp", "unix", "http", NULL};
    yaml_node_t *root = yaml_document_get_root_node(&p.doc);
    if (!root)
        fail(&p, NULL, "the file is empty");
    else if (check_keys(&p, root, "config", top) || parse_hall(&p, c, get(&p, root, "hall")) ||
             parse_calendar(&p, c, get(&p, root, "calendar")) ||
             parse_rules(&p, c, get(&p, root, "rules")) ||
             parse_limits(&p, c, get(&p, root, "limits")) ||
             parse_wal(&p, c, get(&p, root, "wal")) || parse_state(&p, c, get(&p, root, "state")) ||
             parse_pii(&p, c, get(&p, root, "pii")) || parse_log(&p, c, get(&p, root, "log")) ||
             parse_catalogue(&p, c, root)) {
        /* error already set */
    } else {
        yaml_node_t *ls = get(&p, root, "listeners");
        if (ls && !check_keys(&p, ls, "listeners", lkeys)) {
            parse_listener(&p, get(&p, ls, "tcp"), "listeners.tcp", "addr", &c->tcp);
            parse_listener(&p, get(&p, ls, "unix"), "listeners.unix", "path", &c->unix_);
            parse_listener(&p, get(&p, ls, "http"), "listeners.http", "addr", &c->http);
        }
    }
    yaml_document_delete(&p.doc);
    if (p.failed) {
        hall_config_free(c);
        return -1;
    }
    c->text = malloc(len + 1);
    if (!c->text) {
        hall_config_free(c);
        snprintf(err, errlen, "%s: out of memory", origin);
        return -1;
    }
    memcpy(c->text, text, len);
    c->text[len] = 0;
    c->text_len = len;
    if (c->tokens_hashed || c->n_tokens == 0)
        crypto_generichash(c->sha, sizeof c->sha, (const unsigned char *)text, len, NULL, 0);
    *out = c;
    return 0;
}

int hall_config_check_records(const hall_config *c, const char *origin, uint64_t seg_header,
                              uint64_t overhead, uint64_t max_payload, char *err, size_t errlen)
{
    uint64_t room = c->wal.segment_bytes - seg_header - overhead;
    if (room > max_payload)
        room = max_payload;
    room = room > HALL_RECORD_SLACK ? room - HALL_RECORD_SLACK : 0;
    if (c->limits.max_frame > room) {
        snprintf(err, errlen,
                 "%s: limits.max_frame (%u) is too large for a WAL record in a segment of "
                 "wal.segment_bytes (%" PRIu64 "): a request's record must fit one segment "
                 "with its result; make max_frame at most %" PRIu64 " or segment_bytes larger",
                 origin, c->limits.max_frame, c->wal.segment_bytes, room);
        return -1;
    }
    return 0;
}

void hall_config_free(hall_config *c)
{
    if (!c)
        return;
    free(c->cal.holidays);
    free(c->cal.extra_days);
    free(c->lines);
    free(c->departments);
    free(c->materials);
    free(c->services);
    free(c->windows);
    free(c->tokens);
    free(c->text);
    free(c);
}

#define LOOKUP(fn, arr, cnt, field)                                                                \
    int fn(const hall_config *c, const char *id, size_t n)                                         \
    {                                                                                              \
        for (int i = 0; i < c->cnt; i++)                                                           \
            if (strlen(c->arr[i].field) == n && memcmp(c->arr[i].field, id, n) == 0)               \
                return i;                                                                          \
        return -1;                                                                                 \
    }
LOOKUP(hall_config_line, lines, n_lines, id)
LOOKUP(hall_config_department, departments, n_departments, id)
LOOKUP(hall_config_material, materials, n_materials, code)
LOOKUP(hall_config_service, services, n_services, code)
LOOKUP(hall_config_window, windows, n_windows, id)
#undef LOOKUP

bool hall_config_has_pickup(const hall_config *c)
{
    for (int i = 0; i < c->n_lines; i++)
        if (c->lines[i].pickup)
            return true;
    return false;
}

const hall_token *hall_config_token(const hall_config *c, const char *token, size_t n)
{
    /* Every token is compared in full, so the time taken does not say how
     * much of a guess was right nor which entry matched. */
    const hall_token *found = NULL;
    if (c->tokens_hashed) {
        uint8_t h[HALL_TOKEN_HASH_LEN];
        crypto_generichash(h, sizeof h, (const unsigned char *)token, n, c->token_salt,
                           sizeof c->token_salt);
        for (int i = 0; i < c->n_tokens; i++)
            if (sodium_memcmp(h, c->tokens[i].hash, sizeof h) == 0)
                found = &c->tokens[i];
        return found;
    }
    for (int i = 0; i < c->n_tokens; i++) {
        const char *t = c->tokens[i].token;
        size_t tl = strlen(t);
        unsigned char diff = (unsigned char)(tl != n);
        for (size_t j = 0; j < sizeof c->tokens[i].token; j++) {
            unsigned char a = j < tl ? (unsigned char)t[j] : 0;
            unsigned char b = j < n ? (unsigned char)token[j] : 0;
            diff |= a ^ b;
        }
        if (n >= sizeof c->tokens[i].token)
            diff |= 1;
        if (!diff)
            found = &c->tokens[i];
    }
    return found;
}
