/* daemon/http.c: the HTTP face (docs/PROTOCOL.md "The HTTP face"), served
 * by H2O on the server's own libuv loop. The only file that knows H2O.
 *
 * An HTTP request is made into the frames a TCP client would send, on a
 * conn of its own (an http_call, whose first member is the conn): hello
 * with the bearer token, then, once hello is answered, the op (POST
 * /api/v1/OP) or subscribe (GET /api/v1/events). So it takes the same
 * path as a TCP request, in conn.c: the listener's roles, the op's roles,
 * the token checked against the durable config, the same queue and
 * batches (a mutation is answered after its batch's WAL sync), idem, the
 * events feed with its catch-up and output cap. conn.c hands the answer
 * frames back (http_conn_flush): hello's answer releases the op, the op's
 * becomes the JSON response, and subscribe's starts a stream of Server-Sent
 * Events, one per event frame after it.
 *
 * Lifetimes: the http_call (and its conn) lives until conn.c frees the
 * conn (closed, no slot held by a batch, its timer handle closed); the
 * http_req lives in the H2O request's pool until H2O is done with the
 * request. Each side clears the other's pointer when it goes: a request
 * gone (the client left) closes the conn; a conn closed ends the response
 * still owed. Bytes handed to h2o_send live in the http_req (until
 * proceed) or its pool.
 *
 * Never: parse HTTP by hand (H2O does), accept a token anywhere but the
 * Authorization header, or log one. */
#include "daemon/http.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/server_internal.h"

#include <h2o.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SSE_KEEPALIVE_MS 15000 /* a comment line this often keeps a stream alive */
#define SSE_RETRY_MS 1000      /* how soon a browser's EventSource reconnects */
#define JSON_DEPTH_MAX 64      /* deeper JSON is refused before it is packed */
#define KIOSK_BUCKETS 64       /* kiosks whose rate is kept (the least recent goes) */

/* A kiosk's request tokens (limits.kiosk_rate): on TCP a connection keeps
 * them; an HTTP request's conn lives for one request, so they are kept
 * here, per kiosk id, and lent to each request's conn. */
typedef struct kiosk_bucket {
    char id[HALL_ID_MAX + 1];
    double tokens;
    uint64_t at;
} kiosk_bucket;

typedef struct http_face {
    server *s;
    h2o_globalconf_t conf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept;
    uint32_t n_socks; /* HTTP connections open */
    uint64_t keepalive_ms;
    bool ready;     /* the context is set up (until http_dispose) */
    bool abandoned; /* the stop went on without the connections left */
    kiosk_bucket kiosks[KIOSK_BUCKETS];
} http_face;

/* An accepted socket (first: H2O's close callback gets its handle). */
typedef struct http_sock {
    uv_tcp_t tcp;
    http_face *hf;
} http_sock;

typedef struct http_handler {
    h2o_handler_t super;
    http_face *hf;
} http_handler;

enum { CALL_API, CALL_EVENTS };
/* Which answer comes next: hello's, the op's (or subscribe's), events. */
enum { ST_HELLO, ST_OP, ST_LIVE, ST_DONE };

typedef struct http_req http_req;

typedef struct http_call {
    conn c;       /* first: conn_free frees the call */
    http_req *hr; /* NULL once H2O is done with the request */
    int kind, stage;
    bool in_flush;
    char op_name[64];
    proto_buf op; /* the op's (or subscribe's) body, sent once hello is answered */
} http_call;

struct http_req {
    h2o_generator_t gen; /* first: proceed and stop get it */
    h2o_req_t *req;
    http_call *call; /* NULL once its conn closed */
    proto_buf out;   /* event-stream bytes handed to H2O, valid until proceed */
    bool sending;    /* h2o_send in flight: the next waits for proceed */
    bool started;    /* the stream's head went out */
    bool ended;      /* the stream ended (or H2O stopped it) */
    bool end_owed;   /* end it at the next proceed */
};

/* ---- responses ---- */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

static void add_header(h2o_req_t *q, const char *name, const char *val)
{
    h2o_add_header_by_str(&q->pool, &q->res.headers, name, strlen(name), 1, NULL, val, strlen(val));
}

/* On every response: no sniffing, no referrer, and (for the pages) only
 * this origin's scripts and styles, none inline. */
static void add_security_headers(h2o_req_t *q)
{
    add_header(q, "x-content-type-options", "nosniff");
    add_header(q, "referrer-policy", "no-referrer");
    add_header(q, "content-security-policy", "default-src 'self'");
}

/* The HTTP face of a request (its context is hf->ctx). */
static http_face *face_of(h2o_req_t *q)
{
    return (http_face *)(void *)((char *)q->conn->ctx - offsetof(http_face, ctx));
}

static void send_body(h2o_req_t *q, int status, const char *ctype, const char *body, size_t len)
{
    if (face_of(q)->s->stopping)
        q->http1_is_persistent = 0; /* the stop waits for the connection to end */
    q->res.status = status;
    q->res.reason = reason(status);
    q->res.content_length = len;
    add_header(q, "content-type", ctype);
    add_security_headers(q);
    h2o_send_inline(q, body, len);
}

static void send_json(h2o_req_t *q, int status, json_t *j)
{
    char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!txt) {
        static const char oom[] = "{\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":"
                                  "\"out of memory writing the response\"}}";
        send_body(q, 500, "application/json", oom, sizeof oom - 1);
        return;
    }
    send_body(q, status, "application/json", txt, strlen(txt));
    free(txt); /* h2o_send_inline copied it */
}

/* A message as a JSON string: one that is not UTF-8 (it may quote a
 * client's bytes) has every byte outside printable ASCII replaced by '?'. */
static json_t *message_json(const char *msg)
{
    json_t *j = json_string(msg);
    if (j)
        return j;
    char buf[512];
    size_t n = 0;
    for (; msg[n] && n < sizeof buf - 1; n++)
        buf[n] = msg[n] >= 0x20 && msg[n] < 0x7f ? msg[n] : '?';
    buf[n] = 0;
    return json_string(buf);
}

static void send_error(h2o_req_t *q, proto_err code, const char *msg)
{
    send_json(q, proto_err_http_status(code),
              json_pack("{s:b,s:{s:s,s:o}}", "ok", 0, "error", "code", proto_err_name(code),
                        "message", message_json(msg)));
}

/* An error answered before any op ran (counted apart from the ops'). */
static void refuse(http_face *hf, h2o_req_t *q, proto_err code, const char *msg)
{
    hf->s->metrics.http_errors[code]++;
    send_error(q, code, msg);
}

/* ---- JSON <-> MessagePack ---- */

/* Packs a JSON value as MessagePack: integers stay integers. 0, or -1
 * with a message in err. */
static int pack_json(msgpack_packer *pk, json_t *j, int depth, char *err, size_t errlen)
{
    if (depth > JSON_DEPTH_MAX) {
        snprintf(err, errlen, "body: nested deeper than %d", JSON_DEPTH_MAX);
        return -1;
    }
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        msgpack_pack_map(pk, json_object_size(j));
        json_object_foreach(j, k, v)
        {
            proto_pack_str(pk, k);
            if (pack_json(pk, v, depth + 1, err, errlen) != 0)
                return -1;
        }
        return 0;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        msgpack_pack_array(pk, json_array_size(j));
        json_array_foreach(j, i, v)
        {
            if (pack_json(pk, v, depth + 1, err, errlen) != 0)
                return -1;
        }
        return 0;
    }
    case JSON_STRING:
        proto_pack_strn(pk, json_string_value(j), json_string_length(j));
        return 0;
    case JSON_INTEGER: {
        json_int_t v = json_integer_value(j);
        if (v >= 0)
            msgpack_pack_uint64(pk, (uint64_t)v);
        else
            msgpack_pack_int64(pk, (int64_t)v);
        return 0;
    }
    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(j));
        return 0;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        return 0;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        return 0;
    case JSON_NULL:
        msgpack_pack_nil(pk);
        return 0;
    }
    snprintf(err, errlen, "body: a value JSON cannot hold");
    return -1;
}

/* A MessagePack value as JSON, or NULL (out of memory, a string that is
 * not UTF-8, a map key that is not a string, an extension). */
static json_t *to_json(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX)
            return json_real((double)o->via.u64);
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return json_stringn(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *v = to_json(&o->via.array.ptr[i]);
            if (!v || json_array_append_new(a, v) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            json_t *v = kv->key.type == MSGPACK_OBJECT_STR ? to_json(&kv->val) : NULL;
            if (!v || json_object_setn_new(m, kv->key.via.str.ptr, kv->key.via.str.size, v) != 0) {
                json_decref(m);
                return NULL;
            }
        }
        return m;
    }
    default:
        return NULL;
    }
}

/* ---- the request's side (H2O) ---- */

static void call_end(http_call *hc);

static void sse_send(http_req *hr)
{
    if (hr->sending || hr->ended || !hr->out.len)
        return;
    h2o_iovec_t v = h2o_iovec_init(hr->out.p, hr->out.len);
    hr->sending = true;
    h2o_send(hr->req, &v, 1, H2O_SEND_STATE_IN_PROGRESS);
}

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

static void on_keepalive(uv_timer_t *t)
{
    http_call *hc = (http_call *)t->data;
    http_req *hr = hc->hr;
    if (hr && !hr->sending && !hr->ended) {
        proto_buf_append(&hr->out, ": keep-alive\n\n", 14);
        sse_send(hr);
    }
}

static const msgpack_object *mget(const msgpack_object *m, const char *k)
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

/* An event frame {event, seq, data} as a Server-Sent Event. */
static void sse_event(http_call *hc, const msgpack_object *m)
{
    const msgpack_object *ev = mget(m, "event"), *seq = mget(m, "seq"), *data = mget(m, "data");
    if (!ev || ev->type != MSGPACK_OBJECT_STR || !seq ||
        seq->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return;
    json_t *j = data ? to_json(data) : json_null();
    char *txt = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    char head[128];
    int n = snprintf(head, sizeof head, "id: %" PRIu64 "\nevent: %.*s\ndata: ", seq->via.u64,
                     (int)(ev->via.str.size > 32 ? 32 : ev->via.str.size), ev->via.str.ptr);
    proto_buf *o = &hc->hr->out;
    proto_buf_append(o, head, (size_t)n);
    proto_buf_append(o, txt ? txt : "null", txt ? strlen(txt) : 4);
    proto_buf_append(o, "\n\n", 2);
    free(txt);
}

/* subscribe answered ok: the stream's head, then its first lines. */
static void sse_start(http_call *hc, const msgpack_object *m)
{
    http_req *hr = hc->hr;
    h2o_req_t *q = hr->req;
    const msgpack_object *res = mget(m, "result");
    const msgpack_object *seq = res ? mget(res, "seq") : NULL;
    q->res.status = 200;
    q->res.reason = "OK";
    add_header(q, "content-type", "text/event-stream");
    add_header(q, "cache-control", "no-cache");
    add_security_headers(q);
    /* A stream that ends (the server stops, the output cap) ends its
     * connection: the client's EventSource reconnects. */
    q->http1_is_persistent = 0;
    h2o_start_response(q, &hr->gen);
    hr->started = true;
    char head[96];
    int n = snprintf(head, sizeof head, "retry: %d\n: seq %" PRIu64 "\n\n", SSE_RETRY_MS,
                     seq && seq->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? seq->via.u64 : 0);
    proto_buf_append(&hr->out, head, (size_t)n);
    uint64_t ka = hc->c.srv->hf->keepalive_ms;
    uv_timer_start(&hc->c.h.timer, on_keepalive, ka, ka);
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
static http_call *call_new(http_face *hf, h2o_req_t *q, int kind)
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

/* ---- requests ---- */

/* The bearer token of q, or NULL with a message. */
static const char *bearer(h2o_req_t *q, size_t *len)
{
    ssize_t i = h2o_find_header(&q->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i < 0)
        return NULL;
    h2o_iovec_t v = q->headers.entries[i].value;
    if (v.len <= 7 || strncasecmp(v.base, "bearer ", 7) != 0)
        return NULL;
    size_t k = 7;
    while (k < v.len && v.base[k] == ' ')
        k++;
    *len = v.len - k;
    return *len ? v.base + k : NULL;
}

/* The value of query parameter `key` (not decoded: the values we read
 * are words and numbers), or NULL. */
static const char *query_get(h2o_req_t *q, const char *key, size_t *len)
{
    if (q->query_at == SIZE_MAX)
        return NULL;
    const char *p = q->path.base + q->query_at + 1;
    const char *end = q->path.base + q->path.len;
    size_t kl = strlen(key);
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        const char *kend = eq ? eq : e;
        if ((size_t)(kend - p) == kl && memcmp(p, key, kl) == 0) {
            *len = eq ? (size_t)(e - eq - 1) : 0;
            return eq ? eq + 1 : e;
        }
        p = e + 1;
    }
    return NULL;
}

static bool is_method(h2o_req_t *q, const char *m)
{
    return q->method.len == strlen(m) && memcmp(q->method.base, m, q->method.len) == 0;
}

static bool path_is(h2o_req_t *q, const char *p)
{
    return q->path_normalized.len == strlen(p) &&
           memcmp(q->path_normalized.base, p, q->path_normalized.len) == 0;
}

/* hello's body with the token: the conn's first frame. */
static int start_call(http_call *hc, const char *tok, size_t tlen)
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
static int on_api(http_face *hf, h2o_req_t *q, const char *op, size_t op_len)
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

/* GET /api/v1/events?topics=call,line[&since=SEQ] (or Last-Event-ID) */
static int on_events(http_face *hf, h2o_req_t *q)
{
    size_t tlen = 0, n = 0;
    const char *tok = bearer(q, &tlen);
    if (!tok) {
        refuse(hf, q, PROTO_E_UNAUTHENTICATED, "send the token as Authorization: Bearer TOKEN");
        return 0;
    }
    const char *topics = query_get(q, "topics", &n);
    size_t topics_len = topics ? n : 0;
    /* A browser's EventSource resends the last id it saw: that wins over
     * the since of the URL it reconnects to. */
    char num[32];
    const char *since = NULL;
    ssize_t i = h2o_find_header_by_str(&q->headers, H2O_STRLIT("last-event-id"), -1);
    if (i >= 0) {
        since = q->headers.entries[i].value.base;
        n = q->headers.entries[i].value.len;
    } else {
        since = query_get(q, "since", &n);
    }
    uint64_t since_v = 0;
    if (since) {
        char *end;
        snprintf(num, sizeof num, "%.*s", (int)(n < sizeof num ? n : sizeof num - 1), since);
        errno = 0;
        since_v = strtoull(num, &end, 10);
        if (!n || n >= sizeof num || *end || num[0] == '-' || errno) {
            refuse(hf, q, PROTO_E_BAD_REQUEST, "since (or Last-Event-ID): expected a seq");
            return 0;
        }
    }
    http_call *hc = call_new(hf, q, CALL_EVENTS);
    if (!hc) {
        refuse(hf, q, PROTO_E_INTERNAL, "out of memory");
        return 0;
    }
    snprintf(hc->op_name, sizeof hc->op_name, "subscribe");
    msgpack_packer pk;
    proto_packer_init(&pk, &hc->op);
    msgpack_pack_map(&pk, 3);
    proto_pack_kv_uint(&pk, "id", 1);
    proto_pack_kv_str(&pk, "op", "subscribe");
    proto_pack_str(&pk, "args");
    msgpack_pack_map(&pk, since ? 2 : 1);
    proto_pack_str(&pk, "topics");
    uint32_t nt = 0;
    for (size_t k = 0; k < topics_len; k++)
        if (k == 0 || topics[k - 1] == ',')
            nt++;
    msgpack_pack_array(&pk, nt);
    for (size_t k = 0, b = 0; k <= topics_len && nt; k++)
        if (k == topics_len || topics[k] == ',') {
            proto_pack_strn(&pk, topics + b, k - b);
            b = k + 1;
        }
    if (since)
        proto_pack_kv_uint(&pk, "since", since_v);
    if (hc->op.oom || start_call(hc, tok, tlen) != 0)
        conn_close(&hc->c);
    return 0;
}

static int on_req(h2o_handler_t *self, h2o_req_t *q)
{
    http_face *hf = ((http_handler *)self)->hf;
    size_t n;
    hf->s->metrics.http_requests++;
    /* A token in a URL ends up in logs and histories: refused, never read. */
    if (query_get(q, "token", &n) || query_get(q, "access_token", &n)) {
        refuse(hf, q, PROTO_E_BAD_REQUEST,
               "a token is never accepted in the URL: send Authorization: Bearer TOKEN");
        return 0;
    }
    if (hf->s->stopping) {
        refuse(hf, q, PROTO_E_UNAVAILABLE, "the server is shutting down");
        return 0;
    }
    static const char api[] = "/api/v1/";
    h2o_iovec_t p = q->path_normalized;
    if (path_is(q, "/api/v1/events")) {
        if (!is_method(q, "GET")) {
            refuse(hf, q, PROTO_E_BAD_REQUEST, "events are read with GET");
            return 0;
        }
        return on_events(hf, q);
    }
    if (p.len >= sizeof api - 1 && memcmp(p.base, api, sizeof api - 1) == 0)
        return on_api(hf, q, p.base + sizeof api - 1, p.len - (sizeof api - 1));
    bool get = is_method(q, "GET") || is_method(q, "HEAD");
    if (path_is(q, "/metrics") && get) {
        proto_buf b;
        proto_buf_init(&b);
        metrics_render(hf->s, &b);
        if (b.oom)
            refuse(hf, q, PROTO_E_INTERNAL, "out of memory");
        else
            send_body(q, 200, "text/plain; version=0.0.4; charset=utf-8", (const char *)b.p, b.len);
        proto_buf_free(&b);
        return 0;
    }
    for (const http_page *pg = http_pages; pg->path; pg++)
        if (path_is(q, pg->path) && get) {
            send_body(q, 200, pg->content_type, (const char *)pg->body, pg->len);
            return 0;
        }
    refuse(hf, q, PROTO_E_NOT_FOUND, "no such page");
    return 0;
}

/* ---- the listener ---- */

static void on_sock_closed(uv_handle_t *hd)
{
    http_sock *hs = (http_sock *)hd;
    server *s = hs->hf->s;
    hs->hf->n_socks--;
    free(hs);
    if (s->stopping)
        server_maybe_finish_stop(s); /* this may have been the last one */
}

static void on_refused_closed(uv_handle_t *hd)
{
    free(hd);
}

void http_accept(uv_stream_t *ls, int status)
{
    listener *l = ls->data;
    server *s = l->srv;
    http_face *hf = s->hf;
    if (status < 0)
        return;
    http_sock *hs = calloc(1, sizeof *hs);
    if (!hs)
        return;
    hs->hf = hf;
    if (uv_tcp_init(&s->loop, &hs->tcp) != 0) {
        free(hs);
        return;
    }
    if (uv_accept(ls, (uv_stream_t *)&hs->tcp) != 0 ||
        hf->n_socks >= hall_config_current(s->h)->limits.max_connections) {
        /* Over max_connections: closed at once (H2O has no way to answer
         * a connection it was not given). */
        s->metrics.http_refused++;
        uv_close((uv_handle_t *)&hs->tcp, on_refused_closed);
        return;
    }
    uv_tcp_nodelay(&hs->tcp, 1);
    hf->n_socks++;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&hs->tcp, on_sock_closed);
    h2o_accept(&hf->accept, sock);
}

int http_init(server *s)
{
    http_face *hf = calloc(1, sizeof *hf);
    if (!hf)
        return -1;
    const hall_limits *lim = &hall_config_current(s->h)->limits;
    hf->s = s;
    hf->keepalive_ms = SSE_KEEPALIVE_MS;
    const char *ka = getenv("HALLQ_SSE_KEEPALIVE_MS"); /* for tests */
    if (ka && atoi(ka) > 0)
        hf->keepalive_ms = (uint64_t)atoi(ka);
    h2o_config_init(&hf->conf);
    hf->conf.server_name = h2o_iovec_init(H2O_STRLIT("hallqd"));
    /* Limits as on the other listeners: a body up to max_frame (H2O
     * answers 413 past it), a request that does not arrive whole within
     * frame_timeout_s is dropped, as is an idle HTTP/2 connection. The
     * head's size is H2O's own bound (H2O_MAX_REQLEN, 100 headers). */
    hf->conf.max_request_entity_size = lim->max_frame;
    hf->conf.http1.req_timeout = lim->frame_timeout_ms;
    hf->conf.http2.idle_timeout = lim->frame_timeout_ms;
    h2o_hostconf_t *host =
        h2o_config_register_host(&hf->conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    http_handler *hh = (http_handler *)h2o_create_handler(path, sizeof *hh);
    hh->super.on_req = on_req;
    hh->hf = hf;
    h2o_context_init(&hf->ctx, &s->loop, &hf->conf);
    hf->accept.ctx = &hf->ctx;
    hf->accept.hosts = hf->conf.hosts;
    hf->ready = true;
    s->hf = hf;
    return 0;
}

uint32_t http_open_connections(const server *s)
{
    return s->hf ? s->hf->n_socks : 0;
}

void http_stop(server *s)
{
    if (s->hf)
        h2o_context_request_shutdown(&s->hf->ctx);
}

bool http_draining(const server *s)
{
    return s->hf && s->hf->n_socks > 0 && !s->hf->abandoned;
}

void http_abandon(server *s)
{
    if (s->hf && s->hf->n_socks > 0) {
        hq_log(HQ_LOG_WARN, "shutdown: %u HTTP connections did not finish; left open",
               s->hf->n_socks);
        s->hf->abandoned = true;
    }
}

void http_dispose(server *s)
{
    http_face *hf = s->hf;
    /* With connections left H2O's timers still hold them: the context is
     * left to the process's end rather than freed under them. */
    if (hf && hf->ready && hf->n_socks == 0) {
        hf->ready = false;
        /* The shutdown's re-sent GOAWAY (HTTP/2) waits in a timeout that
         * must be empty when disposed. */
        if (h2o_timeout_is_linked(&hf->ctx.http2._graceful_shutdown_timeout))
            h2o_timeout_unlink(&hf->ctx.http2._graceful_shutdown_timeout);
        h2o_context_dispose(&hf->ctx); /* (runs the loop once to close its handles) */
    }
}

void http_free(server *s)
{
    if (s->hf) {
        h2o_config_dispose(&s->hf->conf);
        free(s->hf);
        s->hf = NULL;
    }
}
