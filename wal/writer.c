/* wal/writer.c: appends records and makes them durable in groups.
 *
 * The owner thread appends records to the pending batch (memory only:
 * LSN and chain hash are assigned here). wal_writer_seal swaps the pending
 * buffer with the free in-flight one; wal_writer_flush, on a worker
 * thread, writes it with one pwrite per segment touched and one fdatasync
 * per segment, rolling over to a new segment when a record does not fit.
 * A record is durable only once fdatasync of its segment returned 0.
 * After any write, sync, open or rename error the writer refuses all
 * appends for good and never syncs that file again: a restart recovers
 * from what is on disk. */
#include "wal/wal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct batch {
    uint8_t *buf;
    size_t len, cap;
    size_t *offs; /* start of each record */
    size_t n, ncap;
    uint64_t first_lsn;
    uint8_t start_chain[WAL_HASH_LEN]; /* chain before its first record */
} batch;

struct wal_writer {
    char dir[4096];
    char hall_id[WAL_HALL_ID_MAX + 1];
    uint64_t seg_bytes_new; /* size of segments created from now on */
    bool sync;
    const wal_io_ops *io;

    /* File state: owned by flush (worker) between seal and complete. */
    int fd;
    char seg_name[64];
    uint64_t seg_off;   /* where the next record goes */
    uint64_t seg_bytes; /* size of the current segment */

    /* Owner state. */
    uint64_t next_lsn;
    uint8_t chain[WAL_HASH_LEN];
    uint64_t base_lsn; /* next_lsn at the last seal: rollback target */
    uint8_t base_chain[WAL_HASH_LEN];
    batch pending, inflight;
    bool busy;
    uint64_t durable_lsn;
    int failed;
    char where[160];
};

static void set_failed(wal_writer *w, int err, const char *call, const char *name)
{
    if (w->failed)
        return;
    w->failed = err ? err : -EIO;
    snprintf(w->where, sizeof w->where, "%s %s: %s", call, name, wal_strerror(w->failed));
}

static int fsync_dir(wal_writer *w)
{
    int fd = w->io->open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = w->io->fsync(fd) == 0 ? 0 : -errno;
    w->io->close(fd);
    return rc;
}

/* Creates segment `first_lsn` (temp file, preallocate, header, fsync,
 * rename, directory fsync) and makes it current. */
static int create_segment(wal_writer *w, uint64_t first_lsn, const uint8_t prev[WAL_HASH_LEN])
{
    char name[64], path[4200], tmp[4300];
    wal_segment_name(name, first_lsn);
    snprintf(path, sizeof path, "%s/%s", w->dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    wal_seg_header h = {.first_lsn = first_lsn, .segment_bytes = w->seg_bytes_new};
    snprintf(h.hall_id, sizeof h.hall_id, "%s", w->hall_id);
    memcpy(h.prev_hash, prev, WAL_HASH_LEN);
    uint8_t hdr[WAL_SEGMENT_HEADER_LEN];
    wal_header_encode(hdr, &h);

    int fd = w->io->open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        set_failed(w, -errno, "open", name);
        return w->failed;
    }
    const char *call = NULL;
    if (w->io->fallocate(fd, 0, (off_t)w->seg_bytes_new) != 0)
        call = "fallocate";
    else if (w->io->pwrite(fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr)
        call = "write";
    else if (w->io->fsync(fd) != 0)
        call = "fsync";
    else if (w->io->rename(tmp, path) != 0)
        call = "rename";
    if (call) {
        set_failed(w, errno ? -errno : -EIO, call, name);
        w->io->close(fd);
        unlink(tmp);
        return w->failed;
    }
    int rc = fsync_dir(w);
    if (rc) {
        set_failed(w, rc, "fsync dir", w->dir);
        w->io->close(fd);
        return w->failed;
    }
    if (w->fd >= 0)
        w->io->close(w->fd);
    w->fd = fd;
    snprintf(w->seg_name, sizeof w->seg_name, "%s", name);
    w->seg_off = WAL_SEGMENT_HEADER_LEN;
    w->seg_bytes = w->seg_bytes_new;
    return 0;
}

int wal_writer_open(wal_writer **out, const wal_writer_options *opt, const wal_scan_result *end)
{
    wal_writer *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    snprintf(w->dir, sizeof w->dir, "%s", opt->dir);
    snprintf(w->hall_id, sizeof w->hall_id, "%s", opt->hall_id);
    w->seg_bytes_new = opt->segment_bytes ? opt->segment_bytes : WAL_DEFAULT_SEGMENT_BYTES;
    if (w->seg_bytes_new < WAL_MIN_SEGMENT_BYTES)
        w->seg_bytes_new = WAL_MIN_SEGMENT_BYTES;
    w->sync = opt->sync;
    w->io = opt->io ? opt->io : &wal_io_posix;
    w->fd = -1;
    int rc;
    if (!end || !end->last_segment[0]) {
        uint8_t g[WAL_HASH_LEN];
        wal_genesis_hash(w->hall_id, g);
        w->next_lsn = 1;
        memcpy(w->chain, g, WAL_HASH_LEN);
        if ((rc = create_segment(w, 1, g)) != 0) {
            wal_writer_close(w);
            return rc;
        }
    } else {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", w->dir, end->last_segment);
        w->fd = w->io->open(path, O_RDWR | O_CLOEXEC, 0);
        struct stat st;
        if (w->fd < 0 || fstat(w->fd, &st) != 0) {
            rc = -errno;
            wal_writer_close(w);
            return rc;
        }
        snprintf(w->seg_name, sizeof w->seg_name, "%s", end->last_segment);
        w->seg_off = end->end_offset;
        w->seg_bytes = end->segment_bytes ? end->segment_bytes : (uint64_t)st.st_size;
        /* A segment cut short (a crash, a copy) gets its full size back. */
        if ((uint64_t)st.st_size < w->seg_bytes &&
            (w->io->fallocate(w->fd, 0, (off_t)w->seg_bytes) != 0 || w->io->fsync(w->fd) != 0)) {
            rc = -errno;
            wal_writer_close(w);
            return rc;
        }
        w->next_lsn = end->last_lsn + 1;
        if (!end->records && end->last_lsn == 0) {
            /* Segments but no record: the chain starts at the last header. */
            uint64_t first;
            wal_segment_parse_name(end->last_segment, &first);
            w->next_lsn = first;
        }
        memcpy(w->chain, end->head_hash, WAL_HASH_LEN);
    }
    w->base_lsn = w->next_lsn;
    memcpy(w->base_chain, w->chain, WAL_HASH_LEN);
    w->durable_lsn = w->next_lsn - 1;
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
    free(w->pending.offs);
    free(w->inflight.buf);
    free(w->inflight.offs);
    free(w);
}

static bool batch_reserve(batch *b, size_t extra)
{
    if (b->cap - b->len < extra) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap - b->len < extra)
            cap *= 2;
        uint8_t *nb = realloc(b->buf, cap);
        if (!nb)
            return false;
        b->buf = nb;
        b->cap = cap;
    }
    if (b->n == b->ncap) {
        size_t nc = b->ncap ? b->ncap * 2 : 256;
        size_t *no = realloc(b->offs, nc * sizeof *no);
        if (!no)
            return false;
        b->offs = no;
        b->ncap = nc;
    }
    return true;
}

int wal_writer_append(wal_writer *w, uint16_t type, uint64_t at_ms, uint8_t actor_role,
                      const char *actor_id, const void *payload, uint32_t payload_len,
                      uint64_t *lsn)
{
    if (w->failed)
        return WAL_E_FAILED;
    size_t total = WAL_RECORD_OVERHEAD + (size_t)payload_len;
    if (payload_len == 0 || payload_len > WAL_MAX_PAYLOAD || type == 0 ||
        total > w->seg_bytes_new - WAL_SEGMENT_HEADER_LEN)
        return WAL_E_TOOBIG;
    batch *b = &w->pending;
    if (!batch_reserve(b, total))
        return -ENOMEM;
    if (b->n == 0) {
        b->first_lsn = w->next_lsn;
        memcpy(b->start_chain, w->chain, WAL_HASH_LEN);
    }
    b->offs[b->n++] = b->len;
    wal_record_encode(b->buf + b->len, w->chain, w->next_lsn, at_ms, type, actor_role, actor_id,
                      payload, payload_len, w->chain);
    b->len += total;
    *lsn = w->next_lsn++;
    return 0;
}

void wal_writer_rollback(wal_writer *w)
{
    w->pending.len = 0;
    w->pending.n = 0;
    w->next_lsn = w->base_lsn;
    memcpy(w->chain, w->base_chain, WAL_HASH_LEN);
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
    batch t = w->inflight;
    w->inflight = w->pending;
    w->pending = t;
    w->pending.len = 0;
    w->pending.n = 0;
    w->busy = true;
    w->base_lsn = w->next_lsn;
    memcpy(w->base_chain, w->chain, WAL_HASH_LEN);
    return 0;
}

static int write_run(wal_writer *w, const uint8_t *p, size_t len)
{
    if (len == 0)
        return 0;
    ssize_t n = w->io->pwrite(w->fd, p, len, (off_t)w->seg_off);
    if (n != (ssize_t)len) {
        /* A short write is an error like any other: never retried. */
        set_failed(w, n < 0 ? -errno : -EIO, "write", w->seg_name);
        return w->failed;
    }
    w->seg_off += len;
    return 0;
}

static int sync_segment(wal_writer *w)
{
    if (w->sync && w->io->fdatasync(w->fd) != 0) {
        set_failed(w, -errno, "fdatasync", w->seg_name);
        return w->failed;
    }
    return 0;
}

int wal_writer_flush(wal_writer *w)
{
    batch *b = &w->inflight;
    if (w->failed)
        return w->failed;
    size_t run_start = 0;
    for (size_t i = 0; i < b->n; i++) {
        size_t off = b->offs[i];
        size_t end = i + 1 < b->n ? b->offs[i + 1] : b->len;
        size_t run_len = off - run_start;
        if (w->seg_off + run_len + (end - off) <= w->seg_bytes)
            continue;
        /* Record i does not fit: finish this segment, start the next. */
        int rc = write_run(w, b->buf + run_start, run_len);
        if (!rc && run_len)
            rc = sync_segment(w);
        if (rc)
            return rc;
        const uint8_t *prev = i == 0 ? b->start_chain : b->buf + off - WAL_HASH_LEN - 4;
        if ((rc = create_segment(w, b->first_lsn + i, prev)) != 0)
            return rc;
        run_start = off;
    }
    int rc = write_run(w, b->buf + run_start, b->len - run_start);
    if (!rc)
        rc = sync_segment(w);
    return rc;
}

int wal_writer_complete(wal_writer *w, int flush_rc)
{
    batch *b = &w->inflight;
    w->busy = false;
    if (flush_rc || w->failed) {
        if (!w->failed)
            set_failed(w, flush_rc, "flush", w->seg_name);
        /* The records after the durable LSN are gone: appends are refused
         * from now on, so LSN and chain need no rewinding. */
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
    return w->where[0] ? w->where : "no failure";
}
