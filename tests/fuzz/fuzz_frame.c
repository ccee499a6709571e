/* tests/fuzz/fuzz_frame.c: the frame decoder (proto/frame.c) under
 * arbitrary bytes cut at arbitrary points.
 *
 * The input is a small program. Its first byte picks max_frame (1..64, or
 * up to 9000 so that the buffer's growth past its first allocation runs).
 * The bytes that go into the framer are read from the front of the rest,
 * the steps from its back, backwards, so that a step taking fewer bytes
 * than it asked for leaves both streams whole. A step byte c: c & 3 picks
 * the step, c >> 2 is a size (63: the next step byte times 64):
 *   0  proto_framer_feed of `size` bytes
 *   1  proto_framer_space, then commit of up to `size` bytes (the room
 *      left over is poisoned, so a look past `end` shows)
 *   2  proto_framer_next until it says anything but READY
 *   3  proto_framer_shrink
 * A model (every byte the framer took, and how many it returned as
 * frames) says what each call must answer. Checked after every step:
 * start <= end <= cap <= 4 + max_frame, buffered equals the model, every
 * frame is the model's next one, bodies stay valid until the next space
 * or feed, room is offered iff nothing waits, a bad length is reported as
 * soon as its 4 bytes are in and stays reported, and nothing after it is
 * taken. */
#include "tests/fuzz/fuzz.h"

#include "proto/proto.h"

#include <string.h>

#define POISON 0xa5

typedef struct model {
    uint8_t *bytes; /* every byte the framer took, in order */
    size_t total;
    size_t consumed; /* bytes returned as frames (headers included) */
    uint32_t max_frame;
} model;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* What proto_framer_next must answer now; *n is the frame's length. */
static int model_next(const model *m, uint32_t *n)
{
    size_t have = m->total - m->consumed;
    *n = 0;
    if (have < 4)
        return PROTO_FRAME_NEED;
    *n = be32(m->bytes + m->consumed);
    if (*n == 0)
        return PROTO_FRAME_EZERO;
    if (*n > m->max_frame)
        return PROTO_FRAME_EBIG;
    return have - 4 >= *n ? PROTO_FRAME_READY : PROTO_FRAME_NEED;
}

static void check_state(const proto_framer *f, const model *m)
{
    size_t limit = 4 + (size_t)m->max_frame;
    FUZZ_CHECK(f->start <= f->end && f->end <= f->cap);
    FUZZ_CHECK(f->cap <= limit);
    FUZZ_CHECK(proto_framer_buffered(f) <= limit);
    FUZZ_CHECK(proto_framer_buffered(f) == m->total - m->consumed);
    FUZZ_CHECK(f->max_frame == m->max_frame);
    FUZZ_CHECK(!f->oom);
}

typedef struct taken {
    const uint8_t *body;
    size_t at; /* offset of the body in the model */
    uint32_t len;
} taken;

#define MAX_TAKEN 64

/* Takes frames until next says anything but READY; checks each against
 * the model, then that every body taken is still intact. */
static void drain(proto_framer *f, model *m)
{
    taken t[MAX_TAKEN];
    int nt = 0;
    for (;;) {
        uint32_t want_len;
        int want = model_next(m, &want_len);
        const uint8_t *body = NULL;
        uint32_t len = 0;
        int rc = proto_framer_next(f, &body, &len);
        FUZZ_CHECK(rc == want);
        if (rc != PROTO_FRAME_READY) {
            if (rc < 0) {
                /* Sticky: asked again, the same error; no room offered;
                 * nothing taken. */
                FUZZ_CHECK(proto_framer_next(f, &body, &len) == rc);
                size_t room = 1;
                FUZZ_CHECK(proto_framer_space(f, &room) != NULL && room == 0);
                uint8_t b = 0;
                FUZZ_CHECK(proto_framer_feed(f, &b, 1) == 0);
                nt = 0; /* space may move the buffer: bodies are gone */
            }
            break;
        }
        FUZZ_CHECK(len == want_len && len >= 1 && len <= m->max_frame);
        FUZZ_CHECK(body != NULL);
        FUZZ_CHECK(memcmp(body, m->bytes + m->consumed + 4, len) == 0);
        if (nt < MAX_TAKEN)
            t[nt++] = (taken){body, m->consumed + 4, len};
        m->consumed += 4 + (size_t)len;
        check_state(f, m);
    }
    for (int i = 0; i < nt; i++)
        FUZZ_CHECK(memcmp(t[i].body, m->bytes + t[i].at, t[i].len) == 0);
    check_state(f, m);
}

static bool model_waits(const model *m)
{
    uint32_t n;
    return model_next(m, &n) != PROTO_FRAME_NEED;
}

int fuzz_frame(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t pos = 0;
    uint8_t sel = data[pos++];
    uint32_t max_frame = 1 + sel % 64u;
    if ((sel & 0xc0) == 0xc0 && size - pos >= 2) {
        max_frame = 1 + ((uint32_t)data[pos] << 8 | data[pos + 1]) % 9000u;
        pos += 2;
    }
    model m = {.bytes = malloc(size), .max_frame = max_frame};
    FUZZ_CHECK(m.bytes != NULL);
    proto_framer f;
    proto_framer_init(&f, max_frame);
    check_state(&f, &m);

    /* Bytes in from the front (lo), steps from the back (hi). */
    size_t lo = pos, hi = size;
    while (lo < hi) {
        uint8_t c = data[--hi];
        size_t n = c >> 2;
        if (n == 63 && lo < hi && (c & 3) < 2)
            n = (size_t)data[--hi] * 64;
        if (n > hi - lo)
            n = hi - lo;
        switch (c & 3) {
        case 0: {
            size_t k = proto_framer_feed(&f, data + lo, n);
            FUZZ_CHECK(k <= n);
            memcpy(m.bytes + m.total, data + lo, k);
            m.total += k;
            /* It stops short only when a frame or a bad length waits. */
            if (k < n)
                FUZZ_CHECK(model_waits(&m));
            lo += k;
            break;
        }
        case 1: {
            size_t room = 0;
            uint8_t *dst = proto_framer_space(&f, &room);
            FUZZ_CHECK(dst != NULL);
            if (model_waits(&m)) {
                FUZZ_CHECK(room == 0);
                break;
            }
            FUZZ_CHECK(room >= 1 && room <= f.cap - f.end);
            size_t k = n < room ? n : room;
            memcpy(dst, data + lo, k);
            memset(dst + k, POISON, room - k);
            proto_framer_commit(&f, k);
            memcpy(m.bytes + m.total, data + lo, k);
            m.total += k;
            lo += k;
            break;
        }
        case 2:
            drain(&f, &m);
            break;
        case 3: {
            bool empty = proto_framer_buffered(&f) == 0;
            proto_framer_shrink(&f);
            if (empty)
                FUZZ_CHECK(f.buf == NULL && f.cap == 0);
            break;
        }
        }
        check_state(&f, &m);
    }
    drain(&f, &m);
    if (proto_framer_buffered(&f) == 0) {
        proto_framer_shrink(&f);
        FUZZ_CHECK(f.buf == NULL && f.cap == 0);
    }
    proto_framer_free(&f);
    free(m.bytes);
    return 0;
}

#ifdef HALLQ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_frame(data, size);
}
#endif
