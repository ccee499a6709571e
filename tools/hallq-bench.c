/* tools/hallq-bench.c: load generator for hallqd's durable ticket.take, and
 * for Redis and beanstalkd under the same client model so the three compare.
 *
 * One thread, one epoll set, non-blocking sockets. Each of N connections
 * opens (hallq: `hello`; beanstalk: `use` a tube; Redis: nothing), and once
 * every connection is open each keeps D requests in flight: hallq
 * `ticket.take {line}`, Redis `RPUSH hallq:LINE payload`, beanstalk `put`.
 * All three answer in request order on a connection, so a connection keeps a
 * ring of its outstanding requests and every reply must answer the oldest.
 * A reply out of order, a malformed reply, a missing result field or a
 * closed connection ends the run at once (exit 1). Error replies are counted
 * by code; any code not named by --allow fails the run at its end (exit 1).
 *
 * Latency is send -> reply on CLOCK_MONOTONIC in nanoseconds, kept in a
 * log-linear histogram (exact below 256 ns, then 128 steps per power of
 * two), so a reported percentile is within 0.4 % of the true sample. A
 * request is measured when it was sent after the warmup. At the end no new
 * request is sent and the run waits (at most DRAIN_NS) for every answer:
 * a request never answered is a failure, not a sample that went missing.
 *
 * The client must stay cheap and predictable, so that the server is what is
 * measured: no threads, no allocation on the request path (requests are
 * packed straight into each connection's write buffer, hallq replies are
 * unpacked with one reused zone), one clock read per send and per read. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <msgpack.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000ull
#define MAX_CONNS 20000
#define MAX_DEPTH 4096
#define MAX_PAYLOAD 16384
#define MAX_TOKEN 256
#define MAX_LINE 15
/* One hallq frame of the demo hall's max_frame (65,536) with its prefix. */
#define RBUF_HALLQ (65536 + 4)
/* Redis and beanstalk replies to our requests are one short line. */
#define RBUF_TEXT 4096
/* Bytes one request can take besides its payload (hello with a 256-byte
 * token, ticket.take with a 64-byte idem, a RESP or put header). */
#define REQ_OVERHEAD 512
#define SETUP_NS (10 * NS_PER_S)
#define DRAIN_NS (30 * NS_PER_S)
#define MAX_CODES 32
#define SHOW_ERRORS 5

/* Log-linear latency histogram. Values below 2*HIST_SUB are their own
 * bucket; above, each power of two [2^k, 2^(k+1)) is split into HIST_SUB
 * equal steps. A bucket is thus at most 1/HIST_SUB of its lower bound wide
 * and its midpoint is within 1/(2*HIST_SUB) of every value in it. To change
 * the precision change HIST_SUB_BITS; nothing else depends on it. */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (2 * HIST_SUB + (64 - HIST_SUB_BITS - 1) * HIST_SUB)

typedef struct hist {
    uint64_t n, sum, min, max;
    uint64_t b[HIST_BUCKETS];
} hist;

typedef enum { MODE_HALLQ, MODE_REDIS, MODE_BEANSTALK } bench_mode;
typedef enum { PHASE_SETUP, PHASE_RUN, PHASE_DRAIN, PHASE_DONE } bench_phase;
typedef enum { CONN_CONNECTING, CONN_OPENING, CONN_READY } conn_state;

typedef struct options {
    bench_mode mode;
    const char *tcp, *unix_path, *token, *line;
    bool cycle; /* --line cycle: A, B, C, D in turn */
    int conns, depth;
    double duration, warmup;
    uint64_t count; /* 0: run for --duration */
    size_t payload;
    bool idem, json;
    const char *allow[MAX_CODES];
    int nallow;
} options;

/* One request in flight. `line` points at options.line or a cycle_lines
 * entry, both living for the whole run. */
typedef struct pending {
    uint64_t id, sent_ns;
    const char *line;
    bool open;     /* the connection's opening request */
    bool measured; /* sent after the warmup */
} pending;

typedef struct conn {
    int fd, idx;
    conn_state state;
    uint64_t next_id, replies;
    pending *q; /* ring of options.depth slots, oldest at qhead */
    unsigned qhead, qlen;
    uint8_t *rbuf;
    size_t rlen, rcap;
    uint8_t *wbuf;
    size_t wlen, woff, wcap;
} conn;

/* One parsed reply; `code` and `text` only when !ok. */
typedef struct reply {
    bool ok;
    char code[32];
    char text[200];
} reply;

/* A bounded output area for one request; overflow means REQ_OVERHEAD is
 * wrong, which is a bug of this file. */
typedef struct out {
    uint8_t *p;
    size_t len, cap;
    bool overflow;
} out;

typedef struct bench bench;

/* One wire protocol: how to open a connection, how to ask for one ticket
 * (or its equivalent), how to read one reply. */
typedef struct proto {
    const char *name;
    /* Packs the request that opens a connection; false when there is none. */
    bool (*encode_open)(const bench *b, const conn *c, const pending *p, out *o);
    void (*encode_take)(const bench *b, const conn *c, const pending *p, out *o);
    /* Parses the reply to `p` at the start of buf[0..n): returns the bytes it
     * used, 0 when the reply is not complete yet, or -1 when the bytes break
     * the protocol (r->text says how). An error reply is r->ok false. */
    ssize_t (*parse)(bench *b, const pending *p, const uint8_t *buf, size_t n, reply *r);
} proto;

struct bench {
    options opt;
    const proto *proto;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int ep;
    conn *conns;
    int nready;
    bench_phase phase;
    uint64_t start_ns, measure_ns, end_ns, deadline_ns, last_ns;
    uint64_t sent_measured, outstanding;
    uint64_t idem_tag; /* makes --idem keys unique across runs on one data dir */
    hist lat;
    msgpack_zone zone;
    char codes[MAX_CODES][32];
    uint64_t code_counts[MAX_CODES];
    uint64_t errors, unexpected;
    bool failed;
};

static const char *const cycle_lines[] = {"A", "B", "C", "D"};
static volatile sig_atomic_t stop_requested;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* Reports the first fatal problem; the run stops at the next loop turn. */
static void bench_fail(bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bench_fail(bench *b, const char *fmt, ...)
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

/* ---- histogram ---- */

static size_t hist_index(uint64_t v)
{
    if (v < 2 * HIST_SUB)
        return (size_t)v;
    int k = 63 - __builtin_clzll(v); /* k > HIST_SUB_BITS */
    int shift = k - HIST_SUB_BITS;
    size_t sub = (size_t)(v >> shift) - HIST_SUB;
    return 2 * HIST_SUB + (size_t)(k - HIST_SUB_BITS - 1) * HIST_SUB + sub;
}

static void hist_bounds(size_t i, uint64_t *lo, uint64_t *hi)
{
    if (i < 2 * HIST_SUB) {
        *lo = *hi = i;
        return;
    }
    size_t j = i - 2 * HIST_SUB;
    int shift = (int)(j / HIST_SUB) + 1;
    *lo = (uint64_t)(HIST_SUB + j % HIST_SUB) << shift;
    *hi = *lo + ((uint64_t)1 << shift) - 1;
}

static void hist_add(hist *h, uint64_t v)
{
    h->b[hist_index(v)]++;
    if (!h->n || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->n++;
    h->sum += v;
}

/* The nearest-rank percentile p (0 < p <= 100), as the midpoint of its
 * bucket kept inside the exact min and max. */
static uint64_t hist_pct(const hist *h, double p)
{
    if (!h->n)
        return 0;
    double r = p / 100.0 * (double)h->n;
    uint64_t rank = (uint64_t)r;
    if ((double)rank < r)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank >= h->n)
        return h->max;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t lo, hi;
            hist_bounds(i, &lo, &hi);
            uint64_t mid = lo + (hi - lo) / 2;
            return mid < h->min ? h->min : mid > h->max ? h->max : mid;
        }
    }
    return h->max;
}

/* ---- request encoding helpers ---- */

static void out_put(out *o, const void *s, size_t n)
{
    if (o->overflow || n > o->cap - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void out_printf(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(out *o, const char *fmt, ...)
{
    if (o->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf((char *)o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len)
        o->overflow = true;
    else
        o->len += (size_t)n;
}

static int out_msgpack_write(void *data, const char *buf, size_t len)
{
    out_put(data, buf, len);
    return 0;
}

/* Exactly opt.payload bytes: a tag saying who sent it, padded with dots,
 * so Redis and beanstalkd store what a ticket record would take. */
static void out_payload(const bench *b, const conn *c, const pending *p, out *o)
{
    char tag[80];
    int n = snprintf(tag, sizeof tag, "take %s c%d r%" PRIu64 " ", p->line, c->idx, p->id);
    size_t k = (size_t)n < b->opt.payload ? (size_t)n : b->opt.payload;
    out_put(o, tag, k);
    if (o->overflow || b->opt.payload - k > o->cap - o->len) {
        o->overflow = true;
        return;
    }
    memset(o->p + o->len, '.', b->opt.payload - k);
    o->len += b->opt.payload - k;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* Reads a text reply's first line: its length without CRLF, 0 when the
 * line is not complete, -1 when it is too long or not ended by CRLF. */
static ssize_t text_line(const uint8_t *buf, size_t n, size_t max, reply *r)
{
    const uint8_t *nl = memchr(buf, '\n', n);
    if (!nl) {
        if (n >= max) {
            snprintf(r->text, sizeof r->text, "reply line longer than %zu bytes", max);
            return -1;
        }
        return 0;
    }
    size_t len = (size_t)(nl - buf);
    if (len == 0 || buf[len - 1] != '\r') {
        snprintf(r->text, sizeof r->text, "reply line not ended by CRLF");
        return -1;
    }
    return (ssize_t)(len - 1);
}

/* Copies the first word of s[0..n) as an error code, keeping only
 * characters that are safe in the report and in JSON. */
static void set_code(reply *r, const char *s, size_t n)
{
    size_t k = 0;
    for (; k < n && k + 1 < sizeof r->code && s[k] != ' '; k++) {
        char ch = s[k];
        bool safe = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
        r->code[k] = safe ? ch : '?';
    }
    if (!k)
        r->code[k++] = '?';
    r->code[k] = 0;
}

/* ---- hallq: length-prefixed MessagePack ---- */

static const msgpack_object *mp_get(const msgpack_object *m, const char *key)
{
    size_t kl = strlen(key);
    if (m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
            !memcmp(k->via.str.ptr, key, kl))
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

static bool mp_is_str(const msgpack_object *o)
{
    return o && o->type == MSGPACK_OBJECT_STR;
}

/* Packs a map into `o` behind a 4-byte length filled in once it is known. */
static void hallq_begin(out *o, msgpack_packer *pk, size_t *at)
{
    *at = o->len;
    out_put(o, "\0\0\0\0", 4);
    msgpack_packer_init(pk, o, out_msgpack_write);
}

static void hallq_end(out *o, size_t at)
{
    if (o->overflow)
        return;
    uint32_t n = (uint32_t)(o->len - at - 4);
    o->p[at] = (uint8_t)(n >> 24);
    o->p[at + 1] = (uint8_t)(n >> 16);
    o->p[at + 2] = (uint8_t)(n >> 8);
    o->p[at + 3] = (uint8_t)n;
}

static bool hallq_encode_open(const bench *b, const conn *c, const pending *p, out *o)
{
    (void)c;
    msgpack_packer pk;
    size_t at;
    hallq_begin(o, &pk, &at);
    msgpack_pack_map(&pk, 3);
    pack_str(&pk, "id");
    msgpack_pack_uint64(&pk, p->id);
    pack_str(&pk, "op");
    pack_str(&pk, "hello");
    pack_str(&pk, "args");
    msgpack_pack_map(&pk, 2);
    pack_str(&pk, "token");
    pack_str(&pk, b->opt.token);
    pack_str(&pk, "client");
    pack_str(&pk, "hallq-bench");
    hallq_end(o, at);
    return true;
}

static void hallq_encode_take(const bench *b, const conn *c, const pending *p, out *o)
{
    msgpack_packer pk;
    size_t at;
    hallq_begin(o, &pk, &at);
    msgpack_pack_map(&pk, 3);
    pack_str(&pk, "id");
    msgpack_pack_uint64(&pk, p->id);
    pack_str(&pk, "op");
    pack_str(&pk, "ticket.take");
    pack_str(&pk, "args");
    msgpack_pack_map(&pk, b->opt.idem ? 2 : 1);
    pack_str(&pk, "line");
    pack_str(&pk, p->line);
    if (b->opt.idem) {
        char idem[65];
        snprintf(idem, sizeof idem, "bench-%" PRIx64 "-%d-%" PRIu64, b->idem_tag, c->idx, p->id);
        pack_str(&pk, "idem");
        pack_str(&pk, idem);
    }
    hallq_end(o, at);
}

/* Checks the result of hello or ticket.take; false with r->text set when a
 * field the protocol promises is missing or wrong. */
static bool hallq_check_result(const pending *p, const msgpack_object *res, reply *r)
{
    if (!res || res->type != MSGPACK_OBJECT_MAP) {
        snprintf(r->text, sizeof r->text, "reply %" PRIu64 ": ok without a result map", p->id);
        return false;
    }
    if (p->open) {
        if (!mp_is_str(mp_get(res, "role"))) {
            snprintf(r->text, sizeof r->text, "hello answered without a role");
            return false;
        }
        return true;
    }
    const msgpack_object *num = mp_get(res, "number"), *tid = mp_get(res, "ticket_id"),
                         *line = mp_get(res, "line");
    size_t ll = strlen(p->line);
    if (!mp_is_str(num) || num->via.str.size <= ll || memcmp(num->via.str.ptr, p->line, ll)) {
        snprintf(r->text, sizeof r->text,
                 "ticket.take %" PRIu64 ": no number of line %s in the result", p->id, p->line);
        return false;
    }
    if (!tid || (tid->type != MSGPACK_OBJECT_STR && tid->type != MSGPACK_OBJECT_POSITIVE_INTEGER)) {
        snprintf(r->text, sizeof r->text, "ticket.take %" PRIu64 ": no ticket_id in the result",
                 p->id);
        return false;
    }
    if (line &&
        (!mp_is_str(line) || line->via.str.size != ll || memcmp(line->via.str.ptr, p->line, ll))) {
        snprintf(r->text, sizeof r->text, "ticket.take %" PRIu64 ": result for another line",
                 p->id);
        return false;
    }
    return true;
}

static ssize_t hallq_parse(bench *b, const pending *p, const uint8_t *buf, size_t n, reply *r)
{
    if (n < 4)
        return 0;
    uint32_t len = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
    if (len == 0 || len > RBUF_HALLQ - 4) {
        snprintf(r->text, sizeof r->text, "frame length %" PRIu32, len);
        return -1;
    }
    if (n - 4 < len)
        return 0;
    /* msgpack_unpack_next would allocate a zone per reply; one zone,
     * cleared each time, keeps the request path free of malloc. */
    msgpack_zone_clear(&b->zone);
    msgpack_object m;
    size_t off = 0;
    msgpack_unpack_return rc = msgpack_unpack((const char *)buf + 4, len, &off, &b->zone, &m);
    if (rc != MSGPACK_UNPACK_SUCCESS || off != len || m.type != MSGPACK_OBJECT_MAP) {
        snprintf(r->text, sizeof r->text, "frame is not one MessagePack map (unpack %d)", (int)rc);
        return -1;
    }
    const msgpack_object *id = mp_get(&m, "id"), *ok = mp_get(&m, "ok");
    const msgpack_object *err = mp_get(&m, "error");
    const msgpack_object *code = err ? mp_get(err, "code") : NULL;
    const msgpack_object *msg = err ? mp_get(err, "message") : NULL;
    if (mp_is_str(code))
        set_code(r, code->via.str.ptr, code->via.str.size);
    if (mp_is_str(msg))
        snprintf(r->text, sizeof r->text, "%.*s", (int)msg->via.str.size, msg->via.str.ptr);
    if (!id && mp_get(&m, "event")) {
        snprintf(r->text, sizeof r->text, "pushed event on a connection that did not subscribe");
        return -1;
    }
    if (!id || id->type != MSGPACK_OBJECT_POSITIVE_INTEGER || id->via.u64 != p->id) {
        char why[sizeof r->text];
        snprintf(why, sizeof why, "%s", r->text);
        snprintf(r->text, sizeof r->text, "reply id %" PRIu64 ", expected %" PRIu64 " (%s%s%s)",
                 id && id->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? id->via.u64 : 0, p->id,
                 code ? r->code : "no error", code ? ": " : "", why);
        return -1;
    }
    if (!ok || ok->type != MSGPACK_OBJECT_BOOLEAN) {
        snprintf(r->text, sizeof r->text, "reply %" PRIu64 " without ok", p->id);
        return -1;
    }
    if (!ok->via.boolean) {
        if (!mp_is_str(code)) {
            snprintf(r->text, sizeof r->text, "reply %" PRIu64 ": error without a code", p->id);
            return -1;
        }
        r->ok = false;
        return (ssize_t)(4 + len);
    }
    if (!hallq_check_result(p, mp_get(&m, "result"), r))
        return -1;
    r->ok = true;
    return (ssize_t)(4 + len);
}

/* ---- Redis: RESP ---- */

static void redis_encode_take(const bench *b, const conn *c, const pending *p, out *o)
{
    size_t kl = strlen("hallq:") + strlen(p->line);
    out_printf(o, "*3\r\n$5\r\nRPUSH\r\n$%zu\r\nhallq:%s\r\n$%zu\r\n", kl, p->line, b->opt.payload);
    out_payload(b, c, p, o);
    out_put(o, "\r\n", 2);
}

/* RPUSH answers `:<length of the list>`; an error is `-CODE message`. */
static ssize_t redis_parse(bench *b, const pending *p, const uint8_t *buf, size_t n, reply *r)
{
    (void)b;
    (void)p;
    ssize_t len = text_line(buf, n, RBUF_TEXT, r);
    if (len <= 0)
        return len;
    const char *s = (const char *)buf;
    if (s[0] == '-') {
        set_code(r, s + 1, (size_t)len - 1);
        snprintf(r->text, sizeof r->text, "%.*s", (int)len - 1, s + 1);
        r->ok = false;
        return len + 2;
    }
    bool digits = s[0] == ':' && len > 1;
    for (ssize_t i = 1; digits && i < len; i++)
        digits = s[i] >= '0' && s[i] <= '9';
    if (!digits || (len == 2 && s[1] == '0')) {
        snprintf(r->text, sizeof r->text, "RPUSH answered '%.*s'", (int)(len < 60 ? len : 60), s);
        return -1;
    }
    r->ok = true;
    return len + 2;
}

/* ---- beanstalk ---- */

static bool beanstalk_encode_open(const bench *b, const conn *c, const pending *p, out *o)
{
    (void)b;
    (void)c;
    out_printf(o, "use hallq-%s\r\n", p->line);
    return true;
}

static void beanstalk_encode_take(const bench *b, const conn *c, const pending *p, out *o)
{
    out_printf(o, "put 0 0 60 %zu\r\n", b->opt.payload);
    out_payload(b, c, p, o);
    out_put(o, "\r\n", 2);
}

/* `use` answers `USING <tube>`, `put` answers `INSERTED <id>`; any other
 * line (BURIED, JOB_TOO_BIG, DRAINING, OUT_OF_MEMORY...) is an error whose
 * code is its first word. */
static ssize_t beanstalk_parse(bench *b, const pending *p, const uint8_t *buf, size_t n, reply *r)
{
    (void)b;
    ssize_t len = text_line(buf, n, RBUF_TEXT, r);
    if (len <= 0)
        return len;
    const char *s = (const char *)buf;
    char want[48];
    if (p->open)
        snprintf(want, sizeof want, "USING hallq-%s", p->line);
    else
        snprintf(want, sizeof want, "INSERTED ");
    size_t wl = strlen(want);
    bool ok = p->open ? (size_t)len == wl && !memcmp(s, want, wl)
                      : (size_t)len > wl && !memcmp(s, want, wl);
    for (ssize_t i = (ssize_t)wl; ok && !p->open && i < len; i++)
        ok = s[i] >= '0' && s[i] <= '9';
    if (!ok) {
        set_code(r, s, (size_t)len);
        snprintf(r->text, sizeof r->text, "%.*s", (int)len, s);
    }
    r->ok = ok;
    return len + 2;
}

static const proto protos[] = {
    [MODE_HALLQ] = {"hallq", hallq_encode_open, hallq_encode_take, hallq_parse},
    [MODE_REDIS] = {"redis", NULL, redis_encode_take, redis_parse},
    [MODE_BEANSTALK] = {"beanstalk", beanstalk_encode_open, beanstalk_encode_take, beanstalk_parse},
};

/* ---- errors by code ---- */

static bool code_allowed(const bench *b, const char *code)
{
    for (int i = 0; i < b->opt.nallow; i++)
        if (!strcmp(b->opt.allow[i], code))
            return true;
    return false;
}

static void count_error(bench *b, const conn *c, const pending *p, const reply *r)
{
    int i = 0;
    while (i < MAX_CODES && b->codes[i][0] && strcmp(b->codes[i], r->code))
        i++;
    if (i == MAX_CODES)
        i = MAX_CODES - 1; /* the last slot also takes every further code */
    else if (!b->codes[i][0])
        snprintf(b->codes[i], sizeof b->codes[i], "%s", r->code);
    b->code_counts[i]++;
    b->errors++;
    bool allowed = code_allowed(b, r->code);
    if (!allowed)
        b->unexpected++;
    if (b->errors <= SHOW_ERRORS)
        fprintf(stderr, "hallq-bench: conn %d request %" PRIu64 ": error %s: %s%s\n", c->idx, p->id,
                r->code, r->text, allowed ? " (allowed)" : "");
}

/* ---- connections ---- */

static int conn_start(bench *b, conn *c)
{
    bool local = b->addr.ss_family == AF_UNIX;
    c->fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (local ? 0 : SOCK_NONBLOCK), 0);
    if (c->fd < 0)
        return bench_fail(b, "socket: %s", strerror(errno)), -1;
    if (local) {
        /* A non-blocking Unix connect fails with EAGAIN while the listen
         * backlog is full instead of completing later, so connect blocking,
         * bounded by the setup time (connect honours SO_SNDTIMEO there). */
        struct timeval tv = {.tv_sec = SETUP_NS / NS_PER_S};
        if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
            connect(c->fd, (const struct sockaddr *)&b->addr, b->addrlen) != 0)
            return bench_fail(b, "connect %s: %s", b->opt.unix_path, strerror(errno)), -1;
        tv.tv_sec = 0;
        if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
            fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) != 0)
            return bench_fail(b, "conn %d: %s", c->idx, strerror(errno)), -1;
    } else {
        int one = 1;
        if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
            return bench_fail(b, "TCP_NODELAY: %s", strerror(errno)), -1;
        if (connect(c->fd, (const struct sockaddr *)&b->addr, b->addrlen) != 0 &&
            errno != EINPROGRESS)
            return bench_fail(b, "connect %s: %s", b->opt.tcp, strerror(errno)), -1;
    }
    /* Edge-triggered: every event is handled by reading and writing until
     * EAGAIN, so no readiness is ever left unconsumed. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(b->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        return bench_fail(b, "epoll_ctl: %s", strerror(errno)), -1;
    c->state = CONN_CONNECTING;
    return 0;
}

/* Appends one request to the ring and the write buffer. */
static void conn_queue(bench *b, conn *c, bool open, uint64_t t)
{
    if (c->wcap - c->wlen < REQ_OVERHEAD + b->opt.payload && c->woff) {
        memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
        c->wlen -= c->woff;
        c->woff = 0;
    }
    pending *p = &c->q[(c->qhead + c->qlen) % (unsigned)b->opt.depth];
    p->id = c->next_id++;
    p->sent_ns = t;
    p->open = open;
    p->measured = !open && b->phase == PHASE_RUN && t >= b->measure_ns;
    if (b->opt.cycle)
        p->line = open ? cycle_lines[c->idx % 4] : cycle_lines[p->id % 4];
    else
        p->line = b->opt.line;
    out o = {.p = c->wbuf + c->wlen, .cap = c->wcap - c->wlen};
    if (open)
        b->proto->encode_open(b, c, p, &o);
    else
        b->proto->encode_take(b, c, p, &o);
    if (o.overflow) {
        bench_fail(b, "conn %d: request larger than its buffer (a bug)", c->idx);
        return;
    }
    c->wlen += o.len;
    c->qlen++;
    b->outstanding++;
    if (p->measured)
        b->sent_measured++;
}

static void conn_flush(bench *b, conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n > 0) {
            c->woff += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else {
            bench_fail(b, "conn %d: send: %s", c->idx, strerror(errno));
            return;
        }
    }
    c->woff = c->wlen = 0;
}

/* Keeps the pipeline full while the run sends. */
static void conn_fill(bench *b, conn *c)
{
    while (!b->failed && b->phase == PHASE_RUN && c->state == CONN_READY &&
           c->qlen < (unsigned)b->opt.depth) {
        uint64_t t = now_ns();
        if (t >= b->end_ns ||
            (b->opt.count && t >= b->measure_ns && b->sent_measured >= b->opt.count))
            return;
        conn_queue(b, c, false, t);
    }
}

/* Takes one reply off the ring. */
static void conn_complete(bench *b, conn *c, const reply *r, uint64_t t)
{
    pending *p = &c->q[c->qhead];
    c->qhead = (c->qhead + 1) % (unsigned)b->opt.depth;
    c->qlen--;
    c->replies++;
    b->outstanding--;
    if (!r->ok) {
        if (p->open) {
            bench_fail(b, "conn %d: opening request refused: %s: %s", c->idx, r->code, r->text);
            return;
        }
        count_error(b, c, p, r);
        return;
    }
    if (p->open) {
        c->state = CONN_READY;
        b->nready++;
        return;
    }
    if (p->measured) {
        hist_add(&b->lat, t - p->sent_ns);
        b->last_ns = t;
    }
}

static void conn_read(bench *b, conn *c)
{
    while (!b->failed) {
        if (c->rlen == c->rcap) {
            bench_fail(b, "conn %d: reply larger than %zu bytes", c->idx, c->rcap);
            return;
        }
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0) {
            bench_fail(b, "conn %d: recv: %s", c->idx, strerror(errno));
            return;
        }
        if (n == 0) {
            bench_fail(b, "conn %d: the server closed the connection after %" PRIu64 " replies",
                       c->idx, c->replies);
            return;
        }
        c->rlen += (size_t)n;
        uint64_t t = now_ns();
        size_t off = 0;
        while (off < c->rlen && !b->failed) {
            if (!c->qlen) {
                bench_fail(b, "conn %d: %zu bytes arrived with no request in flight", c->idx,
                           c->rlen - off);
                return;
            }
            reply r;
            r.ok = false;
            r.code[0] = r.text[0] = 0;
            ssize_t used = b->proto->parse(b, &c->q[c->qhead], c->rbuf + off, c->rlen - off, &r);
            if (used == 0)
                break;
            if (used < 0) {
                bench_fail(b, "conn %d: %s", c->idx, r.text);
                return;
            }
            off += (size_t)used;
            conn_complete(b, c, &r, t);
        }
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
}

static void conn_event(bench *b, conn *c, uint32_t events)
{
    if (c->state == CONN_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err) {
            bench_fail(b, "conn %d: connect: %s", c->idx, strerror(err));
            return;
        }
        if (!(events & (EPOLLOUT | EPOLLIN | EPOLLERR | EPOLLHUP)))
            return;
        c->state = CONN_OPENING;
        if (b->proto->encode_open) {
            conn_queue(b, c, true, now_ns());
        } else {
            c->state = CONN_READY;
            b->nready++;
        }
    }
    conn_read(b, c);
    conn_fill(b, c);
    if (!b->failed)
        conn_flush(b, c);
}

/* ---- the run ---- */

static void bench_start_run(bench *b)
{
    b->phase = PHASE_RUN;
    b->start_ns = now_ns();
    b->measure_ns = b->start_ns + (uint64_t)(b->opt.warmup * 1e9);
    b->end_ns = b->opt.count ? UINT64_MAX : b->measure_ns + (uint64_t)(b->opt.duration * 1e9);
    b->last_ns = b->measure_ns;
    for (int i = 0; i < b->opt.conns && !b->failed; i++) {
        conn_fill(b, &b->conns[i]);
        if (!b->failed)
            conn_flush(b, &b->conns[i]);
    }
}

static int bench_loop(bench *b)
{
    struct epoll_event evs[512];
    b->deadline_ns = now_ns() + SETUP_NS;
    for (int i = 0; i < b->opt.conns && !b->failed; i++)
        conn_start(b, &b->conns[i]);
    while (!b->failed) {
        uint64_t t = now_ns();
        if (b->phase == PHASE_SETUP && b->nready == b->opt.conns)
            bench_start_run(b);
        if (b->phase == PHASE_SETUP && (t >= b->deadline_ns || stop_requested)) {
            bench_fail(b, "%d of %d connections ready after %s", b->nready, b->opt.conns,
                       stop_requested ? "a signal" : "10 s");
            break;
        }
        if (b->phase == PHASE_RUN && (stop_requested || t >= b->end_ns ||
                                      (b->opt.count && b->sent_measured >= b->opt.count))) {
            b->phase = PHASE_DRAIN;
            b->deadline_ns = t + DRAIN_NS;
        }
        if (b->phase == PHASE_DRAIN && !b->outstanding) {
            b->phase = PHASE_DONE;
            break;
        }
        if (b->phase == PHASE_DRAIN && t >= b->deadline_ns) {
            bench_fail(b, "%" PRIu64 " requests unanswered 30 s after the end", b->outstanding);
            break;
        }
        uint64_t next = b->phase == PHASE_RUN ? b->end_ns : b->deadline_ns;
        uint64_t wait_ms = next > t ? (next - t + 999999) / 1000000 : 0;
        int n = epoll_wait(b->ep, evs, 512, wait_ms > 100 ? 100 : (int)wait_ms);
        if (n < 0 && errno != EINTR) {
            bench_fail(b, "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n && !b->failed; i++)
            conn_event(b, evs[i].data.ptr, evs[i].events);
    }
    return b->failed ? -1 : 0;
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
    const char *target = b->opt.unix_path ? b->opt.unix_path : b->opt.tcp;
    const char *line = b->opt.cycle ? "cycle" : b->opt.line;
    if (b->opt.json) {
        printf("{\"mode\": \"%s\", \"conns\": %d, \"depth\": %d, \"line\": \"%s\", "
               "\"ops\": %" PRIu64 ", \"elapsed_s\": %.3f, \"ops_per_s\": %.1f, "
               "\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, "
               "\"min_ms\": %.3f, \"mean_ms\": %.3f, \"errors\": %" PRIu64
               ", \"errors_by_code\": {",
               b->proto->name, b->opt.conns, b->opt.depth, line, h->n, elapsed, rate,
               ms(hist_pct(h, 50)), ms(hist_pct(h, 90)), ms(hist_pct(h, 99)), ms(h->max),
               ms(h->min), mean, b->errors);
        for (int i = 0; i < MAX_CODES && b->codes[i][0]; i++)
            printf("%s\"%s\": %" PRIu64, i ? ", " : "", b->codes[i], b->code_counts[i]);
        printf("}}\n");
        return;
    }
    printf("hallq-bench: %s at %s, %d conns, depth %d, line %s\n", b->proto->name, target,
           b->opt.conns, b->opt.depth, line);
    printf("  ops      %" PRIu64 " in %.3f s = %.0f ops/s (after %.1f s warmup)\n", h->n, elapsed,
           rate, b->opt.warmup);
    printf("  latency  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  mean %.3f ms\n", ms(hist_pct(h, 50)),
           ms(hist_pct(h, 90)), ms(hist_pct(h, 99)), ms(h->max), mean);
    printf("  errors   %" PRIu64, b->errors);
    for (int i = 0; i < MAX_CODES && b->codes[i][0]; i++)
        printf("%s%s %" PRIu64, i ? ", " : " (", b->codes[i], b->code_counts[i]);
    printf("%s\n", b->codes[0][0] ? ")" : "");
}

/* ---- options ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hallq-bench (--tcp HOST:PORT | --unix PATH) [--mode hallq|redis|beanstalk]\n"
            "         [--token T] [--conns N] [--depth D] [--duration S | --count N]\n"
            "         [--warmup S] [--line L|cycle] [--idem] [--payload BYTES]\n"
            "         [--allow CODE[,CODE...]] [--json]\n"
            "  --mode      hallq: ticket.take (default); redis: RPUSH hallq:LINE payload;\n"
            "              beanstalk: put into tube hallq-LINE\n"
            "  --token     hallq hello token (default kiosk-demo on TCP, admin-demo on Unix)\n"
            "  --conns     connections (default 50); --depth requests in flight each (1)\n"
            "  --duration  seconds measured (default 10); --count: measured requests instead\n"
            "  --warmup    seconds not measured, after every connection is open (default 1)\n"
            "  --line      line to take tickets from (default A); cycle: A, B, C, D in turn\n"
            "  --idem      a unique idem with each ticket.take\n"
            "  --payload   bytes per Redis or beanstalk job (default 40)\n"
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

static int parse_options(options *o, int argc, char **argv)
{
    static const struct option lo[] = {{"tcp", 1, 0, 't'},      {"unix", 1, 0, 'u'},
                                       {"mode", 1, 0, 'm'},     {"token", 1, 0, 'k'},
                                       {"conns", 1, 0, 'c'},    {"depth", 1, 0, 'd'},
                                       {"duration", 1, 0, 's'}, {"count", 1, 0, 'n'},
                                       {"warmup", 1, 0, 'w'},   {"line", 1, 0, 'l'},
                                       {"idem", 0, 0, 'i'},     {"payload", 1, 0, 'p'},
                                       {"allow", 1, 0, 'a'},    {"json", 0, 0, 'j'},
                                       {"help", 0, 0, 'h'},     {0, 0, 0, 0}};
    *o = (options){
        .mode = MODE_HALLQ, .line = "A", .conns = 50, .depth = 1, .warmup = 1, .payload = 40};
    bool have_duration = false;
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
            if (!strcmp(optarg, "hallq"))
                o->mode = MODE_HALLQ;
            else if (!strcmp(optarg, "redis"))
                o->mode = MODE_REDIS;
            else if (!strcmp(optarg, "beanstalk"))
                o->mode = MODE_BEANSTALK;
            else
                return fprintf(stderr, "hallq-bench: --mode is hallq, redis or beanstalk\n"), -1;
            break;
        case 'k':
            if (strlen(optarg) > MAX_TOKEN)
                return fprintf(stderr, "hallq-bench: --token is at most %d bytes\n", MAX_TOKEN), -1;
            o->token = optarg;
            break;
        case 'c':
            if (!parse_num(optarg, 1, MAX_CONNS, &v) || v != (int)v)
                return fprintf(stderr, "hallq-bench: --conns is 1..%d\n", MAX_CONNS), -1;
            o->conns = (int)v;
            break;
        case 'd':
            if (!parse_num(optarg, 1, MAX_DEPTH, &v) || v != (int)v)
                return fprintf(stderr, "hallq-bench: --depth is 1..%d\n", MAX_DEPTH), -1;
            o->depth = (int)v;
            break;
        case 's':
            if (!parse_num(optarg, 0.001, 86400, &v))
                return fprintf(stderr, "hallq-bench: --duration is 0.001..86400 s\n"), -1;
            o->duration = v;
            have_duration = true;
            break;
        case 'n':
            if (!parse_num(optarg, 1, 1e15, &v) || v != (double)(uint64_t)v)
                return fprintf(stderr, "hallq-bench: --count is a positive integer\n"), -1;
            o->count = (uint64_t)v;
            break;
        case 'w':
            if (!parse_num(optarg, 0, 3600, &v))
                return fprintf(stderr, "hallq-bench: --warmup is 0..3600 s\n"), -1;
            o->warmup = v;
            break;
        case 'l':
            o->cycle = !strcmp(optarg, "cycle");
            if (!o->cycle && (!*optarg || strlen(optarg) > MAX_LINE ||
                              strspn(optarg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                             "0123456789_-") != strlen(optarg)))
                return fprintf(stderr, "hallq-bench: --line is 1..%d letters or digits\n",
                               MAX_LINE),
                       -1;
            o->line = optarg;
            break;
        case 'i':
            o->idem = true;
            break;
        case 'p':
            if (!parse_num(optarg, 1, MAX_PAYLOAD, &v) || v != (int)v)
                return fprintf(stderr, "hallq-bench: --payload is 1..%d\n", MAX_PAYLOAD), -1;
            o->payload = (size_t)v;
            break;
        case 'a':
            for (char *tok = strtok(optarg, ","); tok; tok = strtok(NULL, ",")) {
                if (o->nallow == MAX_CODES)
                    return fprintf(stderr, "hallq-bench: too many --allow codes\n"), -1;
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
    if (optind != argc || !o->tcp == !o->unix_path) {
        fprintf(stderr, "hallq-bench: give one of --tcp HOST:PORT or --unix PATH\n");
        usage(stderr);
        return -1;
    }
    if (have_duration && o->count) {
        fprintf(stderr, "hallq-bench: --duration and --count exclude each other\n");
        return -1;
    }
    if (!have_duration)
        o->duration = 10;
    if (!o->token)
        o->token = o->unix_path ? "admin-demo" : "kiosk-demo";
    return 0;
}

static int resolve(bench *b)
{
    if (b->opt.unix_path) {
        struct sockaddr_un *sa = (struct sockaddr_un *)&b->addr;
        if (strlen(b->opt.unix_path) >= sizeof sa->sun_path)
            return fprintf(stderr, "hallq-bench: --unix path too long\n"), -1;
        sa->sun_family = AF_UNIX;
        strcpy(sa->sun_path, b->opt.unix_path);
        b->addrlen = sizeof *sa;
        return 0;
    }
    char host[256];
    const char *colon = strrchr(b->opt.tcp, ':');
    if (!colon || colon == b->opt.tcp || (size_t)(colon - b->opt.tcp) >= sizeof host)
        return fprintf(stderr, "hallq-bench: --tcp wants HOST:PORT\n"), -1;
    const char *h = b->opt.tcp;
    size_t hl = (size_t)(colon - h);
    if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') { /* [v6]:port */
        h++;
        hl -= 2;
    }
    snprintf(host, sizeof host, "%.*s", (int)hl, h);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0)
        return fprintf(stderr, "hallq-bench: %s: %s\n", b->opt.tcp, gai_strerror(rc)), -1;
    memcpy(&b->addr, ai->ai_addr, ai->ai_addrlen);
    b->addrlen = ai->ai_addrlen;
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
    b->proto = &protos[b->opt.mode];
    b->ep = -1;
    b->idem_tag = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
    if (!msgpack_zone_init(&b->zone, 4096)) {
        fprintf(stderr, "hallq-bench: out of memory\n");
        free(b);
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(b->opt.conns);
    if (resolve(b) != 0)
        goto out;
    b->ep = epoll_create1(EPOLL_CLOEXEC);
    b->conns = calloc((size_t)b->opt.conns, sizeof *b->conns);
    if (b->ep < 0 || !b->conns) {
        fprintf(stderr, "hallq-bench: %s\n", strerror(errno));
        goto out;
    }
    size_t rcap = b->opt.mode == MODE_HALLQ ? RBUF_HALLQ : RBUF_TEXT;
    size_t wcap = (size_t)(b->opt.depth + 1) * (REQ_OVERHEAD + b->opt.payload);
    for (int i = 0; i < b->opt.conns; i++)
        b->conns[i].fd = -1;
    for (int i = 0; i < b->opt.conns; i++) {
        conn *c = &b->conns[i];
        c->idx = i;
        c->next_id = 1;
        c->rcap = rcap;
        c->wcap = wcap;
        c->q = calloc((size_t)b->opt.depth, sizeof *c->q);
        c->rbuf = malloc(rcap);
        c->wbuf = malloc(wcap);
        if (!c->q || !c->rbuf || !c->wbuf) {
            fprintf(stderr, "hallq-bench: out of memory\n");
            goto out;
        }
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
    for (int i = 0; b->conns && i < b->opt.conns; i++) {
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
    msgpack_zone_destroy(&b->zone);
    free(b);
    return rc;
}
