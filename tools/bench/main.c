/* tools/bench/main.c: hallq-bench's options, report and main.
 *
 * hallq-bench measures a server under N connections each keeping D
 * requests in flight, for a fixed duration or count: hallqd's durable
 * ticket.take (default), the same enqueue on Redis (--proto resp: RPUSH)
 * or beanstalkd (--proto beanstalk: put) for bench/compare.sh, or a busy
 * hall's mix of ops (--mix hall). It prints ops/s and latency p50, p90,
 * p99 and max, and exits 1 when any reply was wrong or unexpected. */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t bench_stop_requested;

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig)
{
    (void)sig;
    bench_stop_requested = 1;
}

void bench_fail(bench *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("hallq-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    b->failed = true;
}

/* ---- report ---- */

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static void bench_report(const bench *b)
{
    const hist *h = &b->lat;
    double elapsed = h->n ? (double)(b->last_ns - b->measure_ns) / 1e9 : 0;
    double rate = elapsed > 0 ? (double)h->n / elapsed : 0;
    double mean = h->n ? ms(h->sum / h->n) : 0;
    const char *target = b->opt.tcp ? b->opt.tcp : b->opt.unix_path;
    const char *line = b->mix ? "mix" : b->opt.cycle ? "cycle" : b->opt.line;
    if (b->opt.json) {
        printf("{\"mode\": \"%s\", \"conns\": %d, \"depth\": %d, \"line\": \"%s\", "
               "\"payload\": %zu, \"ops\": %" PRIu64 ", \"elapsed_s\": %.3f, \"ops_per_s\": %.1f, "
               "\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, "
               "\"min_ms\": %.3f, \"mean_ms\": %.3f, \"errors\": %" PRIu64
               ", \"errors_by_code\": {",
               b->proto->name, b->nconns, b->opt.depth, line, b->opt.payload, h->n, elapsed, rate,
               ms(hist_pct(h, 50)), ms(hist_pct(h, 90)), ms(hist_pct(h, 99)), ms(h->max),
               ms(h->min), mean, b->errors);
        for (int i = 0; i < MAX_CODES && b->codes[i][0]; i++)
            printf("%s\"%s\": %" PRIu64, i ? ", " : "", b->codes[i], b->code_counts[i]);
        printf("}");
        if (b->mix)
            mix_report_json(b, stdout);
        printf("}\n");
        return;
    }
    printf("hallq-bench: %s at %s, %d conns, depth %d, line %s\n", b->proto->name, target,
           b->nconns, b->opt.depth, line);
    printf("  ops      %" PRIu64 " in %.3f s = %.0f ops/s (after %.1f s warmup)\n", h->n, elapsed,
           rate, b->opt.warmup);
    printf("  latency  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  mean %.3f ms\n", ms(hist_pct(h, 50)),
           ms(hist_pct(h, 90)), ms(hist_pct(h, 99)), ms(h->max), mean);
    printf("  errors   %" PRIu64, b->errors);
    for (int i = 0; i < MAX_CODES && b->codes[i][0]; i++)
        printf("%s%s %" PRIu64, i ? ", " : " (", b->codes[i], b->code_counts[i]);
    printf("%s\n", b->codes[0][0] ? ")" : "");
    if (b->mix)
        mix_report_text(b, stdout);
}

/* ---- options ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hallq-bench (--tcp HOST:PORT | --unix PATH) [--proto hallq|resp|beanstalk]\n"
            "         [--token T] [--conns N] [--depth D] [--duration S | --count N]\n"
            "         [--warmup S] [--line L|cycle] [--idem] [--payload BYTES]\n"
            "         [--allow CODE[,CODE...]] [--json]\n"
            "       hallq-bench --mix hall --tcp HOST:PORT --unix PATH [--conns N] [--depth D]\n"
            "         [--backlog N] [--seed N] [--duration S | --count N] [--json]\n"
            "  --proto     hallq: ticket.take (default); resp: Redis RPUSH hallq:LINE value;\n"
            "              beanstalk: put into tube hallq-LINE (--mode redis|... is the same)\n"
            "  --mix hall  kiosks (TCP) take tickets, windows W01..W06 (TCP) call, record\n"
            "              intakes, end visits and deliver, departments (Unix) claim and\n"
            "              decide; --conns kiosks (plus 6 windows and 5 departments)\n"
            "  --token     hallq hello token (default kiosk-demo on TCP, admin-demo on Unix)\n"
            "  --conns     connections (default 50); --depth requests in flight each (1)\n"
            "  --duration  seconds measured (default 10); --count: measured requests instead\n"
            "  --warmup    seconds not measured, after every connection is open (default 1)\n"
            "  --line      line to take tickets from (default A); cycle: A, B, C, D in turn\n"
            "  --idem      a unique idem with each ticket.take\n"
            "  --payload   bytes per Redis or beanstalk value (default: the size of the\n"
            "              ticket.take request hallq-bench sends, 39 bytes for line A)\n"
            "  --backlog   --mix: tickets waiting per line before kiosks hold back (100)\n"
            "  --allow     error codes counted but not failing the run\n"
            "  --json      one JSON line of results\n"
            "Exit 0 when every request was answered as expected, 1 otherwise, 2 on bad usage.\n");
}

static bool parse_num(const char *s, double lo, double hi, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return !errno && end != s && !*end && *v >= lo && *v <= hi;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hallq-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

static int parse_options(options *o, int argc, char **argv)
{
    static const struct option lo[] = {{"tcp", 1, 0, 't'},      {"unix", 1, 0, 'u'},
                                       {"mode", 1, 0, 'm'},     {"proto", 1, 0, 'm'},
                                       {"mix", 1, 0, 'x'},      {"token", 1, 0, 'k'},
                                       {"conns", 1, 0, 'c'},    {"depth", 1, 0, 'd'},
                                       {"duration", 1, 0, 's'}, {"count", 1, 0, 'n'},
                                       {"warmup", 1, 0, 'w'},   {"line", 1, 0, 'l'},
                                       {"idem", 0, 0, 'i'},     {"payload", 1, 0, 'p'},
                                       {"backlog", 1, 0, 'b'},  {"seed", 1, 0, 'e'},
                                       {"allow", 1, 0, 'a'},    {"json", 0, 0, 'j'},
                                       {"help", 0, 0, 'h'},     {0, 0, 0, 0}};
    *o = (options){
        .mode = MODE_HALLQ, .line = "A", .conns = 50, .depth = 1, .warmup = 1, .backlog = 100};
    bool have_duration = false, have_proto = false;
    double v;
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 't':
            o->tcp = optarg;
            break;
        case 'u':
            o->unix_path = optarg;
            break;
        case 'm':
            have_proto = true;
            if (!strcmp(optarg, "hallq"))
                o->mode = MODE_HALLQ;
            else if (!strcmp(optarg, "resp") || !strcmp(optarg, "redis"))
                o->mode = MODE_REDIS;
            else if (!strcmp(optarg, "beanstalk"))
                o->mode = MODE_BEANSTALK;
            else
                return usage_error("--proto is hallq, resp or beanstalk");
            break;
        case 'x':
            if (strcmp(optarg, "hall") != 0)
                return usage_error("--mix knows one mix: hall");
            o->mode = MODE_MIX;
            break;
        case 'k':
            if (strlen(optarg) > MAX_TOKEN)
                return usage_error("--token is at most %d bytes", MAX_TOKEN);
            o->token = optarg;
            break;
        case 'c':
            if (!parse_num(optarg, 1, MAX_CONNS, &v) || v != (int)v)
                return usage_error("--conns is 1..%d", MAX_CONNS);
            o->conns = (int)v;
            break;
        case 'd':
            if (!parse_num(optarg, 1, MAX_DEPTH, &v) || v != (int)v)
                return usage_error("--depth is 1..%d", MAX_DEPTH);
            o->depth = (int)v;
            break;
        case 's':
            if (!parse_num(optarg, 0.001, 86400, &v))
                return usage_error("--duration is 0.001..86400 s");
            o->duration = v;
            have_duration = true;
            break;
        case 'n':
            if (!parse_num(optarg, 1, 1e15, &v) || v != (double)(uint64_t)v)
                return usage_error("--count is a positive integer");
            o->count = (uint64_t)v;
            break;
        case 'w':
            if (!parse_num(optarg, 0, 3600, &v))
                return usage_error("--warmup is 0..3600 s");
            o->warmup = v;
            break;
        case 'l':
            o->cycle = !strcmp(optarg, "cycle");
            if (!o->cycle && (!*optarg || strlen(optarg) > MAX_LINE ||
                              strspn(optarg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                             "0123456789_-") != strlen(optarg)))
                return usage_error("--line is 1..%d letters or digits", MAX_LINE);
            o->line = optarg;
            break;
        case 'i':
            o->idem = true;
            break;
        case 'p':
            if (!parse_num(optarg, 1, MAX_PAYLOAD, &v) || v != (int)v)
                return usage_error("--payload is 1..%d", MAX_PAYLOAD);
            o->payload = (size_t)v;
            break;
        case 'b':
            if (!parse_num(optarg, 1, 1e6, &v) || v != (int)v)
                return usage_error("--backlog is 1..1000000");
            o->backlog = (int)v;
            break;
        case 'e':
            if (!parse_num(optarg, 0, 1e18, &v))
                return usage_error("--seed is a number");
            o->seed = (uint64_t)v;
            break;
        case 'a':
            for (char *tok = strtok(optarg, ","); tok; tok = strtok(NULL, ",")) {
                if (o->nallow == MAX_CODES)
                    return usage_error("too many --allow codes");
                o->allow[o->nallow++] = tok;
            }
            break;
        case 'j':
            o->json = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return -1;
    }
    if (o->mode == MODE_MIX) {
        if (have_proto)
            return usage_error("--mix speaks hallq; it takes no --proto");
        if (!o->tcp || !o->unix_path)
            return usage_error("--mix hall needs --tcp (kiosks, windows) and --unix "
                               "(departments)");
    } else if (!o->tcp == !o->unix_path) {
        usage(stderr);
        return usage_error("give one of --tcp HOST:PORT or --unix PATH");
    }
    if (have_duration && o->count)
        return usage_error("--duration and --count exclude each other");
    if (!have_duration)
        o->duration = 10;
    if (!o->token)
        o->token = o->tcp ? "kiosk-demo" : "admin-demo";
    return 0;
}

static int resolve_unix(const char *path, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_un *sa = (struct sockaddr_un *)ss;
    if (strlen(path) >= sizeof sa->sun_path)
        return usage_error("--unix path too long");
    sa->sun_family = AF_UNIX;
    strcpy(sa->sun_path, path);
    *len = sizeof *sa;
    return 0;
}

static int resolve_tcp(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof host)
        return usage_error("--tcp wants HOST:PORT");
    const char *h = addr;
    size_t hl = (size_t)(colon - h);
    if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') { /* [v6]:port */
        h++;
        hl -= 2;
    }
    snprintf(host, sizeof host, "%.*s", (int)hl, h);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0)
        return usage_error("%s: %s", addr, gai_strerror(rc));
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

/* Raises the open-file limit when the connections need more. */
static void raise_nofile(int conns)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)conns + 32;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static const proto *const protos[] = {
    [MODE_HALLQ] = &proto_hallq,
    [MODE_REDIS] = &proto_resp,
    [MODE_BEANSTALK] = &proto_beanstalk,
    [MODE_MIX] = &proto_mix,
};

/* Allocates every connection's ring and buffers. */
static int conns_init(bench *b)
{
    bool mix = b->opt.mode == MODE_MIX;
    b->nconns = b->opt.conns + (mix ? 11 : 0);
    b->conns = calloc((size_t)b->nconns, sizeof *b->conns);
    if (!b->conns)
        return -1;
    size_t rcap =
        b->opt.mode == MODE_REDIS || b->opt.mode == MODE_BEANSTALK ? RBUF_TEXT : RBUF_HALLQ;
    size_t wcap = (size_t)(b->opt.depth + 1) * (REQ_OVERHEAD + b->opt.payload);
    for (int i = 0; i < b->nconns; i++) {
        conn *c = &b->conns[i];
        c->fd = -1;
        c->idx = i;
        c->next_id = 1;
        c->depth = b->opt.depth;
        c->token = b->opt.token;
        c->addr = (const struct sockaddr *)(b->opt.tcp ? &b->tcp_addr : &b->unix_addr);
        c->addrlen = b->opt.tcp ? b->tcp_len : b->unix_len;
    }
    if (mix && mix_init(b) != 0)
        return -1;
    for (int i = 0; i < b->nconns; i++) {
        conn *c = &b->conns[i];
        c->rcap = rcap;
        c->wcap = wcap;
        c->q = calloc((size_t)c->depth, sizeof *c->q);
        c->rbuf = malloc(rcap);
        c->wbuf = malloc(wcap);
        if (!c->q || !c->rbuf || !c->wbuf)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    bench *b = calloc(1, sizeof *b);
    if (!b)
        return fprintf(stderr, "hallq-bench: out of memory\n"), 1;
    int rc = 1;
    if (parse_options(&b->opt, argc, argv) != 0) {
        free(b);
        return 2;
    }
    b->proto = protos[b->opt.mode];
    b->ep = -1;
    b->idem_tag = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
    if (!b->opt.payload)
        b->opt.payload = hallq_take_size(b);
    if (!msgpack_zone_init(&b->zone, 4096)) {
        fprintf(stderr, "hallq-bench: out of memory\n");
        free(b);
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(b->opt.conns + 11);
    if ((b->opt.tcp && resolve_tcp(b->opt.tcp, &b->tcp_addr, &b->tcp_len) != 0) ||
        (b->opt.unix_path && resolve_unix(b->opt.unix_path, &b->unix_addr, &b->unix_len) != 0))
        goto out;
    b->ep = epoll_create1(EPOLL_CLOEXEC);
    if (b->ep < 0 || conns_init(b) != 0) {
        fprintf(stderr, "hallq-bench: %s\n", b->ep < 0 ? strerror(errno) : "out of memory");
        goto out;
    }
    if (bench_loop(b) != 0)
        goto out;
    bench_report(b);
    if (b->unexpected)
        fprintf(stderr, "hallq-bench: FAILED: %" PRIu64 " unexpected error replies\n",
                b->unexpected);
    else if (!b->lat.n)
        fprintf(stderr, "hallq-bench: FAILED: no request was measured\n");
    else
        rc = 0;
out:
    if (b->failed && b->errors)
        fprintf(stderr, "hallq-bench: %" PRIu64 " error replies before the failure\n", b->errors);
    for (int i = 0; b->conns && i < b->nconns; i++) {
        conn *c = &b->conns[i];
        if (c->fd >= 0)
            close(c->fd);
        free(c->q);
        free(c->rbuf);
        free(c->wbuf);
    }
    free(b->conns);
    if (b->ep >= 0)
        close(b->ep);
    mix_free(b);
    msgpack_zone_destroy(&b->zone);
    free(b);
    return rc;
}
