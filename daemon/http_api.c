/* daemon/http_api.c: POST /api/v1/OP, and the call's conn (http_call) every HTTP request runs on.
 */
#include "daemon/http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the request's side (H2O) ---- */

static void call_end(http_call *hc);

static void on_proceed(h2o_generator_t *g, h2o_req_t *q)
{
    http_req *hr = (http_req *)g;
    (void)q;
    hr->sending = false;
    proto_buf_reset(&hr->out);
    if (hr->end_owed && !hr->ended) {
        hr->ended = true;
        h2o_send(hr->req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    /* What collected meanwhile goes out (and a catch-up goes on). */
    if (hr->call && !hr->call->in_flush)
        conn_pump(&hr->call->c);
}

static void on_stop(h2o_generator_t *g, h2o_req_t *q)
{
    http_req *hr = (http_req *)g;
    (void)q;
    hr->ended = true; /* H2O ended it (the client left): nothing more is sent */
}

/* The request's pool is freed: the client has its answer, or left. */
static void on_req_dispose(void *p)
{
    http_req *hr = p;
    http_call *hc = hr->call;
    proto_buf_free(&hr->out);
    hr->req = NULL;
    hr->ended = true;
    if (hc) {
        hr->call = NULL;
        hc->hr = NULL;
        conn_close(&hc->c); /* (a mutation in a batch is still applied) */
    }
}

/* ---- the conn's side ---- */

/* The bucket of kiosk c (hello just filled c's own: a new kiosk starts
 * with that), or NULL when c is not a kiosk. */
static kiosk_bucket *kiosk_of(http_face *hf, conn *c)
{
    if (!c->authed || c->actor.role != HALL_ROLE_KIOSK)
        return NULL;
    kiosk_bucket *old = &hf->kiosks[0];
    for (int i = 0; i < KIOSK_BUCKETS; i++) {
        kiosk_bucket *b = &hf->kiosks[i];
        if (strcmp(b->id, c->actor.id) == 0 && b->id[0])
            return b;
        if (b->at < old->at)
            old = b;
    }
    snprintf(old->id, sizeof old->id, "%s", c->actor.id);
    old->tokens = c->tokens;
    old->at = c->tokens_at;
    return old;
}

/* hello answered: the op goes as the conn's next frame, with the kiosk's
 * tokens lent to it for the rate check (conn_frame makes it at once). */
static void on_send_op(uv_timer_t *t)
{
    http_call *hc = (http_call *)t->data;
    conn *c = &hc->c;
    kiosk_bucket *kb = kiosk_of(c->srv->hf, c);
    if (kb) {
        c->tokens = kb->tokens;
        c->tokens_at = kb->at;
    }
    conn_take_frame(c, hc->op.p, (uint32_t)hc->op.len);
    if (kb) {
        kb->tokens = c->tokens;
        kb->at = c->tokens_at;
    }
}

const msgpack_object *mget(const msgpack_object *m, const char *k)
{
    return proto_map_get(m, k);
}

/* An answer frame: the error it holds (PROTO_OK for ok), its message. */
static proto_err answer_error(const msgpack_object *m, const char **msg, uint32_t *mlen)
{
    const msgpack_object *ok = mget(m, "ok");
    if (ok && ok->type == MSGPACK_OBJECT_BOOLEAN && ok->via.boolean)
        return PROTO_OK;
    const msgpack_object *e = mget(m, "error");
    const msgpack_object *code = e ? mget(e, "code") : NULL;
    const msgpack_object *mm = e ? mget(e, "message") : NULL;
    *msg = "";
    *mlen = 0;
    if (mm && mm->type == MSGPACK_OBJECT_STR) {
        *msg = mm->via.str.ptr;
        *mlen = mm->via.str.size;
    }
    int c = code && code->type == MSGPACK_OBJECT_STR
                ? proto_err_from_name(code->via.str.ptr, code->via.str.size)
                : -1;
    return c > 0 ? (proto_err)c : PROTO_E_INTERNAL;
}

static void respond_error_frame(http_call *hc, proto_err code, const char *msg, uint32_t mlen)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%.*s", (int)(mlen < sizeof buf ? mlen : sizeof buf - 1), msg);
    send_error(hc->hr->req, code, buf);
}

/* One frame of hc's output. */
static void call_frame(http_call *hc, const msgpack_object *m)
{
    const char *msg;
    uint32_t mlen;
    if (mget(m, "event")) {
        if (hc->stage == ST_LIVE)
            sse_event(hc, m);
        return;
    }
    proto_err code = answer_error(m, &msg, &mlen);
    switch (hc->stage) {
    case ST_HELLO:
        if (code != PROTO_OK) {
            respond_error_frame(hc, code, msg, mlen);
            call_end(hc);
            return;
        }
        /* Authenticated: the op follows as the conn's next frame (from the
         * loop, not from inside conn_pump). */
        hc->stage = ST_OP;
        uv_timer_start(&hc->c.h.timer, on_send_op, 0, 0);
        return;
    case ST_OP:
        if (code != PROTO_OK) {
            respond_error_frame(hc, code, msg, mlen);
            call_end(hc);
        } else if (hc->kind == CALL_EVENTS) {
            hc->stage = ST_LIVE;
            sse_start(hc, m);
        } else {
            const msgpack_object *res = mget(m, "result");
            json_t *r = res ? to_json(res) : json_object();
            if (!r)
                send_error(hc->hr->req, PROTO_E_INTERNAL,
                           "the result cannot be written as JSON (a string not UTF-8?)");
            else
                send_json(hc->hr->req, 200, json_pack("{s:b,s:o}", "ok", 1, "result", r));
            call_end(hc);
        }
        return;
    case ST_LIVE:
        /* An error after subscribe (a sweep's): the stream ends. */
        if (code != PROTO_OK)
            call_end(hc);
        return;
    default:
        return;
    }
}

/* No more answers: the conn closes once its output is out. */
static void call_end(http_call *hc)
{
    hc->stage = ST_DONE;
    hc->c.closing = true;
}

void http_conn_flush(conn *c)
{
    http_call *hc = c->http;
    proto_buf *b = &c->wbuf[1 - c->writing];
    if (hc->hr && hc->hr->sending)
        return; /* it waits for proceed; conn_pump's output cap counts it */
    hc->in_flush = true;
    size_t off = 0;
    while (off + 4 <= b->len) {
        const uint8_t *p = b->p + off;
        uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (off + 4 + n > b->len)
            break;
        off += 4 + (size_t)n;
        if (!hc->hr || hc->stage == ST_DONE)
            continue; /* nobody to tell */
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, (const char *)p + 4, n, NULL) == MSGPACK_UNPACK_SUCCESS &&
            u.data.type == MSGPACK_OBJECT_MAP)
            call_frame(hc, &u.data);
        msgpack_unpacked_destroy(&u);
    }
    proto_buf_reset(b);
    http_req *hr = hc->hr;
    if (hr && hr->started && !hr->ended) {
        if (hc->stage == ST_DONE)
            hr->end_owed = true;
        if (hr->out.len)
            sse_send(hr);
        else if (hr->end_owed && !hr->sending) {
            hr->ended = true;
            h2o_send(hr->req, NULL, 0, H2O_SEND_STATE_FINAL);
        }
    }
    hc->in_flush = false;
    if (c->closing && !c->head)
        conn_close(c);
}

void http_conn_closed(conn *c)
{
    http_call *hc = c->http;
    http_req *hr = hc->hr;
    proto_buf_free(&hc->op);
    if (!hr)
        return;
    hc->hr = NULL;
    hr->call = NULL;
    if (hr->ended)
        return;
    if (!hr->started) {
        if (hc->stage != ST_DONE)
            send_error(hr->req, PROTO_E_UNAVAILABLE,
                       c->srv->stopping ? "the server is shutting down"
                                        : "the request was dropped (output cap or memory)");
    } else if (hr->sending) {
        hr->end_owed = true; /* at proceed */
    } else {
        hr->ended = true;
        h2o_send(hr->req, NULL, 0, H2O_SEND_STATE_FINAL);
    }
}

/* A new conn for an HTTP request; NULL out of memory. */
http_call *call_new(http_face *hf, h2o_req_t *q, int kind)
{
    server *s = hf->s;
    http_call *hc = calloc(1, sizeof *hc);
    if (!hc)
        return NULL;
    http_req *hr = h2o_mem_alloc_shared(&q->pool, sizeof *hr, on_req_dispose);
    memset(hr, 0, sizeof *hr);
    hr->gen.proceed = on_proceed;
    hr->gen.stop = on_stop;
    hr->req = q;
    proto_buf_init(&hr->out);
    hr->call = hc;
    hc->hr = hr;
    hc->kind = kind;
    hc->stage = ST_HELLO;
    proto_buf_init(&hc->op);
    conn *c = &hc->c;
    c->srv = s;
    c->l = &s->http;
    c->http = hc;
    c->authed = false;
    c->born_ms = uv_now(&s->loop);
    proto_framer_init(&c->in, hall_config_current(s->h)->limits.max_frame);
    proto_buf_init(&c->wbuf[0]);
    proto_buf_init(&c->wbuf[1]);
    uv_timer_init(&s->loop, &c->h.timer);
    c->h.handle.data = hc;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    return hc;
}

/* hello's body with the token: the conn's first frame. */
int start_call(http_call *hc, const char *tok, size_t tlen)
{
    proto_buf hello;
    msgpack_packer pk;
    proto_buf_init(&hello);
    proto_packer_init(&pk, &hello);
    msgpack_pack_map(&pk, 3);
    proto_pack_kv_uint(&pk, "id", 0);
    proto_pack_kv_str(&pk, "op", "hello");
    proto_pack_str(&pk, "args");
    msgpack_pack_map(&pk, 1);
    proto_pack_str(&pk, "token");
    proto_pack_strn(&pk, tok, tlen);
    int rc = hello.oom ? -1 : 0;
    if (rc == 0)
        conn_take_frame(&hc->c, hello.p, (uint32_t)hello.len);
    proto_buf_free(&hello);
    return rc;
}

/* POST /api/v1/OP */
int on_api(http_face *hf, h2o_req_t *q, const char *op, size_t op_len)
{
    server *s = hf->s;
    char err[200];
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(op_len > 63 ? 63 : op_len), op);
    if (!is_method(q, "POST")) {
        refuse(hf, q, PROTO_E_BAD_REQUEST, "an op is called with POST");
        return 0;
    }
    size_t tlen = 0;
    const char *tok = bearer(q, &tlen);
    if (!tok) {
        refuse(hf, q, PROTO_E_UNAUTHENTICATED, "send the token as Authorization: Bearer TOKEN");
        return 0;
    }
    if (op_len == 0 || (op_len == 5 && memcmp(op, "hello", 5) == 0) ||
        (op_len == 9 && memcmp(op, "subscribe", 9) == 0)) {
        refuse(hf, q, PROTO_E_UNKNOWN_OP,
               "no such op over HTTP (the token goes in Authorization; events are GET "
               "/api/v1/events)");
        return 0;
    }
    json_error_t je;
    json_t *args = q->entity.len ? json_loadb(q->entity.base, q->entity.len,
                                              JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je)
                                 : json_object();
    if (!args) {
        snprintf(err, sizeof err, "body: not JSON: %s (line %d, column %d)", je.text, je.line,
                 je.column);
        refuse(hf, q, PROTO_E_BAD_REQUEST, err);
        return 0;
    }
    if (!json_is_object(args)) {
        json_decref(args);
        refuse(hf, q, PROTO_E_BAD_REQUEST, "body: expected a JSON object (the op's args)");
        return 0;
    }
    http_call *hc = call_new(hf, q, CALL_API);
    if (!hc) {
        json_decref(args);
        refuse(hf, q, PROTO_E_INTERNAL, "out of memory");
        return 0;
    }
    snprintf(hc->op_name, sizeof hc->op_name, "%s", name);
    msgpack_packer pk;
    proto_packer_init(&pk, &hc->op);
    msgpack_pack_map(&pk, 3);
    proto_pack_kv_uint(&pk, "id", 1);
    proto_pack_str(&pk, "op");
    proto_pack_strn(&pk, op, op_len);
    proto_pack_str(&pk, "args");
    int prc = pack_json(&pk, args, 0, err, sizeof err);
    json_decref(args);
    uint32_t max_frame = hall_config_current(s->h)->limits.max_frame;
    if (prc != 0 || hc->op.oom || hc->op.len > max_frame) {
        if (prc == 0 && !hc->op.oom)
            snprintf(err, sizeof err, "body: larger than max_frame (%u bytes)", max_frame);
        hc->stage = ST_DONE;
        if (prc == 0 && !hc->op.oom) {
            hf->s->metrics.http_errors[PROTO_E_LIMIT]++;
            send_json(
                q, 413,
                json_pack("{s:b,s:{s:s,s:s}}", "ok", 0, "error", "code", "limit", "message", err));
        } else {
            refuse(hf, q, hc->op.oom ? PROTO_E_INTERNAL : PROTO_E_BAD_REQUEST,
                   hc->op.oom ? "out of memory" : err);
        }
        conn_close(&hc->c);
        return 0;
    }
    if (start_call(hc, tok, tlen) != 0)
        conn_close(&hc->c);
    return 0;
}
