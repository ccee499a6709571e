/* tools/bench/bench.h: hallq-bench's shared types (one binary, several files).
 *
 * hist.c     the latency histogram
 * wire.c     bounded output areas, text-line and MessagePack helpers
 * hallq.c    hallq's ticket.take (length-prefixed MessagePack)
 * text.c     Redis RESP (RPUSH) and beanstalk (put)
 * mix.c      --mix hall: kiosks, windows and departments of the demo hall
 * run.c      connections and the epoll loop
 * main.c     options, report, main
 *
 * The client must stay cheap and predictable, so that the server is what
 * is measured: one thread, no allocation on the request path (requests are
 * packed straight into each connection's write buffer, hallq replies are
 * unpacked with one reused zone), one clock read per send and per read. */
#ifndef HALLQ_BENCH_H
#define HALLQ_BENCH_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

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
 * token, ticket.take with a 64-byte idem, window.intake, a RESP or put
 * header). */
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

void hist_add(hist *h, uint64_t v);
/* The nearest-rank percentile p (0 < p <= 100), as the midpoint of its
 * bucket kept inside the exact min and max. */
uint64_t hist_pct(const hist *h, double p);

typedef enum { MODE_HALLQ, MODE_REDIS, MODE_BEANSTALK, MODE_MIX } bench_mode;
typedef enum { PHASE_SETUP, PHASE_RUN, PHASE_DRAIN, PHASE_DONE } bench_phase;
typedef enum { CONN_CONNECTING, CONN_OPENING, CONN_READY } conn_state;

typedef struct options {
    bench_mode mode;
    const char *tcp, *unix_path, *token, *line;
    bool cycle; /* --line cycle: A, B, C, D in turn */
    int conns, depth;
    double duration, warmup;
    uint64_t count; /* 0: run for --duration */
    size_t payload; /* 0: the size of a hallq ticket.take request */
    bool idem, json;
    int backlog; /* --mix: tickets waiting per line before kiosks hold back */
    uint64_t seed;
    const char *allow[MAX_CODES];
    int nallow;
} options;

/* The ops of --mix hall (the pure modes use MIX_TAKE for every request). */
typedef enum {
    MIX_TAKE,
    MIX_PICKUP, /* ticket.take at line F with a case_no */
    MIX_STATE,
    MIX_CALL,
    MIX_INTAKE,
    MIX_DONE,
    MIX_DELIVER,
    MIX_CLAIM,
    MIX_DECIDE,
    MIX__COUNT
} mix_op;

#define MIX_NO_MAX 32 /* case numbers and ticket ids */

/* One request in flight. `line` points at options.line or a static table,
 * both living for the whole run. */
typedef struct pending {
    uint64_t id, sent_ns;
    const char *line;
    bool open;            /* the connection's opening request */
    bool measured;        /* sent after the warmup */
    uint8_t op;           /* mix_op */
    char arg[MIX_NO_MAX]; /* --mix: the case a pickup or a decide is for */
} pending;

/* --mix: what a connection plays. */
typedef enum { ROLE_KIOSK, ROLE_WINDOW, ROLE_DEPT } mix_role;

typedef struct mix_conn {
    mix_role role;
    int who;          /* index into the window or department table */
    int step;         /* the window's or department's next step (mix.c) */
    int intakes;      /* applications left for the current ticket */
    uint64_t wake_ns; /* idle (nothing to call or claim) until then */
    uint64_t idle_ns; /* the current wait: doubles while nothing comes */
    char line[4];     /* the current ticket's line */
    char ticket[MIX_NO_MAX];
    char case_no[MIX_NO_MAX]; /* the case to decide or deliver */
} mix_conn;

typedef struct conn {
    int fd, idx;
    conn_state state;
    uint64_t next_id, replies;
    const struct sockaddr *addr; /* where it connects (b->tcp_addr or unix) */
    socklen_t addrlen;
    const char *token; /* hallq hello */
    int depth;         /* requests it keeps in flight */
    pending *q;        /* ring of depth slots, oldest at qhead */
    unsigned qhead, qlen;
    uint8_t *rbuf;
    size_t rlen, rcap;
    uint8_t *wbuf;
    size_t wlen, woff, wcap;
    mix_conn mix;
} conn;

/* One parsed reply; `code` and `text` only when !ok. */
typedef struct reply {
    bool ok;
    char code[32];
    char text[200];
} reply;

/* A bounded output area for one request; overflow means REQ_OVERHEAD is
 * wrong, which is a bug of this program. */
typedef struct out {
    uint8_t *p;
    size_t len, cap;
    bool overflow;
} out;

typedef struct bench bench;

/* One wire protocol, or the mix: how to open a connection, what to ask
 * next, how to read one reply. */
typedef struct proto {
    const char *name;
    /* Packs the request that opens a connection; false when there is none. */
    bool (*encode_open)(const bench *b, const conn *c, const pending *p, out *o);
    /* Fills p (line, op, arg) and packs the next request; false when the
     * connection has nothing to send now (the mix's idle window). */
    bool (*encode_next)(bench *b, conn *c, pending *p, out *o);
    /* Parses the reply to `p` at the start of buf[0..n): returns the bytes it
     * used, 0 when the reply is not complete yet, or -1 when the bytes break
     * the protocol (r->text says how). An error reply is r->ok false. */
    ssize_t (*parse)(bench *b, conn *c, const pending *p, const uint8_t *buf, size_t n, reply *r);
} proto;

extern const proto proto_hallq, proto_resp, proto_beanstalk, proto_mix;

/* --mix's shared state: the hall as the bench sees it (mix.c). */
typedef struct mix_state mix_state;

struct bench {
    options opt;
    const proto *proto;
    struct sockaddr_storage tcp_addr, unix_addr;
    socklen_t tcp_len, unix_len;
    int ep;
    conn *conns;
    int nconns, nready;
    bench_phase phase;
    uint64_t start_ns, measure_ns, end_ns, deadline_ns, last_ns;
    uint64_t sent_measured, outstanding;
    uint64_t idem_tag; /* makes --idem keys unique across runs on one data dir */
    hist lat;
    hist op_lat[MIX__COUNT]; /* --mix: by op */
    msgpack_zone zone;
    char codes[MAX_CODES][32];
    uint64_t code_counts[MAX_CODES];
    uint64_t errors, unexpected;
    mix_state *mix;
    bool failed;
};

uint64_t now_ns(void);
/* Reports the first fatal problem; the run stops at the next loop turn. */
void bench_fail(bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- wire.c ---- */
void out_put(out *o, const void *s, size_t n);
void out_printf(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Exactly opt.payload bytes: a tag saying who sent it, padded with dots. */
void out_payload(const bench *b, const conn *c, const pending *p, out *o);
void pack_str(msgpack_packer *pk, const char *s);
/* A text reply's first line: its length without CRLF, 0 when the line is
 * not complete, -1 when it is too long or not ended by CRLF. */
ssize_t text_line(const uint8_t *buf, size_t n, size_t max, reply *r);
/* Copies the first word of s[0..n) as an error code, keeping only
 * characters that are safe in the report and in JSON. */
void set_code(reply *r, const char *s, size_t n);
const msgpack_object *mp_get(const msgpack_object *m, const char *key);
bool mp_is_str(const msgpack_object *o);
bool mp_str_eq(const msgpack_object *o, const char *s);
/* Copies a string field into dst (NUL-terminated); false when it is not a
 * string or does not fit. */
bool mp_copy_str(const msgpack_object *o, char *dst, size_t cap);
/* Packs a map into `o` behind a 4-byte length filled in once it is known. */
void hallq_begin(out *o, msgpack_packer *pk, size_t *at);
void hallq_end(out *o, size_t at);
/* Packs {id, op, args: map of nargs}: the caller packs the nargs pairs. */
void hallq_head(msgpack_packer *pk, uint64_t id, const char *op, uint32_t nargs);

/* ---- hallq.c ---- */
bool hallq_encode_hello(const bench *b, const conn *c, const pending *p, out *o);
/* Checks the envelope of a hallq reply to p; on success *result is its
 * result map (ok) or NULL (an error reply, r->code set). */
ssize_t hallq_parse_frame(bench *b, const pending *p, const uint8_t *buf, size_t n, reply *r,
                          const msgpack_object **result);
/* The size in bytes of the ticket.take frame hallq-bench sends. */
size_t hallq_take_size(const bench *b);

/* ---- mix.c ---- */
/* Lays out the connections of --mix hall: opt.conns kiosks, then one
 * connection per window and per department. Returns the connection count
 * or -1. */
int mix_init(bench *b);
void mix_free(bench *b);
const char *mix_op_name(int op);
/* Mix-wide counters for the report. */
void mix_report_json(const bench *b, FILE *f);
void mix_report_text(const bench *b, FILE *f);

/* ---- run.c ---- */
int bench_loop(bench *b);

#endif
