/* tests/unit/test_frame.c: the frame decoder (proto/frame.c).
 *
 * A stream of frames of many sizes (a 1-byte body, a max_frame body) is
 * fed cut in two at every offset, one byte at a time, in reads of random
 * sizes and all at once, through both ways in (space/commit as libuv does,
 * and feed); every frame must come out whole and in order, the buffer must
 * stay within 4 + max_frame, and bytes offered but not committed are
 * poisoned so that a look past the buffered bytes shows. Then the errors
 * (length 0, length > max_frame after exactly 4 bytes), lazy growth,
 * compaction and shrink. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto/proto.h"

#include <stdlib.h>
#include <string.h>

#define MAXF 5000u /* above the first allocation, so growth is exercised */
#define LIMIT (4 + (size_t)MAXF)
#define POISON 0xa5 /* fills offered room: as a length byte it reads as huge */

static const size_t frame_lens[] = {1, 7, 300, MAXF, 2, 1000, 4095, 4096, 1, MAXF, 13};
#define NFRAMES (sizeof frame_lens / sizeof *frame_lens)

typedef struct stream {
    uint8_t *p;
    size_t len;
    size_t off[NFRAMES]; /* where each frame's header starts */
} stream;

static void put_be32(uint8_t *p, uint32_t n)
{
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
}

static void stream_build(stream *s)
{
    size_t total = 0;
    for (size_t i = 0; i < NFRAMES; i++)
        total += 4 + frame_lens[i];
    s->p = malloc(total);
    assert_non_null(s->p);
    s->len = 0;
    for (size_t i = 0; i < NFRAMES; i++) {
        s->off[i] = s->len;
        put_be32(s->p + s->len, (uint32_t)frame_lens[i]);
        for (size_t j = 0; j < frame_lens[i]; j++)
            s->p[s->len + 4 + j] = (uint8_t)(i * 31 + j * 7 + 1);
        s->len += 4 + frame_lens[i];
    }
}

/* The consumer side: frames taken so far, checked against the stream. */
typedef struct sink {
    const stream *s;
    size_t got;
} sink;

static void sink_take(sink *k, const uint8_t *body, uint32_t n)
{
    assert_true(k->got < NFRAMES);
    assert_int_equal(n, frame_lens[k->got]);
    assert_memory_equal(body, k->s->p + k->s->off[k->got] + 4, n);
    k->got++;
}

/* Takes every complete frame; the rest must be NEED. */
static void drain(proto_framer *f, sink *k)
{
    const uint8_t *body;
    uint32_t n;
    int rc;
    while ((rc = proto_framer_next(f, &body, &n)) == PROTO_FRAME_READY)
        sink_take(k, body, n);
    assert_int_equal(rc, PROTO_FRAME_NEED);
}

static void check_bounds(const proto_framer *f)
{
    assert_true(f->cap <= LIMIT);
    assert_true(f->start <= f->end && f->end <= f->cap);
}

enum { LAZY, EAGER };

/* Reads bytes [pos, end) of the stream as a socket would: each "read"
 * takes what the framer offers, up to `chunk` bytes. LAZY consumes frames
 * only when the framer offers no room (as the daemon does: it stops
 * reading while a frame waits); EAGER after every read. */
static void read_piece(proto_framer *f, sink *k, size_t pos, size_t end, size_t chunk, int mode)
{
    while (pos < end) {
        size_t room;
        uint8_t *p = proto_framer_space(f, &room);
        assert_non_null(p);
        check_bounds(f);
        if (room == 0) {
            const uint8_t *body;
            uint32_t n;
            assert_int_equal(proto_framer_next(f, &body, &n), PROTO_FRAME_READY);
            sink_take(k, body, n);
            continue;
        }
        memset(p, POISON, room);
        size_t want = end - pos < chunk ? end - pos : chunk;
        size_t got = want < room ? want : room;
        memcpy(p, k->s->p + pos, got);
        proto_framer_commit(f, got);
        check_bounds(f);
        pos += got;
        if (mode == EAGER)
            drain(f, k);
    }
}

static void finish(proto_framer *f, sink *k)
{
    drain(f, k);
    assert_int_equal(k->got, NFRAMES);
    assert_int_equal(proto_framer_buffered(f), 0);
    proto_framer_shrink(f);
    assert_null(f->buf);
    assert_int_equal(f->cap, 0);
    proto_framer_free(f);
}

/* Two pieces, cut at every offset, both consuming modes. */
static void test_every_split_point(void **state)
{
    (void)state;
    stream s;
    stream_build(&s);
    for (int mode = LAZY; mode <= EAGER; mode++) {
        for (size_t cut = 0; cut <= s.len; cut++) {
            proto_framer f;
            sink k = {&s, 0};
            proto_framer_init(&f, MAXF);
            read_piece(&f, &k, 0, cut, SIZE_MAX, mode);
            if (mode == LAZY)
                drain(&f, &k); /* the daemon parses after every read */
            read_piece(&f, &k, cut, s.len, SIZE_MAX, mode);
            finish(&f, &k);
        }
    }
    free(s.p);
}

/* The same cuts through proto_framer_feed, taking frames when it stops. */
static void test_every_split_point_feed(void **state)
{
    (void)state;
    stream s;
    stream_build(&s);
    for (size_t cut = 0; cut <= s.len; cut++) {
        proto_framer f;
        sink k = {&s, 0};
        proto_framer_init(&f, MAXF);
        size_t pieces[2][2] = {{0, cut}, {cut, s.len}};
        for (int i = 0; i < 2; i++) {
            size_t pos = pieces[i][0];
            while (pos < pieces[i][1]) {
                pos += proto_framer_feed(&f, s.p + pos, pieces[i][1] - pos);
                check_bounds(&f);
                drain(&f, &k);
            }
        }
        finish(&f, &k);
    }
    free(s.p);
}

static void test_one_byte_at_a_time(void **state)
{
    (void)state;
    stream s;
    stream_build(&s);
    for (int mode = LAZY; mode <= EAGER; mode++) {
        proto_framer f;
        sink k = {&s, 0};
        proto_framer_init(&f, MAXF);
        read_piece(&f, &k, 0, s.len, 1, mode);
        finish(&f, &k);
    }
    /* And through feed, one byte per call. */
    proto_framer f;
    sink k = {&s, 0};
    proto_framer_init(&f, MAXF);
    for (size_t pos = 0; pos < s.len;) {
        size_t n = proto_framer_feed(&f, s.p + pos, 1);
        if (n == 0)
            drain(&f, &k);
        pos += n;
    }
    finish(&f, &k);
    free(s.p);
}

/* Everything pending at once: each read takes all the room offered, so
 * one read holds many frames. */
static void test_all_at_once(void **state)
{
    (void)state;
    stream s;
    stream_build(&s);
    for (int mode = LAZY; mode <= EAGER; mode++) {
        proto_framer f;
        sink k = {&s, 0};
        proto_framer_init(&f, MAXF);
        read_piece(&f, &k, 0, s.len, SIZE_MAX, mode);
        finish(&f, &k);
    }
    /* The first read of an empty framer is offered its whole first
     * allocation and brings in the first three frames at once. */
    proto_framer f;
    sink k = {&s, 0};
    proto_framer_init(&f, MAXF);
    size_t taken = proto_framer_feed(&f, s.p, s.len);
    assert_int_equal(taken, 4096);
    const uint8_t *body;
    uint32_t n;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(proto_framer_next(&f, &body, &n), PROTO_FRAME_READY);
        sink_take(&k, body, n);
    }
    assert_int_equal(proto_framer_next(&f, &body, &n), PROTO_FRAME_NEED);
    proto_framer_free(&f);
    free(s.p);
}

/* Reads of pseudo-random sizes (fixed seed), both modes. */
static void test_random_reads(void **state)
{
    (void)state;
    stream s;
    stream_build(&s);
    uint32_t seed = 12345;
    for (int round = 0; round < 200; round++) {
        proto_framer f;
        sink k = {&s, 0};
        proto_framer_init(&f, MAXF);
        size_t pos = 0;
        while (pos < s.len) {
            seed = seed * 1103515245u + 12345u;
            size_t chunk = 1 + (seed >> 8) % (round % 2 ? 64 : 9000);
            size_t end = pos + chunk < s.len ? pos + chunk : s.len;
            read_piece(&f, &k, pos, end, SIZE_MAX, round % 4 < 2 ? LAZY : EAGER);
            drain(&f, &k);
            pos = end;
        }
        finish(&f, &k);
    }
    free(s.p);
}

/* Feeds a header one byte at a time; NEED until the 4th byte. */
static int header_bytewise(proto_framer *f, const uint8_t hdr[4])
{
    const uint8_t *body;
    uint32_t n;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(proto_framer_feed(f, hdr + i, 1), 1);
        assert_int_equal(proto_framer_next(f, &body, &n), PROTO_FRAME_NEED);
    }
    assert_int_equal(proto_framer_feed(f, hdr + 3, 1), 1);
    return proto_framer_next(f, &body, &n);
}

static void expect_stuck(proto_framer *f, int err)
{
    const uint8_t *body;
    uint32_t n;
    size_t room = 99;
    /* No more room is offered and the error stays. */
    assert_non_null(proto_framer_space(f, &room));
    assert_int_equal(room, 0);
    assert_int_equal(proto_framer_feed(f, (const uint8_t *)"\x80", 1), 0);
    assert_int_equal(proto_framer_next(f, &body, &n), err);
}

static void test_zero_length(void **state)
{
    (void)state;
    proto_framer f;
    static const uint8_t zero[4] = {0, 0, 0, 0};
    proto_framer_init(&f, MAXF);
    assert_int_equal(header_bytewise(&f, zero), PROTO_FRAME_EZERO);
    expect_stuck(&f, PROTO_FRAME_EZERO);
    proto_framer_free(&f);

    /* After a good frame, in the same read. */
    static const uint8_t two[] = {0, 0, 0, 1, 0x80, 0, 0, 0, 0};
    const uint8_t *body;
    uint32_t n;
    proto_framer_init(&f, MAXF);
    assert_int_equal(proto_framer_feed(&f, two, sizeof two), sizeof two);
    assert_int_equal(proto_framer_next(&f, &body, &n), PROTO_FRAME_READY);
    assert_int_equal(n, 1);
    assert_int_equal(body[0], 0x80);
    assert_int_equal(proto_framer_next(&f, &body, &n), PROTO_FRAME_EZERO);
    proto_framer_free(&f);
}

static void test_too_long(void **state)
{
    (void)state;
    proto_framer f;
    uint8_t hdr[4];

    /* max_frame + 1: refused after exactly its 4 length bytes, and the
     * buffer never grew for the length it declared. */
    put_be32(hdr, MAXF + 1);
    proto_framer_init(&f, MAXF);
    assert_int_equal(header_bytewise(&f, hdr), PROTO_FRAME_EBIG);
    assert_int_equal(proto_framer_buffered(&f), 4);
    assert_true(f.cap <= 4096);
    expect_stuck(&f, PROTO_FRAME_EBIG);
    proto_framer_free(&f);

    put_be32(hdr, UINT32_MAX);
    proto_framer_init(&f, MAXF);
    assert_int_equal(header_bytewise(&f, hdr), PROTO_FRAME_EBIG);
    proto_framer_free(&f);

    /* Exactly max_frame passes, in a buffer of exactly 4 + max_frame. */
    put_be32(hdr, MAXF);
    proto_framer_init(&f, MAXF);
    assert_int_equal(header_bytewise(&f, hdr), PROTO_FRAME_NEED);
    uint8_t *body_in = malloc(MAXF);
    memset(body_in, 0x42, MAXF);
    assert_int_equal(proto_framer_feed(&f, body_in, MAXF), MAXF);
    assert_int_equal(f.cap, LIMIT);
    const uint8_t *body;
    uint32_t n;
    assert_int_equal(proto_framer_next(&f, &body, &n), PROTO_FRAME_READY);
    assert_int_equal(n, MAXF);
    assert_memory_equal(body, body_in, MAXF);
    free(body_in);
    proto_framer_free(&f);
}

/* Memory follows the bytes that arrived, not a declared length; it
 * doubles from 4 KiB and stops at 4 + max_frame. */
static void test_lazy_growth(void **state)
{
    (void)state;
    proto_framer f;
    uint8_t hdr[4];
    size_t room;

    proto_framer_init(&f, 65536);
    assert_null(f.buf); /* nothing until the first read */
    put_be32(hdr, 65536);
    proto_framer_feed(&f, hdr, 4);
    static uint8_t body[65536];
    proto_framer_feed(&f, body, 10);
    assert_int_equal(f.cap, 4096);
    size_t expect[] = {4096, 8192, 16384, 32768, 65536, 65540};
    size_t have = 14;
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++) {
        assert_int_equal(f.cap, expect[i]);
        size_t k = expect[i] - have; /* fill it up exactly */
        assert_int_equal(proto_framer_feed(&f, body, k), k);
        have += k;
        if (have < 4 + 65536)
            assert_non_null(proto_framer_space(&f, &room));
    }
    assert_int_equal(have, 65540);
    assert_int_equal(f.cap, 65540);
    const uint8_t *b;
    uint32_t n;
    assert_int_equal(proto_framer_next(&f, &b, &n), PROTO_FRAME_READY);
    proto_framer_free(&f);

    /* A max_frame under 4 KiB: the first allocation is 4 + max_frame. */
    proto_framer_init(&f, 100);
    assert_non_null(proto_framer_space(&f, &room));
    assert_int_equal(f.cap, 104);
    assert_int_equal(room, 104);
    proto_framer_free(&f);
}

/* Consumed bytes are reclaimed by moving the unfinished frame down, not
 * by growing, and only once the buffer is out of room. */
static void test_compaction(void **state)
{
    (void)state;
    proto_framer f;
    static uint8_t s[4 + 3000 + 4 + 3000];
    put_be32(s, 3000);
    for (int i = 0; i < 3000; i++)
        s[4 + i] = (uint8_t)i;
    put_be32(s + 3004, 3000);
    for (int i = 0; i < 3000; i++)
        s[3008 + i] = (uint8_t)(i * 3);
    const uint8_t *body;
    uint32_t n;
    size_t room;

    proto_framer_init(&f, 65536);
    assert_int_equal(proto_framer_feed(&f, s, 4008), 4008);
    assert_int_equal(proto_framer_next(&f, &body, &n), PROTO_FRAME_READY);
    assert_int_equal(n, 3000);
    /* Room is left: no move yet. */
    assert_non_null(proto_framer_space(&f, &room));
    assert_int_equal(room, 4096 - 4008);
    assert_int_equal(f.start, 3004);
    assert_int_equal(proto_framer_feed(&f, s + 4008, 88), 88);
    /* Full, with 3004 consumed bytes in front: moved, not grown. */
    assert_non_null(proto_framer_space(&f, &room));
    assert_int_equal(f.start, 0);
    assert_int_equal(f.end, 4096 - 3004);
    assert_int_equal(f.cap, 4096);
    assert_int_equal(proto_framer_feed(&f, s + 4096, sizeof s - 4096), sizeof s - 4096);
    assert_int_equal(proto_framer_next(&f, &body, &n), PROTO_FRAME_READY);
    assert_int_equal(n, 3000);
    assert_memory_equal(body, s + 3008, 3000);
    assert_int_equal(f.cap, 4096);
    proto_framer_free(&f);
}

static void test_shrink(void **state)
{
    (void)state;
    proto_framer f;
    const uint8_t *body;
    uint32_t n;
    static const uint8_t frame[] = {0, 0, 0, 3, 0x81, 0xa0, 0xc0};

    proto_framer_init(&f, MAXF);
    proto_framer_shrink(&f); /* nothing allocated yet: a no-op */
    assert_null(f.buf);

    /* Part of a frame: shrink keeps it. */
    assert_int_equal(proto_framer_feed(&f, frame, 5), 5);
    proto_framer_shrink(&f);
    assert_non_null(f.buf);
    assert_int_equal(proto_framer_buffered(&f), 5);
    assert_int_equal(proto_framer_feed(&f, frame + 5, 2), 2);
    /* A whole frame not yet taken: kept too. */
    proto_framer_shrink(&f);
    assert_non_null(f.buf);
    assert_int_equal(proto_framer_next(&f, &body, &n), PROTO_FRAME_READY);
    assert_int_equal(n, 3);
    assert_memory_equal(body, frame + 4, 3);
    /* Empty: freed, and usable again. */
    proto_framer_shrink(&f);
    assert_null(f.buf);
    assert_int_equal(f.cap, 0);
    assert_int_equal(proto_framer_buffered(&f), 0);
    assert_int_equal(proto_framer_next(&f, &body, &n), PROTO_FRAME_NEED);
    assert_int_equal(proto_framer_feed(&f, frame, sizeof frame), sizeof frame);
    assert_int_equal(proto_framer_next(&f, &body, &n), PROTO_FRAME_READY);
    assert_memory_equal(body, frame + 4, 3);
    proto_framer_free(&f);
    proto_framer_free(&f); /* twice is harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_split_point),  cmocka_unit_test(test_every_split_point_feed),
        cmocka_unit_test(test_one_byte_at_a_time), cmocka_unit_test(test_all_at_once),
        cmocka_unit_test(test_random_reads),       cmocka_unit_test(test_zero_length),
        cmocka_unit_test(test_too_long),           cmocka_unit_test(test_lazy_growth),
        cmocka_unit_test(test_compaction),         cmocka_unit_test(test_shrink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
