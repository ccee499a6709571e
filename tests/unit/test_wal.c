/* tests/unit/test_wal.c: the write-ahead log: append and read back, torn
 * tails at every byte, damage that must refuse, the hash chain, segment
 * roll-over, and injected I/O faults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "wal/wal.h"
#include "wal/wal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEG 8192
#define HALL "test-hall"

static char dir[64];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/hallq-wal-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static wal_writer *open_writer(const wal_io_ops *io, uint64_t seg)
{
    wal_scan_options o = {.dir = dir, .hall_id = HALL};
    wal_scan_result r;
    assert_int_equal(wal_recover(&o, io, &r), 0);
    wal_writer_options wo = {
        .dir = dir, .hall_id = HALL, .segment_bytes = seg, .sync = true, .io = io};
    wal_writer *w;
    assert_int_equal(wal_writer_open(&w, &wo, &r), 0);
    return w;
}

/* Appends n records (payload "rec-<lsn>" padded to a size that varies)
 * as one batch and makes it durable. */
static void append_batch(wal_writer *w, int n, uint64_t at)
{
    for (int i = 0; i < n; i++) {
        char p[200];
        uint64_t lsn = wal_writer_last_lsn(w) + 1;
        int len = snprintf(p, sizeof p, "rec-%llu", (unsigned long long)lsn);
        int pad = (int)(lsn * 7 % 50);
        memset(p + len, 'x', (size_t)pad);
        uint64_t got;
        assert_int_equal(
            wal_writer_append(w, 16, at + lsn, 1, "K1", p, (uint32_t)(len + pad), &got), 0);
        assert_int_equal(got, lsn);
    }
    assert_int_equal(wal_writer_seal(w), 0);
    assert_int_equal(wal_writer_complete(w, wal_writer_flush(w)), 0);
}

typedef struct seen {
    uint64_t n, last;
    int bad;
} seen;

static int visit(void *ctx, const wal_record *rec, const wal_pos *pos)
{
    seen *s = ctx;
    char want[64];
    int len = snprintf(want, sizeof want, "rec-%llu", (unsigned long long)rec->lsn);
    (void)pos;
    if (rec->payload_len < (uint32_t)len || memcmp(rec->payload, want, (size_t)len) != 0 ||
        rec->type != 16 || rec->actor_role != 1 || strcmp(rec->actor_id, "K1") != 0 ||
        rec->lsn != s->last + 1)
        s->bad++;
    s->last = rec->lsn;
    s->n++;
    return 0;
}

static int scan(wal_scan_result *r, seen *s)
{
    wal_scan_options o = {.dir = dir, .hall_id = HALL, .visit = s ? visit : NULL, .ctx = s};
    if (s)
        memset(s, 0, sizeof *s);
    return wal_scan(&o, r);
}

static char *seg_path(uint64_t first)
{
    static char p[200];
    char name[64];
    wal_segment_name(name, first);
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

static void test_round_trip(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_batch(w, 5, 1000);
    append_batch(w, 1, 2000);
    assert_int_equal(wal_writer_durable_lsn(w), 6);
    wal_writer_close(w);
    wal_scan_result r;
    seen s;
    assert_int_equal(scan(&r, &s), 0);
    assert_int_equal(s.n, 6);
    assert_int_equal(s.bad, 0);
    assert_int_equal(r.last_lsn, 6);
    assert_false(r.torn);
    assert_string_equal(r.hall_id, HALL);
    /* Reopened, the writer continues the LSNs and the chain. */
    w = open_writer(NULL, SEG);
    append_batch(w, 3, 3000);
    wal_writer_close(w);
    assert_int_equal(scan(&r, &s), 0);
    assert_int_equal(s.n, 9);
    assert_int_equal(s.bad, 0);
}

/* Offset and size of the record with the given LSN in segment 1. */
static void find_record(uint64_t lsn, long *off, long *size)
{
    int fd = open(seg_path(1), O_RDONLY);
    uint8_t buf[SEG];
    assert_int_equal(read(fd, buf, SEG), SEG);
    close(fd);
    long pos = WAL_SEGMENT_HEADER_LEN;
    for (;;) {
        uint32_t len = wal_get32(buf + pos);
        assert_true(len > 0);
        if (wal_get64(buf + pos + 8) == lsn) {
            *off = pos;
            *size = WAL_RECORD_OVERHEAD + (long)len;
            return;
        }
        pos += WAL_RECORD_OVERHEAD + (long)len;
    }
}

static void copy_seg(const char *to)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp %s %s", seg_path(1), to);
    assert_int_equal(system(cmd), 0);
}

static void restore_seg(const char *from)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp %s %s && rm -f %s/*.broken", from, seg_path(1), dir);
    assert_int_equal(system(cmd), 0);
}

/* Cuts the last record at every byte offset, as a short file and as a
 * zero-filled one: recovery keeps the earlier records, reports the torn
 * tail, repairs it, and a writer continues cleanly. */
static void test_torn_tail_every_offset(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_batch(w, 6, 1000);
    wal_writer_close(w);
    long off, size;
    find_record(6, &off, &size);
    char keep[200];
    snprintf(keep, sizeof keep, "%s/keep", dir);
    copy_seg(keep);
    for (int zero_fill = 0; zero_fill <= 1; zero_fill++) {
        for (long cut = off; cut < off + size; cut++) {
            restore_seg(keep);
            assert_int_equal(truncate(seg_path(1), cut), 0);
            if (zero_fill)
                assert_int_equal(truncate(seg_path(1), SEG), 0);
            wal_scan_options o = {.dir = dir, .hall_id = HALL};
            wal_scan_result r;
            assert_int_equal(wal_recover(&o, NULL, &r), 0);
            assert_int_equal(r.last_lsn, 5);
            assert_int_equal(r.end_offset, off);
            /* A cut exactly at the record's start (or one whose written
             * bytes are all zero) is a clean end. */
            assert_int_equal(r.torn, cut > off);
            if (r.torn) {
                assert_int_equal(r.torn_at.offset, off);
                assert_int_equal(r.torn_at.lsn, 6);
                assert_non_null(strstr(r.broken_copy, ".broken"));
            }
            /* Repaired: a rescan is clean, and appends continue. */
            seen s;
            assert_int_equal(scan(&r, &s), 0);
            assert_false(r.torn);
            w = open_writer(NULL, SEG);
            append_batch(w, 2, 5000);
            wal_writer_close(w);
            assert_int_equal(scan(&r, &s), 0);
            assert_int_equal(s.n, 7);
            assert_int_equal(s.bad, 0);
        }
    }
}

static void poke(long off, uint8_t xor_mask)
{
    int fd = open(seg_path(1), O_RDWR);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= xor_mask;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static void test_zero_tail_is_clean(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_batch(w, 3, 1000);
    wal_writer_close(w);
    struct stat st;
    assert_int_equal(stat(seg_path(1), &st), 0);
    assert_int_equal(st.st_size, SEG); /* preallocated */
    wal_scan_result r;
    assert_int_equal(scan(&r, NULL), 0);
    assert_false(r.torn);
    assert_int_equal(r.last_lsn, 3);
}

/* Zeros, then something that looks like data: not a torn tail. */
static void test_zeros_then_data_refuses(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_batch(w, 3, 1000);
    wal_writer_close(w);
    long off, size;
    find_record(3, &off, &size);
    /* Copy record 3 far past the end, behind zeros. */
    int fd = open(seg_path(1), O_RDWR);
    uint8_t rec[512];
    assert_int_equal(pread(fd, rec, (size_t)size, off), size);
    assert_int_equal(pwrite(fd, rec, (size_t)size, off + size + 512), size);
    close(fd);
    wal_scan_options o = {.dir = dir, .hall_id = HALL};
    wal_scan_result r;
    assert_int_equal(wal_recover(&o, NULL, &r), WAL_E_CORRUPT);
    assert_non_null(strstr(r.message, "not a torn tail"));
    assert_int_equal(r.bad_at.offset, off + size);
    assert_non_null(strstr(r.message, "00000000000000000001.wal"));
}

/* A flipped bit in any record before the last refuses to start, wherever
 * the bit is (header, payload, hash, CRC). */
static void test_flipped_bit_before_tail_refuses(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_batch(w, 5, 1000);
    wal_writer_close(w);
    char keep[200];
    snprintf(keep, sizeof keep, "%s/keep", dir);
    copy_seg(keep);
    for (uint64_t lsn = 1; lsn <= 4; lsn++) {
        long off, size;
        find_record(lsn, &off, &size);
        long spots[] = {off + 9, off + 41, off + size - 20, off + size - 2};
        for (int i = 0; i < 4; i++) {
            restore_seg(keep);
            poke(spots[i], 0x10);
            wal_scan_options o = {.dir = dir, .hall_id = HALL};
            wal_scan_result r;
            int rc = wal_recover(&o, NULL, &r);
            assert_true(rc < 0);
            assert_int_equal(r.bad_at.offset, off);
            assert_int_equal(r.bad_at.lsn, lsn);
            assert_non_null(strstr(r.message, "offset"));
        }
    }
    restore_seg(keep);
}

static void test_segment_headers(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_batch(w, 2, 1000);
    wal_writer_close(w);
    wal_scan_result r;
    /* Another hall. */
    wal_scan_options o = {.dir = dir, .hall_id = "other-hall"};
    assert_int_equal(wal_scan(&o, &r), WAL_E_HALL);
    assert_non_null(strstr(r.message, "other-hall"));
    /* A segment named for another first LSN than its header says. */
    char other[200];
    snprintf(other, sizeof other, "%s", seg_path(7));
    assert_int_equal(rename(seg_path(1), other), 0);
    o.hall_id = HALL;
    assert_true(wal_scan(&o, &r) < 0);
    assert_non_null(strstr(r.message, "first LSN"));
    assert_int_equal(rename(other, seg_path(1)), 0);
    /* A damaged header. */
    poke(20, 0x01);
    assert_int_equal(wal_scan(&o, &r), WAL_E_HEADER);
    poke(20, 0x01);
    assert_int_equal(wal_scan(&o, &r), 0);
    /* A header from a newer format version. */
    int fd = open(seg_path(1), O_RDWR);
    uint8_t h[WAL_SEGMENT_HEADER_LEN];
    assert_int_equal(pread(fd, h, sizeof h, 0), (ssize_t)sizeof h);
    wal_put32(h + 8, WAL_FORMAT_VERSION + 1);
    wal_put32(h + 124, wal_crc32c(0, h, 124));
    assert_int_equal(pwrite(fd, h, sizeof h, 0), (ssize_t)sizeof h);
    close(fd);
    assert_int_equal(wal_scan(&o, &r), WAL_E_VERSION);
    assert_non_null(strstr(r.message, "version"));
}

/* Rewrites record `lsn` at its place with new fields and a fixed CRC (the
 * chain hash is left as it was: only the chain can tell). */
static void rewrite(long off, long size, uint64_t new_lsn, int flip_payload)
{
    int fd = open(seg_path(1), O_RDWR);
    uint8_t rec[512];
    assert_int_equal(pread(fd, rec, (size_t)size, off), size);
    wal_put64(rec + 8, new_lsn);
    if (flip_payload)
        rec[WAL_RECORD_HEADER_LEN] ^= 1;
    wal_put32(rec + size - 4, wal_crc32c(0, rec, (size_t)size - 4));
    assert_int_equal(pwrite(fd, rec, (size_t)size, off), size);
    close(fd);
}

static void test_chain_edit_delete_swap(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_batch(w, 6, 1000);
    wal_writer_close(w);
    char keep[200];
    snprintf(keep, sizeof keep, "%s/keep", dir);
    copy_seg(keep);
    wal_scan_result r;
    long off, size;

    /* Edit a payload byte and fix the CRC. */
    find_record(3, &off, &size);
    rewrite(off, size, 3, 1);
    assert_int_equal(scan(&r, NULL), WAL_E_CHAIN);
    assert_int_equal(r.bad_at.lsn, 3);

    /* Delete record 3: shift the rest down and renumber with fixed CRCs. */
    restore_seg(keep);
    int fd = open(seg_path(1), O_RDWR);
    uint8_t buf[SEG];
    assert_int_equal(pread(fd, buf, SEG, 0), SEG);
    find_record(3, &off, &size);
    memmove(buf + off, buf + off + size, (size_t)(SEG - off - size));
    memset(buf + SEG - size, 0, (size_t)size);
    for (long pos = off; wal_get32(buf + pos); pos += WAL_RECORD_OVERHEAD + wal_get32(buf + pos)) {
        long sz = WAL_RECORD_OVERHEAD + wal_get32(buf + pos);
        wal_put64(buf + pos + 8, wal_get64(buf + pos + 8) - 1);
        wal_put32(buf + pos + sz - 4, wal_crc32c(0, buf + pos, (size_t)sz - 4));
    }
    assert_int_equal(pwrite(fd, buf, SEG, 0), SEG);
    close(fd);
    assert_int_equal(scan(&r, NULL), WAL_E_CHAIN);
    assert_int_equal(r.bad_at.lsn, 3);

    /* Swap records 2 and 3 (both renumbered to look in sequence). */
    restore_seg(keep);
    fd = open(seg_path(1), O_RDWR);
    assert_int_equal(pread(fd, buf, SEG, 0), SEG);
    long o2, s2, o3, s3;
    find_record(2, &o2, &s2);
    find_record(3, &o3, &s3);
    uint8_t r2[512], r3[512];
    memcpy(r2, buf + o2, (size_t)s2);
    memcpy(r3, buf + o3, (size_t)s3);
    wal_put64(r3 + 8, 2);
    wal_put32(r3 + s3 - 4, wal_crc32c(0, r3, (size_t)s3 - 4));
    wal_put64(r2 + 8, 3);
    wal_put32(r2 + s2 - 4, wal_crc32c(0, r2, (size_t)s2 - 4));
    memcpy(buf + o2, r3, (size_t)s3);
    memcpy(buf + o2 + s3, r2, (size_t)s2);
    assert_int_equal(pwrite(fd, buf, SEG, 0), SEG);
    close(fd);
    assert_int_equal(scan(&r, NULL), WAL_E_CHAIN);
    assert_int_equal(r.bad_at.lsn, 2);

    /* A gap without renumbering is caught as a gap. */
    restore_seg(keep);
    find_record(4, &off, &size);
    rewrite(off, size, 40, 0);
    assert_int_equal(scan(&r, NULL), WAL_E_GAP);
    restore_seg(keep);
}

static void test_rollover(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    for (int b = 0; b < 80; b++)
        append_batch(w, 1 + b % 9, 1000 + (uint64_t)b * 100);
    uint64_t last = wal_writer_last_lsn(w);
    wal_writer_close(w);
    wal_scan_result r;
    seen s;
    assert_int_equal(scan(&r, &s), 0);
    assert_true(r.segments > 3);
    assert_int_equal(s.n, last);
    assert_int_equal(s.bad, 0);
    /* Reopen at the end of the last segment and keep going. */
    w = open_writer(NULL, SEG);
    append_batch(w, 50, 9000);
    wal_writer_close(w);
    assert_int_equal(scan(&r, &s), 0);
    assert_int_equal(s.n, last + 50);
    assert_int_equal(s.bad, 0);
    /* Replay from a late LSN skips the earlier segments by name. */
    wal_scan_options o = {.dir = dir,
                          .hall_id = HALL,
                          .from_lsn = last,
                          .skip_verified = true,
                          .visit = visit,
                          .ctx = &s};
    memset(&s, 0, sizeof s);
    s.last = last;
    assert_int_equal(wal_scan(&o, &r), 0);
    assert_int_equal(s.n, 50);
}

static void test_rollback_and_limits(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_batch(w, 2, 1000);
    uint64_t lsn;
    assert_int_equal(wal_writer_append(w, 16, 5000, 1, "K1", "zzzz", 4, &lsn), 0);
    assert_int_equal(lsn, 3);
    wal_writer_rollback(w);
    assert_int_equal(wal_writer_pending(w), 0);
    append_batch(w, 2, 6000); /* LSN 3 and 4 as if the rollback's never were */
    assert_int_equal(wal_writer_append(w, 16, 1, 1, "K1", "", 0, &lsn), WAL_E_TOOBIG);
    static char big[SEG];
    assert_int_equal(wal_writer_append(w, 16, 1, 1, "K1", big, SEG, &lsn), WAL_E_TOOBIG);
    wal_writer_close(w);
    wal_scan_result r;
    seen s;
    assert_int_equal(scan(&r, &s), 0);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.bad, 0);
}

static void test_time_backwards_refuses(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    uint64_t lsn;
    assert_int_equal(wal_writer_append(w, 16, 5000, 1, "K1", "rec-1", 5, &lsn), 0);
    assert_int_equal(wal_writer_append(w, 16, 4000, 1, "K1", "rec-2", 5, &lsn), 0);
    assert_int_equal(wal_writer_seal(w), 0);
    assert_int_equal(wal_writer_complete(w, wal_writer_flush(w)), 0);
    wal_writer_close(w);
    wal_scan_result r;
    assert_int_equal(scan(&r, NULL), WAL_E_TIME);
    assert_int_equal(r.bad_at.lsn, 2);
}

/* ---- fault injection ---- */

enum { F_PWRITE, F_FDATASYNC, F_OPEN, F_RENAME, F_FALLOCATE, F_SHORT };
static int fault_kind, fault_at, fault_errno, calls, fdatasyncs_after_fault;
static bool faulted;

static bool hit(int kind)
{
    if (fault_kind != kind && !(fault_kind == F_SHORT && kind == F_PWRITE))
        return false;
    return ++calls == fault_at;
}

static int f_open(const char *p, int fl, mode_t m)
{
    if (hit(F_OPEN)) {
        faulted = true;
        errno = fault_errno;
        return -1;
    }
    return open(p, fl, m);
}

static ssize_t f_pwrite(int fd, const void *b, size_t n, off_t off)
{
    if (hit(F_PWRITE)) {
        faulted = true;
        if (fault_kind == F_SHORT)
            return pwrite(fd, b, n / 2, off);
        errno = fault_errno;
        return -1;
    }
    return pwrite(fd, b, n, off);
}

static int f_fdatasync(int fd)
{
    if (faulted)
        fdatasyncs_after_fault++;
    if (hit(F_FDATASYNC)) {
        faulted = true;
        errno = fault_errno;
        return -1;
    }
    return fdatasync(fd);
}

static int f_rename(const char *a, const char *b)
{
    if (hit(F_RENAME)) {
        faulted = true;
        errno = fault_errno;
        return -1;
    }
    return rename(a, b);
}

static int f_fallocate(int fd, off_t off, off_t len)
{
    if (hit(F_FALLOCATE)) {
        faulted = true;
        errno = fault_errno;
        return -1;
    }
    return wal_io_posix.fallocate(fd, off, len);
}

static const wal_io_ops faulty = {
    .open = f_open,
    .pwrite = f_pwrite,
    .fdatasync = f_fdatasync,
    .fsync = fsync,
    .rename = f_rename,
    .fallocate = f_fallocate,
    .ftruncate = ftruncate,
    .close = close,
};

static void fault_case(int kind, int at, int err, const char *where)
{
    nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    mkdir(dir, 0700);
    fault_kind = -1;
    wal_writer *w = open_writer(&faulty, SEG);
    append_batch(w, 3, 1000); /* durable before the fault */
    fault_kind = kind;
    fault_at = at;
    fault_errno = err;
    calls = 0;
    faulted = false;
    fdatasyncs_after_fault = 0;
    int rc = 0;
    uint64_t lsn;
    /* Batches until the fault strikes (some cross segment boundaries). */
    for (int b = 0; b < 200 && rc == 0; b++) {
        for (int i = 0; i < 12; i++) {
            char p[64];
            int len =
                snprintf(p, sizeof p, "rec-%llu", (unsigned long long)wal_writer_last_lsn(w) + 1);
            assert_int_equal(
                wal_writer_append(w, 16, 2000 + (uint64_t)b, 1, "K1", p, (uint32_t)len, &lsn), 0);
        }
        assert_int_equal(wal_writer_seal(w), 0);
        rc = wal_writer_complete(w, wal_writer_flush(w));
    }
    assert_true(faulted);
    assert_int_equal(rc, WAL_E_FAILED);
    uint64_t durable = wal_writer_durable_lsn(w);
    assert_non_null(strstr(wal_writer_failed_where(w), where));
    if (kind != F_SHORT)
        assert_int_equal(wal_writer_failed(w), -err);
    /* Sticky: appends refuse, nothing is synced again. */
    assert_int_equal(wal_writer_append(w, 16, 9999, 1, "K1", "x", 1, &lsn), WAL_E_FAILED);
    assert_int_equal(wal_writer_seal(w), WAL_E_FAILED);
    wal_writer_close(w);
    assert_int_equal(fdatasyncs_after_fault, 0);
    /* Recovery finds whole records only, at least everything durable. */
    fault_kind = -1;
    wal_scan_options o = {.dir = dir, .hall_id = HALL};
    wal_scan_result r;
    assert_int_equal(wal_recover(&o, NULL, &r), 0);
    assert_true(r.last_lsn >= durable);
    seen s;
    assert_int_equal(scan(&r, &s), 0);
    assert_int_equal(s.bad, 0);
}

static void test_faults(void **state)
{
    (void)state;
    fault_case(F_PWRITE, 1, EIO, "write");
    fault_case(F_PWRITE, 5, ENOSPC, "write");
    fault_case(F_SHORT, 3, 0, "write");
    fault_case(F_FDATASYNC, 1, EIO, "fdatasync");
    fault_case(F_FDATASYNC, 4, EIO, "fdatasync");
    fault_case(F_OPEN, 1, ENOSPC, "open");
    fault_case(F_RENAME, 1, EIO, "rename");
    fault_case(F_FALLOCATE, 1, ENOSPC, "fallocate");
}

static void test_crc32c_known_value(void **state)
{
    (void)state;
    /* The standard check value of CRC-32C. */
    assert_int_equal(wal_crc32c(0, "123456789", 9), 0xE3069283);
    /* Incremental equals one-shot. */
    uint32_t c = wal_crc32c(0, "1234", 4);
    assert_int_equal(wal_crc32c(c, "56789", 5), 0xE3069283);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known_value),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_every_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_tail_is_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zeros_then_data_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_bit_before_tail_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segment_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_edit_delete_swap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_and_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_backwards_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
