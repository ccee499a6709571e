/* tests/unit/test_wal_util.h: what the WAL's unit tests share: a scratch
 * log directory, a writer over it, batches of records whose every field
 * follows from their LSN (so a visitor can check them), file surgery to
 * forge damage, and an I/O table that fails on demand.
 *
 * Header only (tests/unit globs test_*.c, each one a program); every
 * helper is static and marked unused so that each test file takes what
 * it needs. Include it after cmocka.h. */
#ifndef HALLQ_TEST_WAL_UTIL_H
#define HALLQ_TEST_WAL_UTIL_H

#include "wal/wal.h"
#include "wal/wal_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TU __attribute__((unused)) static
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

TU int wal_setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/hallq-wal-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

TU int wal_teardown(void **state)
{
    (void)state;
    assert_int_equal(nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS), 0);
    return 0;
}

/* Empties the scratch directory (for tests that loop over cases). */
TU void wal_reset_dir(void)
{
    assert_int_equal(nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS), 0);
    assert_int_equal(mkdir(dir, 0700), 0);
}

TU char *seg_path(uint64_t first)
{
    static char p[200];
    char name[64];
    wal_segment_name(name, first);
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

TU char *dir_path(const char *name)
{
    static char p[200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

/* Recovers the log and opens a writer at its end. */
TU wal_writer *open_writer_ex(const wal_io_ops *io, uint64_t seg, bool sync)
{
    wal_scan_options o = {.dir = dir, .hall_id = HALL};
    wal_scan_result r;
    int rc = wal_recover(&o, io, &r);
    if (rc)
        fail_msg("recover: %s (%s)", wal_strerror(rc), r.message);
    wal_writer_options wo = {
        .dir = dir, .hall_id = HALL, .segment_bytes = seg, .sync = sync, .io = io};
    wal_writer *w;
    assert_int_equal(wal_writer_open(&w, &wo, &r), 0);
    return w;
}

TU wal_writer *open_writer(const wal_io_ops *io, uint64_t seg)
{
    return open_writer_ex(io, seg, true);
}

/* Every field of record `lsn` follows from its LSN. */
TU uint16_t rec_type(uint64_t lsn)
{
    return (uint16_t)(1 + lsn % 7);
}
TU uint8_t rec_role(uint64_t lsn)
{
    return (uint8_t)(lsn % 4);
}
TU const char *rec_actor(uint64_t lsn)
{
    static const char *ids[] = {"", "K1", "window-16-chars!"};
    return ids[lsn % 3];
}
/* "rec-<lsn>" then a tail of bytes that vary with the LSN. */
TU uint32_t rec_payload(uint64_t lsn, uint8_t *p)
{
    int len = snprintf((char *)p, 32, "rec-%llu", (unsigned long long)lsn);
    uint32_t pad = (uint32_t)(lsn * 7 % 50);
    for (uint32_t i = 0; i < pad; i++)
        p[len + (int)i] = (uint8_t)(lsn + i);
    return (uint32_t)len + pad;
}

TU void append_one(wal_writer *w, uint64_t at)
{
    uint8_t p[128];
    uint64_t lsn = wal_writer_last_lsn(w) + 1, got = 0;
    uint32_t len = rec_payload(lsn, p);
    int rc = wal_writer_append(w, rec_type(lsn), at, rec_role(lsn), rec_actor(lsn), p, len, &got);
    assert_int_equal(rc, 0);
    assert_int_equal(got, lsn);
}

/* Appends n records at time `at` as one batch and makes it durable. */
TU void append_batch(wal_writer *w, int n, uint64_t at)
{
    for (int i = 0; i < n; i++)
        append_one(w, at);
    assert_int_equal(wal_writer_seal(w), 0);
    assert_int_equal(wal_writer_complete(w, wal_writer_flush(w)), 0);
    assert_int_equal(wal_writer_durable_lsn(w), wal_writer_last_lsn(w));
}

/* Plain open and fallocate, for a test's own I/O table: open is variadic
 * and wal_io_posix's members are no constants an initializer can name. */
TU int io_open(const char *p, int fl, mode_t m)
{
    return open(p, fl, m);
}

TU int io_fallocate(int fd, off_t off, off_t len)
{
    return wal_io_posix.fallocate(fd, off, len);
}

/* What run_until_fault saw: the failing flush and complete, the durable
 * LSN before the failing batch, the last LSN appended. */
typedef struct fault_run {
    int frc, crc;
    uint64_t durable, appended;
} fault_run;

/* Writes batches of per_batch records (batch b at time at + b) until a
 * flush fails or max_batches were durable; an armed fault must strike. */
TU fault_run run_until_fault(wal_writer *w, int max_batches, int per_batch, uint64_t at)
{
    fault_run f = {0};
    for (int b = 0; b < max_batches && f.frc == 0; b++) {
        f.durable = wal_writer_durable_lsn(w);
        for (int i = 0; i < per_batch; i++)
            append_one(w, at + (uint64_t)b);
        f.appended = wal_writer_last_lsn(w);
        assert_int_equal(wal_writer_seal(w), 0);
        f.frc = wal_writer_flush(w);
        f.crc = wal_writer_complete(w, f.frc);
        if (f.frc == 0)
            assert_int_equal(f.crc, 0);
    }
    return f;
}

/* After a failed flush (error `want`): the batch is not durable, and the
 * writer is failed for good: nothing is accepted, the first error stays. */
TU void check_failed_for_good(wal_writer *w, const fault_run *f, int want)
{
    assert_int_equal(f->frc, want);
    assert_int_equal(f->crc, WAL_E_FAILED);
    assert_int_equal(wal_writer_failed(w), want);
    assert_int_equal(wal_writer_durable_lsn(w), f->durable);
    uint64_t lsn;
    assert_int_equal(wal_writer_append(w, 1, 99999, 1, "K1", "x", 1, &lsn), WAL_E_FAILED);
    assert_int_equal(wal_writer_seal(w), WAL_E_FAILED);
    assert_int_equal(wal_writer_flush(w), want);               /* misuse: still nothing */
    assert_int_equal(wal_writer_complete(w, 0), WAL_E_FAILED); /* nothing in flight */
    assert_int_equal(wal_writer_failed(w), want);
}

/* What a writer does on its first failure, after the failing call: the
 * fence's open, pwrite, fsync and rename, then the directory's open and
 * fsync (closes not counted). */
#define FENCE_IO_CALLS 6

/* After a failure: the fence is there and names a durable end between
 * `lo` (durable before the failing batch) and `hi` (appended); returns
 * its LSN. */
TU uint64_t check_fence(uint64_t lo, uint64_t hi)
{
    wal_fence fc;
    int rc = wal_fence_read(dir, &fc);
    if (rc)
        fail_msg("no fence after a failure: %s", wal_strerror(rc));
    if (fc.lsn < lo || fc.lsn > hi)
        fail_msg("fence at LSN %llu, want %llu..%llu", (unsigned long long)fc.lsn,
                 (unsigned long long)lo, (unsigned long long)hi);
    return fc.lsn;
}

typedef struct seen {
    uint64_t n, first, last, last_at;
    int bad;
} seen;

/* Checks each visited record against what append_one wrote. */
TU int visit_check(void *ctx, const wal_record *rec, const wal_pos *pos)
{
    seen *s = ctx;
    uint8_t want[128];
    uint32_t len = rec_payload(rec->lsn, want);
    if (rec->payload_len != len || memcmp(rec->payload, want, len) != 0 ||
        rec->type != rec_type(rec->lsn) || rec->actor_role != rec_role(rec->lsn) ||
        strcmp(rec->actor_id, rec_actor(rec->lsn)) != 0 ||
        rec->actor_id_len != strlen(rec_actor(rec->lsn)) || (s->n && rec->lsn != s->last + 1) ||
        rec->at_ms < s->last_at || pos->lsn != rec->lsn || pos->offset < WAL_SEGMENT_HEADER_LEN)
        s->bad++;
    if (!s->n)
        s->first = rec->lsn;
    s->last = rec->lsn;
    s->last_at = rec->at_ms;
    s->n++;
    return 0;
}

/* Scans the whole log, checking every record. */
TU int scan_check(wal_scan_result *r, seen *s)
{
    wal_scan_options o = {.dir = dir, .hall_id = HALL, .visit = visit_check, .ctx = s};
    memset(s, 0, sizeof *s);
    return wal_scan(&o, r);
}

TU int scan_plain(wal_scan_result *r)
{
    wal_scan_options o = {.dir = dir, .hall_id = HALL};
    return wal_scan(&o, r);
}

TU int recover_plain(wal_scan_result *r)
{
    wal_scan_options o = {.dir = dir, .hall_id = HALL};
    return wal_recover(&o, NULL, r);
}

/* The writer (segments of seg bytes, synced or not) continues the log
 * after LSN `good`: a batch of 2 records at time `at` follows it, and the
 * log then scans clean, records 1..good + 2 all there and right. *r: that
 * scan. */
TU void check_writer_continues(uint64_t good, uint64_t seg, bool sync, uint64_t at,
                               wal_scan_result *r)
{
    wal_writer *w = open_writer_ex(NULL, seg, sync);
    assert_int_equal(wal_writer_last_lsn(w), good);
    append_batch(w, 2, at);
    wal_writer_close(w);
    seen s;
    assert_int_equal(scan_check(r, &s), 0);
    assert_false(r->torn);
    assert_int_equal(s.n, good + 2);
    assert_int_equal(s.last, good + 2);
    assert_int_equal(s.bad, 0);
}

/* ---- file surgery ---- */

TU uint8_t *file_read(const char *path, size_t *size)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t *b = malloc((size_t)st.st_size + 1);
    assert_non_null(b);
    assert_int_equal(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
    close(fd);
    *size = (size_t)st.st_size;
    return b;
}

TU void file_write(const char *path, const uint8_t *b, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, b, size, 0), (ssize_t)size);
    close(fd);
}

TU void file_copy(const char *from, const char *to)
{
    size_t n;
    uint8_t *b = file_read(from, &n);
    file_write(to, b, n);
    free(b);
}

TU void poke(const char *path, long off, uint8_t xor_mask)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= xor_mask;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

/* Offsets of the records in a segment image (up to max), and their count. */
TU int record_offsets(const uint8_t *b, size_t size, size_t *offs, size_t *sizes, int max)
{
    size_t pos = WAL_SEGMENT_HEADER_LEN;
    int n = 0;
    while (pos + WAL_RECORD_HEADER_LEN <= size && wal_get32(b + pos) != 0 && n < max) {
        size_t total = WAL_RECORD_OVERHEAD + wal_get32(b + pos);
        offs[n] = pos;
        sizes[n] = total;
        n++;
        pos += total;
    }
    return n;
}

/* Finds record `lsn` in segment `first`. */
TU void find_record(uint64_t first, uint64_t lsn, long *off, long *size)
{
    size_t n, offs[512], sizes[512];
    uint8_t *b = file_read(seg_path(first), &n);
    int k = record_offsets(b, n, offs, sizes, 512);
    free(b);
    for (int i = 0; i < k; i++)
        if (lsn == first + (uint64_t)i) {
            *off = (long)offs[i];
            *size = (long)sizes[i];
            return;
        }
    fail_msg("LSN %llu not in segment %llu", (unsigned long long)lsn, (unsigned long long)first);
}

/* Recomputes chain hash and CRC of every record of a segment image from
 * offset `from` on, as a forger with the format (and no key) could. */
TU void reseal(uint8_t *b, size_t size, size_t from)
{
    size_t offs[512], sizes[512];
    int n = record_offsets(b, size, offs, sizes, 512);
    uint8_t chain[WAL_HASH_LEN];
    memcpy(chain, b + 64, WAL_HASH_LEN); /* carried over in the header */
    for (int i = 0; i < n; i++) {
        uint8_t *p = b + offs[i];
        if (offs[i] >= from) {
            wal_record_chain(p, sizes[i], chain, p + sizes[i] - 4 - WAL_HASH_LEN);
            wal_put32(p + sizes[i] - 4, wal_crc32c(0, p, sizes[i] - 4));
        }
        memcpy(chain, p + sizes[i] - 4 - WAL_HASH_LEN, WAL_HASH_LEN);
    }
}

/* Rewrites the header of segment `first` through fn, with a fixed CRC. */
TU void edit_header(uint64_t first, void (*fn)(uint8_t *h))
{
    int fd = open(seg_path(first), O_RDWR);
    uint8_t h[WAL_SEGMENT_HEADER_LEN];
    assert_int_equal(pread(fd, h, sizeof h, 0), (ssize_t)sizeof h);
    fn(h);
    wal_put32(h + 124, wal_crc32c(0, h, 124));
    assert_int_equal(pwrite(fd, h, sizeof h, 0), (ssize_t)sizeof h);
    close(fd);
}

TU int count_files(const char *suffix)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t sl = strlen(suffix);
    while (d && (de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l >= sl && strcmp(de->d_name + l - sl, suffix) == 0)
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

/* Recovery refuses the log (WAL_E_CORRUPT) and repairs nothing: no torn
 * tail, segment 1 byte for byte as before, no .broken copy. *r: for the
 * caller's checks of where and why. */
TU void recover_refused(wal_scan_result *r)
{
    size_t n0, n1;
    uint8_t *before = file_read(seg_path(1), &n0);
    assert_int_equal(recover_plain(r), WAL_E_CORRUPT);
    assert_false(r->torn);
    uint8_t *after = file_read(seg_path(1), &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    assert_int_equal(count_files(".broken"), 0);
    free(before);
    free(after);
}

#endif
