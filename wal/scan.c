/* wal/scan.c: reading the log back and verifying all of it: segment
 * headers, record CRCs, LSN continuity, time order and the hash chain;
 * visiting the good records in LSN order.
 *
 * Invariants: the only damage that is not an error is a torn tail in the
 * last segment, right after its last good record (an interrupted append;
 * it was never acknowledged, because acknowledgement waits for fdatasync
 * of the whole batch):
 * - a record with a bad CRC or an impossible header, and nothing but zeros
 *   after it;
 * - a torn batch: the disk persisted some pages of the one unsynced flush
 *   round and not others (those read as zeros), in any order. Accepted
 *   only when every non-zero byte lies within WAL_TORN_MAX of the last good
 *   record (the writer never has more unsynced bytes in flight), a page
 *   reading as zeros lies in the first bad record's bytes (a lost page
 *   explains the damage; a flipped bit does not), and no intact record of
 *   an LSN at or before the expected one lies further on (a record moved
 *   or copied, not torn).
 * An all-zero record header ends a segment's records, and then only zeros
 * may follow to the end of the file. Every segment has the size its header
 * gives (the writer preallocates it before any record): a shorter file was
 * cut. Damage anywhere else is an error naming segment, byte offset and
 * LSN.
 *
 * Speed: a segment is mapped read-only once and walked in place; per
 * record there is no syscall and no allocation, only the CRC, one BLAKE2b
 * and the checks.
 *
 * Never: write anything (repair is wal_recover's, in recover.c), skip a
 * check on the part of the log that is visited, or report a record to
 * the visitor before every check on it passed. */
#include "wal/wal_internal.h"

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

typedef struct scan_state {
    const wal_scan_options *opt;
    wal_scan_result *res;
    bool seeded;       /* next_lsn and chain hold what the next segment must continue */
    uint64_t next_lsn; /* LSN the next record must carry */
    uint64_t last_at;  /* time of the previous record: a floor */
    uint8_t chain[WAL_HASH_LEN];
    bool have_hall;
    char hall[WAL_HALL_ID_MAX + 1];
} scan_state;

static int check_header(scan_state *s, const char *name, uint64_t named, const uint8_t *m,
                        size_t size)
{
    wal_scan_result *res = s->res;
    wal_seg_header h;
    uint64_t expect = s->seeded ? s->next_lsn : named;
    if (size < WAL_SEGMENT_HEADER_LEN)
        return damage(res, WAL_E_HEADER, name, 0, expect,
                      "the file holds %zu bytes, less than a segment header", size);
    int rc = wal_header_decode(m, &h);
    if (rc == WAL_E_VERSION)
        return damage(res, rc, name, 0, expect,
                      "written by WAL format version %" PRIu32 ", but this hallq reads version %d "
                      "and older: run a newer hallq",
                      h.version, WAL_FORMAT_VERSION);
    if (rc) {
        const char *why = memcmp(m, WAL_MAGIC, 8) != 0 ? "bad magic: not a hallq WAL segment"
                          : wal_get32(m + 124) != wal_crc32c(0, m, 124)
                              ? "bad segment header CRC"
                              : "impossible segment header fields (length, first LSN or size)";
        return damage(res, rc, name, 0, expect, "%s", why);
    }
    if (h.first_lsn != named)
        return damage(res, WAL_E_HEADER, name, 0, expect,
                      "the header says first LSN %" PRIu64 " but the file name says %" PRIu64,
                      h.first_lsn, named);
    const char *want_hall = s->opt->hall_id ? s->opt->hall_id : s->have_hall ? s->hall : NULL;
    if (want_hall && strcmp(want_hall, h.hall_id) != 0)
        return damage(res, WAL_E_HALL, name, 0, h.first_lsn,
                      "segment of hall '%s', expected hall '%s'", h.hall_id, want_hall);
    if (!s->have_hall) {
        s->have_hall = true;
        memcpy(s->hall, h.hall_id, sizeof s->hall);
        memcpy(res->hall_id, h.hall_id, sizeof res->hall_id);
    }
    if (s->seeded) {
        if (h.first_lsn != s->next_lsn)
            return damage(res, WAL_E_GAP, name, 0, s->next_lsn,
                          "the segment starts at LSN %" PRIu64
                          " but the previous one ended at LSN %" PRIu64 " (%s)",
                          h.first_lsn, s->next_lsn - 1,
                          h.first_lsn > s->next_lsn ? "records are missing" : "they overlap");
        if (memcmp(s->chain, h.prev_hash, WAL_HASH_LEN) != 0)
            return damage(res, WAL_E_CHAIN, name, 0, h.first_lsn,
                          "the chain hash carried in the header is not the hash of the previous "
                          "segment's last record");
    } else {
        /* The first segment visited seeds the expectations. Only LSN 1
         * can be checked against something outside the header. */
        if (h.first_lsn == 1) {
            uint8_t g[WAL_HASH_LEN];
            wal_genesis_hash(h.hall_id, g);
            if (memcmp(g, h.prev_hash, WAL_HASH_LEN) != 0)
                return damage(res, WAL_E_CHAIN, name, 0, 1,
                              "the first segment does not carry the hall's genesis hash");
        }
        memcpy(s->chain, h.prev_hash, WAL_HASH_LEN);
        s->next_lsn = h.first_lsn;
        s->seeded = true;
    }
    res->segments++;
    memcpy(res->last_segment, name, WAL_SEG_NAME_LEN + 1);
    res->segment_bytes = h.segment_bytes;
    res->end_offset = WAL_SEGMENT_HEADER_LEN;
    return 0;
}

/* Where a complete record with a good CRC and LSN `lsn` starts in
 * [from, to), or 0. A torn write never leaves the record after the torn
 * one intact inside the torn one's bytes; a flipped bit in a length field
 * does (the record swallows its successors), so this tells them apart.
 * Only on the damage path: a cheap LSN compare first at each offset. */
static size_t find_record_lsn(const uint8_t *m, size_t size, size_t from, size_t to, uint64_t lsn)
{
    for (size_t o = from; o < to && size - o >= WAL_RECORD_OVERHEAD + 1; o++) {
        wal_record rec;
        size_t total;
        if (wal_get64(m + o + 8) == lsn && wal_record_parse(m + o, size - o, &rec, &total) == 0)
            return o;
    }
    return 0;
}

/* The end of the last non-zero byte in [from, size), or `from` when all of
 * it is zeros. Walks back a page at a time (only on the damage path). */
static size_t nonzero_end(const uint8_t *m, size_t size, size_t from)
{
    size_t e = size;
    while (e > from) {
        size_t b = e - from > WAL_PAGE ? e - WAL_PAGE : from;
        if (!wal_all_zero(m + b, e - b)) {
            while (!m[e - 1])
                e--;
            return e;
        }
        e = b;
    }
    return from;
}

/* Whether damage at pos in the last segment (the first bad record: its
 * bytes are [pos, pos + ext)), with non-zero bytes up to nz_end, can be the
 * one unsynced flush round torn by a power loss (see the top of the file):
 * NULL if so, else why not, in buf. */
static const char *torn_batch_why_not(const uint8_t *m, size_t size, size_t pos, size_t ext,
                                      size_t nz_end, uint64_t next, char *buf, size_t len)
{
    if (nz_end - pos > WAL_TORN_MAX) {
        snprintf(buf, len,
                 "it reaches offset %zu, further past the last good record than the %u bytes "
                 "one unsynced flush can write",
                 nz_end, WAL_TORN_MAX);
        return buf;
    }
    bool lost_page = false;
    size_t end = ext < size - pos ? pos + ext : size;
    for (size_t p = pos - pos % WAL_PAGE; p < end && !lost_page; p += WAL_PAGE) {
        size_t a = p > pos ? p : pos, b = size - p > WAL_PAGE ? p + WAL_PAGE : size;
        lost_page = wal_all_zero(m + a, b - a);
    }
    if (!lost_page) {
        snprintf(buf, len,
                 "no page of the damaged record reads as zeros, as a page the disk never "
                 "wrote would: the record was damaged after it was written");
        return buf;
    }
    for (size_t o = pos + 1; o < nz_end && size - o >= WAL_RECORD_OVERHEAD + 1; o++) {
        uint64_t l = wal_get64(m + o + 8);
        wal_record rec;
        size_t total;
        if (l && l <= next && wal_get32(m + o) && wal_get32(m + o) <= WAL_MAX_PAYLOAD &&
            wal_record_parse(m + o, size - o, &rec, &total) == WAL_REC_OK) {
            snprintf(buf, len,
                     "an intact record of LSN %" PRIu64 " lies at offset %zu, where no record of "
                     "the batch after LSN %" PRIu64 " can be: moved or copied, not torn",
                     l, o, next - 1);
            return buf;
        }
    }
    return NULL;
}

/* Marks the log's end as torn at pos: [pos, end) are the torn bytes. */
static void set_torn(wal_scan_result *res, const char *name, size_t pos, uint64_t next, size_t end,
                     const char *what)
{
    res->torn = true;
    memcpy(res->torn_at.segment, name, WAL_SEG_NAME_LEN + 1);
    res->torn_at.offset = pos;
    res->torn_at.lsn = next;
    res->torn_end = end;
    snprintf(res->torn_what, sizeof res->torn_what, "%s", what);
    res->end_offset = pos;
}

/* Walks the records of one mapped segment. Returns 0 at its clean (or
 * torn) end, a visitor's non-zero value, or a WAL_E* code. */
static int scan_records(scan_state *s, const char *name, const uint8_t *m, size_t size,
                        uint64_t seg_bytes, bool last)
{
    wal_scan_result *res = s->res;
    const wal_scan_options *opt = s->opt;
    uint64_t next = s->next_lsn, last_at = s->last_at;
    wal_pos wp = {.offset = 0};
    memcpy(wp.segment, name, WAL_SEG_NAME_LEN + 1);
    size_t pos = WAL_SEGMENT_HEADER_LEN;
    int rc = 0;
    for (;;) {
        wal_record rec;
        size_t total = 0;
        int pr = wal_record_parse(m + pos, size - pos, &rec, &total);
        if (pr == WAL_REC_OK) {
            uint8_t want[WAL_HASH_LEN];
            if (rec.lsn != next) {
                rc = damage(res, WAL_E_GAP, name, pos, next,
                            "the record holds LSN %" PRIu64 " where LSN %" PRIu64
                            " was expected (a gap or reordering)",
                            rec.lsn, next);
                break;
            }
            wal_record_chain(m + pos, total, s->chain, want);
            if (memcmp(want, rec.hash, WAL_HASH_LEN) != 0) {
                rc = damage(res, WAL_E_CHAIN, name, pos, next,
                            "the hash chain breaks here (a record was edited, removed or moved)");
                break;
            }
            if (rec.at_ms < last_at) {
                rc = damage(res, WAL_E_TIME, name, pos, next,
                            "time %" PRIu64 " ms is before the previous record's %" PRIu64 " ms",
                            rec.at_ms, last_at);
                break;
            }
            memcpy(s->chain, rec.hash, WAL_HASH_LEN);
            if (res->records++ == 0) {
                res->first_lsn = rec.lsn;
                res->first_at_ms = rec.at_ms;
            }
            last_at = rec.at_ms;
            next = rec.lsn + 1;
            if (opt->visit && rec.lsn > opt->from_lsn) {
                wp.offset = pos;
                wp.lsn = rec.lsn;
                /* The visitor sees the progress so far in res. */
                res->last_lsn = rec.lsn;
                res->last_at_ms = rec.at_ms;
                if ((rc = opt->visit(opt->ctx, &rec, &wp)) != 0)
                    break;
            }
            pos += total;
            continue;
        }
        if (pr == WAL_REC_ZERO) {
            if (wal_all_zero(m + pos, size - pos)) {
                /* The writer gives a segment its full size before it
                 * writes to it, and later segments follow only a full
                 * one: a shorter file was cut, and may have lost records
                 * that the next header's LSN would only name as a gap
                 * in the wrong segment. */
                if (!last && size < seg_bytes) {
                    rc = damage(res, WAL_E_CORRUPT, name, pos, next,
                                "the records end here and the file at byte %zu, short of the "
                                "segment's size %" PRIu64
                                ": the segment was truncated, and later segments follow",
                                size, seg_bytes);
                    break;
                }
                res->end_offset = pos;
                break;
            }
            size_t nz = pos;
            while (!m[nz])
                nz++;
            char why[200] = "in a segment that later segments follow";
            const char *no = why;
            if (last) {
                size_t nz_end = nonzero_end(m, size, pos);
                no = torn_batch_why_not(m, size, pos, WAL_RECORD_HEADER_LEN, nz_end, next, why,
                                        sizeof why);
                if (!no) {
                    set_torn(res, name, pos, next, nz_end,
                             "a zero record header, then pages of the same unsynced batch: a "
                             "torn batch");
                    break;
                }
            }
            rc = damage(res, WAL_E_CORRUPT, name, pos, next,
                        "the records end here (zero header), but data follows at offset %zu: "
                        "not a torn tail (%s)",
                        nz, no);
            break;
        }
        /* Damage. It is a torn tail only in the last segment, and only
         * when nothing but zeros follows the damaged bytes. */
        size_t dmg_end, at;
        const char *what;
        if (pr == WAL_REC_SHORT && total && (pos >= seg_bytes || total > seg_bytes - pos)) {
            /* The writer never writes past the segment's size, so this
             * length was never written: it is damage, not a cut. */
            pr = WAL_REC_BADHDR;
        }
        if (pr == WAL_REC_SHORT) {
            dmg_end = size;
            what = "a record cut short by the end of the file";
        } else if (pr == WAL_REC_BADHDR) {
            dmg_end = pos + WAL_RECORD_HEADER_LEN;
            if (dmg_end > size)
                dmg_end = size;
            what = "an impossible record header";
        } else {
            dmg_end = pos + total;
            what = "a bad CRC";
        }
        if ((at = find_record_lsn(m, size, pos + 1, dmg_end, next + 1)) != 0) {
            rc = damage(res, WAL_E_CORRUPT, name, pos, next,
                        "%s, and the next record (LSN %" PRIu64 ") follows intact at offset %zu: "
                        "not a torn tail",
                        what, next + 1, at);
            break;
        }
        if (last && wal_all_zero(m + dmg_end, size - dmg_end)) {
            char t[96];
            snprintf(t, sizeof t, "%s, then only zeros: a torn tail", what);
            set_torn(res, name, pos, next, dmg_end, t);
            break;
        }
        if (last) {
            size_t nz = dmg_end;
            while (!m[nz])
                nz++;
            char why[200], t[96];
            size_t nz_end = nonzero_end(m, size, dmg_end);
            const char *no =
                torn_batch_why_not(m, size, pos, pr == WAL_REC_BADCRC ? total : dmg_end - pos,
                                   nz_end, next, why, sizeof why);
            if (!no) {
                snprintf(t, sizeof t, "%s, then pages of the same unsynced batch: a torn batch",
                         what);
                set_torn(res, name, pos, next, nz_end, t);
                break;
            }
            rc = damage(res, WAL_E_CORRUPT, name, pos, next,
                        "%s, and data follows at offset %zu: not a torn tail (%s)", what, nz, no);
        } else {
            rc = damage(res, WAL_E_CORRUPT, name, pos, next,
                        "%s, in a segment that later segments follow: not a torn tail", what);
        }
        break;
    }
    s->next_lsn = next;
    s->last_at = last_at;
    if (res->records) {
        res->last_lsn = next - 1;
        res->last_at_ms = last_at;
    }
    return rc;
}

/* Maps one segment file and checks it. */
static int scan_file(scan_state *s, const wal_seg_ent *e, bool last)
{
    wal_scan_result *res = s->res;
    uint64_t expect = s->seeded ? s->next_lsn : e->first_lsn;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", s->opt->dir, e->name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        return damage(res, rc, e->name, 0, expect, "cannot open: %s", strerror(-rc));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = -errno;
        close(fd);
        return damage(res, rc, e->name, 0, expect, "cannot stat: %s", strerror(-rc));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return damage(res, WAL_E_HEADER, e->name, 0, expect, "not a regular file");
    }
    size_t size = (size_t)st.st_size;
    if (size < WAL_SEGMENT_HEADER_LEN) {
        close(fd);
        /* Segments are renamed into place only with a synced header. */
        return check_header(s, e->name, e->first_lsn, NULL, size);
    }
    const uint8_t *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    int map_errno = errno;
    close(fd);
    if (m == MAP_FAILED)
        return damage(res, -map_errno, e->name, 0, expect, "cannot map: %s", strerror(map_errno));
    madvise((void *)m, size, MADV_SEQUENTIAL);
    int rc = check_header(s, e->name, e->first_lsn, m, size);
    /* The writer gives a segment its full size (and syncs it) before it is
     * renamed into place: a shorter last segment was cut, and whatever
     * was cut off may have held acknowledged records. */
    if (rc == 0 && last && size < res->segment_bytes)
        rc = damage(res, WAL_E_CORRUPT, e->name, size, s->next_lsn,
                    "the file ends at byte %zu, short of the segment's size %" PRIu64
                    " in its header: the segment was truncated (the writer makes every segment "
                    "full-size before it writes a record)",
                    size, res->segment_bytes);
    if (rc == 0)
        rc = scan_records(s, e->name, m, size, res->segment_bytes, last);
    munmap((void *)m, size);
    return rc;
}

int wal_scan(const wal_scan_options *opt, wal_scan_result *res)
{
    memset(res, 0, sizeof *res);
    if (!opt || !opt->dir)
        return -EINVAL;
    wal_sodium_init();
    wal_seg_ent *segs;
    size_t n;
    int rc = wal_segment_list(opt->dir, &segs, &n);
    if (rc == -ENOENT && !opt->must_exist)
        return 0;
    if (rc) {
        snprintf(res->message, sizeof res->message, "cannot list %s: %s", opt->dir, strerror(-rc));
        return rc;
    }
    if (n == 0) {
        if (!opt->must_exist)
            return 0;
        snprintf(res->message, sizeof res->message, "%s holds no WAL segment", opt->dir);
        return -ENOENT;
    }
    /* Segments whose successor starts at or before from_lsn + 1 hold only
     * records already applied: with skip_verified they are not read, and
     * the first segment read seeds the LSN and chain from its header. */
    size_t first = 0;
    if (opt->skip_verified)
        while (first + 1 < n && segs[first + 1].first_lsn - 1 <= opt->from_lsn)
            first++;
    scan_state s = {.opt = opt, .res = res};
    for (size_t i = first; i < n && rc == 0; i++)
        rc = scan_file(&s, &segs[i], i == n - 1);
    if (s.seeded)
        memcpy(res->head_hash, s.chain, WAL_HASH_LEN);
    free(segs);
    return rc;
}
