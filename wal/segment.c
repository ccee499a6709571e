/* wal/segment.c: segment files: their names, their 128-byte header, the
 * listing of a log directory, and the crash-safe creation of a segment.
 *
 * Invariants: a file named like a segment ("%020llu.wal") always holds a
 * complete, fsync'd header, because segments are born as "<name>.tmp" and
 * renamed only once preallocated and synced; the directory is fsync'd
 * after the rename. The header names the first LSN, the hall and the chain
 * hash carried over, all covered by its CRC32C.
 *
 * Never: write a header field without wal_put*, rename a segment into
 * place before its header is on disk, or trust a name without its
 * header (the scanner checks that both agree). */
#include "wal/wal_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;

static void sodium_once_fn(void)
{
    /* Fails only when no entropy source is available, which BLAKE2b does
     * not need: the hash works either way. */
    if (sodium_init() < 0)
        return;
}

void wal_sodium_init(void)
{
    pthread_once(&sodium_once, sodium_once_fn);
}

void wal_segment_name(char out[64], uint64_t first_lsn)
{
    snprintf(out, 64, "%020llu" WAL_SEG_SUFFIX, (unsigned long long)first_lsn);
}

bool wal_segment_parse_name(const char *name, uint64_t *first_lsn)
{
    if (strlen(name) != WAL_SEG_NAME_LEN || strcmp(name + 20, WAL_SEG_SUFFIX) != 0)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        unsigned d = (unsigned)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false; /* 20 digits can exceed 2^64 */
        v = v * 10 + d;
    }
    if (v == 0)
        return false; /* LSNs start at 1 */
    *first_lsn = v;
    return true;
}

void wal_header_encode(uint8_t out[WAL_SEGMENT_HEADER_LEN], const wal_seg_header *h)
{
    memset(out, 0, WAL_SEGMENT_HEADER_LEN);
    memcpy(out, WAL_MAGIC, 8);
    wal_put32(out + 8, WAL_FORMAT_VERSION);
    wal_put32(out + 12, WAL_SEGMENT_HEADER_LEN);
    wal_put64(out + 16, h->first_lsn);
    wal_put64(out + 24, h->segment_bytes);
    memcpy(out + 32, h->hall_id, strnlen(h->hall_id, WAL_HALL_ID_MAX));
    memcpy(out + 64, h->prev_hash, WAL_HASH_LEN);
    wal_put32(out + 124, wal_crc32c(0, out, 124));
}

int wal_header_decode(const uint8_t in[WAL_SEGMENT_HEADER_LEN], wal_seg_header *h)
{
    memset(h, 0, sizeof *h);
    if (memcmp(in, WAL_MAGIC, 8) != 0 || wal_get32(in + 124) != wal_crc32c(0, in, 124))
        return WAL_E_HEADER;
    h->version = wal_get32(in + 8);
    /* A newer writer may change everything after the version field, so
     * nothing else is looked at. */
    if (h->version > WAL_FORMAT_VERSION)
        return WAL_E_VERSION;
    if (h->version != WAL_FORMAT_VERSION || wal_get32(in + 12) != WAL_SEGMENT_HEADER_LEN)
        return WAL_E_HEADER;
    h->first_lsn = wal_get64(in + 16);
    h->segment_bytes = wal_get64(in + 24);
    memcpy(h->hall_id, in + 32, WAL_HALL_ID_MAX);
    h->hall_id[WAL_HALL_ID_MAX] = 0;
    memcpy(h->prev_hash, in + 64, WAL_HASH_LEN);
    if (h->first_lsn == 0 || h->segment_bytes < WAL_MIN_SEGMENT_BYTES)
        return WAL_E_HEADER;
    return 0;
}

void wal_genesis_hash(const char *hall_id, uint8_t out[WAL_HASH_LEN])
{
    crypto_generichash_state st;
    wal_sodium_init();
    crypto_generichash_init(&st, NULL, 0, WAL_HASH_LEN);
    crypto_generichash_update(&st, (const uint8_t *)WAL_GENESIS_TAG, strlen(WAL_GENESIS_TAG));
    crypto_generichash_update(&st, (const uint8_t *)hall_id, strnlen(hall_id, WAL_HALL_ID_MAX));
    crypto_generichash_final(&st, out, WAL_HASH_LEN);
}

static int cmp_seg(const void *a, const void *b)
{
    uint64_t x = ((const wal_seg_ent *)a)->first_lsn, y = ((const wal_seg_ent *)b)->first_lsn;
    return (x > y) - (x < y);
}

int wal_segment_list(const char *dir, wal_seg_ent **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    size_t cap = 0, n = 0;
    wal_seg_ent *v = NULL;
    struct dirent *de;
    int rc = 0;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        uint64_t first;
        if (!wal_segment_parse_name(de->d_name, &first))
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            wal_seg_ent *nv = realloc(v, nc * sizeof *v);
            if (!nv) {
                rc = -ENOMEM;
                goto fail;
            }
            v = nv;
            cap = nc;
        }
        v[n].first_lsn = first;
        memcpy(v[n].name, de->d_name, WAL_SEG_NAME_LEN + 1);
        n++;
        errno = 0;
    }
    if (errno) {
        rc = -errno;
        goto fail;
    }
    closedir(d);
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_seg);
    *out = v;
    *count = n;
    return 0;
fail:
    free(v);
    closedir(d);
    return rc;
}

int wal_dir_fsync(const wal_io_ops *io, const char *dir, const char **call)
{
    int fd = io->open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0) {
        *call = "open dir";
        return errno ? -errno : -EIO;
    }
    int rc = 0;
    if (io->fsync(fd) != 0) {
        *call = "fsync dir";
        rc = errno ? -errno : -EIO;
    }
    io->close(fd);
    return rc;
}

int wal_segment_create(const wal_io_ops *io, const char *dir, const wal_seg_header *h, int *fd,
                       const char **call)
{
    char name[64], path[4200], tmp[4300];
    wal_segment_name(name, h->first_lsn);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    uint8_t hdr[WAL_SEGMENT_HEADER_LEN];
    wal_header_encode(hdr, h);

    *fd = -1;
    errno = 0;
    int f = io->open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (f < 0) {
        *call = "open";
        return errno ? -errno : -EIO;
    }
    int rc = 0;
    ssize_t wn;
    errno = 0;
    if (io->fallocate(f, 0, (off_t)h->segment_bytes) != 0) {
        *call = "fallocate";
        rc = errno ? -errno : -EIO;
    } else if ((wn = io->pwrite(f, hdr, sizeof hdr, 0)) != (ssize_t)sizeof hdr) {
        *call = "pwrite";
        rc = wn < 0 && errno ? -errno : -EIO; /* a short write is an I/O error */
    } else if (io->fsync(f) != 0) {
        *call = "fsync";
        rc = errno ? -errno : -EIO;
    } else if (io->rename(tmp, path) != 0) {
        *call = "rename";
        rc = errno ? -errno : -EIO;
    }
    if (rc) {
        io->close(f);
        unlink(tmp);
        return rc;
    }
    /* The segment is in place; only its name may not be durable yet. */
    if ((rc = wal_dir_fsync(io, dir, call)) != 0) {
        io->close(f);
        return rc;
    }
    *fd = f;
    return 0;
}
