/* tests/unit/test_client.c: the blocking client (proto/client.c) against a
 * scripted server thread.
 *
 * The server answers by op: a plain result, events pushed before the
 * answer, an answer to another id first, an error, an unknown error code,
 * an answer one byte per write, a close, silence, and frames that break
 * the protocol. The client must return the right result or code with the
 * right message, skip what is not its answer, and report transport
 * failures as unavailable naming the cause. Addresses: TCP, Unix path,
 * the tcp:/unix: prefixes, refused and malformed ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto/client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- the scripted server (no cmocka asserts off the main thread) ---- */

typedef struct fake {
    int lfd;
    char addr[200]; /* what the client connects to */
    char dir[64];   /* temp dir of a Unix socket, or "" */
    pthread_t th;
} fake;

#define DIE(what)                                                                                  \
    do {                                                                                           \
        perror(what);                                                                              \
        abort();                                                                                   \
    } while (0)

static void send_buf(int fd, const proto_buf *b)
{
    size_t off = 0;
    while (off < b->len) {
        ssize_t n = send(fd, b->p + off, b->len - off, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the client went away: nothing to do */
        off += (size_t)n;
    }
}

static void answer_ok(proto_buf *b, uint64_t id, const char *key, uint64_t v)
{
    msgpack_packer pk;
    size_t off = proto_begin_ok(b, &pk, id);
    msgpack_pack_map(&pk, 1);
    proto_pack_kv_uint(&pk, key, v);
    proto_frame_end(b, off);
}

static void push_event(proto_buf *b, uint64_t seq)
{
    msgpack_packer pk;
    proto_packer_init(&pk, b);
    size_t off = proto_frame_begin(b);
    msgpack_pack_map(&pk, 3);
    proto_pack_kv_str(&pk, "event", "call");
    proto_pack_kv_uint(&pk, "seq", seq);
    proto_pack_str(&pk, "data");
    msgpack_pack_map(&pk, 1);
    proto_pack_kv_str(&pk, "number", "A023");
    proto_frame_end(b, off);
}

static void raw_frame(proto_buf *b, const void *body, uint32_t n)
{
    size_t off = proto_frame_begin(b);
    proto_buf_append(b, body, n);
    proto_frame_end(b, off);
}

/* Answers one request; false when the connection should end. */
static bool serve_one(int fd, const proto_request *r, proto_buf *b)
{
    proto_buf_reset(b);
    if (proto_op_is(r, "ping")) {
        answer_ok(b, r->id, "now_ms", 7);
    } else if (proto_op_is(r, "hello")) {
        const char *tok;
        uint32_t tl;
        proto_error e;
        msgpack_packer pk;
        if (proto_arg_str(r->args, "token", true, &tok, &tl, &e) != PROTO_OK) {
            proto_write_error(b, r->id, PROTO_E_UNAUTHENTICATED, e.msg);
        } else {
            size_t off = proto_begin_ok(b, &pk, r->id);
            msgpack_pack_map(&pk, 2);
            proto_pack_str(&pk, "token");
            proto_pack_strn(&pk, tok, tl);
            proto_pack_kv_bool(&pk, "has_client", proto_map_get(r->args, "client") != NULL);
            proto_frame_end(b, off);
        }
    } else if (proto_op_is(r, "events")) {
        push_event(b, 1);
        push_event(b, 2);
        answer_ok(b, r->id, "n", 1);
    } else if (proto_op_is(r, "stale")) {
        answer_ok(b, r->id + 100, "stale", 1);
        answer_ok(b, r->id, "fresh", 1);
    } else if (proto_op_is(r, "fail")) {
        proto_write_error(b, r->id, PROTO_E_NOT_FOUND, "args.ticket_id: no ticket 9");
    } else if (proto_op_is(r, "newcode")) {
        msgpack_packer pk;
        proto_packer_init(&pk, b);
        size_t off = proto_frame_begin(b);
        msgpack_pack_map(&pk, 3);
        proto_pack_kv_uint(&pk, "id", r->id);
        proto_pack_kv_bool(&pk, "ok", false);
        proto_pack_str(&pk, "error");
        msgpack_pack_map(&pk, 2);
        proto_pack_kv_str(&pk, "code", "teapot");
        proto_pack_kv_str(&pk, "message", "short and stout");
        proto_frame_end(b, off);
    } else if (proto_op_is(r, "refused")) {
        proto_write_error(b, 0, PROTO_E_BAD_FRAME, "body: not a map");
    } else if (proto_op_is(r, "split")) {
        answer_ok(b, r->id, "split", 1);
        for (size_t i = 0; i < b->len; i++)
            if (send(fd, b->p + i, 1, MSG_NOSIGNAL) != 1)
                return false;
        return true;
    } else if (proto_op_is(r, "close")) {
        return false;
    } else if (proto_op_is(r, "silent")) {
        return true;
    } else if (proto_op_is(r, "badbody")) {
        raw_frame(b, "\x92\x01\x02", 3);
    } else if (proto_op_is(r, "zerolen")) {
        proto_buf_append(b, "\0\0\0\0", 4);
    } else if (proto_op_is(r, "noresult")) {
        msgpack_packer pk;
        proto_packer_init(&pk, b);
        size_t off = proto_frame_begin(b);
        msgpack_pack_map(&pk, 2);
        proto_pack_kv_uint(&pk, "id", r->id);
        proto_pack_kv_bool(&pk, "ok", true);
        proto_frame_end(b, off);
    } else {
        proto_write_error(b, r->id, PROTO_E_UNKNOWN_OP, "op: no such op");
    }
    send_buf(fd, b);
    return true;
}

static void *fake_main(void *arg)
{
    fake *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        DIE("accept");
    proto_framer f;
    proto_buf out;
    msgpack_zone z;
    proto_framer_init(&f, PROTO_DEFAULT_MAX_FRAME);
    proto_buf_init(&out);
    msgpack_zone_init(&z, 4096);
    for (bool go = true; go;) {
        const uint8_t *body;
        uint32_t len;
        int rc = proto_framer_next(&f, &body, &len);
        if (rc == PROTO_FRAME_READY) {
            proto_request r;
            proto_error e;
            msgpack_zone_clear(&z);
            if (proto_request_decode(&z, body, len, &r, &e) != PROTO_OK) {
                fprintf(stderr, "fake server: %s\n", e.msg);
                abort();
            }
            go = serve_one(fd, &r, &out);
            continue;
        }
        if (rc != PROTO_FRAME_NEED)
            abort();
        size_t room;
        uint8_t *p = proto_framer_space(&f, &room);
        ssize_t n = recv(fd, p, room, 0);
        if (n <= 0)
            break; /* the client closed */
        proto_framer_commit(&f, (size_t)n);
    }
    close(fd);
    msgpack_zone_destroy(&z);
    proto_buf_free(&out);
    proto_framer_free(&f);
    return NULL;
}

static void fake_start_tcp(fake *s, const char *prefix)
{
    memset(s, 0, sizeof *s);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(s->lfd, 4) != 0 || getsockname(s->lfd, (struct sockaddr *)&sa, &sl) != 0)
        DIE("tcp listener");
    snprintf(s->addr, sizeof s->addr, "%s127.0.0.1:%u", prefix, ntohs(sa.sin_port));
    if (pthread_create(&s->th, NULL, fake_main, s) != 0)
        DIE("pthread_create");
}

static void fake_start_unix(fake *s, const char *prefix)
{
    memset(s, 0, sizeof *s);
    strcpy(s->dir, "/tmp/hallq-test-client-XXXXXX");
    if (!mkdtemp(s->dir))
        DIE("mkdtemp");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/s.sock", s->dir);
    s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(s->lfd, 4) != 0)
        DIE("unix listener");
    snprintf(s->addr, sizeof s->addr, "%s%s", prefix, sa.sun_path);
    if (pthread_create(&s->th, NULL, fake_main, s) != 0)
        DIE("pthread_create");
}

/* Joins the server once the client closed its side (or it closed). */
static void fake_stop(fake *s)
{
    pthread_join(s->th, NULL);
    close(s->lfd);
    if (s->dir[0]) {
        char path[128];
        snprintf(path, sizeof path, "%s/s.sock", s->dir);
        unlink(path);
        rmdir(s->dir);
    }
}

/* ---- helpers ---- */

static uint64_t result_uint(const msgpack_object *res, const char *key)
{
    const msgpack_object *v = proto_map_get(res, key);
    assert_non_null(v);
    assert_int_equal(v->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    return v->via.u64;
}

static void connect_ok(proto_client *c, const char *addr)
{
    proto_err rc = proto_client_connect(c, addr);
    if (rc != PROTO_OK)
        fail_msg("connect %s: %s", addr, c->err.msg);
}

static void call_ok(proto_client *c, const char *op, const msgpack_object **res)
{
    proto_err rc = proto_client_call(c, op, NULL, 0, res);
    if (rc != PROTO_OK)
        fail_msg("%s: %s: %s", op, proto_err_name(rc), c->err.msg);
    assert_non_null(*res);
    assert_int_equal((*res)->type, MSGPACK_OBJECT_MAP);
}

static void expect_call(proto_client *c, const char *op, proto_err code, const char *msg)
{
    const msgpack_object *res = (const msgpack_object *)1;
    assert_int_equal(proto_client_call(c, op, NULL, 0, &res), code);
    assert_null(res);
    assert_int_equal(c->err.code, code);
    assert_string_equal(c->err.msg, msg);
}

/* ---- tests ---- */

static void test_tcp(void **state)
{
    (void)state;
    const char *prefixes[] = {"", "tcp:"};
    for (int i = 0; i < 2; i++) {
        fake s;
        proto_client c;
        const msgpack_object *res;
        fake_start_tcp(&s, prefixes[i]);
        connect_ok(&c, s.addr);
        /* TCP_NODELAY is on. */
        int v = 0;
        socklen_t vl = sizeof v;
        assert_int_equal(getsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &v, &vl), 0);
        assert_true(v != 0);
        assert_int_equal(proto_client_hello(&c, "kiosk-demo", "test", &res), PROTO_OK);
        const msgpack_object *tok = proto_map_get(res, "token");
        assert_int_equal(tok->via.str.size, 10);
        assert_memory_equal(tok->via.str.ptr, "kiosk-demo", 10);
        assert_true(proto_map_get(res, "has_client")->via.boolean);
        call_ok(&c, "ping", &res);
        assert_int_equal(result_uint(res, "now_ms"), 7);
        assert_int_equal(c.next_id, 3);
        proto_client_close(&c);
        fake_stop(&s);
    }
}

static void test_unix(void **state)
{
    (void)state;
    const char *prefixes[] = {"", "unix:"};
    for (int i = 0; i < 2; i++) {
        fake s;
        proto_client c;
        const msgpack_object *res;
        fake_start_unix(&s, prefixes[i]);
        connect_ok(&c, s.addr);
        assert_int_equal(proto_client_hello(&c, "admin-demo", NULL, &res), PROTO_OK);
        assert_false(proto_map_get(res, "has_client")->via.boolean);
        call_ok(&c, "ping", &res);
        assert_int_equal(result_uint(res, "now_ms"), 7);
        proto_client_close(&c);
        fake_stop(&s);
    }
}

/* call() skips pushed events and answers to other ids; recv() returns
 * every frame in order. */
static void test_events_and_other_ids(void **state)
{
    (void)state;
    fake s;
    proto_client c;
    const msgpack_object *res;
    fake_start_tcp(&s, "");
    connect_ok(&c, s.addr);
    call_ok(&c, "events", &res);
    assert_int_equal(result_uint(res, "n"), 1);
    call_ok(&c, "stale", &res);
    assert_int_equal(result_uint(res, "fresh"), 1);
    assert_null(proto_map_get(res, "stale"));

    uint64_t id;
    const msgpack_object *m;
    assert_int_equal(proto_client_send(&c, "events", NULL, 0, &id), PROTO_OK);
    assert_int_equal(proto_client_send(&c, "ping", NULL, 0, &id), PROTO_OK);
    for (uint64_t seq = 1; seq <= 2; seq++) {
        assert_int_equal(proto_client_recv(&c, &m), PROTO_OK);
        assert_non_null(proto_map_get(m, "event"));
        assert_int_equal(proto_map_get(m, "seq")->via.u64, seq);
    }
    assert_int_equal(proto_client_recv(&c, &m), PROTO_OK);
    assert_int_equal(proto_map_get(m, "id")->via.u64, id - 1);
    assert_int_equal(proto_client_recv(&c, &m), PROTO_OK);
    assert_int_equal(proto_map_get(m, "id")->via.u64, id);
    assert_int_equal(result_uint(proto_map_get(m, "result"), "now_ms"), 7);
    proto_client_close(&c);
    fake_stop(&s);
}

static void test_error_responses(void **state)
{
    (void)state;
    fake s;
    proto_client c;
    const msgpack_object *res;
    fake_start_tcp(&s, "");
    connect_ok(&c, s.addr);
    expect_call(&c, "fail", PROTO_E_NOT_FOUND, "args.ticket_id: no ticket 9");
    expect_call(&c, "nosuch", PROTO_E_UNKNOWN_OP, "op: no such op");
    expect_call(&c, "newcode", PROTO_E_INTERNAL, "unknown error code 'teapot': short and stout");
    /* id 0: the server refused the frame itself; that answers us. */
    expect_call(&c, "refused", PROTO_E_BAD_FRAME, "body: not a map");
    /* An error answer leaves the connection usable, and clears on ok. */
    call_ok(&c, "ping", &res);
    assert_int_equal(c.err.code, PROTO_OK);
    assert_string_equal(c.err.msg, "");
    /* An answer dribbled out one byte per write. */
    call_ok(&c, "split", &res);
    assert_int_equal(result_uint(res, "split"), 1);
    proto_client_close(&c);
    fake_stop(&s);
}

static void test_closed_by_server(void **state)
{
    (void)state;
    fake s;
    proto_client c;
    fake_start_tcp(&s, "");
    connect_ok(&c, s.addr);
    expect_call(&c, "close", PROTO_E_UNAVAILABLE, "connection closed by server");
    assert_int_equal(c.fd, -1);
    expect_call(&c, "ping", PROTO_E_UNAVAILABLE, "not connected");
    const msgpack_object *m;
    assert_int_equal(proto_client_recv(&c, &m), PROTO_E_UNAVAILABLE);
    assert_null(m);
    proto_client_close(&c);
    proto_client_close(&c); /* twice is harmless */
    fake_stop(&s);
}

static void test_timeout(void **state)
{
    (void)state;
    fake s;
    proto_client c;
    const msgpack_object *res;
    fake_start_tcp(&s, "");
    connect_ok(&c, s.addr);
    c.timeout_ms = 100;
    expect_call(&c, "silent", PROTO_E_UNAVAILABLE, "timed out after 100 ms waiting for the server");
    /* Nothing was lost: the connection still works. */
    call_ok(&c, "ping", &res);
    assert_int_equal(result_uint(res, "now_ms"), 7);
    proto_client_close(&c);
    fake_stop(&s);
}

static void test_bad_frames_from_server(void **state)
{
    (void)state;
    struct {
        const char *op, *msg;
    } cases[] = {
        {"badbody",
         "server sent a bad frame: body: not a map (a frame's body is one MessagePack map)"},
        {"zerolen", "server sent a frame of length 0"},
        {"noresult", "server sent a malformed response (result is not a map)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        fake s;
        proto_client c;
        fake_start_tcp(&s, "");
        connect_ok(&c, s.addr);
        expect_call(&c, cases[i].op, PROTO_E_UNAVAILABLE, cases[i].msg);
        assert_int_equal(c.fd, -1); /* nothing after it can be trusted */
        proto_client_close(&c);
        fake_stop(&s);
    }
}

static void test_connect_failures(void **state)
{
    (void)state;
    proto_client c;
    char addr[64], want[128];

    /* A bound port that does not listen refuses. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(addr, sizeof addr, "127.0.0.1:%u", ntohs(sa.sin_port));
    snprintf(want, sizeof want, "connect 127.0.0.1:%u: Connection refused", ntohs(sa.sin_port));
    assert_int_equal(proto_client_connect(&c, addr), PROTO_E_UNAVAILABLE);
    assert_int_equal(c.err.code, PROTO_E_UNAVAILABLE);
    assert_string_equal(c.err.msg, want);
    assert_int_equal(c.fd, -1);
    proto_client_close(&c);
    close(fd);

    assert_int_equal(proto_client_connect(&c, "unix:/nonexistent-hallq/x.sock"),
                     PROTO_E_UNAVAILABLE);
    assert_string_equal(c.err.msg, "connect /nonexistent-hallq/x.sock: No such file or directory");
    proto_client_close(&c);
    assert_int_equal(proto_client_connect(&c, "./no-such-hallq.sock"), PROTO_E_UNAVAILABLE);
    assert_string_equal(c.err.msg, "connect ./no-such-hallq.sock: No such file or directory");
    proto_client_close(&c);

    const char *bad[] = {"localhost", "tcp:7420", ":7420", "127.0.0.1:", "tcp:"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(proto_client_connect(&c, bad[i]), PROTO_E_UNAVAILABLE);
        if (!strstr(c.err.msg, "expected HOST:PORT"))
            fail_msg("%s: %s", bad[i], c.err.msg);
        proto_client_close(&c);
    }
    char longp[200];
    memset(longp, 'p', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = 0;
    assert_int_equal(proto_client_connect(&c, longp), PROTO_E_UNAVAILABLE);
    assert_non_null(strstr(c.err.msg, "socket path too long"));
    proto_client_close(&c);

    /* Not connected at all. */
    const msgpack_object *res;
    uint64_t id;
    assert_int_equal(proto_client_call(&c, "ping", NULL, 0, &res), PROTO_E_UNAVAILABLE);
    assert_string_equal(c.err.msg, "not connected");
    assert_int_equal(proto_client_send(&c, "ping", NULL, 0, &id), PROTO_E_UNAVAILABLE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_unix),
        cmocka_unit_test(test_events_and_other_ids),
        cmocka_unit_test(test_error_responses),
        cmocka_unit_test(test_closed_by_server),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_bad_frames_from_server),
        cmocka_unit_test(test_connect_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
