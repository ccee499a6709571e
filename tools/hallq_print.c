/* tools/hallq_print.c: results as JSON (for scripts) or as text (for people).
 *
 * The JSON is always valid, whatever the server sent: strings are escaped
 * by RFC 8259's rules and bytes that are not UTF-8 become U+FFFD; floats
 * that JSON cannot hold (inf, nan) become null; binary strings become hex.
 * Text for the terminal never passes a control character through, since
 * strings may come from citizens (a rating's comment, a name). */
#include "tools/hallq.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- map look-ups ---- */

const msgpack_object *hq_get(const msgpack_object *m, const char *key)
{
    if (!m || m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
            !memcmp(k->via.str.ptr, key, kl))
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

/* The length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* the range of the second byte */
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        if (c == 0xed)
            hi = 0x9f; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

/* Whether the l-byte sequence at p (l from utf8_len) is unsafe for a
 * terminal: bad UTF-8, C0 controls, DEL and the C1 controls
 * (U+0080..U+009F) would drive it. */
static bool unsafe(const unsigned char *p, size_t l)
{
    return l == 0 || (l == 1 && (p[0] < 0x20 || p[0] == 0x7f)) ||
           (l == 2 && p[0] == 0xc2 && p[1] < 0xa0);
}

void hq_text(FILE *f, const char *s, uint32_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len(p + i, n - i);
        if (unsafe(p + i, l))
            fputc('?', f);
        else
            fwrite(p + i, 1, l, f);
        i += l ? l : 1;
    }
}

const char *hq_get_str(const msgpack_object *m, const char *key, char *buf, size_t n,
                       const char *dflt)
{
    const msgpack_object *v = hq_get(m, key);
    if (!v || v->type != MSGPACK_OBJECT_STR || n == 0)
        return dflt;
    const unsigned char *p = (const unsigned char *)v->via.str.ptr;
    size_t len = v->via.str.size, o = 0;
    for (size_t i = 0; i < len;) {
        size_t l = utf8_len(p + i, len - i);
        bool bad = unsafe(p + i, l);
        size_t w = bad ? 1 : l;
        if (o + w >= n)
            break; /* cut at a character, never inside one */
        if (bad)
            buf[o] = '?';
        else
            memcpy(buf + o, p + i, l);
        o += w;
        i += l ? l : 1;
    }
    buf[o] = 0;
    return buf;
}

int64_t hq_get_int(const msgpack_object *m, const char *key, int64_t dflt)
{
    const msgpack_object *v = hq_get(m, key);
    if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return v->via.u64 > INT64_MAX ? INT64_MAX : (int64_t)v->via.u64;
    if (v && v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return v->via.i64;
    return dflt;
}

bool hq_get_bool(const msgpack_object *m, const char *key)
{
    const msgpack_object *v = hq_get(m, key);
    return v && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
}

bool hq_is_nil(const msgpack_object *o)
{
    return !o || o->type != MSGPACK_OBJECT_MAP;
}

void hq_fmt_time(char *buf, size_t n, int64_t ms, bool with_date)
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) ||
        !strftime(buf, n, with_date ? "%Y-%m-%d %H:%M:%S" : "%H:%M:%S", &tm))
        snprintf(buf, n, "%" PRId64 " ms", ms);
}

/* ---- JSON ---- */

static void json_str(FILE *f, const char *s, uint32_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned char ch = p[i];
        size_t l = utf8_len(p + i, n - i);
        if (l == 0) {
            fputs("\\ufffd", f);
            i++;
            continue;
        }
        if (l > 1) {
            fwrite(p + i, 1, l, f);
            i += l;
            continue;
        }
        switch (ch) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        case '\b':
            fputs("\\b", f);
            break;
        case '\f':
            fputs("\\f", f);
            break;
        default:
            if (ch < 0x20)
                fprintf(f, "\\u%04x", ch);
            else
                fputc(ch, f);
        }
        i++;
    }
    fputc('"', f);
}

/* The shortest text that reads back as the same double. */
static void json_double(FILE *f, double v)
{
    if (!isfinite(v)) {
        fputs("null", f);
        return;
    }
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    fputs(buf, f);
    if (!strpbrk(buf, ".e"))
        fputs(".0", f); /* 0.0 stays a float for the reader, not the integer 0 */
}

static void json_obj(FILE *f, const msgpack_object *o, bool pretty, int indent)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        fputs("null", f);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        fputs(o->via.boolean ? "true" : "false", f);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        fprintf(f, "%" PRIu64, o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        fprintf(f, "%" PRId64, o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        json_double(f, o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        json_str(f, o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        fputc('"', f);
        for (uint32_t i = 0; i < o->via.bin.size; i++)
            fprintf(f, "%02x", (unsigned char)o->via.bin.ptr[i]);
        fputc('"', f);
        break;
    case MSGPACK_OBJECT_ARRAY:
        fputc('[', f);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i)
                fputs(pretty ? ", " : ",", f);
            json_obj(f, &o->via.array.ptr[i], pretty, indent);
        }
        fputc(']', f);
        break;
    case MSGPACK_OBJECT_MAP:
        if (o->via.map.size == 0) {
            fputs("{}", f);
            break;
        }
        fputs(pretty ? "{\n" : "{", f);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (pretty)
                fprintf(f, "%*s", indent + 2, "");
            if (k->type == MSGPACK_OBJECT_STR) {
                json_str(f, k->via.str.ptr, k->via.str.size);
            } else { /* JSON keys are strings: quote the key's JSON */
                char *text = NULL;
                size_t tl = 0;
                FILE *m = open_memstream(&text, &tl);
                if (m) {
                    json_obj(m, k, false, 0);
                    fclose(m);
                    json_str(f, text, (uint32_t)tl);
                    free(text);
                } else {
                    fputs("\"?\"", f);
                }
            }
            fputs(pretty ? ": " : ":", f);
            json_obj(f, &o->via.map.ptr[i].val, pretty, indent + 2);
            if (i + 1 < o->via.map.size)
                fputs(pretty ? ",\n" : ",", f);
            else if (pretty)
                fputc('\n', f);
        }
        if (pretty)
            fprintf(f, "%*s", indent, "");
        fputc('}', f);
        break;
    default: /* ext types: nothing the protocol uses */
        fputs("null", f);
        break;
    }
}

void hq_json(FILE *f, const msgpack_object *o, bool pretty)
{
    json_obj(f, o, pretty, 0);
}

/* ---- generic text ---- */

static bool key_is_time(const msgpack_object *k)
{
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size > 3 &&
           !memcmp(k->via.str.ptr + k->via.str.size - 3, "_ms", 3);
}

static void show_scalar(const msgpack_object *v, bool is_time)
{
    switch (v->type) {
    case MSGPACK_OBJECT_NIL:
        fputs("-", stdout);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        fputs(v->via.boolean ? "yes" : "no", stdout);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: {
        int64_t n = v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? v->via.i64
                    : v->via.u64 > INT64_MAX                   ? INT64_MAX
                                                               : (int64_t)v->via.u64;
        if (is_time) {
            char t[40];
            hq_fmt_time(t, sizeof t, n, true);
            printf("%s (%" PRId64 ")", t, n);
        } else {
            printf("%" PRId64, n);
        }
        break;
    }
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        printf("%g", v->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        hq_text(stdout, v->via.str.ptr, v->via.str.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        if (v->via.array.size == 0)
            fputs("(none)", stdout);
        for (uint32_t i = 0; i < v->via.array.size; i++) {
            if (i)
                fputs(", ", stdout);
            show_scalar(&v->via.array.ptr[i], false);
        }
        break;
    default:
        hq_json(stdout, v, false);
        break;
    }
}

static bool has_map_item(const msgpack_object *a)
{
    for (uint32_t i = 0; i < a->via.array.size; i++)
        if (a->via.array.ptr[i].type == MSGPACK_OBJECT_MAP)
            return true;
    return false;
}

/* Lines "key: value" at `indent`; the first line's indent is already
 * printed when `first_done` (a list item's "- "). */
static void show_map(const msgpack_object *m, int indent, bool first_done)
{
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        const msgpack_object *v = &m->via.map.ptr[i].val;
        if (!(i == 0 && first_done))
            printf("%*s", indent, "");
        if (k->type == MSGPACK_OBJECT_STR)
            hq_text(stdout, k->via.str.ptr, k->via.str.size);
        else
            show_scalar(k, false);
        fputc(':', stdout);
        if (v->type == MSGPACK_OBJECT_MAP && v->via.map.size > 0) {
            fputc('\n', stdout);
            show_map(v, indent + 2, false);
        } else if (v->type == MSGPACK_OBJECT_ARRAY && has_map_item(v)) {
            fputc('\n', stdout);
            for (uint32_t j = 0; j < v->via.array.size; j++) {
                const msgpack_object *e = &v->via.array.ptr[j];
                printf("%*s- ", indent + 2, "");
                if (e->type == MSGPACK_OBJECT_MAP && e->via.map.size > 0) {
                    show_map(e, indent + 4, true);
                } else {
                    show_scalar(e, false);
                    fputc('\n', stdout);
                }
            }
        } else if (v->type == MSGPACK_OBJECT_MAP) {
            fputs(" {}\n", stdout);
        } else {
            fputc(' ', stdout);
            show_scalar(v, key_is_time(k));
            fputc('\n', stdout);
        }
    }
}

void hq_show_generic(const msgpack_object *m)
{
    if (m->type != MSGPACK_OBJECT_MAP || m->via.map.size == 0) {
        puts("ok");
        return;
    }
    show_map(m, 0, false);
}
