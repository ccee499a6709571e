/* tools/bench/hallq.c: hallq's durable ticket.take, over length-prefixed
 * MessagePack. Every reply must answer the oldest request of its
 * connection (same id), and a ticket.take result must carry a number of
 * the line asked, a ticket_id and (when present) the same line. */
#include "bench.h"

#include <inttypes.h>
#include <string.h>

bool hallq_encode_hello(const bench *b, const conn *c, const pending *p, out *o)
{
    (void)b;
    msgpack_packer pk;
    size_t at;
    hallq_begin(o, &pk, &at);
    hallq_head(&pk, p->id, "hello", 2);
    pack_str(&pk, "token");
    pack_str(&pk, c->token);
    pack_str(&pk, "client");
    pack_str(&pk, "hallq-bench");
    hallq_end(o, at);
    return true;
}

static void encode_take(const bench *b, const conn *c, const pending *p, out *o)
{
    msgpack_packer pk;
    size_t at;
    hallq_begin(o, &pk, &at);
    hallq_head(&pk, p->id, "ticket.take", b->opt.idem ? 2 : 1);
    pack_str(&pk, "line");
    pack_str(&pk, p->line);
    if (b->opt.idem) {
        char idem[65];
        snprintf(idem, sizeof idem, "bench-%" PRIx64 "-%d-%" PRIu64, b->idem_tag, c->idx, p->id);
        pack_str(&pk, "idem");
        pack_str(&pk, idem);
    }
    hallq_end(o, at);
}

size_t hallq_take_size(const bench *b)
{
    uint8_t buf[REQ_OVERHEAD];
    conn c = {.idx = 0};
    pending p = {.id = 1000, .line = b->opt.cycle ? "A" : b->opt.line};
    out o = {.p = buf, .cap = sizeof buf};
    encode_take(b, &c, &p, &o);
    return o.len;
}

static bool take_next(bench *b, conn *c, pending *p, out *o)
{
    encode_take(b, c, p, o);
    return true;
}

ssize_t hallq_parse_frame(bench *b, const pending *p, const uint8_t *buf, size_t n, reply *r,
                          const msgpack_object **result)
{
    *result = NULL;
    if (n < 4)
        return 0;
    uint32_t len = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
    if (len == 0 || len > RBUF_HALLQ - 4) {
        snprintf(r->text, sizeof r->text, "frame length %" PRIu32, len);
        return -1;
    }
    if (n - 4 < len)
        return 0;
    /* msgpack_unpack_next would allocate a zone per reply; one zone,
     * cleared each time, keeps the request path free of malloc. */
    msgpack_zone_clear(&b->zone);
    msgpack_object m;
    size_t off = 0;
    msgpack_unpack_return rc = msgpack_unpack((const char *)buf + 4, len, &off, &b->zone, &m);
    if (rc != MSGPACK_UNPACK_SUCCESS || off != len || m.type != MSGPACK_OBJECT_MAP) {
        snprintf(r->text, sizeof r->text, "frame is not one MessagePack map (unpack %d)", (int)rc);
        return -1;
    }
    const msgpack_object *id = mp_get(&m, "id"), *ok = mp_get(&m, "ok");
    const msgpack_object *err = mp_get(&m, "error");
    const msgpack_object *code = err ? mp_get(err, "code") : NULL;
    const msgpack_object *msg = err ? mp_get(err, "message") : NULL;
    if (mp_is_str(code))
        set_code(r, code->via.str.ptr, code->via.str.size);
    if (mp_is_str(msg))
        snprintf(r->text, sizeof r->text, "%.*s", (int)msg->via.str.size, msg->via.str.ptr);
    if (!id && mp_get(&m, "event")) {
        snprintf(r->text, sizeof r->text, "pushed event on a connection that did not subscribe");
        return -1;
    }
    if (!id || id->type != MSGPACK_OBJECT_POSITIVE_INTEGER || id->via.u64 != p->id) {
        char why[sizeof r->text];
        snprintf(why, sizeof why, "%s", r->text);
        snprintf(r->text, sizeof r->text, "reply id %" PRIu64 ", expected %" PRIu64 " (%s%s%s)",
                 id && id->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? id->via.u64 : 0, p->id,
                 code ? r->code : "no error", code ? ": " : "", why);
        return -1;
    }
    if (!ok || ok->type != MSGPACK_OBJECT_BOOLEAN) {
        snprintf(r->text, sizeof r->text, "reply %" PRIu64 " without ok", p->id);
        return -1;
    }
    if (!ok->via.boolean) {
        if (!mp_is_str(code)) {
            snprintf(r->text, sizeof r->text, "reply %" PRIu64 ": error without a code", p->id);
            return -1;
        }
        r->ok = false;
        return (ssize_t)(4 + len);
    }
    const msgpack_object *res = mp_get(&m, "result");
    if (!res || res->type != MSGPACK_OBJECT_MAP) {
        snprintf(r->text, sizeof r->text, "reply %" PRIu64 ": ok without a result map", p->id);
        return -1;
    }
    if (p->open && !mp_is_str(mp_get(res, "role"))) {
        snprintf(r->text, sizeof r->text, "hello answered without a role");
        return -1;
    }
    *result = res;
    r->ok = true;
    return (ssize_t)(4 + len);
}

/* Checks a ticket.take result; false with r->text set when a field the
 * protocol promises is missing or wrong. */
static bool check_take(const pending *p, const msgpack_object *res, reply *r)
{
    const msgpack_object *num = mp_get(res, "number"), *tid = mp_get(res, "ticket_id"),
                         *line = mp_get(res, "line");
    size_t ll = strlen(p->line);
    if (!mp_is_str(num) || num->via.str.size <= ll || memcmp(num->via.str.ptr, p->line, ll)) {
        snprintf(r->text, sizeof r->text,
                 "ticket.take %" PRIu64 ": no number of line %s in the result", p->id, p->line);
        return false;
    }
    if (!tid || (tid->type != MSGPACK_OBJECT_STR && tid->type != MSGPACK_OBJECT_POSITIVE_INTEGER)) {
        snprintf(r->text, sizeof r->text, "ticket.take %" PRIu64 ": no ticket_id in the result",
                 p->id);
        return false;
    }
    if (line && !mp_str_eq(line, p->line)) {
        snprintf(r->text, sizeof r->text, "ticket.take %" PRIu64 ": result for another line",
                 p->id);
        return false;
    }
    return true;
}

static ssize_t take_parse(bench *b, conn *c, const pending *p, const uint8_t *buf, size_t n,
                          reply *r)
{
    (void)c;
    const msgpack_object *res;
    ssize_t used = hallq_parse_frame(b, p, buf, n, r, &res);
    if (used > 0 && res && !p->open && !check_take(p, res, r))
        return -1;
    return used;
}

const proto proto_hallq = {"hallq", hallq_encode_hello, take_next, take_parse};
