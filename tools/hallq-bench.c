/* tools/hallq-bench.c: load generator for hallqd's durable ticket.take.
 *
 * One thread, epoll, non-blocking sockets: N connections each keep D
 * requests in flight (pipelining) for a fixed duration. Every response is
 * checked (its id is the oldest outstanding one, ok is true, a number came
 * back); any unexpected answer fails the run. Latency is send -> response
 * on CLOCK_MONOTONIC; every sample is kept (bounded by --max-samples) and
 * sorted, so the percentiles are exact. The client is kept cheap so that
 * the server, not the client, is what is measured.
 *
 * Usage: hallq-bench (--tcp HOST:PORT | --unix PATH) [--token T]
 *          [--conns N] [--depth D] [--duration S] [--warmup S] [--line L|cycle]
 *          [--idem] [--json] */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <msgpack.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEPTH 256
#define RBUF 65536

typedef struct conn {
    int fd;
    bool ready; /* hello answered */
    uint64_t next_id;
    uint64_t ids[MAX_DEPTH]; /* outstanding, oldest first (ring) */
    uint64_t sent_ns[MAX_DEPTH];
    int head, count;
    uint8_t rbuf[RBUF];
    size_t rlen;
    uint8_t wbuf[MAX_DEPTH * 128];
    size_t wlen, woff;
} conn;

static struct {
    const char *tcp, *unix_path, *token, *line;
    int conns, depth;
    double duration, warmup;
    bool idem, json;
    size_t max_samples;
} opt = {
    .conns = 50, .depth = 1, .duration = 10, .warmup = 1, .line = "A", .max_samples = 20000000};

static uint64_t *samples;
static size_t nsamples;
static uint64_t ops, errors;
static const char *lines_cycle = "ABCD";

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *msg)
{
    fprintf(stderr, "hallq-bench: %s\n", msg);
    exit(1);
}

static int connect_one(void)
{
    int fd;
    if (opt.unix_path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", opt.unix_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
            die(strerror(errno));
    } else {
        char host[256];
        const char *colon = strrchr(opt.tcp, ':');
        if (!colon)
            die("--tcp wants HOST:PORT");
        snprintf(host, sizeof host, "%.*s", (int)(colon - opt.tcp), opt.tcp);
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
        if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
            die("cannot resolve the --tcp address");
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
            die(strerror(errno));
        freeaddrinfo(ai);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Packs one request frame into the connection's write buffer. */
static void queue_request(conn *c, const char *op, bool take)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    uint64_t id = c->next_id++;
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_uint64(&pk, id);
    msgpack_pack_str_with_body(&pk, "op", 2);
    msgpack_pack_str_with_body(&pk, op, strlen(op));
    msgpack_pack_str_with_body(&pk, "args", 4);
    if (take) {
        char line[8], idem[64];
        if (!strcmp(opt.line, "cycle"))
            snprintf(line, sizeof line, "%c", lines_cycle[id % 4]);
        else
            snprintf(line, sizeof line, "%s", opt.line);
        msgpack_pack_map(&pk, opt.idem ? 2 : 1);
        msgpack_pack_str_with_body(&pk, "line", 4);
        msgpack_pack_str_with_body(&pk, line, strlen(line));
        if (opt.idem) {
            int n = snprintf(idem, sizeof idem, "b%d-%" PRIu64, c->fd, id);
            msgpack_pack_str_with_body(&pk, "idem", 4);
            msgpack_pack_str_with_body(&pk, idem, (size_t)n);
        }
    } else {
        msgpack_pack_map(&pk, 2);
        msgpack_pack_str_with_body(&pk, "token", 5);
        msgpack_pack_str_with_body(&pk, opt.token, strlen(opt.token));
        msgpack_pack_str_with_body(&pk, "client", 6);
        msgpack_pack_str_with_body(&pk, "hallq-bench", 11);
    }
    if (c->wlen + 4 + sb.size > sizeof c->wbuf)
        die("write buffer overflow");
    uint8_t *p = c->wbuf + c->wlen;
    p[0] = (uint8_t)(sb.size >> 24);
    p[1] = (uint8_t)(sb.size >> 16);
    p[2] = (uint8_t)(sb.size >> 8);
    p[3] = (uint8_t)sb.size;
    memcpy(p + 4, sb.data, sb.size);
    c->wlen += 4 + sb.size;
    int slot = (c->head + c->count) % MAX_DEPTH;
    c->ids[slot] = id;
    c->sent_ns[slot] = now_ns();
    c->count++;
    msgpack_sbuffer_destroy(&sb);
}

static void flush_writes(conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0)
            die(strerror(errno));
        c->woff += (size_t)n;
    }
    c->woff = c->wlen = 0;
}

static const msgpack_object *get(const msgpack_object *m, const char *k)
{
    size_t kl = strlen(k);
    if (m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *key = &m->via.map.ptr[i].key;
        if (key->type == MSGPACK_OBJECT_STR && key->via.str.size == kl &&
            !memcmp(key->via.str.ptr, k, kl))
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

/* Handles one response; returns false on an unexpected answer. */
static bool on_response(conn *c, const msgpack_object *m, uint64_t t, bool measuring)
{
    const msgpack_object *id = get(m, "id"), *ok = get(m, "ok");
    if (!c->count || !id || id->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        id->via.u64 != c->ids[c->head] || !ok || ok->type != MSGPACK_OBJECT_BOOLEAN) {
        fprintf(stderr, "hallq-bench: response out of order or malformed\n");
        return false;
    }
    uint64_t lat = t - c->sent_ns[c->head];
    c->head = (c->head + 1) % MAX_DEPTH;
    c->count--;
    if (!ok->via.boolean) {
        const msgpack_object *e = get(m, "error"), *code = e ? get(e, "code") : NULL,
                             *msg = e ? get(e, "message") : NULL;
        fprintf(stderr, "hallq-bench: error %.*s: %.*s\n", code ? (int)code->via.str.size : 0,
                code ? code->via.str.ptr : "", msg ? (int)msg->via.str.size : 0,
                msg ? msg->via.str.ptr : "");
        errors++;
        return false;
    }
    if (!c->ready) {
        c->ready = true;
        return true;
    }
    const msgpack_object *res = get(m, "result");
    if (!res || !get(res, "number")) {
        fprintf(stderr, "hallq-bench: ticket.take answered without a number\n");
        return false;
    }
    if (measuring) {
        ops++;
        if (nsamples < opt.max_samples)
            samples[nsamples++] = lat;
    }
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static double pct(double p)
{
    if (!nsamples)
        return 0;
    size_t rank = (size_t)(p / 100.0 * (double)nsamples + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > nsamples)
        rank = nsamples;
    return (double)samples[rank - 1] / 1e6;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"tcp", 1, 0, 't'},   {"unix", 1, 0, 'u'},     {"token", 1, 0, 'k'},  {"conns", 1, 0, 'c'},
        {"depth", 1, 0, 'd'}, {"duration", 1, 0, 's'}, {"warmup", 1, 0, 'w'}, {"line", 1, 0, 'l'},
        {"idem", 0, 0, 'i'},  {"json", 0, 0, 'j'},     {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 't':
            opt.tcp = optarg;
            break;
        case 'u':
            opt.unix_path = optarg;
            break;
        case 'k':
            opt.token = optarg;
            break;
        case 'c':
            opt.conns = atoi(optarg);
            break;
        case 'd':
            opt.depth = atoi(optarg);
            break;
        case 's':
            opt.duration = atof(optarg);
            break;
        case 'w':
            opt.warmup = atof(optarg);
            break;
        case 'l':
            opt.line = optarg;
            break;
        case 'i':
            opt.idem = true;
            break;
        case 'j':
            opt.json = true;
            break;
        default:
            fprintf(stderr, "usage: hallq-bench (--tcp HOST:PORT | --unix PATH) [--token T] "
                            "[--conns N] [--depth D] [--duration S] [--warmup S] "
                            "[--line L|cycle] [--idem] [--json]\n");
            return 2;
        }
    }
    if (!opt.tcp && !opt.unix_path)
        opt.tcp = "127.0.0.1:7420";
    if (!opt.token)
        opt.token = opt.unix_path ? "admin-demo" : "kiosk-demo";
    if (opt.conns < 1 || opt.depth < 1 || opt.depth > MAX_DEPTH || opt.duration <= 0)
        die("bad --conns, --depth or --duration");
    samples = malloc(opt.max_samples * sizeof *samples);
    conn *cs = calloc((size_t)opt.conns, sizeof *cs);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (!samples || !cs || ep < 0)
        die("out of memory");
    for (int i = 0; i < opt.conns; i++) {
        conn *c = &cs[i];
        c->fd = connect_one();
        c->next_id = 1;
        queue_request(c, "hello", false);
        flush_writes(c);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    uint64_t start = now_ns();
    uint64_t measure_from = start + (uint64_t)(opt.warmup * 1e9);
    uint64_t end = measure_from + (uint64_t)(opt.duration * 1e9);
    bool failed = false;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    struct epoll_event evs[256];
    for (;;) {
        uint64_t t = now_ns();
        if (t >= end)
            break;
        int n = epoll_wait(ep, evs, 256, 100);
        for (int e = 0; e < n && !failed; e++) {
            conn *c = evs[e].data.ptr;
            for (;;) {
                ssize_t r = recv(c->fd, c->rbuf + c->rlen, RBUF - c->rlen, 0);
                if (r < 0 && errno == EAGAIN)
                    break;
                if (r <= 0)
                    die("the server closed a connection");
                c->rlen += (size_t)r;
                size_t off = 0;
                t = now_ns();
                while (c->rlen - off >= 4) {
                    uint32_t len = (uint32_t)c->rbuf[off] << 24 | (uint32_t)c->rbuf[off + 1] << 16 |
                                   (uint32_t)c->rbuf[off + 2] << 8 | c->rbuf[off + 3];
                    if (c->rlen - off < 4 + (size_t)len)
                        break;
                    size_t uo = 0;
                    if (msgpack_unpack_next(&u, (const char *)c->rbuf + off + 4, len, &uo) !=
                            MSGPACK_UNPACK_SUCCESS ||
                        !on_response(c, &u.data, t, t >= measure_from && t < end))
                        failed = true;
                    off += 4 + len;
                }
                memmove(c->rbuf, c->rbuf + off, c->rlen - off);
                c->rlen -= off;
            }
            while (c->ready && c->count < opt.depth)
                queue_request(c, "ticket.take", true);
            flush_writes(c);
        }
        if (failed)
            break;
    }
    msgpack_unpacked_destroy(&u);
    for (int i = 0; i < opt.conns; i++)
        close(cs[i].fd);
    if (failed) {
        fprintf(stderr, "hallq-bench: FAILED (unexpected answer; %" PRIu64 " errors)\n", errors);
        return 1;
    }
    qsort(samples, nsamples, sizeof *samples, cmp_u64);
    double rate = (double)ops / opt.duration;
    double maxms = nsamples ? (double)samples[nsamples - 1] / 1e6 : 0;
    if (opt.json)
        printf("{\"conns\": %d, \"depth\": %d, \"ops\": %" PRIu64 ", \"ops_per_s\": %.0f, "
               "\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f}\n",
               opt.conns, opt.depth, ops, rate, pct(50), pct(90), pct(99), maxms);
    else
        printf("conns=%d depth=%d ops=%" PRIu64 " ops/s=%.0f p50=%.3fms p90=%.3fms p99=%.3fms "
               "max=%.3fms\n",
               opt.conns, opt.depth, ops, rate, pct(50), pct(90), pct(99), maxms);
    free(samples);
    free(cs);
    return 0;
}
