/* city/ship.c: hallq-ship, a hall's WAL to the city's JetStream stream
 * (docs/CITY.md; the contract is ../shared/CITY.md).
 *
 *   hallq-ship --data DIR --nats URL[,URL...] [--creds FILE] [--window N]
 *              [--poll-ms MS] [--once]
 *
 * Reads DIR/wal/ read-only through wal_read (wal/reader.h) and publishes
 * each durable record, in LSN order, as one message on hallq.wal.<hall>:
 * body = the record's bytes as in the segment, headers Nats-Msg-Id
 * "<hall>:<lsn>", Hallq-Hall, Hallq-Lsn, Hallq-Time-Ms.
 *
 * Durable: with a hallqd running (it holds DIR/LOCK), up to the safe LSN
 * it publishes after each checkpoint (daemon/safe_lsn.h): its state is
 * durable there, so the WAL is too (a record reaches the WAL's fdatasync
 * before it is applied). Without one, this process takes DIR/LOCK for a
 * moment, syncs the log's segments (wal_sync_log) and takes the log's
 * last good record.
 *
 * Window: publishes go out asynchronously in rounds of at most --window
 * records; a round ends when every publish of it is acknowledged; a
 * failed one (timeout, no leader) makes the next round start again at the
 * lowest failed LSN, with the same message ids. So at any time every
 * record below the round is in the stream, and the stream's last message
 * of the subject is at most window-1 records past a hole. At start the
 * shipper therefore resumes at max(1, last - window + 1): a round cut by
 * a kill is published again; JetStream's de-duplication drops a repeat
 * inside its window, the centre's primary key any later one. */
#include "city/city.h"
#include "daemon/safe_lsn.h"
#include "wal/reader.h"
#include "wal/wal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define WHO "hallq-ship"

typedef struct shipper {
    const char *data;
    char wal[PATH_MAX];
    char hall[WAL_HALL_ID_MAX + 1];
    char subject[64 + WAL_HALL_ID_MAX];
    jsCtx *js;
    uint64_t window;
    /* the current round */
    uint64_t failed_min; /* lowest LSN whose publish failed (0: none) */
    int seg_fd;
    char seg_name[64];
    uint8_t *buf;
    size_t buf_cap;
    int err;
    /* the log with no hallqd: scanned once while no hallqd runs */
    bool scanned;
    uint64_t scanned_lsn;
} shipper;

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void usage(void)
{
    fputs("usage: hallq-ship --data DIR --nats URL[,URL...] [--creds FILE] [--window N]\n"
          "                  [--poll-ms MS] [--once]\n"
          "  publishes every durable record of DIR/wal/ to the JetStream stream " CITY_STREAM
          ",\n  subject " CITY_SUBJECT_PREFIX "<hall id>, resuming where the stream ends.\n"
          "  --once: stop once every durable record is acknowledged (else follow the log).\n",
          stderr);
}

/* The hall id, from the first segment's header. */
static int read_hall_id(shipper *s)
{
    wal_seg_ent *segs = NULL;
    size_t n = 0;
    int rc = wal_segment_list(s->wal, &segs, &n);
    if (rc != 0 || n == 0) {
        free(segs);
        return rc ? rc : -ENOENT;
    }
    char p[PATH_MAX + 80];
    snprintf(p, sizeof p, "%s/%s", s->wal, segs[0].name);
    free(segs);
    uint8_t h[WAL_SEGMENT_HEADER_LEN];
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t r = pread(fd, h, sizeof h, 0);
    close(fd);
    if (r != (ssize_t)sizeof h)
        return WAL_E_HEADER;
    wal_seg_header sh;
    if ((rc = wal_header_decode(h, &sh)) != 0)
        return rc;
    snprintf(s->hall, sizeof s->hall, "%s", sh.hall_id);
    snprintf(s->subject, sizeof s->subject, CITY_SUBJECT_PREFIX "%s", sh.hall_id);
    return 0;
}

/* The last LSN known durable (see the top of the file), 0 when none. */
static int durable_lsn(shipper *s, uint64_t *lsn)
{
    char p[PATH_MAX + 16];
    *lsn = 0;
    snprintf(p, sizeof p, "%s/LOCK", s->data);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT)
        return -errno;
    if (fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) != 0) {
        /* A hallqd holds the lock: its safe LSN. */
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        close(fd);
        pid[n > 0 ? n : 0] = 0;
        long v = strtol(pid, NULL, 10);
        s->scanned = false;
        int rc = v > 0 ? safe_lsn_read(s->data, (pid_t)v, lsn) : -ESTALE;
        return rc == 0 || rc == -ENOENT || rc == -ESTALE ? 0 : rc; /* none yet: wait */
    }
    /* No hallqd: the log is still while this process holds the lock. */
    if (!s->scanned) {
        char msg[256];
        int rc = wal_sync_log(s->wal, &wal_io_posix, 0, msg, sizeof msg);
        if (rc != 0) {
            fprintf(stderr, WHO ": %s\n", msg);
        } else {
            wal_scan_result res;
            wal_scan_options o = {.dir = s->wal, .hall_id = s->hall, .must_exist = true};
            rc = wal_scan(&o, &res);
            if (rc == 0) {
                s->scanned = true;
                s->scanned_lsn = res.last_lsn;
            } else {
                fprintf(stderr, WHO ": %s: %s\n", s->wal, res.message);
            }
        }
        if (fd >= 0)
            close(fd);
        if (rc != 0)
            return rc;
    } else if (fd >= 0) {
        close(fd);
    }
    *lsn = s->scanned_lsn;
    return 0;
}

static void on_pub_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    (void)js;
    shipper *s = closure;
    const char *v = NULL;
    if (natsMsgHeader_Get(pae->Msg, "Hallq-Lsn", &v) == NATS_OK && v) {
        uint64_t lsn = strtoull(v, NULL, 10);
        if (s->failed_min == 0 || lsn < s->failed_min)
            s->failed_min = lsn;
    }
}

static int visit(void *ctx, const wal_record *rec, const wal_pos *pos)
{
    shipper *s = ctx;
    if (strcmp(pos->segment, s->seg_name) != 0) {
        char p[PATH_MAX + 80];
        if (s->seg_fd >= 0)
            close(s->seg_fd);
        snprintf(p, sizeof p, "%s/%s", s->wal, pos->segment);
        s->seg_fd = open(p, O_RDONLY | O_CLOEXEC);
        if (s->seg_fd < 0) {
            s->err = -errno;
            s->seg_name[0] = 0;
            return 1;
        }
        snprintf(s->seg_name, sizeof s->seg_name, "%s", pos->segment);
    }
    size_t total = WAL_RECORD_OVERHEAD + rec->payload_len;
    if (total > s->buf_cap) {
        free(s->buf);
        s->buf = malloc(total);
        s->buf_cap = s->buf ? total : 0;
        if (!s->buf) {
            s->err = -ENOMEM;
            return 1;
        }
    }
    if (pread(s->seg_fd, s->buf, total, (off_t)pos->offset) != (ssize_t)total) {
        s->err = -EIO;
        return 1;
    }
    char id[96], lsn[24], at[24];
    snprintf(id, sizeof id, "%s:%" PRIu64, s->hall, rec->lsn);
    snprintf(lsn, sizeof lsn, "%" PRIu64, rec->lsn);
    snprintf(at, sizeof at, "%" PRIu64, rec->at_ms);
    natsMsg *m = NULL;
    natsStatus st = natsMsg_Create(&m, s->subject, NULL, (const char *)s->buf, (int)total);
    if (st == NATS_OK)
        st = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    if (st == NATS_OK)
        st = natsMsgHeader_Set(m, "Hallq-Hall", s->hall);
    if (st == NATS_OK)
        st = natsMsgHeader_Set(m, "Hallq-Lsn", lsn);
    if (st == NATS_OK)
        st = natsMsgHeader_Set(m, "Hallq-Time-Ms", at);
    if (st == NATS_OK)
        st = js_PublishMsgAsync(s->js, &m, NULL);
    natsMsg_Destroy(m); /* NULL once the library owns it */
    if (st != NATS_OK && (s->failed_min == 0 || rec->lsn < s->failed_min))
        s->failed_min = rec->lsn;
    return 0;
}

/* Where to start: the stream's last LSN of this hall, less a window. */
static int resume_at(shipper *s, uint64_t *next)
{
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    natsStatus st = js_GetLastMsg(&m, s->js, CITY_STREAM, s->subject, NULL, &jerr);
    if (st == NATS_NOT_FOUND) {
        *next = 1;
        return 0;
    }
    if (st != NATS_OK) {
        fprintf(stderr, WHO ": last message of %s: %s (%d)\n", s->subject, natsStatus_GetText(st),
                (int)jerr);
        return -1;
    }
    const char *v = NULL;
    uint64_t last = 0;
    if (natsMsgHeader_Get(m, "Hallq-Lsn", &v) == NATS_OK && v)
        last = strtoull(v, NULL, 10);
    natsMsg_Destroy(m);
    *next = last >= s->window ? last - s->window + 1 : 1;
    return 0;
}

int main(int argc, char **argv)
{
    shipper s = {.window = 256, .seg_fd = -1};
    const char *urls = NULL, *creds = NULL;
    long poll_ms = 200;
    bool once = false;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--data") && v)
            s.data = argv[++i];
        else if (!strcmp(argv[i], "--nats") && v)
            urls = argv[++i];
        else if (!strcmp(argv[i], "--creds") && v)
            creds = argv[++i];
        else if (!strcmp(argv[i], "--window") && v)
            s.window = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--poll-ms") && v)
            poll_ms = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--once"))
            once = true;
        else {
            usage();
            return 2;
        }
    }
    if (!s.data || !urls || s.window == 0 || poll_ms <= 0) {
        usage();
        return 2;
    }
    snprintf(s.wal, sizeof s.wal, "%s/wal", s.data);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    int rc;
    while ((rc = read_hall_id(&s)) == -ENOENT && !once && !stop)
        usleep((useconds_t)poll_ms * 1000); /* no log yet */
    if (rc != 0) {
        fprintf(stderr, WHO ": %s: no readable segment (%s)\n", s.wal, wal_strerror(rc));
        return 1;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = (int64_t)s.window;
    jo.PublishAsync.ErrHandler = on_pub_error;
    jo.PublishAsync.ErrHandlerClosure = &s;
    natsConnection *nc = NULL;
    if (city_connect(WHO, urls, creds, &jo, &nc, &s.js) != NATS_OK)
        return 1;
    uint64_t next = 0;
    while (!stop && (city_ensure_stream(WHO, s.js) != NATS_OK || resume_at(&s, &next) != 0))
        sleep(1);
    fprintf(stderr, WHO ": hall %s, resuming at LSN %" PRIu64 "\n", s.hall, next);
    wal_pos hint = {0};
    int status = 0;
    while (!stop) {
        uint64_t upto = 0;
        if ((rc = durable_lsn(&s, &upto)) != 0) {
            fprintf(stderr, WHO ": durable LSN: %s\n", wal_strerror(rc));
            status = 1;
            break;
        }
        if (upto < next) {
            if (once)
                break;
            usleep((useconds_t)poll_ms * 1000);
            continue;
        }
        uint64_t end = next + s.window - 1 < upto ? next + s.window - 1 : upto;
        s.failed_min = 0;
        s.err = 0;
        wal_read_options o = {.dir = s.wal,
                              .from_lsn = next,
                              .upto_lsn = end,
                              .hint = hint,
                              .visit = visit,
                              .ctx = &s};
        wal_read_result res;
        rc = wal_read(&o, &res);
        if (rc != 0 || s.err != 0) {
            fprintf(stderr, WHO ": reading %s from LSN %" PRIu64 ": %s %s\n", s.wal, next,
                    wal_strerror(rc ? rc : s.err), rc ? res.message : "");
            status = 1;
            break;
        }
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 10000; /* ms: e.g. the server went away with acks owed */
        natsStatus st = js_PublishAsyncComplete(s.js, &po);
        if (st != NATS_OK) {
            /* Not all acknowledged: drop what is still owed, the round again. */
            natsMsgList owed = {0};
            if (js_PublishAsyncGetPendingList(&owed, s.js) == NATS_OK)
                natsMsgList_Destroy(&owed);
            if (s.failed_min == 0 || next < s.failed_min)
                s.failed_min = next;
        }
        if (s.failed_min != 0) {
            fprintf(stderr, WHO ": publish failed from LSN %" PRIu64 " (%s): again\n", s.failed_min,
                    natsStatus_GetText(st));
            next = s.failed_min;
            hint.lsn = 0;
            sleep(1);
            continue;
        }
        next = end + 1;
        hint = res.next;
    }
    js_PublishAsyncComplete(s.js, NULL);
    if (s.seg_fd >= 0)
        close(s.seg_fd);
    free(s.buf);
    jsCtx_Destroy(s.js);
    natsConnection_Destroy(nc);
    nats_Close();
    if (status == 0)
        fprintf(stderr, WHO ": hall %s shipped up to LSN %" PRIu64 "\n", s.hall, next - 1);
    return status;
}
