/* wal/writer.c: appends records and makes them durable in groups.
 *
 * The owner thread appends records to the pending batch, in memory: LSN,
 * time floor and chain hash advance here, so the daemon can apply a whole
 * batch before any of it is written. wal_writer_seal swaps the pending
 * buffer with the (empty) in-flight one, no copy. wal_writer_flush, on a
 * worker thread, writes the in-flight batch with one pwrite per segment
 * touched and fdatasyncs each segment once; a record that does not fit in
 * the rest of the segment starts a new one. wal_writer_complete, back on
 * the owner thread, turns the flush's outcome into the durable LSN or
 * the failed state.
 *
 * Invariants:
 * - A record is durable only once fdatasync of its segment returned 0
 *   (with sync off, once pwrite returned: the caller chose so).
 * - Between seal and complete the flush side (inflight, fd, seg_*, io_*)
 *   belongs to the worker; the owner reads it only in complete, after the
 *   worker finished (the hand-over, e.g. uv_queue_work, orders memory).
 *   The owner side (pending, next_lsn, chain, failed...) is never read or
 *   written by the worker. So no lock is needed.
 * - A segment is left only after an fdatasync of what was written to it
 *   (even with sync off), so only the last segment can have a torn tail.
 * - With sync on, at most WAL_FLUSH_MAX_BYTES of record bytes are written
 *   and not yet synced (a bigger batch is synced in rounds), all right
 *   after the last synced record: the bound the scanner's torn-batch rule
 *   relies on (wal_internal.h).
 * - On the first failure the fence (fence.c) is written, once, naming the
 *   last record synced (dur_*): a restart trusts nothing past it.
 * - After any write, sync, open, rename or allocation error the writer is
 *   failed for good: the fd is never synced again (a second fsync could
 *   report success for pages the kernel already dropped), and every later
 *   append and seal returns WAL_E_FAILED. A restart recovers from disk.
 *   A failed write of zeros ahead (below) counts as a failed write.
 *
 * Zeroing ahead (sync on only). posix_fallocate's blocks are "unwritten
 * extents" on ext4: the first write into one converts it, a metadata
 * change, so the fdatasync after it must commit the journal too; over
 * blocks already written (with zeros) and synced, an fdatasync is just the
 * data flush. Measured on the project VM's ext4 (virtio disk), a 4 KiB or
 * 32 KiB pwrite + fdatasync took 20-50 % less on the mean over written
 * zeros than over fallocate'd blocks (128 B: no difference, as most such
 * writes land in a block that an earlier one converted). So the flush
 * keeps a frontier (seg_zeroed): once the end of a batch comes within
 * WAL_ZERO_AHEAD of it, the flush also writes WAL_ZERO_CHUNK of zeros past
 * it, in writes of at most WAL_ZERO_WRITE, before the batch's fdatasync,
 * which covers both: the conversion is paid by one batch per chunk
 * instead of by every batch. Zeros go only past the records written so
 * far, over bytes that read as zeros already, so the log's bytes (and
 * recovery) are the same with or without them. A segment starts with only
 * its header written; zeroing starts once its records reach WAL_ZERO_FROM,
 * so a segment that gets only a few records (a short run) costs no extra
 * write.
 *
 * Never: retry a write or an fsync, write a record the reader would
 * refuse (time going back, an over-long actor id), or block the owner
 * thread on I/O outside wal_writer_open. */
#include "wal/wal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCH_MIN_CAP 65536

typedef struct batch {
    uint8_t *buf; /* encoded records, back to back */
    size_t len, cap;
    size_t n;                          /* records in buf */
    uint64_t first_lsn;                /* LSN of the first record */
    uint8_t start_chain[WAL_HASH_LEN]; /* chain hash before the first record */
} batch;

struct wal_writer {
    /* Fixed at open. */
    char dir[4096];
    char hall_id[WAL_HALL_ID_MAX + 1];
    uint64_t seg_bytes_new; /* size of the segments created from now on */
    bool sync;
    const wal_io_ops *io;

    /* Owner thread. */
    uint64_t next_lsn, last_at;
    uint8_t chain[WAL_HASH_LEN];
    uint64_t base_lsn, base_at; /* at the last seal: the rollback target */
    uint8_t base_chain[WAL_HASH_LEN];
    batch pending;
    bool busy; /* a batch is sealed and not completed */
    uint64_t durable_lsn;
    int failed;
    char where[480];

    /* Flush side: the worker's between seal and complete. */
    batch inflight;
    int fd;
    char seg_name[64];
    uint64_t seg_off;    /* where the next record goes */
    uint64_t seg_bytes;  /* size of the current segment */
    uint64_t seg_zeroed; /* [0, seg_zeroed) of the segment has been written */
    int io_err;          /* sticky: the first I/O error */
    char io_where[480];
    /* The durable end: the last record synced (or, with sync off,
     * written), its segment and the offset after it. What the fence says. */
    char dur_seg[64];
    uint64_t dur_off, dur_lsn;
    bool fence_done; /* the fence was written (or tried) */
};

/* Flush side: the records up to `lsn` are durable, and end where the
 * next record would go. */
static void mark_durable(wal_writer *w, uint64_t lsn)
{
    memcpy(w->dur_seg, w->seg_name, sizeof w->dur_seg);
    w->dur_off = w->seg_off;
    w->dur_lsn = lsn;
}

/* After the first failure: persists the fence, once (see wal.h), and
 * says in io_where when even that failed. Runs on the flush side (the
 * worker, or the owner in complete once the worker is done). */
static void write_fence(wal_writer *w)
{
    if (w->fence_done)
        return;
    w->fence_done = true;
    wal_fence f = {.lsn = w->dur_lsn, .offset = w->dur_off};
    memcpy(f.segment, w->dur_seg, sizeof f.segment);
    const char *call = "";
    int rc = wal_fence_write(w->io, w->dir, &f, &call);
    if (rc) {
        size_t l = strlen(w->io_where);
        snprintf(w->io_where + l, sizeof w->io_where - l,
                 "; and the fence could not be written (%s: %s): a restart may trust bytes "
                 "that only the page cache holds",
                 call, wal_strerror(rc));
    }
}

/* Flush side: records the first I/O error and where it struck. */
static int io_fail(wal_writer *w, int err, const char *call, const char *name, const char *extra)
{
    if (!w->io_err) {
        w->io_err = err ? err : -EIO;
        snprintf(w->io_where, sizeof w->io_where, "%s %s: %s%s", call, name,
                 wal_strerror(w->io_err), extra ? extra : "");
    }
    return w->io_err;
}

static void segment_header(const wal_writer *w, wal_seg_header *h, uint64_t first_lsn,
                           const uint8_t prev[WAL_HASH_LEN])
{
    memset(h, 0, sizeof *h);
    h->version = WAL_FORMAT_VERSION;
    h->first_lsn = first_lsn;
    h->segment_bytes = w->seg_bytes_new;
    memcpy(h->hall_id, w->hall_id, sizeof h->hall_id);
    memcpy(h->prev_hash, prev, WAL_HASH_LEN);
}

static int open_existing(wal_writer *w, const wal_scan_result *end)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", w->dir, end->last_segment);
    uint64_t first;
    if (!wal_segment_parse_name(end->last_segment, &first) || end->segment_bytes == 0 ||
        end->end_offset < WAL_SEGMENT_HEADER_LEN || end->end_offset > end->segment_bytes)
        return -EINVAL;
    errno = 0;
    w->fd = w->io->open(path, O_RDWR | O_CLOEXEC, 0);
    if (w->fd < 0)
        return errno ? -errno : -EIO;
    struct stat st;
    if (fstat(w->fd, &st) != 0)
        return -errno;
    memcpy(w->seg_name, end->last_segment, sizeof w->seg_name);
    w->seg_off = end->end_offset;
    w->seg_bytes = end->segment_bytes;
    w->seg_zeroed = end->end_offset; /* what lies beyond may never have been written */
    /* A segment cut short (a crash while it was extended, a copy) gets
     * its full size back, so appends never extend the file. */
    if ((uint64_t)st.st_size < w->seg_bytes) {
        errno = 0;
        if (w->io->fallocate(w->fd, 0, (off_t)w->seg_bytes) != 0 || w->io->fsync(w->fd) != 0)
            return errno ? -errno : -EIO;
    }
    /* No record at all: the chain starts at the segment's header. */
    w->next_lsn = end->last_lsn ? end->last_lsn + 1 : first;
    if (w->next_lsn < first)
        return -EINVAL;
    memcpy(w->chain, end->head_hash, WAL_HASH_LEN);
    w->last_at = end->last_at_ms;
    return 0;
}

int wal_writer_open(wal_writer **out, const wal_writer_options *opt, const wal_scan_result *end)
{
    *out = NULL;
    if (!opt || !opt->dir || !opt->hall_id || !opt->hall_id[0] ||
        strlen(opt->hall_id) > WAL_HALL_ID_MAX || strlen(opt->dir) >= 4096)
        return -EINVAL;
    uint64_t seg = opt->segment_bytes ? opt->segment_bytes : WAL_DEFAULT_SEGMENT_BYTES;
    if (seg < WAL_MIN_SEGMENT_BYTES || seg > ((uint64_t)1 << 40))
        return -EINVAL;
    if (end && end->last_segment[0]) {
        /* A torn tail must be cut (wal_recover) before appending after it. */
        if (end->torn && !end->broken_copy[0])
            return WAL_E_CORRUPT;
        if (end->hall_id[0] && strcmp(end->hall_id, opt->hall_id) != 0)
            return WAL_E_HALL;
    }
    wal_sodium_init();
    wal_writer *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    snprintf(w->dir, sizeof w->dir, "%s", opt->dir);
    snprintf(w->hall_id, sizeof w->hall_id, "%s", opt->hall_id);
    w->seg_bytes_new = seg;
    w->sync = opt->sync;
    w->io = opt->io ? opt->io : &wal_io_posix;
    w->fd = -1;
    int rc;
    if (end && end->last_segment[0]) {
        rc = open_existing(w, end);
    } else {
        wal_seg_header h;
        const char *call;
        wal_seg_ent *segs;
        size_t n;
        /* Never start a new chain over segments the caller did not scan:
         * creating segment 1 would rename over the existing one. */
        if ((rc = wal_segment_list(w->dir, &segs, &n)) == 0) {
            free(segs);
            if (n)
                rc = -EEXIST;
        }
        if (rc) {
            wal_writer_close(w);
            return rc;
        }
        wal_genesis_hash(w->hall_id, w->chain);
        w->next_lsn = 1;
        segment_header(w, &h, 1, w->chain);
        rc = wal_segment_create(w->io, w->dir, &h, &w->fd, &call);
        wal_segment_name(w->seg_name, 1);
        w->seg_off = w->seg_zeroed = WAL_SEGMENT_HEADER_LEN;
        w->seg_bytes = seg;
    }
    if (rc) {
        wal_writer_close(w);
        return rc;
    }
    w->base_lsn = w->next_lsn;
    w->base_at = w->last_at;
    memcpy(w->base_chain, w->chain, WAL_HASH_LEN);
    w->durable_lsn = w->next_lsn - 1;
    mark_durable(w, w->durable_lsn);
    *out = w;
    return 0;
}

void wal_writer_close(wal_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        w->io->close(w->fd);
    free(w->pending.buf);
    free(w->inflight.buf);
    free(w);
}

static int batch_reserve(batch *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    size_t cap = b->cap ? b->cap : BATCH_MIN_CAP;
    while (cap - b->len < extra)
        cap *= 2;
    uint8_t *nb = realloc(b->buf, cap);
    if (!nb)
        return -ENOMEM;
    b->buf = nb;
    b->cap = cap;
    return 0;
}

int wal_writer_append(wal_writer *w, uint16_t type, uint64_t at_ms, uint8_t actor_role,
                      const char *actor_id, const void *payload, uint32_t payload_len,
                      uint64_t *lsn)
{
    if (w->failed)
        return WAL_E_FAILED;
    size_t idl = actor_id ? strlen(actor_id) : 0;
    if (type == 0 || idl > WAL_ACTOR_ID_MAX)
        return -EINVAL;
    size_t total = WAL_RECORD_OVERHEAD + (size_t)payload_len;
    if (payload_len == 0 || payload_len > WAL_MAX_PAYLOAD ||
        total > w->seg_bytes_new - WAL_SEGMENT_HEADER_LEN)
        return WAL_E_TOOBIG;
    if (at_ms < w->last_at)
        return WAL_E_TIME; /* the reader would refuse the whole log */
    batch *b = &w->pending;
    int rc = batch_reserve(b, total);
    if (rc)
        return rc;
    if (b->n == 0) {
        b->first_lsn = w->next_lsn;
        memcpy(b->start_chain, w->chain, WAL_HASH_LEN);
    }
    wal_record_encode(b->buf + b->len, w->chain, w->next_lsn, at_ms, type, actor_role, actor_id,
                      idl, payload, payload_len, w->chain);
    b->len += total;
    b->n++;
    w->last_at = at_ms;
    if (lsn)
        *lsn = w->next_lsn;
    w->next_lsn++;
    return 0;
}

void wal_writer_rollback(wal_writer *w)
{
    w->pending.len = 0;
    w->pending.n = 0;
    w->next_lsn = w->base_lsn;
    w->last_at = w->base_at;
    memcpy(w->chain, w->base_chain, WAL_HASH_LEN);
}

void wal_writer_mark(const wal_writer *w, wal_mark *m)
{
    m->len = w->pending.len;
    m->n = w->pending.n;
    m->next_lsn = w->next_lsn;
    m->last_at = w->last_at;
    memcpy(m->chain, w->chain, WAL_HASH_LEN);
}

void wal_writer_rollback_to(wal_writer *w, const wal_mark *m)
{
    w->pending.len = m->len;
    w->pending.n = m->n;
    w->next_lsn = m->next_lsn;
    w->last_at = m->last_at;
    memcpy(w->chain, m->chain, WAL_HASH_LEN);
}

size_t wal_writer_pending(const wal_writer *w)
{
    return w->pending.n;
}

int wal_writer_seal(wal_writer *w)
{
    if (w->busy)
        return WAL_E_BUSY;
    if (w->failed)
        return WAL_E_FAILED;
    batch t = w->inflight; /* empty since the last complete */
    w->inflight = w->pending;
    w->pending = t;
    w->pending.len = 0;
    w->pending.n = 0;
    w->busy = true;
    w->base_lsn = w->next_lsn;
    w->base_at = w->last_at;
    memcpy(w->base_chain, w->chain, WAL_HASH_LEN);
    return 0;
}

/* ---- flush side (worker thread) ---- */

/* One pwrite of len bytes at off; a short write is an error like any
 * other, never retried. `what` is appended to the error's place. */
static int write_at(wal_writer *w, const uint8_t *p, size_t len, uint64_t off, const char *what)
{
    errno = 0;
    ssize_t n = w->io->pwrite(w->fd, p, len, (off_t)off);
    if (n == (ssize_t)len)
        return 0;
    char extra[128];
    if (n >= 0) {
        snprintf(extra, sizeof extra, " (short write: %zd of %zu bytes)%s", n, len, what);
        return io_fail(w, -EIO, "pwrite", w->seg_name, extra);
    }
    return io_fail(w, errno ? -errno : -EIO, "pwrite", w->seg_name, what);
}

static int write_run(wal_writer *w, const uint8_t *p, size_t len)
{
    if (len == 0)
        return 0;
    int rc = write_at(w, p, len, w->seg_off, "");
    if (rc)
        return rc;
    w->seg_off += len;
    return 0;
}

/* Writes zeros ahead of the records when they come near the frontier
 * (see the top of the file). Never before seg_off, never past the
 * segment's size. */
static int zero_ahead(wal_writer *w)
{
    /* Never written to; not const, so that it lives in .bss rather than
     * as 1 MiB of zeros in the binary's .rodata. */
    static uint8_t zeros[WAL_ZERO_WRITE];
    uint64_t from = w->seg_zeroed > w->seg_off ? w->seg_zeroed : w->seg_off;
    if (w->seg_off < WAL_ZERO_FROM || from >= w->seg_bytes || from - w->seg_off >= WAL_ZERO_AHEAD)
        return 0;
    uint64_t to = w->seg_bytes - from > WAL_ZERO_CHUNK ? from + WAL_ZERO_CHUNK : w->seg_bytes;
    char what[64];
    snprintf(what, sizeof what, " (zeroing ahead at offset %llu)", (unsigned long long)from);
    for (uint64_t off = from; off < to;) {
        size_t n = to - off < sizeof zeros ? (size_t)(to - off) : sizeof zeros;
        int rc = write_at(w, zeros, n, off, what);
        if (rc)
            return rc;
        off += n;
        w->seg_zeroed = off;
    }
    return 0;
}

/* A flush failed with rc (io_err holds it): persist the fence. */
static int flush_failed(wal_writer *w, int rc)
{
    write_fence(w);
    return rc;
}

static int sync_segment(wal_writer *w)
{
    errno = 0;
    if (w->io->fdatasync(w->fd) != 0)
        return io_fail(w, errno ? -errno : -EIO, "fdatasync", w->seg_name, NULL);
    return 0;
}

/* Closes the full segment (already synced) and starts `first_lsn`. */
static int roll_over(wal_writer *w, uint64_t first_lsn, const uint8_t prev[WAL_HASH_LEN])
{
    wal_seg_header h;
    const char *call = "";
    char name[64];
    int fd;
    segment_header(w, &h, first_lsn, prev);
    wal_segment_name(name, first_lsn);
    int rc = wal_segment_create(w->io, w->dir, &h, &fd, &call);
    if (rc)
        return io_fail(w, rc, call, strstr(call, "dir") ? w->dir : name, NULL);
    w->io->close(w->fd);
    w->fd = fd;
    memcpy(w->seg_name, name, sizeof w->seg_name);
    w->seg_off = w->seg_zeroed = WAL_SEGMENT_HEADER_LEN;
    w->seg_bytes = h.segment_bytes;
    return 0;
}

int wal_writer_flush(wal_writer *w)
{
    if (w->io_err)
        return flush_failed(w, w->io_err); /* touch nothing else after a failure */
    const batch *b = &w->inflight;
    size_t run = 0; /* start of the bytes not yet written */
    uint64_t lsn = b->first_lsn;
    for (size_t off = 0; off < b->len; lsn++) {
        size_t total = WAL_RECORD_OVERHEAD + (size_t)wal_get32(b->buf + off);
        if (w->seg_off + (off - run) + total > w->seg_bytes) {
            /* The record does not fit: write what does, make the segment
             * durable, continue in a new one. */
            int rc = write_run(w, b->buf + run, off - run);
            if (!rc)
                rc = sync_segment(w);
            if (!rc)
                mark_durable(w, lsn - 1);
            if (!rc)
                rc = roll_over(w, lsn, off ? b->buf + off - WAL_HASH_LEN - 4 : b->start_chain);
            if (rc)
                return flush_failed(w, rc);
            mark_durable(w, lsn - 1); /* the new segment is synced, header and name */
            run = off;
        } else if (w->sync && off - run + total > WAL_FLUSH_MAX_BYTES) {
            /* The torn-batch bound (wal_internal.h): this round is full,
             * so it is synced before the next one is written. */
            int rc = write_run(w, b->buf + run, off - run);
            if (!rc)
                rc = zero_ahead(w);
            if (!rc)
                rc = sync_segment(w);
            if (rc)
                return flush_failed(w, rc);
            mark_durable(w, lsn - 1);
            run = off;
        }
        off += total;
    }
    int rc = write_run(w, b->buf + run, b->len - run);
    if (!rc && w->sync && b->len > run) {
        rc = zero_ahead(w); /* the same fdatasync covers records and zeros */
        if (!rc)
            rc = sync_segment(w);
    }
    if (rc)
        return flush_failed(w, rc);
    if (b->n)
        mark_durable(w, b->first_lsn + b->n - 1);
    return 0;
}

/* ---- owner thread again ---- */

int wal_writer_complete(wal_writer *w, int flush_rc)
{
    if (!w->busy)
        return w->failed ? WAL_E_FAILED : 0; /* nothing in flight */
    batch *b = &w->inflight;
    w->busy = false;
    if (flush_rc || w->io_err || w->failed) {
        if (!w->failed) {
            if (w->io_err) {
                w->failed = w->io_err;
                memcpy(w->where, w->io_where, sizeof w->where);
            } else {
                /* The flush did not run or reported something else: the
                 * file's state is unknown, so it is never synced again. */
                w->failed = flush_rc < 0 ? flush_rc : -EIO;
                snprintf(w->io_where, sizeof w->io_where, "flush %s: %s", w->seg_name,
                         wal_strerror(w->failed));
                memcpy(w->where, w->io_where, sizeof w->where);
            }
        }
        if (!w->io_err)
            w->io_err = w->failed;
        if (!w->fence_done) {
            /* The flush did not say why: the fence is still owed (the
             * owner does this I/O once, on the way to failing for good). */
            write_fence(w);
            memcpy(w->where, w->io_where, sizeof w->where);
        }
        /* Its records may or may not be on disk: never acknowledged, and
         * no more appends, so LSN and chain need no rewinding. */
        b->len = b->n = 0;
        return WAL_E_FAILED;
    }
    if (b->n)
        w->durable_lsn = b->first_lsn + b->n - 1;
    b->len = b->n = 0;
    return 0;
}

uint64_t wal_writer_last_lsn(const wal_writer *w)
{
    return w->next_lsn - 1;
}

uint64_t wal_writer_durable_lsn(const wal_writer *w)
{
    return w->durable_lsn;
}

int wal_writer_failed(const wal_writer *w)
{
    return w->failed;
}

const char *wal_writer_failed_where(const wal_writer *w)
{
    return w->failed ? w->where : "";
}

uint64_t wal_writer_zeroed_to(const wal_writer *w)
{
    return w->seg_zeroed > w->seg_off ? w->seg_zeroed : w->seg_off;
}
