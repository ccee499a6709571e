/* tools/audit_dump.c: hallq wal dump and hallq wal history, the WAL read
 * back as an audit trail.
 *
 *   hallq wal dump [WAL] [--json] [--since T] [--until T] [--lsn A..B]
 *                  [--op NAME,...] [--actor ROLE[:ID]] [--case NO] [--ticket ID]
 *   hallq wal history CASE_NO [WAL] [--json]
 *   hallq wal history --ticket ID [WAL] [--json]
 *
 * Both read the log once, in LSN order, and never write it. Some records
 * name their ticket only through the window serving it (window.no_show,
 * .done, .transfer and .intake, case.supplement and case.deliver act on the
 * window's current ticket), and day.close expires the tickets waiting then
 * without naming them. So both commands follow every window's current
 * ticket, and the state of the tickets they watch, through the whole log,
 * even where a filter shows only a part of it.
 *
 * Everything shown from a record goes through one of two sanitizers: text
 * never passes control characters or bad UTF-8 to the terminal, and JSON
 * strings are always valid UTF-8 (bad bytes become U+FFFD). A record of a
 * type this version does not know, or with a payload it cannot decode, is
 * shown as such and never stops the command. */
#include "tools/audit.h"
#include "daemon/hall/hall.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { A_OK = 0, A_FAIL = 1, A_USAGE = 2 };

#define SCAN_STOP 1  /* a visitor's "nothing more to show" */
#define SCAN_NOMEM 2 /* a visitor ran out of memory */
#define TICKET_ID_MAX 64
#define MAX_OPS 64
#define MAX_DEPTH 40     /* msgpack-c nests 32 deep at most; a guard all the same */
#define TEXT_STR_MAX 120 /* longer strings (a config's text) show as their size */
#define TEXT_ARRAY_MAX 16

static const char dump_usage_text[] =
    "usage:\n"
    "  hallq wal dump [WAL] [--json] [--since TIME] [--until TIME] [--lsn A..B]\n"
    "                 [--op NAME[,NAME]] [--actor ROLE[:ID]] [--case CASE_NO] [--ticket ID]\n"
    "  hallq wal history CASE_NO [WAL] [--json]\n"
    "  hallq wal history --ticket ID [WAL] [--json]\n";

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage(const char *fmt, ...)
{
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        fputs("hallq: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    fputs(dump_usage_text, stderr);
    return A_USAGE;
}

/* ---- a growing string ---- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_puts(sbuf *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        sb_putn(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_putn(b, big, (size_t)n);
    free(big);
}

static void sb_reset(sbuf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = 0;
}

static const char *sb_str(const sbuf *b)
{
    return b->p ? b->p : "";
}

static void sb_free(sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- sanitizers ---- */

/* Length of the valid UTF-8 sequence at p, 0 if it is not one. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0], min;
    size_t l;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        l = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        l = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        l = 4, min = 0x10000;
    else
        return 0;
    if (n < l)
        return 0;
    unsigned cp = c & (0x7fu >> l);
    for (size_t i = 1; i < l; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return l;
}

/* Text for a terminal: bad UTF-8, C0 controls, DEL and C1 controls become
 * '?', so a record can never drive the terminal. */
static void sb_text(sbuf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len(p + i, n - i);
        bool bad = l == 0 || (l == 1 && (p[i] < 0x20 || p[i] == 0x7f)) ||
                   (l == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0);
        if (bad)
            sb_putn(b, "?", 1);
        else
            sb_putn(b, s + i, l);
        i += l ? l : 1;
    }
}

/* A JSON string from any bytes: bad UTF-8 becomes U+FFFD. */
static json_t *json_str(const char *s, size_t n, sbuf *tmp)
{
    const unsigned char *p = (const unsigned char *)s;
    sb_reset(tmp);
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len(p + i, n - i);
        if (l)
            sb_putn(tmp, s + i, l);
        else
            sb_putn(tmp, "\xef\xbf\xbd", 3);
        i += l ? l : 1;
    }
    return tmp->oom ? NULL : json_stringn_nocheck(sb_str(tmp), tmp->len);
}

static void hex_of(sbuf *b, const char *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        char h[2] = {digits[(unsigned char)p[i] >> 4], digits[(unsigned char)p[i] & 15]};
        sb_putn(b, h, 2);
    }
}

/* ---- msgpack helpers ---- */

static bool mp_is_str(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

static const msgpack_object *mp_get(const msgpack_object *m, const char *key)
{
    return proto_map_get(m, key);
}

/* A string field copied out NUL-terminated (exactly, never cut: false
 * when it does not fit, is missing or is no string). */
static bool mp_get_str(const msgpack_object *m, const char *key, char *out, size_t cap)
{
    const msgpack_object *v = mp_get(m, key);
    if (!v || v->type != MSGPACK_OBJECT_STR || v->via.str.size >= cap)
        return false;
    memcpy(out, v->via.str.ptr, v->via.str.size);
    out[v->via.str.size] = 0;
    return true;
}

static bool mp_get_u64(const msgpack_object *m, const char *key, uint64_t *out)
{
    const msgpack_object *v = mp_get(m, key);
    if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *out = v->via.u64;
    return true;
}

/* A field for text: the sanitized string, or "?" when it is missing. */
static void sb_field(sbuf *b, const msgpack_object *m, const char *key)
{
    const msgpack_object *v = mp_get(m, key);
    if (v && v->type == MSGPACK_OBJECT_STR)
        sb_text(b, v->via.str.ptr, v->via.str.size);
    else
        sb_puts(b, "?");
}

/* A list of strings for text: "M03,M06". */
static void sb_list(sbuf *b, const msgpack_object *m, const char *key)
{
    const msgpack_object *v = mp_get(m, key);
    if (!v || v->type != MSGPACK_OBJECT_ARRAY) {
        sb_puts(b, "?");
        return;
    }
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        const msgpack_object *e = &v->via.array.ptr[i];
        if (i)
            sb_puts(b, ",");
        if (e->type == MSGPACK_OBJECT_STR)
            sb_text(b, e->via.str.ptr, e->via.str.size);
        else
            sb_puts(b, "?");
    }
}

/* Whether o holds, at any depth, `key` with the string value `val`. */
static bool mentions(const msgpack_object *o, const char *key, const char *val, int depth)
{
    if (!o || depth > MAX_DEPTH)
        return false;
    if (o->type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (mp_is_str(&kv->key, key) && mp_is_str(&kv->val, val))
                return true;
            if (mentions(&kv->val, key, val, depth + 1))
                return true;
        }
    } else if (o->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < o->via.array.size; i++)
            if (mentions(&o->via.array.ptr[i], key, val, depth + 1))
                return true;
    }
    return false;
}

/* ---- generic renderings: JSON and compact text ---- */

static json_t *to_json(const msgpack_object *o, sbuf *tmp, int depth)
{
    if (!o)
        return json_null();
    if (depth > MAX_DEPTH)
        return json_string("...");
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return o->via.u64 <= INT64_MAX ? json_integer((json_int_t)o->via.u64)
                                       : json_real((double)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: {
        json_t *j = json_real(o->via.f64); /* NULL for NaN and infinities */
        return j ? j : json_null();
    }
    case MSGPACK_OBJECT_STR:
        return json_str(o->via.str.ptr, o->via.str.size, tmp);
    case MSGPACK_OBJECT_BIN:
        sb_reset(tmp);
        hex_of(tmp, o->via.bin.ptr, o->via.bin.size);
        return tmp->oom ? NULL : json_stringn_nocheck(sb_str(tmp), tmp->len);
    case MSGPACK_OBJECT_EXT:
        sb_reset(tmp);
        hex_of(tmp, o->via.ext.ptr, o->via.ext.size);
        return tmp->oom ? NULL : json_stringn_nocheck(sb_str(tmp), tmp->len);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++)
            json_array_append_new(a, to_json(&o->via.array.ptr[i], tmp, depth + 1));
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            json_t *k;
            if (kv->key.type == MSGPACK_OBJECT_STR)
                k = json_str(kv->key.via.str.ptr, kv->key.via.str.size, tmp);
            else /* keys are strings on the wire; anything else is shown as JSON text */
                k = NULL;
            json_t *v = to_json(&kv->val, tmp, depth + 1);
            if (k)
                json_object_setn_new_nocheck(m, json_string_value(k), json_string_length(k), v);
            else {
                json_t *kj = to_json(&kv->key, tmp, depth + 1);
                char *txt = kj ? json_dumps(kj, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
                json_object_set_new(m, txt ? txt : "?", v);
                free(txt);
                json_decref(kj);
            }
            json_decref(k);
        }
        return m;
    }
    }
    return json_null();
}

static void text_value(sbuf *b, const hall_config *cfg, const msgpack_object *o, const char *key,
                       size_t keylen, int depth);

/* "2026-11-24T10:05:00" for a time field (no space: the summary is
 * key=value words). */
static bool is_time_key(const char *key, size_t n, const msgpack_object *v)
{
    return n > 3 && memcmp(key + n - 3, "_ms", 3) == 0 &&
           v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 >= 100000000000ull &&
           v->via.u64 <= (uint64_t)INT64_MAX;
}

static void text_kvs(sbuf *b, const hall_config *cfg, const msgpack_object *m, int depth)
{
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        const char *k = "?";
        size_t kn = 1;
        if (kv->key.type == MSGPACK_OBJECT_STR)
            k = kv->key.via.str.ptr, kn = kv->key.via.str.size;
        if (i)
            sb_puts(b, " ");
        if (is_time_key(k, kn, &kv->val))
            sb_text(b, k, kn - 3);
        else
            sb_text(b, k, kn);
        sb_puts(b, "=");
        text_value(b, cfg, &kv->val, k, kn, depth + 1);
    }
}

static void text_value(sbuf *b, const hall_config *cfg, const msgpack_object *o, const char *key,
                       size_t keylen, int depth)
{
    if (depth > MAX_DEPTH) {
        sb_puts(b, "...");
        return;
    }
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        sb_puts(b, "nil");
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        sb_puts(b, o->via.boolean ? "true" : "false");
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (key && is_time_key(key, keylen, o)) {
            char t[20];
            audit_time_format(cfg, (int64_t)o->via.u64, t);
            t[10] = 'T';
            sb_puts(b, t);
        } else {
            sb_printf(b, "%" PRIu64, o->via.u64);
        }
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        sb_printf(b, "%" PRId64, o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        sb_printf(b, "%g", o->via.f64);
        break;
    case MSGPACK_OBJECT_STR: {
        const char *s = o->via.str.ptr;
        size_t n = o->via.str.size;
        if (n > TEXT_STR_MAX) {
            sb_printf(b, "<%zu bytes>", n);
            break;
        }
        bool quote = n == 0;
        for (size_t i = 0; i < n && !quote; i++)
            quote = strchr(" =,[]{}\"", s[i]) != NULL; /* s[i] == 0 matches too */
        if (quote)
            sb_puts(b, "\"");
        sb_text(b, s, n);
        if (quote)
            sb_puts(b, "\"");
        break;
    }
    case MSGPACK_OBJECT_BIN:
        sb_puts(b, "0x");
        hex_of(b, o->via.bin.ptr, o->via.bin.size > 32 ? 32 : o->via.bin.size);
        if (o->via.bin.size > 32)
            sb_printf(b, "...(%" PRIu32 " bytes)", o->via.bin.size);
        break;
    case MSGPACK_OBJECT_EXT:
        sb_printf(b, "ext%d:", (int)o->via.ext.type);
        hex_of(b, o->via.ext.ptr, o->via.ext.size > 32 ? 32 : o->via.ext.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        sb_puts(b, "[");
        for (uint32_t i = 0; i < o->via.array.size && i < TEXT_ARRAY_MAX; i++) {
            if (i)
                sb_puts(b, ",");
            text_value(b, cfg, &o->via.array.ptr[i], NULL, 0, depth + 1);
        }
        if (o->via.array.size > TEXT_ARRAY_MAX)
            sb_printf(b, ",...(%" PRIu32 " in all)", o->via.array.size);
        sb_puts(b, "]");
        break;
    case MSGPACK_OBJECT_MAP: {
        /* A ticket or a case inside a result is named by its id; the JSON
         * has all of it. */
        const msgpack_object *id = mp_get(o, "ticket_id");
        if (!id)
            id = mp_get(o, "case_no");
        if (id && id->type == MSGPACK_OBJECT_STR) {
            sb_text(b, id->via.str.ptr, id->via.str.size);
            break;
        }
        sb_puts(b, "{");
        text_kvs(b, cfg, o, depth);
        sb_puts(b, "}");
        break;
    }
    }
}

/* The summary of a record: "args => result" (empty parts left out). */
static void text_summary(sbuf *b, const hall_config *cfg, const msgpack_object *args,
                         const msgpack_object *result)
{
    bool any = false;
    if (args && !(args->type == MSGPACK_OBJECT_MAP && args->via.map.size == 0)) {
        if (args->type == MSGPACK_OBJECT_MAP)
            text_kvs(b, cfg, args, 0);
        else
            text_value(b, cfg, args, NULL, 0, 0);
        any = true;
    }
    if (result && !(result->type == MSGPACK_OBJECT_MAP && result->via.map.size == 0)) {
        sb_puts(b, any ? " => " : "=> ");
        if (result->type == MSGPACK_OBJECT_MAP)
            text_kvs(b, cfg, result, 0);
        else
            text_value(b, cfg, result, NULL, 0, 0);
    }
}

/* ---- a record decoded ---- */

typedef struct drec {
    const wal_record *rec;
    const hall_op_def *def; /* NULL: a record type this version does not know */
    bool decoded;           /* the payload is a MessagePack map */
    const msgpack_object *ev, *args, *result;
    msgpack_object root;
} drec;

static void drec_decode(drec *d, const wal_record *rec, msgpack_zone *z)
{
    memset(d, 0, sizeof *d);
    d->rec = rec;
    d->def = hall_op_by_record(rec->type);
    size_t off = 0;
    msgpack_zone_clear(z);
    if (msgpack_unpack((const char *)rec->payload, rec->payload_len, &off, z, &d->root) ==
            MSGPACK_UNPACK_SUCCESS &&
        d->root.type == MSGPACK_OBJECT_MAP) {
        d->decoded = true;
        d->ev = mp_get(&d->root, "ev");
        d->args = mp_get(&d->root, "args");
        d->result = mp_get(&d->root, "result");
    }
}

static bool drec_is(const drec *d, hall_op op)
{
    return d->def && d->def->op == op;
}

/* "window:W03" (role numbers a newer version may add show as "role7"). */
static void sb_actor_role(sbuf *b, uint8_t role)
{
    if (role < HALL_ROLE__COUNT)
        sb_puts(b, hall_role_name((hall_role)role));
    else
        sb_printf(b, "role%u", role);
}

static void sb_actor(sbuf *b, const wal_record *rec)
{
    sb_actor_role(b, rec->actor_role);
    sb_puts(b, ":");
    sb_text(b, rec->actor_id, rec->actor_id_len);
}

/* The op's name for text: the known name, else what the payload says. */
static void sb_op(sbuf *b, const drec *d)
{
    if (d->def) {
        sb_puts(b, d->def->name);
        return;
    }
    sb_printf(b, "unknown record type %u", d->rec->type);
}

static json_t *json_actor(const wal_record *rec, sbuf *tmp)
{
    sbuf role = {0};
    sb_actor_role(&role, rec->actor_role);
    json_t *a = json_object();
    json_object_set_new(a, "role", json_str(sb_str(&role), role.len, tmp));
    json_object_set_new(a, "id", json_str(rec->actor_id, rec->actor_id_len, tmp));
    sb_free(&role);
    return a;
}

/* The start of every JSON line: lsn, at_ms, time, type, actor, op. */
static json_t *json_head(const hall_config *cfg, const drec *d, sbuf *tmp)
{
    char t[20];
    audit_time_format(cfg, (int64_t)d->rec->at_ms, t);
    json_t *o = json_object();
    json_object_set_new(o, "lsn", json_integer((json_int_t)d->rec->lsn));
    json_object_set_new(o, "at_ms", json_integer((json_int_t)d->rec->at_ms));
    json_object_set_new(o, "time", json_string(t));
    json_object_set_new(o, "type", json_integer(d->rec->type));
    json_object_set_new(o, "actor", json_actor(d->rec, tmp));
    json_object_set_new(o, "op", d->def ? json_string(d->def->name) : json_null());
    return o;
}

/* One JSON line on stdout; false when it could not be made or written. */
static bool json_line(json_t *o)
{
    if (!o)
        return false;
    int rc = json_dumpf(o, stdout, JSON_COMPACT);
    json_decref(o);
    return rc == 0 && fputc('\n', stdout) != EOF;
}

/* ---- following windows and tickets through the log ---- */

typedef enum tk_state {
    TK_UNSEEN,  /* not taken yet (as far as the log has told) */
    TK_WAITING, /* in a line: taken, returned or transferred, not called since */
    TK_CALLED,  /* the current ticket of a window */
    TK_ENDED,   /* done, no_show (until it returns) or expired */
} tk_state;

typedef struct win_cur {
    char win[WAL_ACTOR_ID_MAX + 1];
    char ticket[TICKET_ID_MAX];
} win_cur;

typedef struct watched {
    char id[TICKET_ID_MAX];
    tk_state st;
} watched;

typedef struct tracker {
    win_cur *win;
    size_t n_win, cap_win;
    watched *tk;
    size_t n_tk, cap_tk;
} tracker;

static win_cur *win_find(tracker *t, const char *win, bool add)
{
    for (size_t i = 0; i < t->n_win; i++)
        if (!strcmp(t->win[i].win, win))
            return &t->win[i];
    if (!add)
        return NULL;
    if (t->n_win == t->cap_win) {
        size_t cap = t->cap_win ? t->cap_win * 2 : 16;
        win_cur *p = realloc(t->win, cap * sizeof *p);
        if (!p)
            return NULL;
        t->win = p;
        t->cap_win = cap;
    }
    win_cur *w = &t->win[t->n_win++];
    memset(w, 0, sizeof *w);
    snprintf(w->win, sizeof w->win, "%s", win);
    return w;
}

static watched *tk_find(tracker *t, const char *id)
{
    for (size_t i = 0; i < t->n_tk; i++)
        if (!strcmp(t->tk[i].id, id))
            return &t->tk[i];
    return NULL;
}

static int tk_watch(tracker *t, const char *id)
{
    if (tk_find(t, id))
        return 0;
    if (strlen(id) >= TICKET_ID_MAX)
        return 0; /* no ticket id is that long: it never matches */
    if (t->n_tk == t->cap_tk) {
        size_t cap = t->cap_tk ? t->cap_tk * 2 : 8;
        watched *p = realloc(t->tk, cap * sizeof *p);
        if (!p)
            return -1;
        t->tk = p;
        t->cap_tk = cap;
    }
    watched *w = &t->tk[t->n_tk++];
    memset(w, 0, sizeof *w);
    snprintf(w->id, sizeof w->id, "%s", id);
    return 0;
}

static void tracker_free(tracker *t)
{
    free(t->win);
    free(t->tk);
    memset(t, 0, sizeof *t);
}

/* The ticket a record acts on ("" when none; day.close names none: see
 * tracker_after). `cur` is the window's current ticket before the record. */
static const char *record_ticket(const drec *d, const char *cur, char buf[TICKET_ID_MAX])
{
    const msgpack_object *t;
    buf[0] = 0;
    if (!d->def || !d->decoded)
        return buf;
    switch (d->def->op) {
    case HALL_OP_TICKET_TAKE:
        mp_get_str(d->result, "ticket_id", buf, TICKET_ID_MAX);
        break;
    case HALL_OP_TICKET_RETURN:
    case HALL_OP_RATE:
        mp_get_str(d->args, "ticket_id", buf, TICKET_ID_MAX);
        break;
    case HALL_OP_WINDOW_CALL:
    case HALL_OP_WINDOW_RECALL:
        if ((t = mp_get(d->result, "ticket")) && t->type == MSGPACK_OBJECT_MAP)
            mp_get_str(t, "ticket_id", buf, TICKET_ID_MAX);
        break;
    case HALL_OP_WINDOW_NO_SHOW:
    case HALL_OP_WINDOW_DONE:
    case HALL_OP_WINDOW_TRANSFER:
    case HALL_OP_WINDOW_INTAKE:
    case HALL_OP_CASE_SUPPLEMENT:
    case HALL_OP_CASE_DELIVER:
        return cur;
    default:
        if (!mp_get_str(d->args, "ticket_id", buf, TICKET_ID_MAX))
            mp_get_str(d->result, "ticket_id", buf, TICKET_ID_MAX);
        break;
    }
    return buf;
}

/* The window's current ticket ("" when none) before the record. */
static const char *record_window_ticket(tracker *t, const drec *d)
{
    if (d->rec->actor_role != HALL_ROLE_WINDOW)
        return "";
    win_cur *w = win_find(t, d->rec->actor_id, false);
    return w ? w->ticket : "";
}

/* Moves windows and watched tickets past one record. */
static int tracker_after(tracker *t, const drec *d, const char *tid)
{
    if (!d->def || !d->decoded)
        return 0;
    hall_op op = d->def->op;
    if (op == HALL_OP_DAY_CLOSE) {
        for (size_t i = 0; i < t->n_tk; i++)
            if (t->tk[i].st == TK_WAITING)
                t->tk[i].st = TK_ENDED;
        return 0;
    }
    if (d->rec->actor_role == HALL_ROLE_WINDOW) {
        win_cur *w = NULL;
        if (op == HALL_OP_WINDOW_CALL && tid[0]) {
            if (!(w = win_find(t, d->rec->actor_id, true)))
                return -1;
            snprintf(w->ticket, sizeof w->ticket, "%s", tid);
        } else if (op == HALL_OP_WINDOW_NO_SHOW || op == HALL_OP_WINDOW_DONE ||
                   op == HALL_OP_WINDOW_TRANSFER) {
            if ((w = win_find(t, d->rec->actor_id, false)))
                w->ticket[0] = 0;
        }
    }
    watched *k = tid[0] ? tk_find(t, tid) : NULL;
    if (!k)
        return 0;
    switch (op) {
    case HALL_OP_TICKET_TAKE:
    case HALL_OP_TICKET_RETURN:
    case HALL_OP_WINDOW_TRANSFER:
        k->st = TK_WAITING;
        break;
    case HALL_OP_WINDOW_CALL:
        k->st = TK_CALLED;
        break;
    case HALL_OP_WINDOW_NO_SHOW:
    case HALL_OP_WINDOW_DONE:
        k->st = TK_ENDED;
        break;
    default:
        break;
    }
    return 0;
}

/* ---- reading the log ---- */

typedef struct reader {
    const hall_config *cfg;
    const char *dir;
    bool json;
    tracker tr;
    msgpack_zone zone;
    sbuf line, tmp;
    audit_progress prog;
    bool prog_shown, out_tty;
    uint64_t shown;
    bool write_failed;
} reader;

static void reader_init(reader *r, const hall_config *cfg, const char *dir, const char *what)
{
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    r->dir = dir;
    msgpack_zone_init(&r->zone, 4096);
    audit_progress_init(&r->prog, what, 0);
    r->out_tty = isatty(STDOUT_FILENO) == 1;
}

static void reader_free(reader *r)
{
    tracker_free(&r->tr);
    msgpack_zone_destroy(&r->zone);
    sb_free(&r->line);
    sb_free(&r->tmp);
}

static void reader_progress(reader *r, uint64_t lsn)
{
    if ((lsn & 0xfff) == 0 && r->prog.tty) {
        audit_progress_show(&r->prog, lsn);
        r->prog_shown = true;
    }
}

/* Before a line goes out: a progress line on the same terminal is wiped. */
static void reader_before_output(reader *r)
{
    if (r->prog_shown && r->out_tty) {
        audit_progress_end(&r->prog);
        r->prog_shown = false;
    }
}

/* A text line: "LSN  TIME  ACTOR  OP  WHAT". */
static void text_line(reader *r, const drec *d, const char *what)
{
    char t[20];
    sbuf actor = {0}, op = {0};
    audit_time_format(r->cfg, (int64_t)d->rec->at_ms, t);
    sb_actor(&actor, d->rec);
    sb_op(&op, d);
    int rc = what[0] ? printf("%6" PRIu64 "  %s  %-14s  %-15s  %s\n", d->rec->lsn, t,
                              sb_str(&actor), sb_str(&op), what)
                     : printf("%6" PRIu64 "  %s  %-14s  %s\n", d->rec->lsn, t, sb_str(&actor),
                              sb_str(&op));
    if (rc < 0)
        r->write_failed = true;
    sb_free(&actor);
    sb_free(&op);
}

/* Scans the log with `visit`; prints where it is damaged. The exit status. */
static int reader_scan(reader *r, wal_visit_fn visit)
{
    wal_scan_options o = {.dir = r->dir, .must_exist = true, .visit = visit, .ctx = r};
    wal_scan_result res;
    int rc = wal_scan(&o, &res);
    if (r->prog_shown)
        audit_progress_end(&r->prog);
    if (fflush(stdout) != 0 || ferror(stdout) || r->write_failed) {
        fprintf(stderr, "hallq: writing the output: %s\n", strerror(errno));
        return A_FAIL;
    }
    if (rc == SCAN_NOMEM) {
        fprintf(stderr, "hallq: out of memory\n");
        return A_FAIL;
    }
    if (rc < 0) {
        if (res.bad_at.segment[0])
            fprintf(stderr, "hallq: %s is damaged at %s offset %" PRIu64 " (LSN %" PRIu64 "): %s\n",
                    r->dir, res.bad_at.segment, res.bad_at.offset, res.bad_at.lsn,
                    res.message[0] ? res.message : wal_strerror(rc));
        else
            fprintf(stderr, "hallq: %s: %s\n", r->dir,
                    res.message[0] ? res.message : wal_strerror(rc));
        return A_FAIL;
    }
    if (rc == 0 && res.torn)
        fprintf(stderr,
                "hallq: note: %s ends in a torn record at %s offset %" PRIu64 " (LSN %" PRIu64
                ", %s): it was never acknowledged and is not shown\n",
                r->dir, res.torn_at.segment, res.torn_at.offset, res.torn_at.lsn, res.torn_what);
    return A_OK;
}

/* ---- wal dump ---- */

typedef struct dump_ctx {
    reader r; /* first: the visitor's ctx is the reader */
    bool has_since, has_until;
    int64_t since, until;
    uint64_t lsn_lo, lsn_hi;
    uint16_t ops[MAX_OPS];
    int n_ops;
    int actor_role; /* -1: any */
    const char *actor_id;
    const char *case_no, *ticket;
} dump_ctx;

static bool dump_match(dump_ctx *c, const drec *d, const char *tid)
{
    const wal_record *rec = d->rec;
    if (rec->lsn < c->lsn_lo || (c->has_since && (int64_t)rec->at_ms < c->since))
        return false;
    if (c->n_ops) {
        int i = 0;
        while (i < c->n_ops && c->ops[i] != rec->type)
            i++;
        if (i == c->n_ops)
            return false;
    }
    if (c->actor_role >= 0 && rec->actor_role != c->actor_role)
        return false;
    if (c->actor_id && strcmp(rec->actor_id, c->actor_id) != 0)
        return false;
    if (c->case_no && !(mentions(d->args, "case_no", c->case_no, 0) ||
                        mentions(d->result, "case_no", c->case_no, 0)))
        return false;
    if (c->ticket) {
        bool touched = !strcmp(tid, c->ticket);
        if (!touched && drec_is(d, HALL_OP_DAY_CLOSE)) {
            watched *k = tk_find(&c->r.tr, c->ticket);
            touched = k && k->st == TK_WAITING;
        }
        if (!touched)
            return false;
    }
    return true;
}

static void dump_print(dump_ctx *c, const drec *d)
{
    reader *r = &c->r;
    reader_before_output(r);
    r->shown++;
    if (r->json) {
        json_t *o = json_head(r->cfg, d, &r->tmp);
        json_object_set_new(o, "args", d->args ? to_json(d->args, &r->tmp, 0) : json_null());
        json_object_set_new(o, "result", d->result ? to_json(d->result, &r->tmp, 0) : json_null());
        json_object_set_new(o, "events", d->ev ? to_json(d->ev, &r->tmp, 0) : json_array());
        if (!d->decoded)
            json_object_set_new(o, "error", json_string("malformed payload"));
        if (!json_line(o))
            r->write_failed = true;
        return;
    }
    sb_reset(&r->line);
    if (!d->decoded)
        sb_printf(&r->line, "malformed payload (%" PRIu32 " bytes)", d->rec->payload_len);
    else {
        const msgpack_object *op = mp_get(&d->root, "op");
        if (!d->def && op && op->type == MSGPACK_OBJECT_STR) {
            /* What a newer version calls it, for the reader to look up. */
            sb_puts(&r->line, "(");
            sb_text(&r->line, op->via.str.ptr, op->via.str.size);
            sb_puts(&r->line, ") ");
        }
        text_summary(&r->line, r->cfg, d->args, d->result);
    }
    text_line(r, d, sb_str(&r->line));
}

static int dump_visit(void *ctx, const wal_record *rec, const wal_pos *pos)
{
    dump_ctx *c = ctx;
    (void)pos;
    reader_progress(&c->r, rec->lsn);
    if (rec->lsn > c->lsn_hi || (c->has_until && (int64_t)rec->at_ms > c->until))
        return SCAN_STOP; /* the log is in LSN and time order: nothing more to show */
    drec d;
    char buf[TICKET_ID_MAX];
    drec_decode(&d, rec, &c->r.zone);
    const char *tid = record_ticket(&d, record_window_ticket(&c->r.tr, &d), buf);
    char tid_copy[TICKET_ID_MAX];
    snprintf(tid_copy, sizeof tid_copy, "%s", tid);
    bool match = dump_match(c, &d, tid_copy);
    if (tracker_after(&c->r.tr, &d, tid_copy) != 0)
        return SCAN_NOMEM;
    if (match)
        dump_print(c, &d);
    return c->r.line.oom || c->r.tmp.oom ? SCAN_NOMEM : 0;
}

/* "A..B", "A..", "..B" or "N". */
static int parse_lsn_range(const char *s, uint64_t *lo, uint64_t *hi)
{
    const char *dots = strstr(s, "..");
    const char *ends[2][2];
    if (dots) {
        ends[0][0] = s, ends[0][1] = dots;
        ends[1][0] = dots + 2, ends[1][1] = s + strlen(s);
    } else {
        ends[0][0] = ends[1][0] = s;
        ends[0][1] = ends[1][1] = s + strlen(s);
        if (!*s)
            return -1;
    }
    uint64_t v[2] = {1, UINT64_MAX};
    for (int i = 0; i < 2; i++) {
        const char *p = ends[i][0], *e = ends[i][1];
        if (p == e)
            continue;
        uint64_t x = 0;
        for (; p < e; p++) {
            if (*p < '0' || *p > '9' || x > (UINT64_MAX - 9) / 10)
                return -1;
            x = x * 10 + (uint64_t)(*p - '0');
        }
        v[i] = x;
    }
    if (v[0] == 0)
        v[0] = 1;
    if (v[0] > v[1])
        return -1;
    *lo = v[0];
    *hi = v[1];
    return 0;
}

static int parse_ops(dump_ctx *c, const char *list)
{
    const char *p = list;
    for (;;) {
        size_t n = strcspn(p, ",");
        const hall_op_def *def = n ? hall_op_find(p, n) : NULL;
        if (!def || !def->rec_type)
            return usage("--op %.*s: not an op the log records (e.g. ticket.take, window.call, "
                         "case.timer)",
                         (int)n, p);
        if (c->n_ops == MAX_OPS)
            return usage("--op: more than %d ops", MAX_OPS);
        c->ops[c->n_ops++] = def->rec_type;
        if (!p[n])
            return 0;
        p += n + 1;
    }
}

/* "ROLE" or "ROLE:ID", e.g. window:W03, department:mkt, system:hallqd. */
static int parse_actor(dump_ctx *c, const char *s)
{
    const char *colon = strchr(s, ':');
    size_t rn = colon ? (size_t)(colon - s) : strlen(s);
    char role[32];
    int r = -1;
    if (rn < sizeof role) {
        memcpy(role, s, rn);
        role[rn] = 0;
        r = !strcmp(role, "system") ? HALL_ROLE_SYSTEM : hall_role_from_name(role);
    }
    if (r < 0)
        return usage("--actor %s: expected ROLE[:ID], ROLE one of system, kiosk, window, display, "
                     "department, admin",
                     s);
    if (colon && (!colon[1] || strlen(colon + 1) > WAL_ACTOR_ID_MAX))
        return usage("--actor %s: the id after ':' must be 1 to %d bytes", s, WAL_ACTOR_ID_MAX);
    c->actor_role = r;
    c->actor_id = colon ? colon + 1 : NULL;
    return 0;
}

int audit_wal_dump(int ac, char **av)
{
    dump_ctx c;
    memset(&c, 0, sizeof c);
    c.lsn_lo = 1;
    c.lsn_hi = UINT64_MAX;
    c.actor_role = -1;
    const char *path = NULL, *since = NULL, *until = NULL;
    bool json = false;
    for (int i = 0; i < ac; i++) {
        const char *a = av[i];
        bool has_val = i + 1 < ac;
        int rc = 0;
        if (!strcmp(a, "--json"))
            json = true;
        else if (!strcmp(a, "--since") && has_val)
            since = av[++i];
        else if (!strcmp(a, "--until") && has_val)
            until = av[++i];
        else if (!strcmp(a, "--lsn") && has_val) {
            if (parse_lsn_range(av[++i], &c.lsn_lo, &c.lsn_hi) != 0)
                return usage("--lsn %s: expected A..B, A.. or ..B (record numbers, A <= B)", av[i]);
        } else if (!strcmp(a, "--op") && has_val)
            rc = parse_ops(&c, av[++i]);
        else if (!strcmp(a, "--actor") && has_val)
            rc = parse_actor(&c, av[++i]);
        else if (!strcmp(a, "--case") && has_val && av[i + 1][0])
            c.case_no = av[++i];
        else if (!strcmp(a, "--ticket") && has_val && av[i + 1][0])
            c.ticket = av[++i];
        else if (a[0] != '-' && !path)
            path = a;
        else if (a[0] == '-' && !has_val &&
                 (!strcmp(a, "--since") || !strcmp(a, "--until") || !strcmp(a, "--lsn") ||
                  !strcmp(a, "--op") || !strcmp(a, "--actor") || !strcmp(a, "--case") ||
                  !strcmp(a, "--ticket")))
            return usage("%s needs a value", a);
        else
            return usage("wal dump: unexpected '%s'", a);
        if (rc)
            return rc;
    }
    char dir[PATH_MAX], err[1024];
    audit_wal_dir(path, dir, sizeof dir);
    hall_config *cfg = audit_log_config(dir, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "hallq: %s\n", err);
        return A_FAIL;
    }
    const char *bad = NULL;
    if (since && audit_time_parse(cfg, since, &c.since) != 0)
        bad = "--since";
    else if (until && audit_time_parse(cfg, until, &c.until) != 0)
        bad = "--until";
    if (bad) {
        fprintf(stderr, "hallq: %s %s: expected 'YYYY-MM-DD HH:MM[:SS]' (hall time) or ms\n", bad,
                !strcmp(bad, "--since") ? since : until);
        hall_config_free(cfg);
        return A_USAGE;
    }
    c.has_since = since != NULL;
    c.has_until = until != NULL;
    if (c.has_since && c.has_until && c.since > c.until) {
        fprintf(stderr, "hallq: --since %s is after --until %s\n", since, until);
        hall_config_free(cfg);
        return A_USAGE;
    }
    reader_init(&c.r, cfg, dir, "dump: LSN");
    c.r.json = json;
    int code = A_OK;
    if (c.ticket && tk_watch(&c.r.tr, c.ticket) != 0) {
        fprintf(stderr, "hallq: out of memory\n");
        code = A_FAIL;
    } else {
        code = reader_scan(&c.r, dump_visit);
    }
    reader_free(&c.r);
    hall_config_free(cfg);
    return code;
}

/* ---- wal history ---- */

typedef struct hist_ctx {
    reader r;            /* first: the visitor's ctx is the reader */
    const char *case_no; /* a case's history, or */
    const char *ticket;  /* a ticket's */
    int64_t deadline_ms; /* the case's, as the log last said */
    sbuf what;
} hist_ctx;

/* "10:05" on the day of `ref`, else "2026-12-08 17:00" (seconds when
 * there are any). */
static void sb_when(sbuf *b, const hall_config *cfg, int64_t ms, int64_t ref)
{
    char t[20], r[20];
    audit_time_format(cfg, ms, t);
    if (!strcmp(t + 16, ":00"))
        t[16] = 0;
    const char *s = t;
    if (ref) {
        audit_time_format(cfg, ref, r);
        if (!memcmp(t, r, 10))
            s = t + 11;
    }
    sb_puts(b, s);
}

static void sb_time_field(sbuf *b, const hall_config *cfg, const msgpack_object *m, const char *key,
                          int64_t ref)
{
    uint64_t v;
    if (mp_get_u64(m, key, &v) && v <= (uint64_t)INT64_MAX)
        sb_when(b, cfg, (int64_t)v, ref);
    else
        sb_puts(b, "?");
}

/* "B001" of "20261124-B001". */
static void sb_ticket_number(sbuf *b, const char *tid)
{
    const char *dash = strrchr(tid, '-');
    sb_text(b, dash ? dash + 1 : tid, strlen(dash ? dash + 1 : tid));
}

static void intake_outcome(sbuf *b, const drec *d, const hall_config *cfg)
{
    const msgpack_object *outcome = mp_get(d->args, "outcome");
    sb_puts(b, "intake ");
    sb_field(b, d->args, "service");
    if (mp_is_str(outcome, "accept")) {
        sb_puts(b, ": accepted, case ");
        sb_field(b, d->result, "case_no");
        sb_puts(b, ", deadline ");
        sb_time_field(b, cfg, d->result, "deadline_ms", 0);
    } else if (mp_is_str(outcome, "instant")) {
        sb_puts(b, ": instant, case ");
        sb_field(b, d->result, "case_no");
        sb_puts(b, " approved on the spot");
    } else if (mp_is_str(outcome, "notify")) {
        sb_puts(b, ": notified, missing ");
        sb_list(b, d->result, "missing");
    } else if (mp_is_str(outcome, "refuse")) {
        sb_puts(b, ": refused (");
        sb_field(b, d->args, "reason");
        sb_puts(b, ")");
    } else {
        sb_puts(b, ": ");
        sb_field(b, d->args, "outcome");
    }
}

static void deliver_outcome(sbuf *b, const drec *d)
{
    if (mp_is_str(mp_get(d->args, "method"), "mail")) {
        sb_puts(b, "delivered by mail (tracking ");
        sb_field(b, d->args, "tracking");
        sb_puts(b, ")");
    } else {
        sb_puts(b, "delivered at the counter");
    }
}

static void rate_outcome(sbuf *b, const drec *d)
{
    uint64_t score = 0;
    mp_get_u64(d->args, "score", &score);
    sb_printf(b, "rated %" PRIu64, score);
    if (mp_get(d->args, "comment")) {
        sb_puts(b, ": ");
        sb_field(b, d->args, "comment");
    }
}

/* A step of a ticket's life, from the ticket's side. */
static void ticket_outcome(sbuf *b, const drec *d, const hall_config *cfg)
{
    const char *win = d->rec->actor_id;
    uint64_t ahead = 0;
    switch (d->def ? d->def->op : HALL_OP__COUNT) {
    case HALL_OP_TICKET_TAKE: {
        bool prio = false;
        const msgpack_object *p = mp_get(d->args, "priority");
        if (p && p->type == MSGPACK_OBJECT_BOOLEAN)
            prio = p->via.boolean;
        mp_get_u64(d->result, "ahead", &ahead);
        sb_puts(b, "taken: ");
        sb_field(b, d->result, "number");
        sb_puts(b, " on line ");
        sb_field(b, d->result, "line");
        sb_printf(b, ", %" PRIu64 " ahead", ahead);
        if (prio)
            sb_puts(b, ", priority");
        if (mp_get(d->args, "appointment")) {
            sb_puts(b, ", appointment ");
            sb_field(b, d->args, "appointment");
        }
        if (mp_get(d->args, "case_no")) {
            sb_puts(b, ", pickup of case ");
            sb_field(b, d->args, "case_no");
        }
        break;
    }
    case HALL_OP_WINDOW_CALL:
        sb_puts(b, "called at ");
        sb_text(b, win, strlen(win));
        break;
    case HALL_OP_WINDOW_RECALL:
        sb_puts(b, "recalled at ");
        sb_text(b, win, strlen(win));
        break;
    case HALL_OP_WINDOW_NO_SHOW:
        sb_puts(b, "no_show at ");
        sb_text(b, win, strlen(win));
        break;
    case HALL_OP_TICKET_RETURN:
        mp_get_u64(d->result, "ahead", &ahead);
        sb_printf(b, "returned, %" PRIu64 " ahead", ahead);
        break;
    case HALL_OP_WINDOW_TRANSFER:
        sb_puts(b, "transferred to line ");
        sb_field(b, d->args, "line");
        break;
    case HALL_OP_WINDOW_INTAKE:
        intake_outcome(b, d, cfg);
        break;
    case HALL_OP_CASE_SUPPLEMENT:
        sb_puts(b, "supplement for case ");
        sb_field(b, d->args, "case_no");
        sb_puts(b, ": ");
        sb_list(b, d->args, "materials");
        break;
    case HALL_OP_CASE_DELIVER:
        sb_puts(b, "case ");
        sb_field(b, d->args, "case_no");
        sb_puts(b, " ");
        deliver_outcome(b, d);
        break;
    case HALL_OP_WINDOW_DONE:
        sb_puts(b, "done at ");
        sb_text(b, win, strlen(win));
        break;
    case HALL_OP_DAY_CLOSE:
        sb_puts(b, "expired at day close");
        break;
    case HALL_OP_RATE:
        rate_outcome(b, d);
        break;
    default:
        text_summary(b, cfg, d->args, d->result);
        break;
    }
}

/* A step of a case's life (the record mentions the case). */
static void case_outcome(hist_ctx *h, sbuf *b, const drec *d, const char *cur)
{
    const hall_config *cfg = h->r.cfg;
    const char *dept = d->rec->actor_id;
    uint64_t v;
    switch (d->def ? d->def->op : HALL_OP__COUNT) {
    case HALL_OP_WINDOW_INTAKE: {
        const msgpack_object *outcome = mp_get(d->args, "outcome");
        if (mp_get_u64(d->result, "deadline_ms", &v) && v <= (uint64_t)INT64_MAX)
            h->deadline_ms = (int64_t)v;
        if (mp_is_str(outcome, "instant")) {
            sb_puts(b, "instant: approved on the spot (service ");
            sb_field(b, d->args, "service");
        } else {
            sb_puts(b, mp_is_str(outcome, "accept") ? "accepted, deadline " : "intake, deadline ");
            sb_time_field(b, cfg, d->result, "deadline_ms", 0);
            sb_puts(b, " (service ");
            sb_field(b, d->args, "service");
        }
        if (cur[0]) {
            sb_puts(b, ", ticket ");
            sb_ticket_number(b, cur);
        }
        sb_puts(b, ")");
        break;
    }
    case HALL_OP_REVIEW_CLAIM:
        sb_puts(b, "claimed by ");
        sb_text(b, dept, strlen(dept));
        sb_puts(b, " until ");
        sb_time_field(b, cfg, d->result, "lease_until_ms", (int64_t)d->rec->at_ms);
        break;
    case HALL_OP_REVIEW_DECIDE: {
        const msgpack_object *dec = mp_get(d->args, "decision");
        if (mp_is_str(dec, "approve")) {
            sb_puts(b, "approved by ");
            sb_text(b, dept, strlen(dept));
        } else if (mp_is_str(dec, "deny")) {
            sb_puts(b, "denied by ");
            sb_text(b, dept, strlen(dept));
            sb_puts(b, ": ");
            sb_field(b, d->args, "reason");
        } else if (mp_is_str(dec, "supplement")) {
            sb_puts(b, "supplement asked by ");
            sb_text(b, dept, strlen(dept));
            sb_puts(b, ": ");
            sb_list(b, d->args, "missing");
        } else {
            sb_field(b, d->args, "decision");
            sb_puts(b, " by ");
            sb_text(b, dept, strlen(dept));
        }
        const msgpack_object *st = mp_get(d->result, "state");
        if (st && !mp_is_str(st, "review") && !mp_is_str(st, "supplement")) {
            sb_puts(b, "; case ");
            sb_field(b, d->result, "state");
        }
        break;
    }
    case HALL_OP_CASE_TIMER: {
        const msgpack_object *kind = mp_get(d->args, "kind");
        if (mp_is_str(kind, "lease")) {
            sb_puts(b, "lease of ");
            sb_field(b, d->args, "department");
            sb_puts(b, " ran out");
        } else {
            sb_field(b, d->args, "kind");
            if (h->deadline_ms) {
                sb_puts(b, " (deadline ");
                sb_when(b, cfg, h->deadline_ms, 0);
                sb_puts(b, ")");
            }
        }
        break;
    }
    case HALL_OP_CASE_SUPPLEMENT:
        if (mp_get_u64(d->result, "deadline_ms", &v) && v <= (uint64_t)INT64_MAX)
            h->deadline_ms = (int64_t)v;
        sb_puts(b, "supplement: ");
        sb_list(b, d->args, "materials");
        sb_puts(b, " brought, deadline ");
        sb_time_field(b, cfg, d->result, "deadline_ms", 0);
        break;
    case HALL_OP_CASE_DELIVER:
        deliver_outcome(b, d);
        break;
    case HALL_OP_RATE:
        rate_outcome(b, d);
        break;
    case HALL_OP_TICKET_TAKE:
        sb_puts(b, "pickup ticket ");
        sb_field(b, d->result, "number");
        sb_puts(b, " taken on line ");
        sb_field(b, d->result, "line");
        if (mp_get_u64(d->result, "ahead", &v))
            sb_printf(b, ", %" PRIu64 " ahead", v);
        break;
    default:
        text_summary(b, cfg, d->args, d->result);
        break;
    }
}

static void hist_print(hist_ctx *h, const drec *d, const char *what)
{
    reader *r = &h->r;
    reader_before_output(r);
    r->shown++;
    if (r->json) {
        json_t *o = json_head(r->cfg, d, &r->tmp);
        json_object_set_new(o, "outcome", json_str(what, strlen(what), &r->tmp));
        if (!json_line(o))
            r->write_failed = true;
        return;
    }
    text_line(r, d, what);
}

static int hist_visit(void *ctx, const wal_record *rec, const wal_pos *pos)
{
    hist_ctx *h = ctx;
    (void)pos;
    reader_progress(&h->r, rec->lsn);
    drec d;
    char buf[TICKET_ID_MAX], tid[TICKET_ID_MAX], cur[TICKET_ID_MAX];
    drec_decode(&d, rec, &h->r.zone);
    snprintf(cur, sizeof cur, "%s", record_window_ticket(&h->r.tr, &d));
    snprintf(tid, sizeof tid, "%s", record_ticket(&d, cur, buf));
    watched *k = tid[0] ? tk_find(&h->r.tr, tid) : NULL;
    bool expiring = false;
    if (drec_is(&d, HALL_OP_DAY_CLOSE))
        for (size_t i = 0; i < h->r.tr.n_tk; i++)
            if (h->r.tr.tk[i].st == TK_WAITING) {
                expiring = true;
                k = &h->r.tr.tk[i];
                break;
            }
    sbuf *w = &h->what;
    sb_reset(w);
    bool step = false;
    if (h->case_no && d.decoded &&
        (mentions(d.args, "case_no", h->case_no, 0) ||
         mentions(d.result, "case_no", h->case_no, 0))) {
        /* A ticket at the issuance line for this case: follow it too. */
        if (drec_is(&d, HALL_OP_TICKET_TAKE) && tid[0] && tk_watch(&h->r.tr, tid) != 0)
            return SCAN_NOMEM;
        case_outcome(h, w, &d, cur);
        step = true;
    } else if (h->case_no && d.def && (k || expiring)) {
        sb_puts(w, "pickup ticket ");
        sb_ticket_number(w, k->id);
        sb_puts(w, ": ");
        ticket_outcome(w, &d, h->r.cfg);
        step = true;
    } else if (h->ticket && d.def && (k || expiring)) {
        ticket_outcome(w, &d, h->r.cfg);
        step = true;
    }
    if (tracker_after(&h->r.tr, &d, tid) != 0)
        return SCAN_NOMEM;
    if (step)
        hist_print(h, &d, sb_str(w));
    return w->oom || h->r.tmp.oom ? SCAN_NOMEM : 0;
}

int audit_wal_history(int ac, char **av)
{
    hist_ctx h;
    memset(&h, 0, sizeof h);
    const char *pos[2] = {NULL, NULL};
    int n_pos = 0;
    bool json = false;
    for (int i = 0; i < ac; i++) {
        if (!strcmp(av[i], "--json"))
            json = true;
        else if (!strcmp(av[i], "--ticket") && i + 1 < ac && av[i + 1][0] && !h.ticket)
            h.ticket = av[++i];
        else if (av[i][0] != '-' && n_pos < 2)
            pos[n_pos++] = av[i];
        else
            return usage("wal history: unexpected '%s'", av[i]);
    }
    const char *path = NULL;
    if (h.ticket) {
        if (n_pos > 1)
            return usage("wal history --ticket ID [WAL]: one log only");
        path = pos[0];
    } else {
        if (n_pos == 0)
            return usage("wal history: which case? (CASE_NO, or --ticket ID)");
        h.case_no = pos[0];
        path = pos[1];
    }
    char dir[PATH_MAX], err[1024];
    audit_wal_dir(path, dir, sizeof dir);
    hall_config *cfg = audit_log_config(dir, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "hallq: %s\n", err);
        return A_FAIL;
    }
    reader_init(&h.r, cfg, dir, "history: LSN");
    h.r.json = json;
    int code;
    if (h.ticket && tk_watch(&h.r.tr, h.ticket) != 0) {
        fprintf(stderr, "hallq: out of memory\n");
        code = A_FAIL;
    } else {
        code = reader_scan(&h.r, hist_visit);
    }
    if (code == A_OK && h.r.shown == 0) {
        sbuf s = {0};
        sb_text(&s, h.ticket ? h.ticket : h.case_no, strlen(h.ticket ? h.ticket : h.case_no));
        fprintf(stderr, "hallq: %s %s does not appear in %s\n", h.ticket ? "ticket" : "case",
                sb_str(&s), dir);
        sb_free(&s);
        code = A_FAIL;
    }
    sb_free(&h.what);
    reader_free(&h.r);
    hall_config_free(cfg);
    return code;
}
