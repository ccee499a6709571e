/* tools/hallq_conn.c: which listener and token a command uses, and one
 * request over one connection.
 *
 * The role of a command picks both. Kiosk, window and display go to TCP,
 * department and admin to the Unix socket, as the protocol's default
 * listeners do (--via overrides it for halls configured otherwise). The
 * token is --token (or HALLQ_TOKEN) when given; else the demo hall's token
 * of the role, which for windows and departments is built from the id
 * (--window W01 -> window-W01, --dept mkt -> dept-mkt): a demo
 * convenience only, since a real hall sets its own tokens.
 *
 * Requests go out with proto_client_send and answers come back with
 * proto_client_recv, so that every failure of the transport (which the
 * client reports as its own `unavailable`) is told apart from an error
 * the server answered: the first exits 3, the second 1. */
#include "tools/hallq.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *const role_names[HQ_ROLE__COUNT] = {"kiosk", "window", "display", "department",
                                                       "admin"};

const char *hq_role_name(hq_role r)
{
    return (unsigned)r < HQ_ROLE__COUNT ? role_names[r] : "?";
}

int hq_role_find(const char *name)
{
    for (int i = 0; i < HQ_ROLE__COUNT; i++)
        if (!strcmp(name, role_names[i]))
            return i;
    if (!strcmp(name, "dept"))
        return HQ_DEPARTMENT;
    return -1;
}

#define K HQ_BIT(HQ_KIOSK)
#define W HQ_BIT(HQ_WINDOW)
#define D HQ_BIT(HQ_DISPLAY)
#define DEP HQ_BIT(HQ_DEPARTMENT)
#define A HQ_BIT(HQ_ADMIN)

/* The roles of daemon/hall/hall.h's HALL_OP_MAP, plus the contract's ops
 * the daemon may not have yet; tests/integration/test_roles.py holds the
 * same table and checks it against the daemon. */
static const hq_op ops[] = {
    {"hello", HQ_ANY, HQ_KIOSK},
    {"ping", HQ_ANY, HQ_KIOSK},
    {"subscribe", HQ_ANY, HQ_DISPLAY},
    {"ticket.take", K | A, HQ_KIOSK},
    {"ticket.get", K | A, HQ_KIOSK},
    {"ticket.return", K | A, HQ_KIOSK},
    {"appointment.book", K | A, HQ_KIOSK},
    {"appointment.get", K | A, HQ_KIOSK},
    {"case.get", K | A | W | DEP, HQ_KIOSK},
    {"rate", K | A, HQ_KIOSK},
    {"window.state", W, HQ_WINDOW},
    {"window.call", W, HQ_WINDOW},
    {"window.recall", W, HQ_WINDOW},
    {"window.no_show", W, HQ_WINDOW},
    {"window.transfer", W, HQ_WINDOW},
    {"window.done", W, HQ_WINDOW},
    {"window.intake", W, HQ_WINDOW},
    {"case.supplement", W, HQ_WINDOW},
    {"case.deliver", W, HQ_WINDOW},
    {"review.claim", DEP, HQ_DEPARTMENT},
    {"review.decide", DEP, HQ_DEPARTMENT},
    {"review.list", DEP, HQ_DEPARTMENT},
    {"stats", A, HQ_ADMIN},
    {"config.reload", A, HQ_ADMIN},
    {"day.close", A, HQ_ADMIN},
    {"clock.advance", A, HQ_ADMIN},
    {"digest", A, HQ_ADMIN},
    {"board", D | W | A, HQ_DISPLAY},
    {"catalogue", HQ_ANY, HQ_KIOSK},
};

const hq_op *hq_op_find(const char *name)
{
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(ops[i].name, name))
            return &ops[i];
    return NULL;
}

hq_role hq_pick_role(const hq_opts *o, const hq_op *op)
{
    if (o->as >= 0)
        return (hq_role)o->as;
    if ((op->roles & W) && o->window)
        return HQ_WINDOW;
    if ((op->roles & DEP) && o->dept)
        return HQ_DEPARTMENT;
    return op->def;
}

/* The token of a role, into buf. Returns 0 or the usage status. */
static int token_of(const hq_opts *o, hq_role role, char *buf, size_t n)
{
    if (o->token) {
        snprintf(buf, n, "%s", o->token);
        return 0;
    }
    switch (role) {
    case HQ_WINDOW:
        if (!o->window)
            return hq_usage_error("window commands need a window: --window ID (the demo "
                                  "hall's token window-ID) or --token TOKEN");
        snprintf(buf, n, "window-%s", o->window);
        return 0;
    case HQ_DEPARTMENT:
        if (!o->dept)
            return hq_usage_error("department commands need a department: --dept ID (the "
                                  "demo hall's token dept-ID) or --token TOKEN");
        snprintf(buf, n, "dept-%s", o->dept);
        return 0;
    case HQ_DISPLAY:
        snprintf(buf, n, "display-demo");
        return 0;
    case HQ_ADMIN:
        snprintf(buf, n, "admin-demo");
        return 0;
    default:
        snprintf(buf, n, "kiosk-demo");
        return 0;
    }
}

/* Prints a server's error answer `m` for op. */
static void print_error(const char *op, const msgpack_object *m)
{
    const msgpack_object *err = hq_get(m, "error");
    const msgpack_object *code = hq_get(err, "code");
    const msgpack_object *msg = hq_get(err, "message");
    fprintf(stderr, "hallq: %s: ", op);
    if (code && code->type == MSGPACK_OBJECT_STR)
        hq_text(stderr, code->via.str.ptr, code->via.str.size);
    else
        fputs("(no code)", stderr);
    fputs(": ", stderr);
    if (msg && msg->type == MSGPACK_OBJECT_STR)
        hq_text(stderr, msg->via.str.ptr, msg->via.str.size);
    fputc('\n', stderr);
}

static int transport_fail(hq_conn *c, const char *op)
{
    fprintf(stderr, "hallq: %s: %s\n", op, c->pc.err.msg);
    return HQ_EXIT_CONNECT;
}

int hq_request(hq_conn *c, const char *op, const proto_buf *args, const msgpack_object **res)
{
    uint64_t id;
    *res = NULL;
    c->op = op;
    if (proto_client_send(&c->pc, op, args ? args->p : NULL, args ? args->len : 0, &id) != PROTO_OK)
        return transport_fail(c, op);
    for (;;) {
        const msgpack_object *m;
        if (proto_client_recv(&c->pc, &m) != PROTO_OK)
            return transport_fail(c, op);
        if (hq_get(m, "event"))
            continue; /* a pushed event; not what this request waits for */
        const msgpack_object *rid = hq_get(m, "id");
        const msgpack_object *ok = hq_get(m, "ok");
        if (!rid || rid->type != MSGPACK_OBJECT_POSITIVE_INTEGER || !ok ||
            ok->type != MSGPACK_OBJECT_BOOLEAN) {
            fprintf(stderr, "hallq: %s: the server sent a malformed answer (no id or ok)\n", op);
            return HQ_EXIT_CONNECT;
        }
        /* id 0 with an error is the server refusing the frame itself. */
        if (rid->via.u64 != id && !(rid->via.u64 == 0 && !ok->via.boolean))
            continue;
        if (!ok->via.boolean) {
            if (!c->quiet)
                print_error(op, m);
            return HQ_EXIT_ERROR;
        }
        const msgpack_object *r = hq_get(m, "result");
        if (!r || r->type != MSGPACK_OBJECT_MAP) {
            fprintf(stderr, "hallq: %s: the server sent a malformed answer (no result map)\n", op);
            return HQ_EXIT_CONNECT;
        }
        *res = r;
        return HQ_EXIT_OK;
    }
}

int hq_connect(hq_conn *c, const hq_opts *o, hq_role role)
{
    char token[300], addr[600];
    memset(c, 0, sizeof *c);
    c->role = role;
    int rc = token_of(o, role, token, sizeof token);
    if (rc)
        return rc;
    int via = o->via ? o->via : (role == HQ_DEPARTMENT || role == HQ_ADMIN) ? 'u' : 't';
    if (via == 'u')
        snprintf(addr, sizeof addr, "unix:%s",
                 o->unix_path ? o->unix_path : "./hallq-data/hallq.sock");
    else
        snprintf(addr, sizeof addr, "tcp:%s", o->tcp ? o->tcp : "127.0.0.1:7420");
    c->connected = true;
    if (proto_client_connect(&c->pc, addr) != PROTO_OK) {
        fprintf(stderr, "hallq: %s\n", c->pc.err.msg);
        hq_close(c);
        return HQ_EXIT_CONNECT;
    }
    c->pc.timeout_ms = o->timeout_ms;

    proto_buf b;
    msgpack_packer pk;
    proto_buf_init(&b);
    proto_packer_init(&pk, &b);
    msgpack_pack_map(&pk, 2);
    proto_pack_kv_str(&pk, "token", token);
    proto_pack_kv_str(&pk, "client", "hallq");
    const msgpack_object *res;
    rc = b.oom ? HQ_EXIT_ERROR : hq_request(c, "hello", &b, &res);
    proto_buf_free(&b);
    if (rc) {
        hq_close(c);
        return rc;
    }
    hq_get_str(res, "id", c->id, sizeof c->id, "");
    return HQ_EXIT_OK;
}

const char *hq_arg(const hq_conn *c, const char *key)
{
    for (int i = 0; c->args && i < c->args->n; i++)
        if (!strcmp(c->args->kv[i].key, key))
            return c->args->kv[i].val;
    return NULL;
}

void hq_close(hq_conn *c)
{
    if (c->connected)
        proto_client_close(&c->pc);
    c->connected = false;
}

/* Renderers that print names of lines, services, departments or
 * materials (the others never need the catalogue). */
static bool names_shown(hq_render r)
{
    static const hq_render with_names[] = {
        hq_show_ticket_take, hq_show_ticket, hq_show_window_call, hq_show_intake, hq_show_case,
        hq_show_claim,       hq_show_board,  hq_show_catalogue,   hq_show_stats,
    };
    for (size_t i = 0; i < sizeof with_names / sizeof with_names[0]; i++)
        if (with_names[i] == r)
            return true;
    return false;
}

int hq_run(const hq_opts *o, const char *op, const hq_args *a, hq_render render)
{
    const hq_op *d = hq_op_find(op);
    hq_op other = {op, HQ_ANY, HQ_KIOSK}; /* an op this hallq does not know */
    if (!d)
        d = &other;
    proto_buf b;
    proto_buf_init(&b);
    bool with_args = a && a->n > 0;
    if (with_args && hq_args_pack(a, &b) != 0) {
        proto_buf_free(&b);
        return HQ_EXIT_ERROR;
    }
    hq_conn c;
    int rc = hq_connect(&c, o, hq_pick_role(o, d));
    c.args = a;
    if (rc == 0) {
        const msgpack_object *res;
        if (!o->json && render && names_shown(render))
            hq_names_load(&c, o);
        rc = hq_request(&c, op, with_args ? &b : NULL, &res);
        if (rc == 0) {
            if (o->json || !render) {
                hq_json(stdout, res, true);
                putchar('\n');
            } else {
                render(&c, res);
            }
        }
        hq_close(&c);
    }
    proto_buf_free(&b);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "hallq: writing the output failed\n");
        return rc ? rc : HQ_EXIT_ERROR;
    }
    return rc;
}
