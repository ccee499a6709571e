/* daemon/http_internal.h: the types and functions the HTTP face's files (http*.c) share.
 *
 * Lifetimes: the http_call (and its conn) lives until conn.c frees the
 * conn (closed, no slot held by a batch, its timer handle closed); the
 * http_req lives in the H2O request's pool until H2O is done with the
 * request. Each side clears the other's pointer when it goes: a request
 * gone (the client left) closes the conn; a conn closed ends the response
 * still owed. Bytes handed to h2o_send live in the http_req (until
 * proceed) or its pool. */
#ifndef HALLQ_HTTP_INTERNAL_H
#define HALLQ_HTTP_INTERNAL_H

#include "daemon/http.h"
#include "daemon/server_internal.h"

#include <h2o.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KIOSK_BUCKETS 64 /* kiosks whose rate is kept (the least recent goes) */

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

/* http.c: responses and their headers; the request's parts. */
void add_header(h2o_req_t *q, const char *name, const char *val);
void add_security_headers(h2o_req_t *q);
void send_json(h2o_req_t *q, int status, json_t *j);
void send_error(h2o_req_t *q, proto_err code, const char *msg);
void refuse(http_face *hf, h2o_req_t *q, proto_err code, const char *msg);
const char *bearer(h2o_req_t *q, size_t *len);
const char *query_get(h2o_req_t *q, const char *key, size_t *len);
bool is_method(h2o_req_t *q, const char *m);

/* http_json.c: JSON <-> MessagePack. */
int pack_json(msgpack_packer *pk, json_t *j, int depth, char *err, size_t errlen);
json_t *to_json(const msgpack_object *o);

/* http_api.c: the call's conn; POST /api/v1/OP. */
http_call *call_new(http_face *hf, h2o_req_t *q, int kind);
int start_call(http_call *hc, const char *tok, size_t tlen);
const msgpack_object *mget(const msgpack_object *m, const char *k);
int on_api(http_face *hf, h2o_req_t *q, const char *op, size_t op_len);

/* http_sse.c: GET /api/v1/events. */
void sse_send(http_req *hr);
void sse_event(http_call *hc, const msgpack_object *m);
void sse_start(http_call *hc, const msgpack_object *m);
int on_events(http_face *hf, h2o_req_t *q);

#endif
