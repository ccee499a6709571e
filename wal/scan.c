/* wal/scan.c: reading the log back: verification, the visitor, and the
 * repair of a torn tail.
 *
 * Segments are mapped read-only and walked record by record; each record's
 * CRC, LSN, time and chain link are checked. Only the last record region
 * of the last segment may be damaged (a torn tail), and only when nothing
 * but zeros follows it; damage anywhere else is reported with segment,
 * offset and LSN, and nothing is repaired. */
#include "wal/wal_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct seg_ent {
    uint64_t first_lsn;
    char name[64];
} seg_ent;

static int cmp_seg(const void *a, const void *b)
{
    uint64_t x = ((const seg_ent *)a)->first_lsn, y = ((const seg_ent *)b)->first_lsn;
    return (x > y) - (x < y);
}

/* Lists the segment files in dir, sorted by first LSN. */
static int list_segments(const char *dir, seg_ent **out, int *count)
{
    DIR *d = opendir(dir);
    *out = NULL;
    *count = 0;
    if (!d)
        return -errno;
    int cap = 0, n = 0;
    seg_ent *v = NULL;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t first;
        if (!wal_segment_parse_name(de->d_name, &first))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            seg_ent *nv = realloc(v, (size_t)cap * sizeof *v);
            if (!nv) {
                free(v);
                closedir(d);
                return -ENOMEM;
            }
            v = nv;
        }
        v[n].first_lsn = first;
        snprintf(v[n].name, sizeof v[n].name, "%s", de->d_name);
        n++;
    }
    closedir(d);
    if (n)
        qsort(v, (size_t)n, sizeof *v, cmp_seg);
    *out = v;
    *count = n;
    return 0;
}

__attribute__((format(printf, 6, 7))) static int damage(wal_scan_result *res, int code,
                                                        const char *seg, uint64_t off, uint64_t lsn,
                                                        const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(res->bad_at.segment, sizeof res->bad_at.segment, "%s", seg);
    res->bad_at.offset = off;
    res->bad_at.lsn = lsn;
    snprintf(res->message, sizeof res->message,
             "segment %s offset %" PRIu64 " (LSN %" PRIu64 "): %s", seg, off, lsn, what);
    return code;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

typedef struct scan_state {
    const wal_scan_options *opt;
    wal_scan_result *res;
    uint64_t next_lsn; /* expected LSN of the next record (0: take the first) */
    uint64_t last_at;
    uint8_t chain[WAL_HASH_LEN];
    bool have_chain;
    char hall[WAL_HALL_ID_MAX + 1];
} scan_state;

/* Walks one mapped segment. Returns 0, a visitor's value, or an error. */
static int scan_segment(scan_state *s, const char *name, const uint8_t *m, size_t size, bool last)
{
    wal_scan_result *res = s->res;
    wal_seg_header h;
    if (size < WAL_SEGMENT_HEADER_LEN)
        return damage(res, WAL_E_HEADER, name, 0, s->next_lsn,
                      "the file is shorter than a segment header");
    int rc = wal_header_decode(m, &h);
    if (rc == WAL_E_VERSION)
        return damage(res, rc, name, 0, s->next_lsn,
                      "written by format version %u; this hallq reads version %d (upgrade it)",
                      wal_get32(m + 8), WAL_FORMAT_VERSION);
    if (rc)
        return damage(res, rc, name, 0, s->next_lsn, "bad segment header (magic or CRC)");
    uint64_t named;
    wal_segment_parse_name(name, &named);
    if (h.first_lsn != named)
        return damage(res, WAL_E_HEADER, name, 0, h.first_lsn,
                      "the header says first LSN %" PRIu64 " but the name says %" PRIu64,
                      h.first_lsn, named);
    if (!s->hall[0]) {
        if (s->opt->hall_id && strcmp(s->opt->hall_id, h.hall_id) != 0)
            return damage(res, WAL_E_HALL, name, 0, h.first_lsn,
                          "segment of hall '%s', expected hall '%s'", h.hall_id, s->opt->hall_id);
        snprintf(s->hall, sizeof s->hall, "%s", h.hall_id);
        snprintf(res->hall_id, sizeof res->hall_id, "%s", h.hall_id);
    } else if (strcmp(s->hall, h.hall_id) != 0) {
        return damage(res, WAL_E_HALL, name, 0, h.first_lsn,
                      "segment of hall '%s' among segments of hall '%s'", h.hall_id, s->hall);
    }
    if (s->next_lsn && h.first_lsn != s->next_lsn)
        return damage(res, WAL_E_GAP, name, 0, h.first_lsn,
                      "segment starts at LSN %" PRIu64 " but the previous one ended at %" PRIu64,
                      h.first_lsn, s->next_lsn - 1);
    if (!s->have_chain) {
        if (h.first_lsn == 1) {
            uint8_t g[WAL_HASH_LEN];
            wal_genesis_hash(h.hall_id, g);
            if (memcmp(g, h.prev_hash, WAL_HASH_LEN) != 0)
                return damage(res, WAL_E_CHAIN, name, 0, 1,
                              "the first segment does not start the hall's chain");
        }
        memcpy(s->chain, h.prev_hash, WAL_HASH_LEN);
        s->have_chain = true;
    } else if (memcmp(s->chain, h.prev_hash, WAL_HASH_LEN) != 0) {
        return damage(res, WAL_E_CHAIN, name, 0, h.first_lsn,
                      "the carried chain hash does not match the previous segment's last record");
    }
    s->next_lsn = h.first_lsn;
    res->segments++;
    snprintf(res->last_segment, sizeof res->last_segment, "%s", name);
    res->segment_bytes = h.segment_bytes;

    size_t pos = WAL_SEGMENT_HEADER_LEN;
    for (;;) {
        wal_record rec;
        size_t total = 0;
        int pr = pos < size ? wal_record_parse(m + pos, size - pos, &rec, &total) : WAL_REC_ZERO;
        if (pr == WAL_REC_ZERO) {
            if (!all_zero(m + pos, size - pos)) {
                size_t nz = pos;
                while (nz < size && !m[nz])
                    nz++;
                return damage(res, WAL_E_CORRUPT, name, pos, s->next_lsn,
                              "zeros, then data again at offset %zu: not a torn tail", nz);
            }
            res->end_offset = pos;
            return 0;
        }
        if (pr != WAL_REC_OK) {
            const char *what = pr == WAL_REC_SHORT    ? "a short record"
                               : pr == WAL_REC_BADHDR ? "an impossible record header"
                                                      : "a bad CRC";
            size_t after = pr == WAL_REC_BADCRC   ? pos + total
                           : pr == WAL_REC_BADHDR ? pos + WAL_RECORD_HEADER_LEN
                                                  : size;
            if (after > size)
                after = size;
            if (last && all_zero(m + after, size - after)) {
                res->torn = true;
                snprintf(res->torn_at.segment, sizeof res->torn_at.segment, "%s", name);
                res->torn_at.offset = pos;
                res->torn_at.lsn = s->next_lsn;
                snprintf(res->torn_what, sizeof res->torn_what, "%s at the end of the log", what);
                res->end_offset = pos;
                return 0;
            }
            return damage(res, WAL_E_CORRUPT, name, pos, s->next_lsn, "%s, and %s: not a torn tail",
                          what, last ? "data follows it" : "later segments follow");
        }
        if (rec.lsn != s->next_lsn)
            return damage(res, WAL_E_GAP, name, pos, rec.lsn,
                          "LSN %" PRIu64 " where %" PRIu64 " was expected (a gap or reordering)",
                          rec.lsn, s->next_lsn);
        uint8_t want[WAL_HASH_LEN];
        wal_record_chain(m + pos, total, s->chain, want);
        if (memcmp(want, rec.hash, WAL_HASH_LEN) != 0)
            return damage(res, WAL_E_CHAIN, name, pos, rec.lsn,
                          "the hash chain breaks here (a record was edited, removed or moved)");
        if (rec.at_ms < s->last_at)
            return damage(res, WAL_E_TIME, name, pos, rec.lsn,
                          "time %" PRIu64 " is before the previous record's %" PRIu64, rec.at_ms,
                          s->last_at);
        memcpy(s->chain, rec.hash, WAL_HASH_LEN);
        s->last_at = rec.at_ms;
        if (!res->records++) {
            res->first_lsn = rec.lsn;
            res->first_at_ms = rec.at_ms;
        }
        res->last_lsn = rec.lsn;
        res->last_at_ms = rec.at_ms;
        s->next_lsn = rec.lsn + 1;
        if (s->opt->visit && rec.lsn > s->opt->from_lsn) {
            wal_pos wp = {.offset = pos, .lsn = rec.lsn};
            snprintf(wp.segment, sizeof wp.segment, "%s", name);
            int v = s->opt->visit(s->opt->ctx, &rec, &wp);
            if (v)
                return v;
        }
        pos += total;
    }
}

int wal_scan(const wal_scan_options *opt, wal_scan_result *res)
{
    memset(res, 0, sizeof *res);
    seg_ent *segs;
    int n, rc = list_segments(opt->dir, &segs, &n);
    if (rc == -ENOENT && !opt->must_exist)
        return 0;
    if (rc) {
        snprintf(res->message, sizeof res->message, "cannot read %s: %s", opt->dir, strerror(-rc));
        return rc;
    }
    if (n == 0 && opt->must_exist) {
        free(segs);
        snprintf(res->message, sizeof res->message, "%s holds no WAL segment", opt->dir);
        return -ENOENT;
    }
    scan_state s = {.opt = opt, .res = res};
    for (int i = 0; i < n && rc == 0; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", opt->dir, segs[i].name);
        /* Skip segments wholly at or before from_lsn, trusting the next
         * segment's header for the chain and the LSN to expect. */
        if (opt->skip_verified && i + 1 < n && segs[i + 1].first_lsn <= opt->from_lsn + 1)
            continue;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            rc = -errno;
            damage(res, rc, segs[i].name, 0, s.next_lsn, "cannot read: %s", strerror(errno));
            if (fd >= 0)
                close(fd);
            break;
        }
        size_t size = (size_t)st.st_size;
        const uint8_t *m = NULL;
        if (size) {
            m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (m == MAP_FAILED) {
                rc = -errno;
                damage(res, rc, segs[i].name, 0, s.next_lsn, "cannot map: %s", strerror(errno));
                close(fd);
                break;
            }
            madvise((void *)m, size, MADV_SEQUENTIAL);
        }
        close(fd);
        rc = scan_segment(&s, segs[i].name, m ? m : (const uint8_t *)"", size, i == n - 1);
        if (m)
            munmap((void *)m, size);
    }
    if (!res->records && s.have_chain)
        memcpy(res->head_hash, s.chain, WAL_HASH_LEN);
    else if (res->records)
        memcpy(res->head_hash, s.chain, WAL_HASH_LEN);
    free(segs);
    return rc;
}

static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = 0;
    if (in < 0)
        return -errno;
    out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (out < 0) {
        rc = -errno;
        close(in);
        return rc;
    }
    static uint8_t buf[1 << 16];
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : 0;
            break;
        }
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(out, buf + off, (size_t)(r - off));
            if (w < 0) {
                rc = -errno;
                break;
            }
            off += w;
        }
        if (rc)
            break;
    }
    if (rc == 0 && fsync(out) != 0)
        rc = -errno;
    close(in);
    close(out);
    return rc;
}

int wal_recover(const wal_scan_options *opt, const wal_io_ops *io, wal_scan_result *res)
{
    if (!io)
        io = &wal_io_posix;
    /* Leftover temporary segments never held acknowledged records. */
    DIR *d = opendir(opt->dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            size_t l = strlen(de->d_name);
            if (l > 4 && strcmp(de->d_name + l - 4, ".tmp") == 0) {
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", opt->dir, de->d_name);
                unlink(p);
            }
        }
        closedir(d);
    }
    int rc = wal_scan(opt, res);
    if (rc || !res->torn)
        return rc;
    char path[4096], broken[4200];
    snprintf(path, sizeof path, "%s/%s", opt->dir, res->torn_at.segment);
    snprintf(broken, sizeof broken, "%s.broken", path);
    snprintf(res->broken_copy, sizeof res->broken_copy, "%s.broken", res->torn_at.segment);
    if ((rc = copy_file(path, broken)) != 0) {
        snprintf(res->message, sizeof res->message, "cannot copy %s to %s: %s", path, broken,
                 strerror(-rc));
        return rc;
    }
    int fd = io->open(path, O_RDWR | O_CLOEXEC, 0);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = -errno;
        snprintf(res->message, sizeof res->message, "cannot open %s: %s", path, strerror(errno));
        if (fd >= 0)
            io->close(fd);
        return rc;
    }
    /* Zero from the torn record to the last non-zero byte. */
    uint64_t from = res->torn_at.offset, to = (uint64_t)st.st_size;
    static const uint8_t zeros[1 << 16];
    uint8_t buf[4096];
    while (to > from) {
        size_t k = to - from < sizeof buf ? (size_t)(to - from) : sizeof buf;
        ssize_t r = pread(fd, buf, k, (off_t)(to - k));
        if (r != (ssize_t)k)
            break;
        if (!all_zero(buf, k)) {
            size_t i = k;
            while (i > 0 && !buf[i - 1])
                i--;
            to = to - k + i;
            break;
        }
        to -= k;
    }
    for (uint64_t off = from; off < to && rc == 0;) {
        size_t k = to - off < sizeof zeros ? (size_t)(to - off) : sizeof zeros;
        if (io->pwrite(fd, zeros, k, (off_t)off) != (ssize_t)k)
            rc = errno ? -errno : -EIO;
        off += k;
    }
    if (rc == 0 && io->fdatasync(fd) != 0)
        rc = -errno;
    io->close(fd);
    if (rc)
        snprintf(res->message, sizeof res->message, "cannot cut the torn tail of %s: %s", path,
                 strerror(-rc));
    return rc;
}
