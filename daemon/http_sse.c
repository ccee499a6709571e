/* daemon/http_sse.c: GET /api/v1/events: a subscribe's conn as a stream of Server-Sent Events. */
#include "daemon/http_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SSE_RETRY_MS 1000 /* how soon a browser's EventSource reconnects */

void sse_send(http_req *hr)
{
    if (hr->sending || hr->ended || !hr->out.len)
        return;
    h2o_iovec_t v = h2o_iovec_init(hr->out.p, hr->out.len);
    hr->sending = true;
    h2o_send(hr->req, &v, 1, H2O_SEND_STATE_IN_PROGRESS);
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

/* An event frame {event, seq, data} as a Server-Sent Event. */
void sse_event(http_call *hc, const msgpack_object *m)
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
void sse_start(http_call *hc, const msgpack_object *m)
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

/* GET /api/v1/events?topics=call,line[&since=SEQ] (or Last-Event-ID) */
int on_events(http_face *hf, h2o_req_t *q)
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
