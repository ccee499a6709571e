/* proto/client.c: a blocking client of the hallq protocol.
 *
 * One request at a time with proto_client_call, or pipelined with send and
 * recv. The socket is blocking for connect and then driven with poll() and
 * non-blocking send/recv, so one deadline per call (timeout_ms from its
 * start, 0 = none) bounds the whole of it, however the server trickles.
 * proto_client_call skips pushed events and answers to earlier pipelined
 * requests while it waits for its own.
 *
 * Every frame from the server goes through proto_body_check before
 * msgpack-c sees it, as on the server side. The result of a call lives in
 * c->resp until the next call. A broken stream (send error, EOF, a bad
 * frame, a timeout part way through a request) closes the socket: later
 * calls fail with "not connected" instead of reading garbage. A timeout
 * while waiting for an answer keeps the socket, since nothing was lost.
 *
 * It must never raise SIGPIPE, never block past the deadline once
 * connected, and never hand out an object from a frame that failed the
 * check. */
#include "proto/client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* The largest frame accepted from a server. Servers answer within their
 * own max_frame; a stats answer of a large hall is the biggest there is. */
#define CLIENT_MAX_FRAME (16u << 20)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The deadline of an operation starting now; -1 for none. */
static int64_t deadline_of(const proto_client *c)
{
    return c->timeout_ms > 0 ? now_ms() + c->timeout_ms : -1;
}

/* Closes the socket after a transport failure and drops what was read:
 * after a bad frame nothing that follows can be trusted. Returns the code
 * already set in c->err. */
static proto_err broken(proto_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    proto_framer_free(&c->in);
    return c->err.code;
}

/* Waits until fd is ready for `ev`. Returns 1 when ready, 0 on timeout
 * (c->err set), -1 on error (c->err set). */
static int wait_fd(proto_client *c, short ev, int64_t deadline, const char *doing)
{
    for (;;) {
        int ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            ms = left > 0 ? (int)left : 0;
        }
        struct pollfd p = {.fd = c->fd, .events = ev};
        int rc = ms == 0 ? 0 : poll(&p, 1, ms);
        if (rc > 0)
            return 1; /* ready, or POLLERR/POLLHUP: the call that follows says which */
        if (rc == 0) {
            proto_fail(&c->err, PROTO_E_UNAVAILABLE, "timed out after %d ms %s", c->timeout_ms,
                       doing);
            return 0;
        }
        if (errno != EINTR) {
            proto_fail(&c->err, PROTO_E_UNAVAILABLE, "poll: %s", strerror(errno));
            return -1;
        }
    }
}

static proto_err connect_unix(proto_client *c, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return proto_fail(&c->err, PROTO_E_UNAVAILABLE,
                          "unix socket path too long (%zu bytes, at most %zu): %s", strlen(path),
                          sizeof sa.sun_path - 1, path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return proto_fail(&c->err, PROTO_E_UNAVAILABLE, "socket: %s", strerror(errno));
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        proto_fail(&c->err, PROTO_E_UNAVAILABLE, "connect %s: %s", path, strerror(errno));
        return broken(c);
    }
    return PROTO_OK;
}

static proto_err connect_tcp(proto_client *c, const char *addr)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || colon[1] == 0 || (size_t)(colon - addr) >= sizeof host)
        return proto_fail(&c->err, PROTO_E_UNAVAILABLE, "address '%s': expected HOST:PORT", addr);
    size_t hl = (size_t)(colon - addr);
    memcpy(host, addr, hl);
    host[hl] = 0;
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') { /* [::1]:7420 */
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = 0;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    int g = getaddrinfo(host, colon + 1, &hints, &ai);
    if (g != 0)
        return proto_fail(&c->err, PROTO_E_UNAVAILABLE, "resolve %s: %s", addr,
                          g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
    int err = 0;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        c->fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (c->fd < 0) {
            err = errno;
            continue;
        }
        if (connect(c->fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        err = errno;
        close(c->fd);
        c->fd = -1;
    }
    freeaddrinfo(ai);
    if (c->fd < 0)
        return proto_fail(&c->err, PROTO_E_UNAVAILABLE, "connect %s: %s", addr, strerror(err));
    /* Requests are small and each waits for its answer: send at once. */
    int one = 1;
    if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
        proto_fail(&c->err, PROTO_E_UNAVAILABLE, "setsockopt TCP_NODELAY: %s", strerror(errno));
        return broken(c);
    }
    return PROTO_OK;
}

proto_err proto_client_connect(proto_client *c, const char *addr)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->next_id = 1;
    proto_framer_init(&c->in, CLIENT_MAX_FRAME);
    proto_buf_init(&c->out);
    msgpack_unpacked_init(&c->resp);

    if (!strncmp(addr, "unix:", 5))
        return connect_unix(c, addr + 5);
    if (!strncmp(addr, "tcp:", 4))
        return connect_tcp(c, addr + 4);
    if (strchr(addr, '/'))
        return connect_unix(c, addr);
    return connect_tcp(c, addr);
}

void proto_client_close(proto_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    proto_framer_free(&c->in);
    proto_buf_free(&c->out);
    msgpack_unpacked_destroy(&c->resp);
}

/* Sends c->out whole, or fails and closes: a request cut part way would
 * leave the server reading the next one from its middle. */
static proto_err send_out(proto_client *c, int64_t deadline)
{
    size_t off = 0;
    while (off < c->out.len) {
        ssize_t n = send(c->fd, c->out.p + off, c->out.len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0) {
            off += (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (wait_fd(c, POLLOUT, deadline, "sending to the server") <= 0)
                break;
            continue;
        }
        proto_fail(&c->err, PROTO_E_UNAVAILABLE, "send: %s", strerror(errno));
        break;
    }
    bool whole = off == c->out.len;
    proto_buf_reset(&c->out);
    return whole ? PROTO_OK : broken(c);
}

static proto_err client_send(proto_client *c, const char *op, const uint8_t *args_map,
                             size_t args_len, uint64_t *id, int64_t deadline)
{
    if (c->fd < 0)
        return proto_fail(&c->err, PROTO_E_UNAVAILABLE, "not connected");
    uint64_t rid = c->next_id++;
    proto_buf_reset(&c->out);
    proto_write_request(&c->out, rid, op, args_map, args_len);
    if (c->out.oom) {
        proto_buf_reset(&c->out);
        return proto_fail(&c->err, PROTO_E_INTERNAL, "out of memory packing a request");
    }
    proto_err rc = send_out(c, deadline);
    if (rc == PROTO_OK && id)
        *id = rid;
    return rc;
}

proto_err proto_client_send(proto_client *c, const char *op, const uint8_t *args_map,
                            size_t args_len, uint64_t *id)
{
    return client_send(c, op, args_map, args_len, id, deadline_of(c));
}

static proto_err client_recv(proto_client *c, const msgpack_object **msg, int64_t deadline)
{
    *msg = NULL;
    if (c->fd < 0)
        return proto_fail(&c->err, PROTO_E_UNAVAILABLE, "not connected");
    for (;;) {
        const uint8_t *body;
        uint32_t len;
        int rc = proto_framer_next(&c->in, &body, &len);
        if (rc == PROTO_FRAME_READY) {
            proto_error e;
            if (proto_body_check(body, len, &e) != PROTO_OK) {
                proto_fail(&c->err, PROTO_E_UNAVAILABLE, "server sent a bad frame: %s", e.msg);
                return broken(c);
            }
            size_t off = 0;
            msgpack_unpack_return ur = msgpack_unpack_next(&c->resp, (const char *)body, len, &off);
            if (ur != MSGPACK_UNPACK_SUCCESS || off != len) {
                proto_fail(&c->err, PROTO_E_UNAVAILABLE, "server sent a frame msgpack refused");
                return broken(c);
            }
            /* Its strings point into the framer's buffer (msgpack-c
             * references them), which the next read reuses. */
            *msg = &c->resp.data;
            return PROTO_OK;
        }
        if (rc == PROTO_FRAME_ENOMEM) {
            proto_fail(&c->err, PROTO_E_INTERNAL, "out of memory reading a frame");
            return broken(c);
        }
        if (rc < 0) {
            proto_fail(&c->err, PROTO_E_UNAVAILABLE, "server sent a frame of length %s",
                       rc == PROTO_FRAME_EZERO ? "0" : "over 16 MiB");
            return broken(c);
        }
        size_t room;
        uint8_t *p = proto_framer_space(&c->in, &room);
        if (!p)
            continue; /* next() reports ENOMEM */
        ssize_t n = recv(c->fd, p, room, MSG_DONTWAIT);
        if (n > 0) {
            proto_framer_commit(&c->in, (size_t)n);
            continue;
        }
        if (n == 0) {
            proto_fail(&c->err, PROTO_E_UNAVAILABLE, "connection closed by server");
            return broken(c);
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int w = wait_fd(c, POLLIN, deadline, "waiting for the server");
            if (w == 0)
                return c->err.code; /* a timeout loses nothing: keep the socket */
            if (w < 0)
                return broken(c);
            continue;
        }
        proto_fail(&c->err, PROTO_E_UNAVAILABLE, "recv: %s", strerror(errno));
        return broken(c);
    }
}

proto_err proto_client_recv(proto_client *c, const msgpack_object **msg)
{
    return client_recv(c, msg, deadline_of(c));
}

/* Reads an error response into c->err and returns its code. */
static proto_err error_response(proto_client *c, const msgpack_object *m)
{
    const msgpack_object *err = proto_map_get(m, "error");
    const msgpack_object *code = proto_map_get(err, "code");
    const msgpack_object *msg = proto_map_get(err, "message");
    int cd = code && code->type == MSGPACK_OBJECT_STR
                 ? proto_err_from_name(code->via.str.ptr, code->via.str.size)
                 : -1;
    int ml = msg && msg->type == MSGPACK_OBJECT_STR ? (int)msg->via.str.size : 0;
    const char *mp = ml > 0 ? msg->via.str.ptr : "";
    if (cd > 0) {
        c->err.code = (proto_err)cd;
        snprintf(c->err.msg, sizeof c->err.msg, "%.*s", ml, mp);
    } else if (code && code->type == MSGPACK_OBJECT_STR) {
        /* A code this client does not know (a newer server): keep its name. */
        int cl = (int)code->via.str.size;
        c->err.code = PROTO_E_INTERNAL;
        snprintf(c->err.msg, sizeof c->err.msg, "unknown error code '%.*s': %.*s", cl,
                 cl ? code->via.str.ptr : "", ml, mp);
    } else {
        c->err.code = PROTO_E_INTERNAL;
        snprintf(c->err.msg, sizeof c->err.msg, "error response without a code: %.*s", ml, mp);
    }
    return c->err.code;
}

proto_err proto_client_call(proto_client *c, const char *op, const uint8_t *args_map,
                            size_t args_len, const msgpack_object **result)
{
    int64_t deadline = deadline_of(c);
    uint64_t id;
    *result = NULL;
    proto_err rc = client_send(c, op, args_map, args_len, &id, deadline);
    if (rc != PROTO_OK)
        return rc;
    for (;;) {
        const msgpack_object *m;
        if ((rc = client_recv(c, &m, deadline)) != PROTO_OK)
            return rc;
        if (proto_map_get(m, "event"))
            continue; /* pushed to a subscriber; call() is not waiting for it */
        const msgpack_object *rid = proto_map_get(m, "id");
        const msgpack_object *ok = proto_map_get(m, "ok");
        if (!rid || rid->type != MSGPACK_OBJECT_POSITIVE_INTEGER || !ok ||
            ok->type != MSGPACK_OBJECT_BOOLEAN) {
            proto_fail(&c->err, PROTO_E_UNAVAILABLE,
                       "server sent a malformed response (no id or ok)");
            return broken(c);
        }
        /* Another id answers an earlier pipelined request; id 0 is the
         * server refusing the frame itself (bad_frame), an answer to us. */
        if (rid->via.u64 != id && !(rid->via.u64 == 0 && !ok->via.boolean))
            continue;
        if (!ok->via.boolean)
            return error_response(c, m);
        const msgpack_object *res = proto_map_get(m, "result");
        if (!res || res->type != MSGPACK_OBJECT_MAP) {
            proto_fail(&c->err, PROTO_E_UNAVAILABLE,
                       "server sent a malformed response (result is not a map)");
            return broken(c);
        }
        c->err.code = PROTO_OK;
        c->err.msg[0] = 0;
        *result = res;
        return PROTO_OK;
    }
}

proto_err proto_client_hello(proto_client *c, const char *token, const char *client_name,
                             const msgpack_object **result)
{
    proto_buf b;
    msgpack_packer pk;
    *result = NULL;
    proto_buf_init(&b);
    proto_packer_init(&pk, &b);
    msgpack_pack_map(&pk, client_name ? 2 : 1);
    proto_pack_kv_str(&pk, "token", token);
    if (client_name)
        proto_pack_kv_str(&pk, "client", client_name);
    proto_err rc = b.oom ? proto_fail(&c->err, PROTO_E_INTERNAL, "out of memory packing hello")
                         : proto_client_call(c, "hello", b.p, b.len, result);
    proto_buf_free(&b);
    return rc;
}
