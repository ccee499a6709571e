/* tools/audit.c: hallq's offline commands on a hall's WAL and state.
 *
 *   hallq wal verify [WAL] [--archive DIR] [--anchor HASH@LSN]
 *   hallq wal replay [WAL] [--archive DIR] --into DIR [--until TIME | --lsn N]
 *   hallq state digest DATA
 *   hallq backup DIR [DATA] (backup.c)
 *
 * WAL is a log directory or a data dir holding wal/ (default
 * ./hallq-data). --archive DIR adds the segments `hallq wal archive` moved
 * there (audit_view_open). They only read the log: a running daemon may go on
 * writing it. Exit status: 0 intact / done, 1 damage or failure, 2 usage. */
#include "tools/audit.h"
#include "daemon/hall/calendar.h"
#include "daemon/hall/hall.h"
#include "daemon/recovery.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { A_OK = 0, A_FAIL = 1, A_USAGE = 2 };

static void audit_usage(FILE *f)
{
    fputs("usage (offline: on the hall's files, beside a running daemon or not):\n"
          "  hallq wal verify [WAL] [--archive DIR] [--anchor HASH@LSN]\n"
          "      check every record's CRC, the LSN sequence, time order and the hash\n"
          "      chain across segments; --anchor checks against a head hash written\n"
          "      down earlier. Exit 0 when intact, 1 on damage (named).\n"
          "  hallq wal replay [WAL] [--archive DIR] --into DIR [--until TIME | --lsn N]\n"
          "      rebuild the state as it was at that moment into DIR (new or empty);\n"
          "      'hallqd --data DIR --read-only' then serves it.\n"
          "  hallq wal archive [WAL] --to DIR\n"
          "      move the closed segments (all but the one hallqd writes) to DIR once\n"
          "      verified; --archive DIR lets verify and replay read them there.\n"
          "  hallq wal dump [WAL] [--json] [--since TIME] [--until TIME] [--lsn A..B]\n"
          "                 [--op NAME[,NAME]] [--actor ROLE[:ID]] [--case CASE_NO] [--ticket ID]\n"
          "      every record, one a line: LSN, hall time, actor (window:W03), op, args =>\n"
          "      result; --json: JSON Lines {lsn, at_ms, time, type, actor, op, args, result,\n"
          "      events}. Filters combine; --op repeats; --ticket follows the windows' current\n"
          "      ticket (no_show, done, transfer, intake) and the day's close.\n"
          "  hallq wal history CASE_NO [WAL] [--json]\n"
          "  hallq wal history --ticket ID [WAL] [--json]\n"
          "      the timeline of one case (with its pickup ticket) or one ticket: each step\n"
          "      with time, actor, op and outcome, time-driven ones too. Exit 1 if it never\n"
          "      appears.\n"
          "  hallq state digest DATA\n"
          "      the hash of the logical state in DATA (as the admin op digest).\n"
          "  hallq backup DIR [DATA]\n"
          "      a consistent copy of DATA into DIR (new or empty), beside a running\n"
          "      hallqd: the state, then the WAL, then pii.key (0600). Restore: use\n"
          "      DIR, or a copy, as the data dir.\n"
          "  hallq report --day YYYY-MM-DD [WAL] [--format text|csv|html] [--out FILE]\n"
          "      the day's statistics from the log alone (the figures of the admin op\n"
          "      stats for that day, as at the day's end) and their series: waits by\n"
          "      half hour, tickets by hour, service by window, instant rate by hour,\n"
          "      deadline marks by department. html: one page with charts, no assets.\n"
          "      Exit 1 when the log holds no record of that day.\n"
          "\n"
          "WAL: a log directory, or a data dir holding wal/ (default ./hallq-data).\n"
          "Every command that reads the log takes --archive DIR: the segments moved\n"
          "there by 'hallq wal archive' are read with the log's own.\n"
          "TIME: 'YYYY-MM-DD HH:MM[:SS]' in the hall's local time, or ms since the epoch.\n",
          f);
}

/* ---- shared ---- */

void audit_progress_init(audit_progress *p, const char *what, uint64_t total)
{
    p->tty = isatty(STDERR_FILENO) == 1;
    p->what = what;
    p->total = total;
}

void audit_progress_show(audit_progress *p, uint64_t done)
{
    if (!p->tty)
        return;
    if (p->total)
        fprintf(stderr, "\r%s: %" PRIu64 " of %" PRIu64 " (%d%%)   ", p->what, done, p->total,
                (int)(done * 100 / p->total));
    else
        fprintf(stderr, "\r%s: %" PRIu64 "   ", p->what, done);
}

void audit_progress_end(audit_progress *p)
{
    if (p->tty)
        fputs("\r\033[K", stderr);
}

void audit_time_format(const hall_config *cfg, int64_t ms, char out[20])
{
    int32_t day = hall_local_day(&cfg->cal, ms);
    int64_t in_day = ms - hall_local_ms(&cfg->cal, day, 0);
    int y, m, d;
    hall_civil_from_day(day, &y, &m, &d);
    int s = (int)(in_day / 1000);
    snprintf(out, 20, "%04d-%02d-%02d %02d:%02d:%02d", y, m, d, s / 3600, s / 60 % 60, s % 60);
}

int audit_time_parse(const hall_config *cfg, const char *s, int64_t *ms)
{
    size_t n = strlen(s);
    if (n && strspn(s, "0123456789") == n) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || v > INT64_MAX)
            return -1;
        *ms = (int64_t)v;
        return 0;
    }
    int32_t day;
    if (n < 10 || hall_day_parse(s, 10, &day) != 0)
        return -1;
    int hh = 0, mm = 0, ss = 0;
    if (n > 10) {
        char sep, extra;
        int k = sscanf(s + 10, "%c%2d:%2d:%2d%c", &sep, &hh, &mm, &ss, &extra);
        if ((sep != ' ' && sep != 'T') || (k != 3 && k != 4) || hh > 23 || mm > 59 || ss > 59 ||
            hh < 0 || mm < 0 || ss < 0)
            return -1;
        if (k == 3 && n != 16)
            return -1;
    }
    *ms = hall_local_ms(&cfg->cal, day, hh * 60 + mm) + ss * 1000;
    return 0;
}

/* A log directory from a path that may be a data dir. */
/* `--archive DIR` given to a command that does not take it itself (dump,
 * history, report): audit_wal_dir then hands out a view of the archive and
 * the log together, removed when hallq exits. */
static const char *g_archive;
static audit_view g_view;

static void close_global_view(void)
{
    audit_view_close(&g_view);
}

void audit_wal_dir(const char *arg, char *out, size_t cap)
{
    struct stat st;
    char sub[PATH_MAX];
    if (!arg)
        arg = "./hallq-data";
    snprintf(sub, sizeof sub, "%s/wal", arg);
    if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(out, cap, "%s", sub);
    else
        snprintf(out, cap, "%s", arg);
    if (g_archive && !g_view.dir[0]) {
        char err[1024];
        if (audit_view_open(&g_view, out, g_archive, err, sizeof err) != 0) {
            fprintf(stderr, "hallq: %s\n", err);
            exit(1);
        }
        atexit(close_global_view);
    }
    if (g_archive)
        snprintf(out, cap, "%s", g_view.dir);
}

bool audit_segment_name(const char *name)
{
    return strlen(name) == 24 && strspn(name, "0123456789") == 20 && !strcmp(name + 20, ".wal");
}

/* Copies `from` as it is now into a new file `to` (mode `mode`; `excl`:
 * refuse an existing `to`, else replace it), synced before it returns. On
 * failure `to` is removed and err says which call failed. */
int audit_copy_file(const char *from, const char *to, mode_t mode, bool excl, char *err,
                    size_t errlen)
{
    static char buf[1 << 20];
    int in = open(from, O_RDONLY | O_CLOEXEC), out = -1;
    const char *call = "open";
    if (in < 0)
        goto fail;
    out = open(to, O_WRONLY | O_CREAT | (excl ? O_EXCL : O_TRUNC) | O_CLOEXEC, mode);
    if (out < 0 || fchmod(out, mode) != 0)
        goto fail;
    for (;;) {
        call = "read";
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0)
            goto fail;
        if (r == 0)
            break;
        call = "write";
        for (ssize_t done = 0; done < r;) {
            ssize_t w = write(out, buf + done, (size_t)(r - done));
            if (w < 0)
                goto fail;
            done += w;
        }
    }
    call = "fsync";
    if (fsync(out) != 0)
        goto fail;
    call = "close";
    int c = close(out);
    out = -1;
    if (c != 0)
        goto fail;
    close(in);
    return 0;
fail:
    snprintf(err, errlen, "copying %s to %s: %s: %s", from, to, call, strerror(errno));
    if (out >= 0) {
        close(out);
        unlink(to);
    }
    if (in >= 0)
        close(in);
    return -1;
}

int audit_files_equal(const char *a, const char *b)
{
    int rc = 1;
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    if (!fa || !fb) {
        rc = -errno;
        goto out;
    }
    static char ba[1 << 16], bb[1 << 16];
    for (;;) {
        size_t na = fread(ba, 1, sizeof ba, fa), nb = fread(bb, 1, sizeof bb, fb);
        if (ferror(fa) || ferror(fb)) {
            rc = -EIO;
            break;
        }
        if (na != nb || memcmp(ba, bb, na) != 0) {
            rc = 0;
            break;
        }
        if (na == 0)
            break;
    }
out:
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return rc;
}

void audit_view_close(audit_view *v)
{
    if (!v->temp)
        return;
    DIR *d = opendir(v->dir);
    struct dirent *de;
    char p[PATH_MAX + 64];
    while (d && (de = readdir(d)) != NULL)
        if (audit_segment_name(de->d_name)) {
            snprintf(p, sizeof p, "%s/%s", v->dir, de->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
    rmdir(v->dir);
    v->temp = false;
}

/* Links every segment of `from` into the view; one already there (from
 * the archive) must be the same file. */
static int view_add(audit_view *v, const char *from, const char *what, char *err, size_t errlen)
{
    DIR *d = opendir(from);
    if (!d) {
        snprintf(err, errlen, "%s%s: %s", what, from, strerror(errno));
        return -1;
    }
    char abs[PATH_MAX];
    if (!realpath(from, abs)) {
        snprintf(err, errlen, "%s%s: %s", what, from, strerror(errno));
        closedir(d);
        return -1;
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (!audit_segment_name(de->d_name))
            continue;
        char src[PATH_MAX + 32], dst[PATH_MAX + 32];
        snprintf(src, sizeof src, "%s/%s", abs, de->d_name);
        snprintf(dst, sizeof dst, "%s/%s", v->dir, de->d_name);
        if (symlink(src, dst) == 0)
            continue;
        if (errno != EEXIST) {
            snprintf(err, errlen, "linking %s into %s: %s", src, v->dir, strerror(errno));
            rc = -1;
            break;
        }
        int eq = audit_files_equal(src, dst);
        if (eq != 1) {
            snprintf(err, errlen, "segment %s is both in %s and in the archive, %s", de->d_name,
                     from, eq == 0 ? "and the two differ" : strerror(-eq));
            rc = -1;
        }
    }
    closedir(d);
    return rc;
}

int audit_view_open(audit_view *v, const char *wal_dir, const char *archive, char *err,
                    size_t errlen)
{
    memset(v, 0, sizeof *v);
    if (!archive) {
        snprintf(v->dir, sizeof v->dir, "%s", wal_dir);
        return 0;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(v->dir, sizeof v->dir, "%s/hallq-view-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(v->dir)) {
        snprintf(err, errlen, "creating %s: %s", v->dir, strerror(errno));
        return -1;
    }
    v->temp = true;
    if (view_add(v, archive, "--archive ", err, errlen) != 0 ||
        view_add(v, wal_dir, "", err, errlen) != 0) {
        audit_view_close(v);
        return -1;
    }
    return 0;
}

typedef struct first_config {
    hall_config *cfg;
    char *err;
    size_t errlen;
} first_config;

static int first_config_visit(void *ctx, const wal_record *rec, const wal_pos *pos)
{
    first_config *f = ctx;
    const hall_op_def *def = hall_op_by_record(rec->type);
    msgpack_zone z;
    msgpack_object o;
    size_t off = 0;
    (void)pos;
    if (!def || (def->op != HALL_OP_CONFIG && def->op != HALL_OP_CONFIG_RELOAD)) {
        snprintf(f->err, f->errlen, "LSN %" PRIu64 ": the log does not start with a config record",
                 rec->lsn);
        return 1;
    }
    msgpack_zone_init(&z, 1024);
    const msgpack_object *args = NULL, *text = NULL;
    if (msgpack_unpack((const char *)rec->payload, rec->payload_len, &off, &z, &o) ==
            MSGPACK_UNPACK_SUCCESS &&
        (args = proto_map_get(&o, "args")) && (text = proto_map_get(args, "text")) &&
        text->type == MSGPACK_OBJECT_STR)
        hall_config_parse(text->via.str.ptr, text->via.str.size, "the log's config record", &f->cfg,
                          f->err, f->errlen);
    else
        snprintf(f->err, f->errlen, "LSN %" PRIu64 ": malformed config record", rec->lsn);
    msgpack_zone_destroy(&z);
    return 1;
}

hall_config *audit_log_config(const char *wal_dir, char *err, size_t errlen)
{
    first_config f = {.err = err, .errlen = errlen};
    wal_scan_options o = {
        .dir = wal_dir, .must_exist = true, .visit = first_config_visit, .ctx = &f};
    wal_scan_result res;
    err[0] = 0;
    int rc = wal_scan(&o, &res);
    if (rc < 0 && !f.cfg) {
        snprintf(err, errlen, "%s: %s", wal_dir, res.message[0] ? res.message : wal_strerror(rc));
        return NULL;
    }
    if (!f.cfg && !err[0])
        snprintf(err, errlen, "%s: the log holds no records", wal_dir);
    return f.cfg;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static int unhex(const char *s, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* ---- wal verify ---- */

typedef struct verify_ctx {
    audit_progress prog;
    uint64_t anchor_lsn;
    uint8_t anchor[WAL_HASH_LEN];
    bool anchor_seen, anchor_ok;
    wal_pos anchor_at;
    /* The first config record from a newer rules version (hall.h): the
     * log is intact, but this build cannot replay it. */
    uint64_t newer_lsn, newer_rules;
    uint64_t rules; /* the latest config record's */
} verify_ctx;

/* A config record's rules version (1 when it names none; 0: unreadable). */
static uint64_t record_rules(const wal_record *rec)
{
    msgpack_zone z;
    msgpack_object o;
    size_t off = 0;
    uint64_t rules = 0;
    msgpack_zone_init(&z, 1024);
    if (msgpack_unpack((const char *)rec->payload, rec->payload_len, &off, &z, &o) ==
            MSGPACK_UNPACK_SUCCESS &&
        hall_config_rules_arg(proto_map_get(&o, "args"), &rules) != 0)
        rules = 0;
    msgpack_zone_destroy(&z);
    return rules;
}

static int verify_visit(void *ctx, const wal_record *rec, const wal_pos *pos)
{
    verify_ctx *v = ctx;
    const hall_op_def *def = hall_op_by_record(rec->type);
    if (def && def->op == HALL_OP_CONFIG) {
        v->rules = record_rules(rec);
        if (v->rules > HALL_RULES_VERSION && !v->newer_lsn) {
            v->newer_lsn = rec->lsn;
            v->newer_rules = v->rules;
        }
    }
    if ((rec->lsn & 0x3fff) == 0)
        audit_progress_show(&v->prog, rec->lsn);
    if (v->anchor_lsn && rec->lsn == v->anchor_lsn) {
        v->anchor_seen = true;
        v->anchor_ok = memcmp(rec->hash, v->anchor, WAL_HASH_LEN) == 0;
        v->anchor_at = *pos;
    }
    return 0;
}

/* A time of the log: in the hall's zone when the log's config is known,
 * else in UTC, marked so. */
static void log_time(const hall_config *cfg, uint64_t ms, char out[24])
{
    if (cfg) {
        audit_time_format(cfg, (int64_t)ms, out);
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(out, 24, "%Y-%m-%d %H:%M:%S UTC", &tm))
        snprintf(out, 24, "%" PRIu64, ms);
}

static int cmd_wal_verify(int ac, char **av)
{
    const char *path = NULL, *anchor = NULL, *archive = NULL;
    for (int i = 0; i < ac; i++) {
        if (!strcmp(av[i], "--anchor") && i + 1 < ac)
            anchor = av[++i];
        else if (!strcmp(av[i], "--archive") && i + 1 < ac)
            archive = av[++i];
        else if (av[i][0] != '-' && !path)
            path = av[i];
        else
            return audit_usage(stderr), A_USAGE;
    }
    verify_ctx v = {0};
    if (anchor) {
        const char *at = strchr(anchor, '@');
        char *end;
        if (!at || at - anchor != 2 * WAL_HASH_LEN || unhex(anchor, WAL_HASH_LEN, v.anchor) ||
            !(v.anchor_lsn = strtoull(at + 1, &end, 10)) || *end) {
            fprintf(stderr, "hallq: --anchor: expected HASH@LSN (64 hex digits, then @LSN)\n");
            return A_USAGE;
        }
    }
    char dir[PATH_MAX], err[1024];
    audit_wal_dir(path, dir, sizeof dir);
    audit_view view;
    if (audit_view_open(&view, dir, archive, err, sizeof err) != 0) {
        printf("log       %s\narchive   %s\nFAILED    %s\n", dir, archive, err);
        return A_FAIL;
    }
    hall_config *cfg = audit_log_config(view.dir, err, sizeof err);
    audit_progress_init(&v.prog, "verify: LSN", 0);
    wal_scan_options o = {.dir = view.dir, .must_exist = true, .visit = verify_visit, .ctx = &v};
    wal_scan_result res;
    int rc = wal_scan(&o, &res);
    audit_progress_end(&v.prog);
    audit_view_close(&view);
    int code = A_OK;
    char head[2 * WAL_HASH_LEN + 1], t0[24] = "-", t1[24] = "-";
    hex(res.head_hash, WAL_HASH_LEN, head);
    if (res.records) {
        log_time(cfg, res.first_at_ms, t0);
        log_time(cfg, res.last_at_ms, t1);
    }
    printf("log       %s\n", dir);
    if (archive)
        printf("archive   %s\n", archive);
    printf("hall      %s\nsegments  %d\nrecords   %" PRIu64 " (LSN %" PRIu64 "..%" PRIu64
           ")\nfirst     %s\nlast      %s\n",
           res.hall_id[0] ? res.hall_id : "-", res.segments, res.records, res.first_lsn,
           res.last_lsn, t0, t1);
    if (res.records)
        printf("head      %s@%" PRIu64 "\n", head, res.last_lsn);
    else /* no record: no hash anyone could anchor to */
        printf("head      -\n");
    if (rc < 0 && !res.bad_at.segment[0]) {
        /* Nothing was read (no such dir, not a dir, no segment): no place
         * to name, and it is not damage. */
        printf("FAILED    %s\n", res.message[0] ? res.message : wal_strerror(rc));
        code = A_FAIL;
    } else if (rc < 0) {
        printf("DAMAGED   %s, offset %" PRIu64 ", LSN %" PRIu64 ": %s\n", res.bad_at.segment,
               res.bad_at.offset, res.bad_at.lsn, res.message[0] ? res.message : wal_strerror(rc));
        code = A_FAIL;
    } else if (res.torn) {
        printf("DAMAGED   %s, offset %" PRIu64 ", LSN %" PRIu64
               ": torn tail (%s); hallqd cuts it at its next start\n",
               res.torn_at.segment, res.torn_at.offset, res.torn_at.lsn, res.torn_what);
        code = A_FAIL;
    } else if (!cfg && res.first_lsn > 1) {
        /* Its first segments were archived: the config record is there,
         * and the chain is checked from the first segment here on. */
        printf("note      the log starts at LSN %" PRIu64
               ": the segments before it are not here (archived? --archive DIR checks them "
               "too); times in UTC\n",
               res.first_lsn);
    } else if (!cfg) {
        printf("DAMAGED   %s\n", err);
        code = A_FAIL;
    }
    if (code == A_OK && v.newer_lsn) {
        printf("NEWER     WAL record %" PRIu64 " puts rules %" PRIu64
               " in force for the records after it; this build knows rules 1 to %d: use a "
               "newer hallq\n",
               v.newer_lsn, v.newer_rules, HALL_RULES_VERSION);
        code = A_FAIL;
    } else if (code == A_OK && v.rules) {
        printf("rules     %" PRIu64 " (from the latest config record)\n", v.rules);
    }
    if (anchor && code == A_OK) {
        if (!v.anchor_seen && res.records && v.anchor_lsn < res.first_lsn) {
            printf("ANCHOR    LSN %" PRIu64 " is before the log's first record (LSN %" PRIu64
                   "): pass --archive DIR to check it\n",
                   v.anchor_lsn, res.first_lsn);
            code = A_FAIL;
        } else if (!v.anchor_seen) {
            printf("ANCHOR    LSN %" PRIu64 " is not in the log (it ends at LSN %" PRIu64
                   "): records were removed\n",
                   v.anchor_lsn, res.last_lsn);
            code = A_FAIL;
        } else if (!v.anchor_ok) {
            printf("ANCHOR    %s, offset %" PRIu64 ", LSN %" PRIu64
                   ": the chain hash differs from the anchor: the log was rewritten up to "
                   "there\n",
                   v.anchor_at.segment, v.anchor_at.offset, v.anchor_lsn);
            code = A_FAIL;
        } else {
            printf("anchor    matches at LSN %" PRIu64 "\n", v.anchor_lsn);
        }
    }
    if (code == A_OK)
        printf("intact\n");
    hall_config_free(cfg);
    return code;
}

/* ---- wal replay ---- */

static void replay_progress(void *ctx, uint64_t lsn)
{
    audit_progress_show(ctx, lsn);
}

static int dir_is_empty_or_new(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT && mkdir(dir, 0750) == 0)
            return 0;
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    char probe[PATH_MAX];
    snprintf(probe, sizeof probe, "%s/%s", dir, HALL_STORE_FILE);
    if (!S_ISDIR(st.st_mode) || access(probe, F_OK) == 0) {
        snprintf(err, errlen, "%s: not an empty directory (it holds a state already)", dir);
        return -1;
    }
    return 0;
}

static int cmd_wal_replay(int ac, char **av)
{
    const char *path = NULL, *into = NULL, *until = NULL, *lsn_s = NULL, *archive = NULL;
    for (int i = 0; i < ac; i++) {
        if (!strcmp(av[i], "--into") && i + 1 < ac)
            into = av[++i];
        else if (!strcmp(av[i], "--archive") && i + 1 < ac)
            archive = av[++i];
        else if (!strcmp(av[i], "--until") && i + 1 < ac)
            until = av[++i];
        else if (!strcmp(av[i], "--lsn") && i + 1 < ac)
            lsn_s = av[++i];
        else if (av[i][0] != '-' && !path)
            path = av[i];
        else
            return audit_usage(stderr), A_USAGE;
    }
    if (!into || (until && lsn_s))
        return audit_usage(stderr), A_USAGE;
    char dir[PATH_MAX], err[1024];
    audit_wal_dir(path, dir, sizeof dir);
    audit_view view;
    if (audit_view_open(&view, dir, archive, err, sizeof err) != 0) {
        fprintf(stderr, "hallq: %s\n", err);
        return A_FAIL;
    }
    int code = A_FAIL;
    hall_config *cfg = NULL;
    hall_store st = {0};
    hall *h = NULL;
    bool st_open = false;
    wal_scan_result res;
    wal_scan_options so = {.dir = view.dir, .must_exist = true};
    int rc = wal_scan(&so, &res);
    recovery_bounds b = {.progress = replay_progress, .quiet = true};
    uint64_t applied = 0;
    b.applied = &applied;
    char t[20];
    if (rc < 0 && !res.bad_at.segment[0]) {
        fprintf(stderr, "hallq: %s\n", res.message[0] ? res.message : wal_strerror(rc));
        goto out;
    }
    if (rc < 0) {
        fprintf(stderr, "hallq: %s is damaged at %s offset %" PRIu64 " (LSN %" PRIu64 "): %s\n",
                dir, res.bad_at.segment, res.bad_at.offset, res.bad_at.lsn, res.message);
        goto out;
    }
    if (res.records && res.first_lsn > 1) {
        fprintf(stderr,
                "hallq: %s starts at LSN %" PRIu64
                ": a replay starts at LSN 1, from segments that are not here (archived? "
                "pass --archive DIR)\n",
                dir, res.first_lsn);
        goto out;
    }
    if (!(cfg = audit_log_config(view.dir, err, sizeof err))) {
        fprintf(stderr, "hallq: %s\n", err);
        goto out;
    }
    if (lsn_s) {
        char *end;
        b.upto_lsn = strtoull(lsn_s, &end, 10);
        if (!b.upto_lsn || *end) {
            fprintf(stderr, "hallq: --lsn: expected a record number (1 or more)\n");
            code = A_USAGE;
            goto out;
        }
    }
    if (until && audit_time_parse(cfg, until, &b.until_ms) != 0) {
        fprintf(stderr, "hallq: --until %s: expected 'YYYY-MM-DD HH:MM[:SS]' (hall time) or ms\n",
                until);
        code = A_USAGE;
        goto out;
    }
    if (b.until_ms && b.until_ms < (int64_t)res.first_at_ms) {
        audit_time_format(cfg, (int64_t)res.first_at_ms, t);
        fprintf(stderr, "hallq: --until %s is before the log's first record (%s)\n", until, t);
        goto out;
    }
    if (b.upto_lsn > res.last_lsn) {
        fprintf(stderr, "hallq: --lsn %" PRIu64 " is past the log's end (LSN %" PRIu64 ")\n",
                b.upto_lsn, res.last_lsn);
        goto out;
    }
    if (dir_is_empty_or_new(into, err, sizeof err) != 0) {
        fprintf(stderr, "hallq: --into %s\n", err);
        goto out;
    }
    audit_progress prog;
    audit_progress_init(&prog, "replay: LSN", res.last_lsn);
    b.ctx = &prog;
    if (hall_store_open(&st, into, false, cfg->state.map_bytes, err, sizeof err) != 0) {
        fprintf(stderr, "hallq: %s\n", err);
        goto out;
    }
    st_open = true;
    struct timespec t_start, t_end;
    clock_gettime(CLOCK_MONOTONIC, &t_start);
    if (hall_open(&h, &st, err, sizeof err) != 0 ||
        recovery_replay(h, &st, view.dir, NULL, NULL, &b, err, sizeof err) != 0) {
        audit_progress_end(&prog);
        fprintf(stderr, "hallq: replay into %s failed: %s\n", into, err);
        goto out;
    }
    clock_gettime(CLOCK_MONOTONIC, &t_end);
    audit_progress_end(&prog);
    int64_t moment = b.until_ms ? b.until_ms : hall_clock_ms(h);
    char info[PATH_MAX];
    snprintf(info, sizeof info, "%s/replay.info", into);
    FILE *f = fopen(info, "w");
    if (!f ||
        fprintf(f, "until_ms=%lld\nlsn=%" PRIu64 "\nfrom=%s\n", (long long)moment, applied, dir) <
            0 ||
        (archive && fprintf(f, "archive=%s\n", archive) < 0) || fclose(f) != 0) {
        fprintf(stderr, "hallq: writing %s: %s\n", info, strerror(errno));
        goto out;
    }
    MDB_txn *txn;
    uint8_t d[32];
    char dh[65];
    if (mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn) != 0 || hall_store_digest(&st, txn, d) != 0) {
        fprintf(stderr, "hallq: reading the replayed state failed\n");
        goto out;
    }
    mdb_txn_abort(txn);
    hex(d, 32, dh);
    double secs =
        (double)(t_end.tv_sec - t_start.tv_sec) + (double)(t_end.tv_nsec - t_start.tv_nsec) / 1e9;
    audit_time_format(cfg, moment, t);
    printf("replayed  LSN 1..%" PRIu64 " into %s (%.2f s, %.0f records/s)\nas of     %s\n"
           "digest    %s\nserve it  hallqd --data %s --read-only\n",
           applied, into, secs, secs > 0 ? (double)applied / secs : 0.0, t, dh, into);
    code = A_OK;
out:
    hall_close(h);
    if (st_open)
        hall_store_close(&st);
    hall_config_free(cfg);
    audit_view_close(&view);
    return code;
}

/* ---- state digest ---- */

static int cmd_state_digest(int ac, char **av)
{
    if (ac != 1 || av[0][0] == '-')
        return audit_usage(stderr), A_USAGE;
    hall_store st;
    char err[512], dh[65];
    if (hall_store_open(&st, av[0], true, 0, err, sizeof err) != 0) {
        fprintf(stderr, "hallq: %s\n", err);
        return A_FAIL;
    }
    MDB_txn *txn;
    uint8_t d[32];
    uint64_t lsn = 0;
    int rc = mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);
    if (rc == 0) {
        if ((rc = hall_store_digest(&st, txn, d)) == 0)
            rc = hall_store_applied_lsn(&st, txn, &lsn);
        mdb_txn_abort(txn);
    }
    hall_store_close(&st);
    if (rc) {
        fprintf(stderr, "hallq: %s: %s\n", av[0], mdb_strerror(rc));
        return A_FAIL;
    }
    hex(d, 32, dh);
    printf("%s lsn=%" PRIu64 "\n", dh, lsn);
    return A_OK;
}

int audit_main(int ac, char **av)
{
    if (ac < 1)
        return -1;
    const char *w = av[0], *sub = ac > 1 ? av[1] : "";
    if (!strcmp(w, "backup"))
        return audit_backup(ac - 1, av + 1);
    bool own_archive = !strcmp(w, "wal") && (!strcmp(sub, "verify") || !strcmp(sub, "replay") ||
                                             !strcmp(sub, "archive"));
    if (!own_archive && (!strcmp(w, "wal") || !strcmp(w, "report"))) {
        /* --archive DIR for every reader: take it out of the words. */
        int n = 0;
        for (int i = 0; i < ac; i++) {
            if (!strcmp(av[i], "--archive") && i + 1 < ac) {
                g_archive = av[++i];
                continue;
            }
            av[n++] = av[i];
        }
        ac = n;
    }
    if (!strcmp(w, "wal")) {
        if (!strcmp(sub, "verify"))
            return cmd_wal_verify(ac - 2, av + 2);
        if (!strcmp(sub, "replay"))
            return cmd_wal_replay(ac - 2, av + 2);
        if (!strcmp(sub, "dump"))
            return audit_wal_dump(ac - 2, av + 2);
        if (!strcmp(sub, "history"))
            return audit_wal_history(ac - 2, av + 2);
        if (!strcmp(sub, "archive"))
            return audit_wal_archive(ac - 2, av + 2);
        return audit_usage(stderr), A_USAGE;
    }
    if (!strcmp(w, "state")) {
        if (!strcmp(sub, "digest"))
            return cmd_state_digest(ac - 2, av + 2);
        return audit_usage(stderr), A_USAGE;
    }
    if (!strcmp(w, "report"))
        return audit_report(ac - 1, av + 1);
    return -1;
}
