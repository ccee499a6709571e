/* daemon/main.c: hallqd's command line and start-up.
 *
 * Start-up order: parse flags, read and check the config (a bad config
 * never starts), lock the data dir (one hallqd per dir), open LMDB, verify
 * the WAL and replay it into LMDB, log the config in force as a record if
 * it changed, then serve. Exit codes: 0 after SIGTERM/SIGINT, 1 on any
 * start-up error (the message says what and where), 2 on bad flags.
 * --check-config FILE only checks the file (0, or 2 with FILE:LINE: what;
 * 1 for the demo's tokens on a non-loopback address) and touches no data
 * dir. */
#include "daemon/hall/hall.h"
#include "daemon/log.h"
#include "daemon/pii.h"
#include "daemon/cfgfile.h"
#include "daemon/recovery.h"
#include "daemon/server.h"
#include "wal/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Set by the build (daemon/CMakeLists.txt) to the installed paths. */
#ifndef HALLQ_DEFAULT_CONFIG
#define HALLQ_DEFAULT_CONFIG "/etc/hallq/hall.yaml"
#endif
#ifndef HALLQ_DEMO_CONFIG
#define HALLQ_DEMO_CONFIG "/usr/share/hallq/examples/demo-hall.yaml"
#endif

static void usage(FILE *f)
{
    fprintf(f, "usage: hallqd [--config FILE] [--data DIR] [--tcp HOST:PORT] [--unix PATH]\n"
               "              [--http HOST:PORT] [--manual-clock] [--fsync always|none]\n"
               "              [--checkpoint-ms N] [--read-only] [--demo] [--check-config FILE]\n"
               "              [--log-level error|warn|info|debug] [--version]\n"
               "\n"
               "  --config FILE   the hall's configuration (default " HALLQ_DEFAULT_CONFIG ";\n"
               "                  with --demo: the demo hall, " HALLQ_DEMO_CONFIG ")\n"
               "  --data DIR      state and WAL directory (default ./hallq-data)\n"
               "  --tcp HOST:PORT TCP listener (default from the config, 127.0.0.1:7420;\n"
               "                  port 0 picks a free port, shown in the ready line)\n"
               "  --unix PATH     Unix socket (default DATA/hallq.sock)\n"
               "  --http HOST:PORT the HTTP face (default from the config, 127.0.0.1:7480;\n"
               "                  port 0 picks a free port; \"\": none)\n"
               "  --manual-clock  tests only: time moves only by the admin op clock.advance\n"
               "  --fsync MODE    always (default): answer after the WAL is on disk;\n"
               "                  none: never fdatasync (benchmarks only)\n"
               "  --checkpoint-ms N  how often LMDB writes out the durable batches (default\n"
               "                  1000; 0: at every batch). A crash replays from the WAL\n"
               "                  what came after the last checkpoint\n"
               "  --read-only     serve the state in DIR as it is (a replay made by\n"
               "                  'hallq wal replay'): reads, stats, digest; every\n"
               "                  mutation is forbidden; the config comes from the state\n"
               "  --demo          without --config: serve the demo hall; and serve a config\n"
               "                  with the demo hall's public tokens on a non-loopback\n"
               "                  address (refused without it)\n"
               "  --log-level L   log lines up to L (default info; under systemd each\n"
               "                  line carries its journald priority)\n"
               "  --check-config FILE  check FILE and exit: 0 and 'ok', or 2 and\n"
               "                  FILE:LINE: what is wrong; no data dir is touched\n"
               "  --version       print hallqd's version, its rules and WAL format versions\n"
               "\n"
               "Prints 'hallqd ready tcp=HOST:PORT unix=PATH http=HOST:PORT' on stderr when\n"
               "ready (without http= when there is no HTTP listener).\n");
}

static int lock_data_dir(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/LOCK", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        hq_log(HQ_LOG_ERROR, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        if (n > 0)
            pid[n] = 0;
        pid[strcspn(pid, "\n")] = 0;
        hq_log(HQ_LOG_ERROR, "data dir %s is in use by another hallqd%s%s%s", dir,
               pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
        close(fd);
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
        hq_log(HQ_LOG_WARN, "cannot write the pid into %s", path);
    return fd; /* kept open: the lock lasts as long as the process */
}

static int mkdir_p(const char *dir)
{
    if (mkdir(dir, 0750) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

/* Writes the config as a record when it is not the one in force, or when
 * the state's records were decided under other rules than this build's: a
 * log continued by a newer build goes on under its rules from that record
 * (hall.h, HALL_RULES_VERSION). */
static int log_config(hall *h, hall_store *st, wal_writer *w, const hall_config *file_cfg,
                      bool manual_clock, char *err, size_t errlen)
{
    const hall_config *cur = hall_config_current(h);
    if (cur && memcmp(cur->sha, file_cfg->sha, sizeof cur->sha) == 0 &&
        hall_rules_version(h) == HALL_RULES_VERSION)
        return 0;
    proto_buf args, result, payload;
    proto_buf_init(&args);
    proto_buf_init(&result);
    proto_buf_init(&payload);
    int ret = -1;
    MDB_txn *txn = NULL;
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    msgpack_object o;
    size_t off = 0;
    hall_config_record(file_cfg, &args);
    msgpack_unpack((const char *)args.p, args.len, &off, &z, &o);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (manual_clock && file_cfg->has_start_ms)
        now = file_cfg->start_ms; /* the manual clock's start, as server_run takes it */
    if (now < hall_clock_ms(h))
        now = hall_clock_ms(h);
    hall_request r = {.def = hall_op_get(HALL_OP_CONFIG),
                      .args = &o,
                      .now_ms = now,
                      .lsn = wal_writer_last_lsn(w) + 1};
    r.actor.role = HALL_ROLE_SYSTEM;
    snprintf(r.actor.id, sizeof r.actor.id, "hallqd");
    proto_error e = {0};
    int mdb_rc = 0, rc;
    uint64_t lsn;
    for (;;) {
        if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0) {
            snprintf(err, errlen, "lmdb: %s", mdb_strerror(rc));
            goto out;
        }
        hall_batch_begin(h);
        if (hall_exec(h, txn, &r, &result, &e, &mdb_rc) != HALL_EXEC_RECORD) {
            mdb_txn_abort(txn);
            hall_batch_abort(h);
            if (mdb_rc == MDB_MAP_FULL && hall_store_grow(st) == 0)
                continue;
            snprintf(err, errlen, "config record: %s", e.msg);
            goto out;
        }
        break;
    }
    if (hall_record_pack(&r, &result, &payload) != 0 ||
        (rc = wal_writer_append(w, hall_op_get(HALL_OP_CONFIG)->rec_type, (uint64_t)now,
                                HALL_ROLE_SYSTEM, "hallqd", payload.p, (uint32_t)payload.len,
                                &lsn)) != 0 ||
        (rc = wal_writer_seal(w)) != 0 || (rc = wal_writer_complete(w, wal_writer_flush(w))) != 0) {
        mdb_txn_abort(txn);
        hall_batch_abort(h);
        snprintf(err, errlen, "wal: writing the config record: %s", wal_strerror(rc));
        goto out;
    }
    if ((rc = hall_store_set_applied_lsn(st, txn, lsn)) != 0 || (rc = mdb_txn_commit(txn)) != 0) {
        hall_batch_abort(h);
        snprintf(err, errlen, "lmdb: %s", mdb_strerror(rc));
        goto out;
    }
    hall_batch_commit(h);
    hq_log(HQ_LOG_INFO, "config of hall %s is in force from LSN %llu, under rules %d",
           file_cfg->hall_id, (unsigned long long)lsn, HALL_RULES_VERSION);
    ret = 0;
out:
    msgpack_zone_destroy(&z);
    proto_buf_free(&args);
    proto_buf_free(&result);
    proto_buf_free(&payload);
    return ret;
}

/* hallqd --check-config FILE: parses and checks FILE as a start would,
 * and touches no data dir. */
static int check_config(const char *path, const char *tcp, const char *http, bool demo)
{
    char err[1024];
    hall_config *c;
    if (cfgfile_load(path, &c, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    int code = 0;
    if (cfgfile_check_demo(c, path, tcp ? tcp : c->tcp.addr, http ? http : c->http.addr, demo, err,
                           sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        code = 1;
    } else {
        printf("ok\n");
    }
    hall_config_free(c);
    return code;
}

/* Reads DIR/replay.info (written by hallq wal replay): the moment the
 * state was rebuilt for, which is "now" for its reads. 0 when absent. */
static int64_t replay_moment(const char *dir)
{
    char path[PATH_MAX], line[128];
    long long ms = 0;
    snprintf(path, sizeof path, "%s/replay.info", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "until_ms=%lld", &ms) == 1)
            break;
    fclose(f);
    return ms;
}

/* hallqd --read-only: serves DATA as it is. No recovery, no WAL writer, no
 * config record: the config in force is the one in the state. */
static int run_read_only(const char *data_dir, const char *tcp, const char *unix_path,
                         const char *http, bool demo)
{
    char err[1024], sock[PATH_MAX];
    int lock_fd = lock_data_dir(data_dir);
    if (lock_fd < 0)
        return 1;
    int code = 1;
    hall_store st;
    hall *h = NULL;
    if (hall_store_open(&st, data_dir, true, 0, err, sizeof err) != 0) {
        hq_log(HQ_LOG_ERROR, "%s (is %s a data dir? make one with 'hallq wal replay')", err,
               data_dir);
        close(lock_fd);
        return 1;
    }
    if (hall_open(&h, &st, err, sizeof err) != 0) {
        hq_log(HQ_LOG_ERROR, "%s; not starting", err);
        goto out;
    }
    const hall_config *cfg = hall_config_current(h);
    if (!cfg) {
        hq_log(HQ_LOG_ERROR, "%s holds no hall state; not starting", data_dir);
        goto out;
    }
    if (cfgfile_check_demo(cfg, "the state's config", tcp ? tcp : cfg->tcp.addr,
                           http ? http : cfg->http.addr, demo, err, sizeof err) != 0) {
        hq_log(HQ_LOG_ERROR, "%s; not starting", err);
        goto out;
    }
    snprintf(sock, sizeof sock, "%s", unix_path ? unix_path : "");
    if (!sock[0])
        snprintf(sock, sizeof sock, "%s/hallq.sock", data_dir);
    server_options so = {.config_path = NULL,
                         .data_dir = data_dir,
                         .tcp_addr = tcp ? tcp : cfg->tcp.addr,
                         .unix_path = sock,
                         .http_addr = http ? http : cfg->http.addr,
                         .read_only = true,
                         .fixed_now_ms = replay_moment(data_dir)};
    hq_log(HQ_LOG_INFO, "read-only: serving the state of hall %s in %s as it was at %lld",
           cfg->hall_id, data_dir,
           (long long)(so.fixed_now_ms > hall_clock_ms(h) ? so.fixed_now_ms : hall_clock_ms(h)));
    code = server_run(&so, &h, &st, NULL);
out:
    hall_close(h);
    hall_store_close(&st);
    close(lock_fd);
    return code;
}

int main(int argc, char **argv)
{
    const char *config_path = NULL, *data_dir = "./hallq-data", *tcp = NULL, *unix_path = NULL;
    const char *http = NULL;
    const char *fsync_mode = NULL;
    long checkpoint_ms = 1000;
    const char *check_path = NULL;
    bool manual_clock = false, read_only = false, demo = false;
    /* clang-format off */
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"data", required_argument, 0, 'd'},
        {"tcp", required_argument, 0, 't'},    {"unix", required_argument, 0, 'u'},
        {"manual-clock", no_argument, 0, 'm'}, {"fsync", required_argument, 0, 'f'},
        {"read-only", no_argument, 0, 'r'},    {"checkpoint-ms", required_argument, 0, 'k'},
        {"help", no_argument, 0, 'h'},         {"http", required_argument, 0, 'H'},
        {"demo", no_argument, 0, 'D'},         {"check-config", required_argument, 0, 'C'},
        {"version", no_argument, 0, 'V'},      {"log-level", required_argument, 0, 'L'},
        {0, 0, 0, 0}};
    /* clang-format on */
    hq_log_detect_journal();
    int ch;
    while ((ch = getopt_long(argc, argv, "c:d:t:u:H:mf:rk:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config_path = optarg;
            break;
        case 'd':
            data_dir = optarg;
            break;
        case 't':
            tcp = optarg;
            break;
        case 'u':
            unix_path = optarg;
            break;
        case 'H':
            http = optarg;
            break;
        case 'm':
            manual_clock = true;
            break;
        case 'f':
            fsync_mode = optarg;
            break;
        case 'r':
            read_only = true;
            break;
        case 'D':
            demo = true;
            break;
        case 'C':
            check_path = optarg;
            break;
        case 'L':
            if (hq_log_level_of(optarg) < 0) {
                fprintf(stderr,
                        "hallqd: --log-level: expected error, warn, info or debug, got '%s'\n",
                        optarg);
                return 2;
            }
            hq_log_pin_level(hq_log_level_of(optarg));
            break;
        case 'k': {
            char *end;
            errno = 0;
            checkpoint_ms = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || checkpoint_ms < 0 || checkpoint_ms > 3600000) {
                fprintf(stderr, "hallqd: --checkpoint-ms: expected 0..3600000 ms, got '%s'\n",
                        optarg);
                return 2;
            }
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("hallqd %s, rules %d, wal format %d\n", HALLQ_VERSION, HALL_RULES_VERSION,
                   WAL_FORMAT_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc ||
        (fsync_mode && strcmp(fsync_mode, "always") != 0 && strcmp(fsync_mode, "none") != 0)) {
        usage(stderr);
        return 2;
    }
    if (sodium_init() < 0) {
        hq_log(HQ_LOG_ERROR, "libsodium failed to initialise");
        return 1;
    }
    if (check_path)
        return check_config(check_path, tcp, http, demo);
    if (read_only)
        return run_read_only(data_dir, tcp, unix_path, http, demo);
    bool implicit = !config_path;
    if (!config_path)
        config_path = demo ? HALLQ_DEMO_CONFIG : HALLQ_DEFAULT_CONFIG;

    char err[1024];
    hall_config *file_cfg = NULL;
    if (cfgfile_load(config_path, &file_cfg, err, sizeof err) != 0) {
        hq_log(HQ_LOG_ERROR, "config: %s", err);
        if (implicit && access(config_path, F_OK) != 0)
            hq_log(HQ_LOG_ERROR,
                   "no --config given and no %s: give --config FILE (the demo "
                   "hall from a source tree: --config examples/demo-hall.yaml, "
                   "or tools/demo.sh), or --demo for the installed demo hall",
                   config_path);
        return 1;
    }
    hq_log_config_level(file_cfg->log_level);
    if (cfgfile_check_demo(file_cfg, config_path, tcp ? tcp : file_cfg->tcp.addr,
                           http ? http : file_cfg->http.addr, demo, err, sizeof err) != 0) {
        hq_log(HQ_LOG_ERROR, "%s; not starting", err);
        hall_config_free(file_cfg);
        return 1;
    }

    char wal_dir[PATH_MAX], sock[PATH_MAX];
    snprintf(wal_dir, sizeof wal_dir, "%s/wal", data_dir);
    if (mkdir_p(data_dir) != 0 || mkdir_p(wal_dir) != 0) {
        hq_log(HQ_LOG_ERROR, "cannot create %s: %s", wal_dir, strerror(errno));
        hall_config_free(file_cfg);
        return 1;
    }
    int lock_fd = lock_data_dir(data_dir);
    if (lock_fd < 0) {
        hall_config_free(file_cfg);
        return 1;
    }

    int code = 1;
    hall_store st;
    hall *h = NULL;
    wal_writer *w = NULL;
    wal_scan_result end;
    if (hall_store_open(&st, data_dir, false, file_cfg->state.map_bytes, err, sizeof err) != 0) {
        hq_log(HQ_LOG_ERROR, "%s", err);
        goto out_cfg;
    }
    if (hall_open(&h, &st, err, sizeof err) != 0 ||
        recovery_run(h, &st, wal_dir, file_cfg->hall_id, &end, err, sizeof err) != 0) {
        hq_log(HQ_LOG_ERROR, "%s; not starting", err);
        goto out;
    }
    uint8_t pii_key[PII_KEY_LEN];
    if (pii_key_load(data_dir, &st, wal_dir, pii_key, err, sizeof err) != 0) {
        hq_log(HQ_LOG_ERROR, "the key for applicants' ids: %s; not starting", err);
        goto out;
    }
    wal_writer_options wo = {.dir = wal_dir,
                             .hall_id = file_cfg->hall_id,
                             .segment_bytes = file_cfg->wal.segment_bytes,
                             .sync = fsync_mode ? strcmp(fsync_mode, "always") == 0
                                                : file_cfg->wal.fsync};
    int rc = wal_writer_open(&w, &wo, &end);
    if (rc != 0) {
        hq_log(HQ_LOG_ERROR, "wal: cannot open %s for writing: %s", wal_dir, wal_strerror(rc));
        goto out;
    }
    if (cfgfile_stored(&file_cfg, hall_config_current(h), pii_key, sizeof pii_key, err,
                       sizeof err) != 0 ||
        log_config(h, &st, w, file_cfg, manual_clock, err, sizeof err) != 0) {
        hq_log(HQ_LOG_ERROR, "%s; not starting", err);
        goto out;
    }
    snprintf(sock, sizeof sock, "%s",
             unix_path                 ? unix_path
             : file_cfg->unix_.addr[0] ? file_cfg->unix_.addr
                                       : "");
    if (!sock[0])
        snprintf(sock, sizeof sock, "%s/hallq.sock", data_dir);
    server_options so = {.config_path = config_path,
                         .data_dir = data_dir,
                         .tcp_addr = tcp ? tcp : file_cfg->tcp.addr,
                         .unix_path = sock,
                         .http_addr = http ? http : file_cfg->http.addr,
                         .manual_clock = manual_clock,
                         .fsync = wo.sync,
                         .checkpoint_ms = (uint32_t)checkpoint_ms};
    memcpy(so.pii_key, pii_key, sizeof pii_key);
    sodium_memzero(pii_key, sizeof pii_key);
    code = server_run(&so, &h, &st, w);
out:
    if (w)
        wal_writer_close(w);
    hall_close(h);
    hall_store_close(&st);
out_cfg:
    hall_config_free(file_cfg);
    close(lock_fd);
    return code;
}
