/* tools/hallq_names.c: the names of the hall's lines, services,
 * departments, materials and windows, from the server's `catalogue`, for
 * the readable output; and `hallq board` and `hallq catalogue`.
 *
 * A renderer that prints an id (line A, service S01, mkt, M03) prints its
 * name after it: the config's Chinese name (name_zh) where it has one,
 * else its English name; with --lang en the English name. The names are
 * read once per run, on the command's own connection, before its request
 * (a result is valid only until the next request). A server without
 * `catalogue` (older than protocol 1.2) answers an error, which is not
 * shown: the output then has ids only. Text only: --json prints what the
 * server sent. */
#include "tools/hallq.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define NAMES_MAX 1024

typedef struct hq_name_entry {
    char kind; /* 'l' line, 's' service, 'd' department, 'm' material */
    char id[40];
    char name[128];
    char zh[128];
} hq_name_entry;

static hq_name_entry *names;
static int n_names;
static bool lang_en;

static void add(char kind, const msgpack_object *m, const char *idkey)
{
    if (n_names == NAMES_MAX || m->type != MSGPACK_OBJECT_MAP)
        return;
    for (int i = 0; i < n_names; i++) { /* materials repeat across services */
        char id[40];
        if (names[i].kind == kind && !strcmp(names[i].id, hq_get_str(m, idkey, id, sizeof id, "")))
            return;
    }
    hq_name_entry *e = &names[n_names];
    e->kind = kind;
    if (!hq_get_str(m, idkey, e->id, sizeof e->id, NULL))
        return;
    hq_get_str(m, "name", e->name, sizeof e->name, "");
    hq_get_str(m, "name_zh", e->zh, sizeof e->zh, "");
    n_names++;
}

static void add_list(char kind, const msgpack_object *cat, const char *key, const char *idkey)
{
    const msgpack_object *l = hq_get(cat, key);
    for (uint32_t i = 0; l && l->type == MSGPACK_OBJECT_ARRAY && i < l->via.array.size; i++) {
        const msgpack_object *e = &l->via.array.ptr[i];
        add(kind, e, idkey);
        if (kind == 's') {
            const msgpack_object *ms = hq_get(e, "materials");
            for (uint32_t j = 0; ms && ms->type == MSGPACK_OBJECT_ARRAY && j < ms->via.array.size;
                 j++)
                add('m', &ms->via.array.ptr[j], "code");
        }
    }
}

static void take(const msgpack_object *cat)
{
    add_list('l', cat, "lines", "line");
    add_list('s', cat, "services", "service");
    add_list('d', cat, "departments", "department");
}

void hq_names_load(hq_conn *c, const hq_opts *o)
{
    lang_en = o->lang_en;
    if (names)
        return;
    names = calloc(NAMES_MAX, sizeof *names);
    if (!names)
        return;
    const msgpack_object *cat;
    c->quiet = true;
    if (hq_request(c, "catalogue", NULL, &cat) == HQ_EXIT_OK)
        take(cat);
    c->quiet = false;
}

bool hq_names_known(void)
{
    return n_names > 0;
}

const char *hq_name(char kind, const char *id)
{
    for (int i = 0; id && i < n_names; i++)
        if (names[i].kind == kind && !strcmp(names[i].id, id)) {
            const hq_name_entry *e = &names[i];
            const char *n = lang_en ? e->name : e->zh[0] ? e->zh : e->name;
            return n[0] ? n : NULL;
        }
    return NULL;
}

const char *hq_named(char *buf, size_t n, char kind, const char *id)
{
    const char *name = hq_name(kind, id);
    if (name)
        snprintf(buf, n, "%s %s", id, name);
    else
        snprintf(buf, n, "%s", id ? id : "?");
    return buf;
}

/* ---- columns that hold Chinese ---- */

size_t hq_width(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t w = 0;
    while (*p) {
        size_t len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : 4;
        for (size_t i = 1; i < len; i++)
            if (!p[i])
                return w + 1; /* a cut sequence (hq_get_str never makes one) */
        if (len == 3) {
            /* Three bytes from U+1100: CJK, Hangul and fullwidth forms take
             * two columns (the names halls use); the others one. */
            unsigned cp = (unsigned)(p[0] & 0x0f) << 12 | (unsigned)(p[1] & 0x3f) << 6 |
                          (unsigned)(p[2] & 0x3f);
            w += (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
                         (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
                         (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
                         (cp >= 0xffe0 && cp <= 0xffe6)
                     ? 2
                     : 1;
        } else {
            w += len == 4 ? 2 : 1;
        }
        p += len;
    }
    return w;
}

void hq_pad(const char *s, size_t width)
{
    fputs(s, stdout);
    for (size_t w = hq_width(s); w < width; w++)
        fputc(' ', stdout);
}

/* ---- hallq board ---- */

void hq_show_board(const hq_conn *c, const msgpack_object *r)
{
    (void)c;
    char t[40], a[64], b[64], cell[200];
    hq_fmt_time(t, sizeof t, hq_get_int(r, "now_ms", 0), true);
    printf("board at seq %" PRId64 ", %s\n\n", hq_get_int(r, "seq", 0), t);
    const msgpack_object *ws = hq_get(r, "windows");
    size_t w0 = strlen("window"), w1 = strlen("state");
    for (uint32_t i = 0; ws && ws->type == MSGPACK_OBJECT_MAP && i < ws->via.map.size; i++) {
        const msgpack_object *k = &ws->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size > w0)
            w0 = k->via.str.size;
        size_t sl = strlen(hq_get_str(&ws->via.map.ptr[i].val, "state", a, sizeof a, "?"));
        w1 = sl > w1 ? sl : w1;
    }
    hq_pad("window", w0 + 2);
    hq_pad("state", w1 + 2);
    puts("serving");
    for (uint32_t i = 0; ws && ws->type == MSGPACK_OBJECT_MAP && i < ws->via.map.size; i++) {
        const msgpack_object *k = &ws->via.map.ptr[i].key, *v = &ws->via.map.ptr[i].val;
        snprintf(a, sizeof a, "%.*s", k->type == MSGPACK_OBJECT_STR ? (int)k->via.str.size : 1,
                 k->type == MSGPACK_OBJECT_STR ? k->via.str.ptr : "?");
        for (char *p = a; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
        hq_pad(a, w0 + 2);
        hq_pad(hq_get_str(v, "state", b, sizeof b, "?"), w1 + 2);
        const msgpack_object *cur = hq_get(v, "current");
        if (hq_is_nil(cur)) {
            puts("-");
            continue;
        }
        char num[32], line[40];
        hq_get_str(cur, "line", line, sizeof line, "?");
        printf("%s  (%s)\n", hq_get_str(cur, "number", num, sizeof num, "?"),
               hq_named(cell, sizeof cell, 'l', line));
    }
    const msgpack_object *ls = hq_get(r, "lines");
    size_t lw = strlen("line");
    for (uint32_t i = 0; ls && ls->type == MSGPACK_OBJECT_MAP && i < ls->via.map.size; i++) {
        const msgpack_object *k = &ls->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR)
            continue;
        snprintf(a, sizeof a, "%.*s", (int)k->via.str.size, k->via.str.ptr);
        size_t w = hq_width(hq_named(cell, sizeof cell, 'l', a));
        lw = w > lw ? w : lw;
    }
    fputc('\n', stdout);
    hq_pad("line", lw + 2);
    puts("waiting");
    for (uint32_t i = 0; ls && ls->type == MSGPACK_OBJECT_MAP && i < ls->via.map.size; i++) {
        const msgpack_object *k = &ls->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR)
            continue;
        snprintf(a, sizeof a, "%.*s", (int)k->via.str.size, k->via.str.ptr);
        for (char *p = a; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
        hq_pad(hq_named(cell, sizeof cell, 'l', a), lw + 2);
        printf("%" PRId64 "\n", hq_get_int(&ls->via.map.ptr[i].val, "waiting", 0));
    }
    const msgpack_object *rc = hq_get(r, "recent");
    uint32_t n = rc && rc->type == MSGPACK_OBJECT_ARRAY ? rc->via.array.size : 0;
    printf("\nrecent calls%s\n", n ? "" : ": none");
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *e = &rc->via.array.ptr[i];
        hq_fmt_time(t, sizeof t, hq_get_int(e, "at_ms", 0), false);
        printf("%s  %s -> %s\n", t, hq_get_str(e, "number", a, sizeof a, "?"),
               hq_get_str(e, "window", b, sizeof b, "?"));
    }
}

/* ---- hallq catalogue ---- */

/* The name of a catalogue entry in the language asked for, or "". */
static const char *entry_name(const msgpack_object *e, char *buf, size_t n)
{
    char zh[128];
    if (!lang_en && hq_get_str(e, "name_zh", zh, sizeof zh, NULL) && zh[0])
        return hq_get_str(e, "name_zh", buf, n, "");
    return hq_get_str(e, "name", buf, n, "");
}

static void print_list(const msgpack_object *l)
{
    for (uint32_t i = 0; l && l->type == MSGPACK_OBJECT_ARRAY && i < l->via.array.size; i++) {
        const msgpack_object *x = &l->via.array.ptr[i];
        if (i)
            fputc(' ', stdout);
        if (x->type == MSGPACK_OBJECT_STR)
            hq_text(stdout, x->via.str.ptr, x->via.str.size);
    }
}

void hq_show_catalogue(const hq_conn *c, const msgpack_object *r)
{
    (void)c;
    char id[64], name[200], cell[200], line[40], kind[32];
    const msgpack_object *l = hq_get(r, "lines");
    puts("lines");
    for (uint32_t i = 0; l && l->type == MSGPACK_OBJECT_ARRAY && i < l->via.array.size; i++) {
        const msgpack_object *e = &l->via.array.ptr[i];
        printf("  %-4s %s%s\n", hq_get_str(e, "line", id, sizeof id, "?"),
               entry_name(e, name, sizeof name), hq_get_bool(e, "pickup") ? "  (pickup)" : "");
    }
    const msgpack_object *s = hq_get(r, "services");
    puts("services");
    for (uint32_t i = 0; s && s->type == MSGPACK_OBJECT_ARRAY && i < s->via.array.size; i++) {
        const msgpack_object *e = &s->via.array.ptr[i];
        int64_t days = hq_get_int(e, "days", 0);
        hq_get_str(e, "line", line, sizeof line, "?");
        hq_get_str(e, "kind", kind, sizeof kind, "?");
        printf("  %-4s %s\n", hq_get_str(e, "service", id, sizeof id, "?"),
               entry_name(e, name, sizeof name));
        printf("       line %s, %s", hq_named(cell, sizeof cell, 'l', line), kind);
        if (strcmp(kind, "instant"))
            printf(" in %" PRId64 " working day%s", days, days == 1 ? "" : "s");
        const msgpack_object *ds = hq_get(e, "departments");
        for (uint32_t j = 0; ds && ds->type == MSGPACK_OBJECT_ARRAY && j < ds->via.array.size;
             j++) {
            const msgpack_object *d = &ds->via.array.ptr[j];
            char did[40];
            snprintf(did, sizeof did, "%.*s",
                     d->type == MSGPACK_OBJECT_STR ? (int)d->via.str.size : 1,
                     d->type == MSGPACK_OBJECT_STR ? d->via.str.ptr : "?");
            printf("%s%s", j ? ", " : ", by ", hq_named(cell, sizeof cell, 'd', did));
        }
        fputc('\n', stdout);
        const msgpack_object *ms = hq_get(e, "materials");
        fputs("       materials:", stdout);
        for (uint32_t j = 0; ms && ms->type == MSGPACK_OBJECT_ARRAY && j < ms->via.array.size;
             j++) {
            const msgpack_object *m = &ms->via.array.ptr[j];
            const char *nm = entry_name(m, name, sizeof name);
            printf("%s %s%s%s", j ? "," : "", hq_get_str(m, "code", id, sizeof id, "?"),
                   nm[0] ? " " : "", nm);
        }
        fputc('\n', stdout);
    }
    const msgpack_object *w = hq_get(r, "windows");
    puts("windows");
    for (uint32_t i = 0; w && w->type == MSGPACK_OBJECT_ARRAY && i < w->via.array.size; i++) {
        const msgpack_object *e = &w->via.array.ptr[i];
        char ord[32];
        printf("  %-4s lines ", hq_get_str(e, "window", id, sizeof id, "?"));
        print_list(hq_get(e, "lines"));
        printf(", order %s", hq_get_str(e, "order", ord, sizeof ord, "?"));
        if (hq_get_str(e, "kind", kind, sizeof kind, NULL))
            printf(" (%s)", kind);
        fputc('\n', stdout);
    }
    const msgpack_object *d = hq_get(r, "departments");
    puts("departments");
    for (uint32_t i = 0; d && d->type == MSGPACK_OBJECT_ARRAY && i < d->via.array.size; i++) {
        const msgpack_object *e = &d->via.array.ptr[i];
        printf("  %-4s %s\n", hq_get_str(e, "department", id, sizeof id, "?"),
               entry_name(e, name, sizeof name));
    }
}
