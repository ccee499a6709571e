/* proto/frame.c: the incremental frame decoder.
 *
 * Invariants: start <= end <= cap <= 4 + max_frame. The buffer grows by
 * doubling from FRAMER_MIN only while the frame being received needs it,
 * so an idle connection holds nothing and a busy one at most one frame.
 * A bad length (0 or > max_frame) is reported as soon as its 4 bytes are
 * in; the body is never read past its declared end. */
#include "proto/proto.h"

#include <stdlib.h>
#include <string.h>

#define FRAMER_MIN 4096

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
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Bytes the frame at `start` needs in all (4 + body), or 4 while its
 * length is not in yet, or 0 when the length is bad. */
static size_t frame_need(const proto_framer *f)
{
    if (f->end - f->start < 4)
        return 4;
    uint32_t n = be32(f->buf + f->start);
    if (n == 0 || n > f->max_frame)
        return 0;
    return 4 + (size_t)n;
}

static bool has_frame(const proto_framer *f)
{
    size_t need = frame_need(f);
    return need == 0 || f->end - f->start >= need;
}

uint8_t *proto_framer_space(proto_framer *f, size_t *len)
{
    *len = 0;
    if (has_frame(f))
        return f->buf ? f->buf + f->end : (uint8_t *)"";
    /* Compact: move the unfinished frame to the front. */
    if (f->start > 0) {
        memmove(f->buf, f->buf + f->start, f->end - f->start);
        f->end -= f->start;
        f->start = 0;
    }
    size_t need = frame_need(f);
    size_t limit = 4 + (size_t)f->max_frame;
    if (f->cap < need || f->cap == f->end) {
        size_t cap = f->cap ? f->cap : FRAMER_MIN;
        while (cap < need || cap == f->end)
            cap *= 2;
        if (cap > limit)
            cap = limit;
        if (cap > f->cap) {
            uint8_t *nb = realloc(f->buf, cap);
            if (!nb)
                return NULL;
            f->buf = nb;
            f->cap = cap;
        }
    }
    *len = f->cap - f->end;
    return f->buf + f->end;
}

void proto_framer_commit(proto_framer *f, size_t n)
{
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
    if (f->end - f->start < 4)
        return PROTO_FRAME_NEED;
    uint32_t n = be32(f->buf + f->start);
    if (n == 0)
        return PROTO_FRAME_EZERO;
    if (n > f->max_frame)
        return PROTO_FRAME_EBIG;
    if (f->end - f->start < 4 + (size_t)n)
        return PROTO_FRAME_NEED;
    *body = f->buf + f->start + 4;
    *len = n;
    f->start += 4 + (size_t)n;
    if (f->start == f->end)
        f->start = f->end = 0; /* the body stays where it is until the next read */
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
