/* tools/hallq.c: the hallq command-line tool.
 *
 * One program, subcommands per area: it connects (TCP or the Unix socket),
 * says hello with a token, sends one request and prints the result as
 * JSON. Defaults follow the demo hall: kiosk commands go to TCP
 * 127.0.0.1:7420 as `kiosk-demo`, admin commands to ./hallq-data/hallq.sock
 * as `admin-demo`. --tcp/--unix/--token (or HALLQ_TCP, HALLQ_UNIX,
 * HALLQ_TOKEN) override them. Exit status: 0 ok, 1 error response or
 * transport failure, 2 usage. */
#include "proto/client.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cli {
    const char *tcp, *unix_path, *token;
    bool json_compact;
} cli;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hallq [--tcp HOST:PORT | --unix PATH] [--token TOKEN] COMMAND ...\n"
            "\n"
            "commands:\n"
            "  ping                          check the server is alive\n"
            "  ticket take LINE [--priority] [--appointment CODE] [--case CASE_NO] [--idem KEY]\n"
            "  ticket get TICKET_ID\n"
            "  clock advance MS              (admin, hallqd --manual-clock only)\n"
            "  digest                        (admin) hash of the hall's logical state\n"
            "  call OP [key=value ...]       any op; values: 12, true, false, a,b (list), text\n"
            "\n"
            "defaults: kiosk commands use --tcp 127.0.0.1:7420 --token kiosk-demo;\n"
            "admin commands use --unix ./hallq-data/hallq.sock --token admin-demo.\n");
}

/* ---- printing MessagePack as JSON ---- */

static void print_str(const char *s, uint32_t n)
{
    putchar('"');
    for (uint32_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void print_obj(const msgpack_object *o, int indent)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        printf("null");
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        printf(o->via.boolean ? "true" : "false");
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        printf("%" PRIu64, o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        printf("%" PRId64, o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        printf("%g", o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        print_str(o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        printf("\"<%u bytes>\"", o->via.bin.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        putchar('[');
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i)
                printf(", ");
            print_obj(&o->via.array.ptr[i], indent);
        }
        putchar(']');
        break;
    case MSGPACK_OBJECT_MAP:
        if (o->via.map.size == 0) {
            printf("{}");
            break;
        }
        printf("{\n");
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            printf("%*s", indent + 2, "");
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (k->type == MSGPACK_OBJECT_STR)
                print_str(k->via.str.ptr, k->via.str.size);
            else
                print_obj(k, indent + 2);
            printf(": ");
            print_obj(&o->via.map.ptr[i].val, indent + 2);
            printf(i + 1 < o->via.map.size ? ",\n" : "\n");
        }
        printf("%*s}", indent, "");
        break;
    default:
        printf("null");
        break;
    }
}

/* ---- building args ---- */

typedef struct kv {
    const char *key;
    const char *val;
    char type; /* 's' string, 'u' uint, 'b' bool, 'l' list, 'a' auto */
} kv;

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static void pack_value(msgpack_packer *pk, const char *v, char type)
{
    if (type == 'a') {
        if (all_digits(v))
            type = 'u';
        else if (!strcmp(v, "true") || !strcmp(v, "false"))
            type = 'b';
        else if (strchr(v, ','))
            type = 'l';
        else
            type = 's';
    }
    switch (type) {
    case 'u':
        msgpack_pack_uint64(pk, strtoull(v, NULL, 10));
        break;
    case 'b':
        if (!strcmp(v, "true"))
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        break;
    case 'l': {
        uint32_t n = *v ? 1 : 0;
        for (const char *p = v; *p; p++)
            n += *p == ',';
        msgpack_pack_array(pk, n);
        const char *start = v;
        for (const char *p = v;; p++) {
            if (*p == ',' || !*p) {
                if (n)
                    proto_pack_strn(pk, start, (size_t)(p - start));
                start = p + 1;
                if (!*p)
                    break;
            }
        }
        break;
    }
    default:
        proto_pack_str(pk, v);
        break;
    }
}

static void pack_args(proto_buf *b, const kv *args, int n)
{
    msgpack_packer pk;
    proto_packer_init(&pk, b);
    msgpack_pack_map(&pk, (size_t)n);
    for (int i = 0; i < n; i++) {
        proto_pack_str(&pk, args[i].key);
        pack_value(&pk, args[i].val, args[i].type);
    }
}

/* ---- one request ---- */

static int run(const cli *c, bool admin, const char *op, const kv *args, int n)
{
    const char *tcp = c->tcp ? c->tcp : getenv("HALLQ_TCP");
    const char *unx = c->unix_path ? c->unix_path : getenv("HALLQ_UNIX");
    const char *token = c->token ? c->token : getenv("HALLQ_TOKEN");
    char addr[600];
    if (tcp)
        snprintf(addr, sizeof addr, "tcp:%s", tcp);
    else if (unx)
        snprintf(addr, sizeof addr, "unix:%s", unx);
    else if (admin)
        snprintf(addr, sizeof addr, "unix:./hallq-data/hallq.sock");
    else
        snprintf(addr, sizeof addr, "tcp:127.0.0.1:7420");
    if (!token) /* the demo hall's: the Unix socket takes admins, TCP kiosks */
        token = !strncmp(addr, "unix:", 5) ? "admin-demo" : "kiosk-demo";

    proto_client pc;
    proto_buf b;
    const msgpack_object *res;
    int code = 1;
    proto_buf_init(&b);
    pc.timeout_ms = 30000;
    if (proto_client_connect(&pc, addr) != PROTO_OK) {
        fprintf(stderr, "hallq: %s\n", pc.err.msg);
        proto_buf_free(&b);
        return 1;
    }
    pc.timeout_ms = 30000;
    if (proto_client_hello(&pc, token, "hallq", &res) != PROTO_OK) {
        fprintf(stderr, "hallq: hello: %s: %s\n", proto_err_name(pc.err.code), pc.err.msg);
        goto out;
    }
    if (n > 0)
        pack_args(&b, args, n);
    proto_err e = proto_client_call(&pc, op, n > 0 ? b.p : NULL, b.len, &res);
    if (e != PROTO_OK) {
        fprintf(stderr, "hallq: %s: %s: %s\n", op, proto_err_name(pc.err.code), pc.err.msg);
        goto out;
    }
    print_obj(res, 0);
    putchar('\n');
    code = 0;
out:
    proto_client_close(&pc);
    proto_buf_free(&b);
    return code;
}

int main(int argc, char **argv)
{
    cli c = {0};
    static const struct option opts[] = {{"tcp", required_argument, 0, 't'},
                                         {"unix", required_argument, 0, 'u'},
                                         {"token", required_argument, 0, 'k'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int ch;
    /* Options before the command only; the command parses its own. */
    while ((ch = getopt_long(argc, argv, "+t:u:k:h", opts, NULL)) != -1) {
        switch (ch) {
        case 't':
            c.tcp = optarg;
            break;
        case 'u':
            c.unix_path = optarg;
            break;
        case 'k':
            c.token = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    int ac = argc - optind;
    char **av = argv + optind;
    if (ac < 1) {
        usage(stderr);
        return 2;
    }
    kv args[64];
    int n = 0;
    if (!strcmp(av[0], "ping"))
        return run(&c, false, "ping", NULL, 0);
    if (!strcmp(av[0], "digest"))
        return run(&c, true, "digest", NULL, 0);
    if (!strcmp(av[0], "ticket") && ac >= 3 && !strcmp(av[1], "take")) {
        args[n++] = (kv){"line", av[2], 's'};
        for (int i = 3; i < ac; i++) {
            if (!strcmp(av[i], "--priority"))
                args[n++] = (kv){"priority", "true", 'b'};
            else if (!strcmp(av[i], "--appointment") && i + 1 < ac)
                args[n++] = (kv){"appointment", av[++i], 's'};
            else if (!strcmp(av[i], "--case") && i + 1 < ac)
                args[n++] = (kv){"case_no", av[++i], 's'};
            else if (!strcmp(av[i], "--idem") && i + 1 < ac)
                args[n++] = (kv){"idem", av[++i], 's'};
            else {
                fprintf(stderr, "hallq ticket take: unknown option '%s'\n", av[i]);
                return 2;
            }
        }
        return run(&c, false, "ticket.take", args, n);
    }
    if (!strcmp(av[0], "ticket") && ac == 3 && !strcmp(av[1], "get")) {
        args[n++] = (kv){"ticket_id", av[2], 's'};
        return run(&c, false, "ticket.get", args, n);
    }
    if (!strcmp(av[0], "clock") && ac == 3 && !strcmp(av[1], "advance") && all_digits(av[2])) {
        args[n++] = (kv){"ms", av[2], 'u'};
        return run(&c, true, "clock.advance", args, n);
    }
    if (!strcmp(av[0], "call") && ac >= 2) {
        for (int i = 2; i < ac && n < 64; i++) {
            char *eq = strchr(av[i], '=');
            if (!eq) {
                fprintf(stderr, "hallq call: expected key=value, got '%s'\n", av[i]);
                return 2;
            }
            *eq = 0;
            args[n++] = (kv){av[i], eq + 1, 'a'};
        }
        /* Ops in the admin/department set go to the Unix socket. */
        bool admin = !strncmp(av[1], "review.", 7) || !strcmp(av[1], "stats") ||
                     !strncmp(av[1], "config.", 7) || !strncmp(av[1], "day.", 4) ||
                     !strncmp(av[1], "clock.", 6) || !strcmp(av[1], "digest");
        return run(&c, admin, av[1], args, n);
    }
    usage(stderr);
    return 2;
}
