/* daemon/http.c: the HTTP face's listener: H2O's context, routing, limits, headers, the stop.
 *
 * The HTTP face (docs/PROTOCOL.md "The HTTP face") is served by H2O on the
 * server's own libuv loop; http.c and the http_*.c files beside it are the
 * only files that know H2O (their shared types: http_internal.h):
 *   http.c       this: the listener, H2O's context and its limits, routing
 *                (on_req), responses and their headers, the stop
 *   http_api.c   POST /api/v1/OP and the call's conn (http_call)
 *   http_sse.c   GET /api/v1/events: Server-Sent Events
 *   http_json.c  JSON <-> MessagePack (jansson)
 *   http_pages.c the pages served as they are
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
 * Never: parse HTTP by hand (H2O does), accept a token anywhere but the
 * Authorization header, or log one. */
#include "daemon/http_internal.h"
#include "daemon/log.h"
#include "daemon/metrics.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SSE_KEEPALIVE_MS 15000 /* a comment line this often keeps a stream alive */

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

void add_header(h2o_req_t *q, const char *name, const char *val)
{
    h2o_add_header_by_str(&q->pool, &q->res.headers, name, strlen(name), 1, NULL, val, strlen(val));
}

/* On every response: no sniffing, no referrer, and (for the pages) only
 * this origin's scripts and styles, none inline. */
void add_security_headers(h2o_req_t *q)
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

void send_json(h2o_req_t *q, int status, json_t *j)
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

void send_error(h2o_req_t *q, proto_err code, const char *msg)
{
    send_json(q, proto_err_http_status(code),
              json_pack("{s:b,s:{s:s,s:o}}", "ok", 0, "error", "code", proto_err_name(code),
                        "message", message_json(msg)));
}

/* An error answered before any op ran (counted apart from the ops'). */
void refuse(http_face *hf, h2o_req_t *q, proto_err code, const char *msg)
{
    hf->s->metrics.http_errors[code]++;
    send_error(q, code, msg);
}

/* ---- requests ---- */

/* The bearer token of q, or NULL with a message. */
const char *bearer(h2o_req_t *q, size_t *len)
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
const char *query_get(h2o_req_t *q, const char *key, size_t *len)
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

bool is_method(h2o_req_t *q, const char *m)
{
    return q->method.len == strlen(m) && memcmp(q->method.base, m, q->method.len) == 0;
}

static bool path_is(h2o_req_t *q, const char *p)
{
    return q->path_normalized.len == strlen(p) &&
           memcmp(q->path_normalized.base, p, q->path_normalized.len) == 0;
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
