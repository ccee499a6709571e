/* proto/client.c: a blocking client of the hallq protocol.
 *
 * One request at a time (or pipelined with send/recv). Waits use poll()
 * with the per-call timeout. Pushed events that arrive while waiting for a
 * response are skipped by proto_client_call. */
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
#include <unistd.h>

proto_err proto_client_connect(proto_client *c, const char *addr)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->next_id = 1;
    proto_framer_init(&c->in, 16u << 20);
    proto_buf_init(&c->out);
    msgpack_unpacked_init(&c->resp);

    bool is_unix = strchr(addr, '/') != NULL;
    if (!strncmp(addr, "unix:", 5)) {
        addr += 5;
        is_unix = true;
    } else if (!strncmp(addr, "tcp:", 4)) {
        addr += 4;
        is_unix = false;
    }
    if (is_unix) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(addr) >= sizeof sa.sun_path)
            return proto_fail(&c->err, PROTO_E_UNAVAILABLE, "unix socket path too long: %s", addr);
        strcpy(sa.sun_path, addr);
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            proto_fail(&c->err, PROTO_E_UNAVAILABLE, "connect %s: %s", addr, strerror(errno));
            proto_client_close(c);
            return PROTO_E_UNAVAILABLE;
        }
        return PROTO_OK;
    }
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof host)
        return proto_fail(&c->err, PROTO_E_UNAVAILABLE, "expected HOST:PORT, got '%s'", addr);
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = 0;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    int g = getaddrinfo(host, colon + 1, &hints, &ai);
    if (g != 0) {
        proto_fail(&c->err, PROTO_E_UNAVAILABLE, "resolve %s: %s", addr, gai_strerror(g));
        return PROTO_E_UNAVAILABLE;
    }
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
    if (c->fd < 0) {
        proto_fail(&c->err, PROTO_E_UNAVAILABLE, "connect %s: %s", addr, strerror(err));
        proto_client_close(c);
        return PROTO_E_UNAVAILABLE;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return PROTO_OK;
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

static int wait_fd(proto_client *c, short ev)
{
    struct pollfd p = {.fd = c->fd, .events = ev};
    int rc;
    do
        rc = poll(&p, 1, c->timeout_ms > 0 ? c->timeout_ms : -1);
    while (rc < 0 && errno == EINTR);
    return rc;
}

static proto_err send_all(proto_client *c)
{
    size_t off = 0;
    while (off < c->out.len) {
        ssize_t n = send(c->fd, c->out.p + off, c->out.len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return proto_fail(&c->err, PROTO_E_UNAVAILABLE, "send: %s", strerror(errno));
        off += (size_t)n;
    }
    proto_buf_reset(&c->out);
    return PROTO_OK;
}

proto_err proto_client_send(proto_client *c, const char *op, const uint8_t *args_map,
                            size_t args_len, uint64_t *id)
{
    if (c->fd < 0)
        return proto_fail(&c->err, PROTO_E_UNAVAILABLE, "not connected");
    *id = c->next_id++;
    proto_write_request(&c->out, *id, op, args_map, args_len);
    if (c->out.oom)
        return proto_fail(&c->err, PROTO_E_INTERNAL, "out of memory");
    return send_all(c);
}

proto_err proto_client_recv(proto_client *c, const msgpack_object **msg)
{
    for (;;) {
        const uint8_t *body;
        uint32_t len;
        int rc = proto_framer_next(&c->in, &body, &len);
        if (rc == PROTO_FRAME_READY) {
            size_t off = 0;
            if (msgpack_unpack_next(&c->resp, (const char *)body, len, &off) !=
                    MSGPACK_UNPACK_SUCCESS ||
                c->resp.data.type != MSGPACK_OBJECT_MAP)
                return proto_fail(&c->err, PROTO_E_BAD_FRAME, "server sent a bad frame");
            *msg = &c->resp.data;
            return PROTO_OK;
        }
        if (rc < 0)
            return proto_fail(&c->err, PROTO_E_BAD_FRAME, "server sent a bad frame length");
        size_t room;
        uint8_t *p = proto_framer_space(&c->in, &room);
        if (!p || room == 0)
            return proto_fail(&c->err, PROTO_E_INTERNAL, "out of memory");
        int w = wait_fd(c, POLLIN);
        if (w == 0)
            return proto_fail(&c->err, PROTO_E_UNAVAILABLE, "timed out waiting for the server");
        ssize_t n = recv(c->fd, p, room, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return proto_fail(&c->err, PROTO_E_UNAVAILABLE, "recv: %s", strerror(errno));
        if (n == 0)
            return proto_fail(&c->err, PROTO_E_UNAVAILABLE, "connection closed by server");
        proto_framer_commit(&c->in, (size_t)n);
    }
}

proto_err proto_client_call(proto_client *c, const char *op, const uint8_t *args_map,
                            size_t args_len, const msgpack_object **result)
{
    uint64_t id;
    proto_err rc = proto_client_send(c, op, args_map, args_len, &id);
    if (rc != PROTO_OK)
        return rc;
    for (;;) {
        const msgpack_object *m;
        if ((rc = proto_client_recv(c, &m)) != PROTO_OK)
            return rc;
        if (proto_map_get(m, "event"))
            continue;
        const msgpack_object *rid = proto_map_get(m, "id");
        const msgpack_object *ok = proto_map_get(m, "ok");
        if (!rid || rid->type != MSGPACK_OBJECT_POSITIVE_INTEGER || !ok ||
            ok->type != MSGPACK_OBJECT_BOOLEAN)
            return proto_fail(&c->err, PROTO_E_BAD_FRAME, "server sent a malformed response");
        if (rid->via.u64 != id && rid->via.u64 != 0)
            continue; /* an answer to an earlier pipelined request */
        if (ok->via.boolean) {
            *result = proto_map_get(m, "result");
            return PROTO_OK;
        }
        const msgpack_object *err = proto_map_get(m, "error");
        const msgpack_object *code = proto_map_get(err, "code");
        const msgpack_object *msgo = proto_map_get(err, "message");
        int cd = code && code->type == MSGPACK_OBJECT_STR
                     ? proto_err_from_name(code->via.str.ptr, code->via.str.size)
                     : -1;
        c->err.code = cd > 0 ? (proto_err)cd : PROTO_E_INTERNAL;
        snprintf(c->err.msg, sizeof c->err.msg, "%.*s",
                 msgo && msgo->type == MSGPACK_OBJECT_STR ? (int)msgo->via.str.size : 0,
                 msgo && msgo->type == MSGPACK_OBJECT_STR ? msgo->via.str.ptr : "");
        return c->err.code;
    }
}

proto_err proto_client_hello(proto_client *c, const char *token, const char *client_name,
                             const msgpack_object **result)
{
    proto_buf b;
    msgpack_packer pk;
    proto_buf_init(&b);
    proto_packer_init(&pk, &b);
    msgpack_pack_map(&pk, client_name ? 2 : 1);
    proto_pack_kv_str(&pk, "token", token);
    if (client_name)
        proto_pack_kv_str(&pk, "client", client_name);
    proto_err rc = proto_client_call(c, "hello", b.p, b.len, result);
    proto_buf_free(&b);
    return rc;
}
