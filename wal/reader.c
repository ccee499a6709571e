/* wal/reader.c: reading durable records again from a known place
 * (reader.h says when that is enough and why).
 *
 * Invariants: nothing past upto_lsn is parsed (the writer may be writing
 * it); each record visited has a good CRC and the LSN after the one
 * before; the file is read with pread into one buffer (no mmap: a file cut
 * short under a mapping would be a SIGBUS, a short read is an error).
 *
 * Never: write anything, or visit a record whose checks failed. */
#include "wal/reader.h"
#include "wal/wal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_BLOCK (256u << 10)
#define READ_CAP (WAL_MAX_PAYLOAD + WAL_RECORD_OVERHEAD + READ_BLOCK)

typedef struct rd {
    int fd;
    uint8_t *buf;
    uint64_t boff; /* file offset of buf[0] */
    size_t blen;   /* valid bytes in buf */
    bool eof;
    wal_read_result *res;
} rd;

__attribute__((format(printf, 5, 6))) static int
fail(wal_read_result *res, int code, const char *seg, uint64_t off, const char *fmt, ...)
{
    char what[180];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(res->message, sizeof res->message, "segment %s offset %" PRIu64 ": %s", seg, off,
             what);
    return code;
}

/* Makes buf hold [off, off + need) of the file, or as much of it as the
 * file has (r->eof then). Returns 0 or -errno. */
static int ensure(rd *r, uint64_t off, size_t need)
{
    if (off >= r->boff && off + need <= r->boff + r->blen)
        return 0;
    if (off >= r->boff && off < r->boff + r->blen) {
        size_t keep = (size_t)(r->boff + r->blen - off);
        memmove(r->buf, r->buf + (off - r->boff), keep);
        r->blen = keep;
    } else {
        r->blen = 0;
        r->eof = false;
    }
    r->boff = off;
    while (r->blen < need && !r->eof) {
        size_t want = need - r->blen < READ_BLOCK ? READ_BLOCK : need - r->blen;
        if (want > READ_CAP - r->blen)
            want = READ_CAP - r->blen;
        ssize_t n = pread(r->fd, r->buf + r->blen, want, (off_t)(r->boff + r->blen));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            r->eof = true;
        r->blen += (size_t)n;
        r->res->bytes += (uint64_t)n;
    }
    return 0;
}

/* The segment that holds lsn: the last one starting at or before it, or
 * the first one when lsn is older than the log (archived). */
static size_t seg_for(const wal_seg_ent *segs, size_t n, uint64_t lsn)
{
    size_t i = 0;
    while (i + 1 < n && segs[i + 1].first_lsn <= lsn)
        i++;
    return i;
}

int wal_read(const wal_read_options *opt, wal_read_result *res)
{
    memset(res, 0, sizeof *res);
    if (!opt || !opt->dir || opt->from_lsn == 0)
        return -EINVAL;
    res->next = opt->hint;
    res->next.lsn = opt->from_lsn;
    if (opt->upto_lsn < opt->from_lsn)
        return 0;
    wal_seg_ent *segs;
    size_t n;
    int rc = wal_segment_list(opt->dir, &segs, &n);
    if (rc == 0 && n == 0)
        rc = -ENOENT;
    if (rc) {
        snprintf(res->message, sizeof res->message, "cannot list %s: %s", opt->dir,
                 wal_strerror(rc));
        free(segs);
        return rc;
    }
    size_t i = seg_for(segs, n, opt->from_lsn);
    uint64_t off = WAL_SEGMENT_HEADER_LEN, expect = segs[i].first_lsn;
    if (opt->hint.lsn && opt->hint.lsn <= opt->from_lsn && opt->hint.lsn >= expect &&
        opt->hint.offset >= WAL_SEGMENT_HEADER_LEN &&
        strcmp(opt->hint.segment, segs[i].name) == 0) {
        off = opt->hint.offset;
        expect = opt->hint.lsn;
    }
    rd r = {.fd = -1, .res = res};
    if (!(r.buf = malloc(READ_CAP))) {
        free(segs);
        return -ENOMEM;
    }
    snprintf(res->start.segment, sizeof res->start.segment, "%s", segs[i].name);
    res->start.offset = off;
    res->start.lsn = expect;
    bool stop = false;
    while (!stop && expect <= opt->upto_lsn) {
        const char *name = segs[i].name;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", opt->dir, name);
        if ((r.fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
            rc = fail(res, -errno, name, off, "cannot open: %s", strerror(errno));
            break;
        }
        r.boff = r.blen = 0;
        r.eof = false;
        if (off == WAL_SEGMENT_HEADER_LEN) {
            /* Entering a segment at its start: its header must say so. */
            wal_seg_header h;
            if ((rc = ensure(&r, 0, WAL_SEGMENT_HEADER_LEN)) != 0) {
                rc = fail(res, rc, name, 0, "cannot read: %s", wal_strerror(rc));
                close(r.fd);
                break;
            }
            if (r.blen < WAL_SEGMENT_HEADER_LEN || wal_header_decode(r.buf, &h) != 0 ||
                h.first_lsn != segs[i].first_lsn || h.first_lsn != expect) {
                rc = fail(res, WAL_E_HEADER, name, 0,
                          "a bad segment header, or not the segment of LSN %" PRIu64, expect);
                close(r.fd);
                break;
            }
        }
        /* The records of this segment, up to its end or upto_lsn. */
        for (;;) {
            if (expect > opt->upto_lsn || stop)
                break;
            if ((rc = ensure(&r, off, WAL_RECORD_HEADER_LEN)) != 0) {
                rc = fail(res, rc, name, off, "cannot read: %s", wal_strerror(rc));
                break;
            }
            size_t avail = (size_t)(r.boff + r.blen - off);
            const uint8_t *p = r.buf + (off - r.boff);
            if (avail < WAL_RECORD_HEADER_LEN || wal_all_zero(p, WAL_RECORD_HEADER_LEN))
                break; /* this segment's records end: the next one goes on */
            uint32_t len = wal_get32(p);
            if (len == 0 || len > WAL_MAX_PAYLOAD) {
                rc = fail(res, WAL_E_CORRUPT, name, off,
                          "an impossible record length %" PRIu32 " where LSN %" PRIu64 " should be",
                          len, expect);
                break;
            }
            if ((rc = ensure(&r, off, (size_t)len + WAL_RECORD_OVERHEAD)) != 0) {
                rc = fail(res, rc, name, off, "cannot read: %s", wal_strerror(rc));
                break;
            }
            p = r.buf + (off - r.boff);
            avail = (size_t)(r.boff + r.blen - off);
            wal_record rec;
            size_t total = 0;
            int pr = wal_record_parse(p, avail, &rec, &total);
            if (pr != WAL_REC_OK) {
                rc = fail(res, WAL_E_CORRUPT, name, off,
                          "%s where durable LSN %" PRIu64 " should be",
                          pr == WAL_REC_SHORT ? "the file ends" : "a damaged record", expect);
                break;
            }
            if (rec.lsn != expect) {
                rc = fail(res, WAL_E_GAP, name, off,
                          "the record holds LSN %" PRIu64 " where LSN %" PRIu64 " was expected",
                          rec.lsn, expect);
                break;
            }
            if (rec.lsn >= opt->from_lsn) {
                wal_pos wp = {.offset = off, .lsn = rec.lsn};
                memcpy(wp.segment, name, sizeof wp.segment);
                if (!res->first)
                    res->first = rec.lsn;
                res->records++;
                if (opt->visit && opt->visit(opt->ctx, &rec, &wp) != 0)
                    stop = true;
            }
            off += total;
            expect++;
            if (opt->max_bytes && res->bytes >= opt->max_bytes && res->records)
                stop = true;
        }
        close(r.fd);
        r.fd = -1;
        if (rc)
            break;
        snprintf(res->next.segment, sizeof res->next.segment, "%s", name);
        res->next.offset = off;
        res->next.lsn = expect;
        if (stop || expect > opt->upto_lsn)
            break;
        /* The records of this segment ended before upto_lsn: the next
         * segment must start with the LSN expected. */
        if (i + 1 >= n || segs[i + 1].first_lsn != expect) {
            rc = fail(res, WAL_E_GAP, name, off,
                      "the records end here, and no segment starts with LSN %" PRIu64
                      " (durable up to LSN %" PRIu64 ")",
                      expect, opt->upto_lsn);
            break;
        }
        i++;
        off = WAL_SEGMENT_HEADER_LEN;
    }
    free(r.buf);
    free(segs);
    return rc;
}
