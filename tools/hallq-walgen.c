/* tools/hallq-walgen.c: writes a realistic WAL of N records for replay and
 * recovery benchmarks (bench/replay.sh).
 *
 * The records are real ones: a scripted busy hall runs through the hall
 * library (hall_exec, in LMDB transactions of a scratch state) and each
 * record goes through the WAL writer (sync off), exactly as hallqd logs
 * them, so `hallq wal replay` and hallqd's recovery replay them and check
 * every result. Day after working day, in steps of 3 s of hall time from
 * 09:00 to 17:00 (Asia/Shanghai, the demo hall): kiosks take tickets on A,
 * B, C, D (45:30:12:8) and pickups at F for decided cases, the windows open
 * each morning, call, record intakes (instant, accept, notify, refuse) and
 * end visits, W05 delivers, departments claim and decide; the time-driven
 * records (day close at 17:00, deadline marks, lease expiry) come from
 * hall_due as in the daemon. Applicants' ids are written as the daemon
 * writes them: a (made-up) keyed hash and a masked form.
 *
 * Output: DIR/wal/ only (DIR must not hold a WAL yet); the scratch state is
 * removed at the end. So `hallqd --data DIR` starts on an empty state and
 * its recovery replays every record. Deterministic: the same N, --seed
 * and config write the same records (the hall time starts on Monday
 * 2026-11-23, 09:00). */
#include "daemon/hall/calendar.h"
#include "daemon/hall/hall.h"
#include "wal/wal.h"

#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STEP_MS 3000
#define HOUR_MS 3600000ll
#define DAY_MS (24 * HOUR_MS)
#define TZ_MS (8 * HOUR_MS) /* the demo hall's Asia/Shanghai, no DST */
#define STEPS_PER_TXN 64
#define BACKLOG 30 /* tickets waiting per line before arrivals hold back */
#define RING 4096
#define NO_MAX 32

/* 2026-11-23, a Monday, 09:00 in Shanghai. */
#define FIRST_DAY_MS 1795395600000ll

typedef struct gen gen;

typedef struct window_def {
    const char *id, *lines;
} window_def;

static const window_def windows[] = {{"W01", "AB"}, {"W02", "AB"}, {"W03", "BA"},
                                     {"W04", "CD"}, {"W05", "F"},  {"W06", "ABC"}};
enum { N_WINDOWS = 6, N_DEPTS = 5 };
static const char *const depts[N_DEPTS] = {"mkt", "hrss", "pol", "res", "hsg"};

typedef struct service_def {
    const char *code;
    bool instant;
    const char *materials[6];
} service_def;

static const service_def services[] = {
    {"S01", false, {"M01", "M02", "M03"}}, {"S02", true, {"M02", "M04"}},
    {"S03", false, {"M02", "M04", "M05"}}, {"S04", false, {"M01", "M02", "M03", "M06", "M07"}},
    {"S05", false, {"M02", "M08", "M09"}}, {"S06", true, {"M02", "M10"}},
};
static const int line_a_services[] = {1, 1, 2, 4, 5, 5};
static const int line_b_services[] = {0, 0, 3};

typedef struct window_st {
    bool current;
    char line[4];
    char ticket[NO_MAX];
    int intakes;
    int wait; /* steps before calling again after an empty call */
} window_st;

typedef struct dept_st {
    bool holding;
    char case_no[NO_MAX];
    int wait;
} dept_st;

struct gen {
    hall *h;
    hall_store st;
    wal_writer *w;
    MDB_txn *txn;
    uint64_t target, written, errors;
    int64_t now, last;
    uint64_t rng;
    proto_buf args, result, payload;
    msgpack_zone zone, rzone;
    window_st win[N_WINDOWS];
    dept_st dep[N_DEPTS];
    int waiting[6];
    char ready[RING][NO_MAX];
    unsigned ready_head, ready_len;
    struct {
        char ticket[NO_MAX], case_no[NO_MAX];
    } picks[RING];
    unsigned picks_len;
    uint64_t serial;
};

static uint32_t rnd(gen *g, uint32_t n)
{
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return (uint32_t)((g->rng >> 11) % n);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hallq-walgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ---- requests ---- */

static msgpack_packer args_begin(gen *g)
{
    msgpack_packer pk;
    proto_buf_reset(&g->args);
    proto_packer_init(&pk, &g->args);
    return pk;
}

static void kv(msgpack_packer *pk, const char *k, const char *v)
{
    proto_pack_kv_str(pk, k, v);
}

/* Runs one op as `role:id` at the current time; logs its record. Returns
 * the result map (NULL on an error answer, or for no record). */
static const msgpack_object *run_op(gen *g, hall_op op, hall_role role, const char *id, int64_t at)
{
    msgpack_object args;
    size_t off = 0;
    msgpack_zone_clear(&g->zone);
    if (g->args.oom || msgpack_unpack((const char *)g->args.p, g->args.len, &off, &g->zone,
                                      &args) != MSGPACK_UNPACK_SUCCESS)
        die("packing the args of %s", hall_op_get(op)->name);
    hall_request r = {
        .def = hall_op_get(op), .args = &args, .now_ms = at, .lsn = wal_writer_last_lsn(g->w) + 1};
    r.actor.role = role;
    snprintf(r.actor.id, sizeof r.actor.id, "%s", id);
    proto_error e = {0};
    int mdb_rc = 0;
    int x = hall_exec(g->h, g->txn, &r, &g->result, &e, &mdb_rc);
    if (mdb_rc)
        die("%s: lmdb: %s", r.def->name, mdb_strerror(mdb_rc));
    if (x < 0) {
        if (++g->errors <= 5 || getenv("WALGEN_ALL_ERRORS"))
            fprintf(stderr, "hallq-walgen: %s by %s: %s: %s\n", r.def->name, id,
                    proto_err_name(e.code), e.msg);
        return NULL;
    }
    if (x != HALL_EXEC_RECORD)
        return NULL;
    uint64_t lsn;
    int rc = hall_record_pack_ev(g->h, &r, &g->result, &g->payload);
    if (rc == 0)
        rc = wal_writer_append(g->w, r.def->rec_type, (uint64_t)at, (uint8_t)role, id, g->payload.p,
                               (uint32_t)g->payload.len, &lsn);
    if (rc)
        die("wal append: %s", wal_strerror(rc));
    g->written++;
    if (at > g->last)
        g->last = at;
    off = 0;
    msgpack_zone_clear(&g->rzone);
    msgpack_object *res = msgpack_zone_malloc(&g->rzone, sizeof *res);
    if (!res || msgpack_unpack((const char *)g->result.p, g->result.len, &off, &g->rzone, res) !=
                    MSGPACK_UNPACK_SUCCESS)
        die("%s: result does not unpack", r.def->name);
    return res;
}

static bool copy_str(const msgpack_object *o, char *dst, size_t cap)
{
    if (!o || o->type != MSGPACK_OBJECT_STR || o->via.str.size >= cap)
        return false;
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = 0;
    return true;
}

/* ---- the hall's day ---- */

static void run_due(gen *g)
{
    hall_request r;
    while (g->written < g->target && hall_due(g->h, g->txn, g->now, &r)) {
        proto_error e = {0};
        int mdb_rc = 0;
        r.lsn = wal_writer_last_lsn(g->w) + 1;
        if (r.now_ms < g->last)
            r.now_ms = g->last;
        if (hall_exec(g->h, g->txn, &r, &g->result, &e, &mdb_rc) != HALL_EXEC_RECORD)
            die("%s at %" PRId64 ": %s", r.def->name, r.now_ms,
                mdb_rc ? mdb_strerror(mdb_rc) : e.msg);
        if (hall_record_pack_ev(g->h, &r, &g->result, &g->payload) != 0 ||
            wal_writer_append(g->w, r.def->rec_type, (uint64_t)r.now_ms, (uint8_t)r.actor.role,
                              r.actor.id, g->payload.p, (uint32_t)g->payload.len, NULL) != 0)
            die("wal append of %s", r.def->name);
        g->written++;
        g->last = r.now_ms;
        if (r.def->op == HALL_OP_DAY_CLOSE) {
            /* Waiting tickets expire; a visit in progress stays current
             * at its window (ended next morning). */
            memset(g->waiting, 0, sizeof g->waiting);
            g->picks_len = 0;
        }
    }
}

static void kiosk(gen *g)
{
    msgpack_packer pk = args_begin(g);
    if (g->ready_len && rnd(g, 2) == 0) {
        char no[NO_MAX];
        snprintf(no, sizeof no, "%s", g->ready[g->ready_head]);
        g->ready_head = (g->ready_head + 1) % RING;
        g->ready_len--;
        msgpack_pack_map(&pk, 2);
        kv(&pk, "line", "F");
        kv(&pk, "case_no", no);
        const msgpack_object *res = run_op(g, HALL_OP_TICKET_TAKE, HALL_ROLE_KIOSK, "K1", g->now);
        if (res && g->picks_len < RING &&
            copy_str(proto_map_get(res, "ticket_id"), g->picks[g->picks_len].ticket, NO_MAX)) {
            snprintf(g->picks[g->picks_len].case_no, NO_MAX, "%s", no);
            g->picks_len++;
        }
        return;
    }
    static const char *const lines[] = {"A", "B", "C", "D"};
    static const int weights[] = {45, 30, 12, 8};
    uint32_t r = rnd(g, 95);
    int i = 0;
    while (r >= (uint32_t)weights[i])
        r -= (uint32_t)weights[i++];
    if (g->waiting[i] >= BACKLOG)
        return;
    bool priority = rnd(g, 20) == 0;
    msgpack_pack_map(&pk, priority ? 2 : 1);
    kv(&pk, "line", lines[i]);
    if (priority)
        proto_pack_kv_bool(&pk, "priority", true);
    if (run_op(g, HALL_OP_TICKET_TAKE, HALL_ROLE_KIOSK, "K1", g->now))
        g->waiting[i]++;
}

static void pack_intake(gen *g, const window_st *ws, msgpack_packer *pk)
{
    bool org = ws->line[0] == 'B';
    const service_def *s = &services[org ? line_b_services[rnd(g, 3)] : line_a_services[rnd(g, 6)]];
    int nm = 0;
    while (nm < 6 && s->materials[nm])
        nm++;
    uint32_t roll = rnd(g, 100);
    const char *outcome = s->instant  ? "instant"
                          : roll < 85 ? "accept"
                          : roll < 95 ? "notify"
                                      : "refuse";
    bool refuse = !strcmp(outcome, "refuse");
    if (!strcmp(outcome, "notify"))
        nm--;
    msgpack_pack_map(pk, refuse ? 5 : 4);
    kv(pk, "service", s->code);
    proto_pack_str(pk, "applicant");
    msgpack_pack_map(pk, org ? 4 : 3);
    kv(pk, "kind", org ? "org" : "person");
    char hash[40], masked[40];
    g->serial++;
    snprintf(hash, sizeof hash, "%016" PRIx64 "%016" PRIx64,
             (uint64_t)(g->serial * 0x9e3779b97f4a7c15ull), g->serial);
    snprintf(masked, sizeof masked, org ? "911***********%04u" : "110***********%04u",
             (unsigned)(g->serial % 10000));
    kv(pk, "id_hash", hash);
    kv(pk, "id_masked", masked);
    if (org) {
        char name[24];
        snprintf(name, sizeof name, "Shop %u", rnd(g, 10000));
        kv(pk, "name", name);
    }
    proto_pack_str(pk, "materials");
    msgpack_pack_array(pk, (size_t)nm);
    for (int i = 0; i < nm; i++)
        proto_pack_str(pk, s->materials[i]);
    kv(pk, "outcome", outcome);
    if (refuse)
        kv(pk, "reason", "not in this hall's remit");
}

static void window(gen *g, int k)
{
    window_st *ws = &g->win[k];
    const char *id = windows[k].id;
    msgpack_packer pk = args_begin(g);
    if (!ws->current) {
        if (ws->wait > 0) {
            ws->wait--;
            return;
        }
        msgpack_pack_map(&pk, 0);
        const msgpack_object *res = run_op(g, HALL_OP_WINDOW_CALL, HALL_ROLE_WINDOW, id, g->now);
        const msgpack_object *t = res ? proto_map_get(res, "ticket") : NULL;
        if (!t || t->type != MSGPACK_OBJECT_MAP) {
            ws->wait = 5;
            return;
        }
        ws->current = copy_str(proto_map_get(t, "line"), ws->line, sizeof ws->line) &&
                      copy_str(proto_map_get(t, "ticket_id"), ws->ticket, sizeof ws->ticket);
        int li = ws->line[0] - 'A';
        if (li >= 0 && li < 6 && g->waiting[li] > 0)
            g->waiting[li]--;
        ws->intakes = ws->line[0] == 'A' || ws->line[0] == 'B' ? (rnd(g, 10) == 0 ? 2 : 1) : 0;
        return;
    }
    if (ws->intakes > 0) {
        ws->intakes--;
        pack_intake(g, ws, &pk);
        run_op(g, HALL_OP_WINDOW_INTAKE, HALL_ROLE_WINDOW, id, g->now);
        return;
    }
    if (ws->line[0] == 'F') {
        for (unsigned i = 0; i < g->picks_len; i++)
            if (!strcmp(g->picks[i].ticket, ws->ticket)) {
                msgpack_pack_map(&pk, 2);
                kv(&pk, "case_no", g->picks[i].case_no);
                kv(&pk, "method", "counter");
                g->picks[i] = g->picks[--g->picks_len];
                ws->line[0] = 'f'; /* delivered: done next */
                run_op(g, HALL_OP_CASE_DELIVER, HALL_ROLE_WINDOW, id, g->now);
                return;
            }
    }
    msgpack_pack_map(&pk, 0);
    run_op(g, HALL_OP_WINDOW_DONE, HALL_ROLE_WINDOW, id, g->now);
    ws->current = false;
}

static void department(gen *g, int k)
{
    dept_st *d = &g->dep[k];
    char id[16];
    snprintf(id, sizeof id, "%s", depts[k]);
    msgpack_packer pk = args_begin(g);
    if (!d->holding) {
        if (d->wait > 0) {
            d->wait--;
            return;
        }
        msgpack_pack_map(&pk, 0);
        const msgpack_object *res =
            run_op(g, HALL_OP_REVIEW_CLAIM, HALL_ROLE_DEPARTMENT, id, g->now);
        const msgpack_object *c = res ? proto_map_get(res, "case") : NULL;
        if (!c || c->type != MSGPACK_OBJECT_MAP ||
            !copy_str(proto_map_get(c, "case_no"), d->case_no, sizeof d->case_no)) {
            d->wait = 20;
            return;
        }
        d->holding = true;
        return;
    }
    bool deny = rnd(g, 10) == 0;
    msgpack_pack_map(&pk, deny ? 3 : 2);
    kv(&pk, "case_no", d->case_no);
    kv(&pk, "decision", deny ? "deny" : "approve");
    if (deny)
        kv(&pk, "reason", "incomplete premises proof");
    d->holding = false;
    const msgpack_object *res = run_op(g, HALL_OP_REVIEW_DECIDE, HALL_ROLE_DEPARTMENT, id, g->now);
    const msgpack_object *st = res ? proto_map_get(res, "state") : NULL;
    if (st && st->type == MSGPACK_OBJECT_STR &&
        ((st->via.str.size == 8 && !memcmp(st->via.str.ptr, "approved", 8)) ||
         (st->via.str.size == 6 && !memcmp(st->via.str.ptr, "denied", 6))) &&
        g->ready_len < RING) {
        snprintf(g->ready[(g->ready_head + g->ready_len) % RING], NO_MAX, "%s", d->case_no);
        g->ready_len++;
    }
}

static void open_windows(gen *g)
{
    for (int k = 0; k < N_WINDOWS && g->written < g->target; k++) {
        msgpack_packer pk = args_begin(g);
        msgpack_pack_map(&pk, 1);
        kv(&pk, "state", "open");
        run_op(g, HALL_OP_WINDOW_STATE, HALL_ROLE_WINDOW, windows[k].id, g->now);
        g->win[k].wait = 0;
    }
}

static void txn_begin(gen *g)
{
    int rc = mdb_txn_begin(g->st.env, NULL, 0, &g->txn);
    if (rc)
        die("lmdb: %s", mdb_strerror(rc));
    hall_batch_begin(g->h);
}

/* Commits the state and writes the pending records (no fsync). */
static void txn_commit(gen *g)
{
    int rc = hall_store_set_applied_lsn(&g->st, g->txn, wal_writer_last_lsn(g->w));
    if (!rc)
        rc = mdb_txn_commit(g->txn);
    else
        mdb_txn_abort(g->txn);
    g->txn = NULL;
    if (rc)
        die("lmdb commit: %s (try a larger state.map_bytes)", mdb_strerror(rc));
    hall_batch_commit(g->h);
    if (wal_writer_pending(g->w) && ((rc = wal_writer_seal(g->w)) != 0 ||
                                     (rc = wal_writer_complete(g->w, wal_writer_flush(g->w))) != 0))
        die("wal: %s", wal_strerror(rc));
    if (hall_store_nearly_full(&g->st) && hall_store_grow(&g->st) != 0)
        die("lmdb: cannot grow the map");
}

static int64_t local_minute(int64_t ms)
{
    return ((ms + TZ_MS) % DAY_MS) / 60000;
}

/* The next working day's 09:00 after `ms` (weekends skipped; holidays are
 * left to the calendar: the hall just has a quiet day). */
static int64_t next_morning(int64_t ms)
{
    int64_t day = (ms + TZ_MS) / DAY_MS + 1;
    while ((day + 4) % 7 == 0 || (day + 4) % 7 == 6)
        day++;
    return day * DAY_MS - TZ_MS + 9 * HOUR_MS;
}

static void log_config(gen *g, const hall_config *cfg)
{
    proto_buf_reset(&g->args);
    if (hall_config_record(cfg, &g->args) != 0)
        die("config record");
    run_op(g, HALL_OP_CONFIG, HALL_ROLE_SYSTEM, "hallqd", g->now);
    if (!hall_config_current(g->h))
        die("the config did not take");
}

static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("%s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t cap = 0, n = 0, k;
    do {
        if (cap - n < 65536) {
            cap = cap ? cap * 2 : 65536;
            buf = realloc(buf, cap + 1);
            if (!buf)
                die("out of memory");
        }
        k = fread(buf + n, 1, cap - n, f);
        n += k;
    } while (k > 0);
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: hallq-walgen --out DIR [--records N] [--config FILE] [--seed N]\n"
               "  writes DIR/wal/ with N records (default 1000000) of a busy demo hall,\n"
               "  and DIR/pii.key;\n"
               "  DIR's state stays empty, so hallqd --data DIR replays them all at start\n");
}

int main(int argc, char **argv)
{
    const char *out = NULL, *config = HALLQ_SOURCE_DIR "/examples/demo-hall.yaml";
    gen *g = calloc(1, sizeof *g);
    if (!g || sodium_init() < 0)
        die("out of memory");
    g->target = 1000000;
    g->rng = 0x2545f4914f6cdd1dull;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--out") && v)
            out = argv[++i];
        else if (!strcmp(argv[i], "--config") && v)
            config = argv[++i];
        else if (!strcmp(argv[i], "--records") && v)
            g->target = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--seed") && v)
            g->rng = strtoull(argv[++i], NULL, 10) | 1;
        else if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!out || g->target == 0) {
        usage(stderr);
        return 2;
    }
    char err[1024], wal_dir[4200], scratch[4200];
    size_t len;
    char *text = read_text(config, &len);
    hall_config *cfg;
    if (hall_config_parse(text, len, config, &cfg, err, sizeof err) != 0)
        die("%s", err);
    free(text);
    snprintf(wal_dir, sizeof wal_dir, "%s/wal", out);
    snprintf(scratch, sizeof scratch, "%s/walgen-state.tmp", out);
    if ((mkdir(out, 0750) != 0 && errno != EEXIST) ||
        (mkdir(wal_dir, 0750) != 0 && errno != EEXIST) ||
        (mkdir(scratch, 0750) != 0 && errno != EEXIST))
        die("%s: %s", out, strerror(errno));
    /* The hall's pii.key: the intakes' id hashes stand for hashes made with
     * it, and hallqd refuses a hall with intakes but no key. */
    {
        char key[32], kp[4200];
        randombytes_buf(key, sizeof key);
        snprintf(kp, sizeof kp, "%s/pii.key", out);
        FILE *kf = fopen(kp, "wx");
        if (!kf || chmod(kp, 0600) != 0 || fwrite(key, 1, sizeof key, kf) != sizeof key ||
            fclose(kf) != 0)
            die("%s: %s (it must hold no pii.key yet)", kp, strerror(errno));
    }
    /* The scratch state is a cache of what the records did; it needs no
     * durability (MDB_NOSYNC), and goes away at the end. */
    if (hall_store_open(&g->st, scratch, false, cfg->state.map_bytes, err, sizeof err) != 0)
        die("%s", err);
    mdb_env_set_flags(g->st.env, MDB_NOSYNC, 1);
    if (hall_open(&g->h, &g->st, err, sizeof err) != 0)
        die("%s", err);
    wal_writer_options wo = {.dir = wal_dir,
                             .hall_id = cfg->hall_id,
                             .segment_bytes = cfg->wal.segment_bytes,
                             .sync = false};
    int rc = wal_writer_open(&g->w, &wo, NULL);
    if (rc)
        die("%s: %s (it must hold no WAL yet)", wal_dir, wal_strerror(rc));
    proto_buf_init(&g->args);
    proto_buf_init(&g->result);
    proto_buf_init(&g->payload);
    if (!msgpack_zone_init(&g->zone, 8192) || !msgpack_zone_init(&g->rzone, 8192))
        die("out of memory");

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    g->now = FIRST_DAY_MS;
    txn_begin(g);
    log_config(g, cfg);
    open_windows(g);
    uint64_t days = 1, steps = 0;
    while (g->written < g->target) {
        run_due(g);
        if (local_minute(g->now) >= 17 * 60) {
            /* The day closed (a record by hall_due): the next morning. */
            g->now = next_morning(g->now);
            run_due(g);
            open_windows(g);
            days++;
            continue;
        }
        kiosk(g);
        for (int k = 0; k < N_WINDOWS && g->written < g->target; k++)
            window(g, k);
        for (int k = 0; k < N_DEPTS && g->written < g->target; k++)
            department(g, k);
        g->now += STEP_MS;
        if (++steps % STEPS_PER_TXN == 0) {
            txn_commit(g);
            txn_begin(g);
        }
    }
    txn_commit(g);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("hallq-walgen: %" PRIu64 " records (LSN 1..%" PRIu64 ") over %" PRIu64
           " working days in %s, %.1f s (%.0f records/s); %" PRIu64 " error answers\n",
           g->written, wal_writer_last_lsn(g->w), days, wal_dir, secs, (double)g->written / secs,
           g->errors);
    wal_writer_close(g->w);
    hall_close(g->h);
    hall_store_close(&g->st);
    hall_config_free(cfg);
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", scratch, HALL_STORE_FILE);
    unlink(path);
    snprintf(path, sizeof path, "%s/%s-lock", scratch, HALL_STORE_FILE);
    unlink(path);
    if (rmdir(scratch) != 0)
        fprintf(stderr, "hallq-walgen: could not remove %s: %s\n", scratch, strerror(errno));
    proto_buf_free(&g->args);
    proto_buf_free(&g->result);
    proto_buf_free(&g->payload);
    msgpack_zone_destroy(&g->zone);
    msgpack_zone_destroy(&g->rzone);
    /* A few error answers are the hall saying no (a case decided
     * elsewhere...); many mean this script is wrong. */
    int code = g->errors > g->target / 100 ? 1 : 0;
    free(g);
    return code;
}
