/* tools/bench/wire.c: bounded output areas, text lines, MessagePack helpers.
 * Nothing here allocates: requests are packed into the connection's write
 * buffer through an `out` whose overflow is a bug of the caller. */
#include "bench.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

void out_put(out *o, const void *s, size_t n)
{
    if (o->overflow || n > o->cap - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

void out_printf(out *o, const char *fmt, ...)
{
    if (o->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf((char *)o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len)
        o->overflow = true;
    else
        o->len += (size_t)n;
}

static int out_msgpack_write(void *data, const char *buf, size_t len)
{
    out_put(data, buf, len);
    return 0;
}

/* Redis and beanstalkd store what a ticket request would take. */
void out_payload(const bench *b, const conn *c, const pending *p, out *o)
{
    char tag[80];
    int n = snprintf(tag, sizeof tag, "take %s c%d r%" PRIu64 " ", p->line, c->idx, p->id);
    size_t k = (size_t)n < b->opt.payload ? (size_t)n : b->opt.payload;
    out_put(o, tag, k);
    if (o->overflow || b->opt.payload - k > o->cap - o->len) {
        o->overflow = true;
        return;
    }
    memset(o->p + o->len, '.', b->opt.payload - k);
    o->len += b->opt.payload - k;
}

void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

ssize_t text_line(const uint8_t *buf, size_t n, size_t max, reply *r)
{
    const uint8_t *nl = memchr(buf, '\n', n);
    if (!nl) {
        if (n >= max) {
            snprintf(r->text, sizeof r->text, "reply line longer than %zu bytes", max);
            return -1;
        }
        return 0;
    }
    size_t len = (size_t)(nl - buf);
    if (len == 0 || buf[len - 1] != '\r') {
        snprintf(r->text, sizeof r->text, "reply line not ended by CRLF");
        return -1;
    }
    return (ssize_t)(len - 1);
}

void set_code(reply *r, const char *s, size_t n)
{
    size_t k = 0;
    for (; k < n && k + 1 < sizeof r->code && s[k] != ' '; k++) {
        char ch = s[k];
        bool safe = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
        r->code[k] = safe ? ch : '?';
    }
    if (!k)
        r->code[k++] = '?';
    r->code[k] = 0;
}

const msgpack_object *mp_get(const msgpack_object *m, const char *key)
{
    size_t kl = strlen(key);
    if (!m || m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
            !memcmp(k->via.str.ptr, key, kl))
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

bool mp_is_str(const msgpack_object *o)
{
    return o && o->type == MSGPACK_OBJECT_STR;
}

bool mp_str_eq(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return mp_is_str(o) && o->via.str.size == n && !memcmp(o->via.str.ptr, s, n);
}

bool mp_copy_str(const msgpack_object *o, char *dst, size_t cap)
{
    if (!mp_is_str(o) || o->via.str.size >= cap)
        return false;
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = 0;
    return true;
}

void hallq_begin(out *o, msgpack_packer *pk, size_t *at)
{
    *at = o->len;
    out_put(o, "\0\0\0\0", 4);
    msgpack_packer_init(pk, o, out_msgpack_write);
}

void hallq_end(out *o, size_t at)
{
    if (o->overflow)
        return;
    uint32_t n = (uint32_t)(o->len - at - 4);
    o->p[at] = (uint8_t)(n >> 24);
    o->p[at + 1] = (uint8_t)(n >> 16);
    o->p[at + 2] = (uint8_t)(n >> 8);
    o->p[at + 3] = (uint8_t)n;
}

void hallq_head(msgpack_packer *pk, uint64_t id, const char *op, uint32_t nargs)
{
    msgpack_pack_map(pk, 3);
    pack_str(pk, "id");
    msgpack_pack_uint64(pk, id);
    pack_str(pk, "op");
    pack_str(pk, op);
    pack_str(pk, "args");
    msgpack_pack_map(pk, nargs);
}
