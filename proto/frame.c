/* proto/frame.c: the incremental frame decoder (4-byte big-endian length,
 * then that many body bytes).
 *
 * Invariants: start <= end <= cap <= 4 + max_frame. The buffer is
 * allocated on the first read (FRAMER_MIN bytes, or less when max_frame is
 * smaller) and doubles, capped at 4 + max_frame, only when the unconsumed
 * bytes of one unfinished frame fill all of it: memory follows the bytes
 * that really arrived, never a length a peer merely declared. Consumed
 * bytes are reclaimed by moving the unfinished frame to the front, and
 * only when the buffer has no room left, so most reads move nothing.
 *
 * It must never read a byte at or past `end`, never offer room while a
 * complete frame (or a bad length) waits to be consumed, and never grow
 * past 4 + max_frame. A bad length (0 or > max_frame) is reported as soon
 * as its 4 bytes are in and stays reported: nothing after it is read. */
#include "proto/proto.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* First allocation: one page holds the requests a kiosk or window sends. */
#define FRAMER_MIN 4096u

void proto_framer_init(proto_framer *f, uint32_t max_frame)
{
    memset(f, 0, sizeof *f);
    f->max_frame = max_frame;
}

void proto_framer_free(proto_framer *f)
{
    free(f->buf);
    f->buf = NULL;
    f->cap = f->start = f->end = 0;
    f->oom = false;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static size_t framer_limit(const proto_framer *f)
{
    return 4 + (size_t)f->max_frame;
}

/* Whether next() has something other than NEED to say: a complete frame
 * or a bad length at `start`. */
static bool framer_has_frame(const proto_framer *f)
{
    size_t have = f->end - f->start;
    if (have < 4)
        return false;
    uint32_t n = be32(f->buf + f->start);
    if (n == 0 || n > f->max_frame)
        return true;
    return have - 4 >= n;
}

uint8_t *proto_framer_space(proto_framer *f, size_t *len)
{
    *len = 0;
    if (framer_has_frame(f))
        return f->buf + f->end; /* non-NULL: a frame's bytes are in it */
    if (f->end == f->cap && f->start > 0) {
        /* Out of room with consumed bytes in front: move the unfinished
         * frame down rather than grow. */
        memmove(f->buf, f->buf + f->start, f->end - f->start);
        f->end -= f->start;
        f->start = 0;
    }
    if (f->end == f->cap) {
        /* The unfinished frame fills the buffer. Since it is incomplete,
         * it is shorter than 4 + max_frame, so cap < limit here. */
        size_t limit = framer_limit(f);
        size_t cap = f->cap ? f->cap * 2 : FRAMER_MIN;
        if (cap > limit)
            cap = limit;
        assert(cap > f->cap);
        uint8_t *nb = realloc(f->buf, cap);
        if (!nb) {
            f->oom = true;
            return NULL;
        }
        f->buf = nb;
        f->cap = cap;
    }
    f->oom = false;
    *len = f->cap - f->end;
    return f->buf + f->end;
}

void proto_framer_commit(proto_framer *f, size_t n)
{
    assert(n <= f->cap - f->end);
    f->end += n;
}

size_t proto_framer_feed(proto_framer *f, const uint8_t *p, size_t n)
{
    size_t taken = 0;
    while (taken < n) {
        size_t room;
        uint8_t *dst = proto_framer_space(f, &room);
        if (!dst || room == 0)
            break;
        size_t k = n - taken < room ? n - taken : room;
        memcpy(dst, p + taken, k);
        proto_framer_commit(f, k);
        taken += k;
    }
    return taken;
}

int proto_framer_next(proto_framer *f, const uint8_t **body, uint32_t *len)
{
    size_t have = f->end - f->start;
    if (have < 4)
        return f->oom ? PROTO_FRAME_ENOMEM : PROTO_FRAME_NEED;
    uint32_t n = be32(f->buf + f->start);
    if (n == 0)
        return PROTO_FRAME_EZERO;
    if (n > f->max_frame)
        return PROTO_FRAME_EBIG;
    if (have - 4 < n)
        return f->oom ? PROTO_FRAME_ENOMEM : PROTO_FRAME_NEED;
    *body = f->buf + f->start + 4;
    *len = n;
    f->start += 4 + (size_t)n;
    /* Nothing left: the next read starts at the front. The body returned
     * stays where it is until that read (space or feed) overwrites it. */
    if (f->start == f->end)
        f->start = f->end = 0;
    return PROTO_FRAME_READY;
}

size_t proto_framer_buffered(const proto_framer *f)
{
    return f->end - f->start;
}

void proto_framer_shrink(proto_framer *f)
{
    if (f->start == f->end)
        proto_framer_free(f);
}
