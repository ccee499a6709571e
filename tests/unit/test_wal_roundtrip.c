/* tests/unit/test_wal_roundtrip.c: what is appended is read back, field
 * for field, and the bytes on disk are exactly the format of wal/wal.h
 * (built here by hand, independently of the codec); CRC32C check values;
 * empty logs; the guards of wal_writer_open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_wal_util.h"

typedef struct exp_rec {
    uint16_t type;
    uint64_t at;
    uint8_t role;
    const char *actor;
    uint8_t payload[300];
    uint32_t len;
} exp_rec;

#define NREC 20
static exp_rec recs[NREC];

typedef struct got {
    int n;
    wal_record r[NREC];
    uint8_t payload[NREC][300];
    wal_pos pos[NREC];
} got;

static int keep_visit(void *ctx, const wal_record *rec, const wal_pos *pos)
{
    got *g = ctx;
    assert_true(g->n < NREC);
    g->r[g->n] = *rec;
    memcpy(g->payload[g->n], rec->payload, rec->payload_len);
    g->pos[g->n] = *pos;
    g->n++;
    return 0;
}

static void le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* The whole segment as wal.h describes it, built without the codec. */
static uint8_t *expected_segment(uint8_t head[WAL_HASH_LEN], size_t *end)
{
    uint8_t *b = calloc(1, SEG);
    memcpy(b, "HALLQWAL", 8);
    le(b + 8, 1, 4);
    le(b + 12, 128, 4);
    le(b + 16, 1, 8);
    le(b + 24, SEG, 8);
    memcpy(b + 32, HALL, strlen(HALL));
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)"hallq-wal-v1", 12);
    crypto_generichash_update(&st, (const uint8_t *)HALL, strlen(HALL));
    crypto_generichash_final(&st, b + 64, 32);
    le(b + 124, wal_crc32c(0, b, 124), 4);
    uint8_t chain[32];
    memcpy(chain, b + 64, 32);
    size_t pos = 128;
    for (int i = 0; i < NREC; i++) {
        uint8_t *p = b + pos;
        const exp_rec *e = &recs[i];
        le(p, e->len, 4);
        le(p + 4, e->type, 2);
        p[6] = e->role;
        p[7] = (uint8_t)strlen(e->actor);
        le(p + 8, (uint64_t)i + 1, 8);
        le(p + 16, e->at, 8);
        memcpy(p + 24, e->actor, strlen(e->actor));
        memcpy(p + 40, e->payload, e->len);
        crypto_generichash_init(&st, NULL, 0, 32);
        crypto_generichash_update(&st, chain, 32);
        crypto_generichash_update(&st, p, 40 + e->len);
        crypto_generichash_final(&st, chain, 32);
        memcpy(p + 40 + e->len, chain, 32);
        le(p + 72 + e->len, wal_crc32c(0, p, 72 + e->len), 4);
        pos += 76 + e->len;
    }
    memcpy(head, chain, 32);
    *end = pos;
    return b;
}

static void test_round_trip(void **state)
{
    (void)state;
    static const char *actors[] = {"", "kiosk-1", "0123456789abcdef", "w"};
    for (int i = 0; i < NREC; i++) {
        exp_rec *e = &recs[i];
        e->type = (uint16_t)(i % 5 == 0 ? 0xFFFF : 1 + i);
        e->at = 1700000000000ull + (uint64_t)(i / 3) * 1000; /* equal times are fine */
        e->role = (uint8_t)(i * 37);
        e->actor = actors[i % 4];
        e->len = i == 0 ? 1 : (uint32_t)(i * 13 % 290) + 1;
        for (uint32_t k = 0; k < e->len; k++)
            e->payload[k] = (uint8_t)(i * 31 + k * 7);
    }
    wal_writer *w = open_writer(NULL, SEG);
    int batches[] = {1, 7, 12};
    int i = 0;
    for (int b = 0; b < 3; b++) {
        for (int k = 0; k < batches[b]; k++, i++) {
            uint64_t lsn;
            assert_int_equal(wal_writer_append(w, recs[i].type, recs[i].at, recs[i].role,
                                               recs[i].actor, recs[i].payload, recs[i].len, &lsn),
                             0);
            assert_int_equal(lsn, i + 1);
        }
        assert_int_equal(wal_writer_pending(w), batches[b]);
        assert_int_equal(wal_writer_seal(w), 0);
        assert_int_equal(wal_writer_pending(w), 0);
        assert_int_equal(wal_writer_durable_lsn(w), i - batches[b]); /* not yet */
        assert_int_equal(wal_writer_complete(w, wal_writer_flush(w)), 0);
        assert_int_equal(wal_writer_durable_lsn(w), i);
    }
    assert_int_equal(wal_writer_last_lsn(w), NREC);
    assert_int_equal(wal_writer_failed(w), 0);
    assert_string_equal(wal_writer_failed_where(w), "");
    wal_writer_close(w);

    got g = {0};
    wal_scan_options o = {.dir = dir, .hall_id = HALL, .visit = keep_visit, .ctx = &g};
    wal_scan_result r;
    assert_int_equal(wal_scan(&o, &r), 0);
    assert_int_equal(g.n, NREC);
    uint8_t head[WAL_HASH_LEN];
    size_t end;
    uint8_t *want = expected_segment(head, &end);
    for (i = 0; i < NREC; i++) {
        assert_int_equal(g.r[i].lsn, i + 1);
        assert_int_equal(g.r[i].type, recs[i].type);
        assert_int_equal(g.r[i].at_ms, recs[i].at);
        assert_int_equal(g.r[i].actor_role, recs[i].role);
        assert_string_equal(g.r[i].actor_id, recs[i].actor);
        assert_int_equal(g.r[i].actor_id_len, strlen(recs[i].actor));
        assert_int_equal(g.r[i].payload_len, recs[i].len);
        assert_memory_equal(g.payload[i], recs[i].payload, recs[i].len);
        assert_string_equal(g.pos[i].segment, "00000000000000000001.wal");
        assert_int_equal(g.pos[i].lsn, i + 1);
        assert_memory_equal(g.r[i].hash, want + g.pos[i].offset + 40 + recs[i].len, 32);
    }
    assert_int_equal(g.pos[0].offset, WAL_SEGMENT_HEADER_LEN);
    assert_int_equal(r.records, NREC);
    assert_int_equal(r.first_lsn, 1);
    assert_int_equal(r.last_lsn, NREC);
    assert_int_equal(r.first_at_ms, recs[0].at);
    assert_int_equal(r.last_at_ms, recs[NREC - 1].at);
    assert_int_equal(r.segments, 1);
    assert_string_equal(r.hall_id, HALL);
    assert_string_equal(r.last_segment, "00000000000000000001.wal");
    assert_int_equal(r.end_offset, end);
    assert_int_equal(r.segment_bytes, SEG);
    assert_false(r.torn);
    assert_memory_equal(r.head_hash, head, WAL_HASH_LEN);
    /* The bytes on disk: header, records, zeros to the preallocated size. */
    size_t n;
    uint8_t *disk = file_read(seg_path(1), &n);
    assert_int_equal(n, SEG);
    assert_memory_equal(disk, want, SEG);
    free(disk);
    free(want);
}

/* from_lsn: only later records are visited; all are still counted. */
static void test_visit_from_lsn(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_batch(w, 10, 1000);
    wal_writer_close(w);
    seen s = {0};
    wal_scan_options o = {
        .dir = dir, .hall_id = HALL, .from_lsn = 6, .visit = visit_check, .ctx = &s};
    wal_scan_result r;
    assert_int_equal(wal_scan(&o, &r), 0);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.first, 7);
    assert_int_equal(s.bad, 0);
    assert_int_equal(r.records, 10);
    assert_int_equal(r.last_lsn, 10);
}

static int stop_at_3(void *ctx, const wal_record *rec, const wal_pos *pos)
{
    (void)ctx;
    (void)pos;
    return rec->lsn == 3 ? 42 : 0;
}

static void test_visitor_stops(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_batch(w, 5, 1000);
    wal_writer_close(w);
    wal_scan_options o = {.dir = dir, .visit = stop_at_3};
    wal_scan_result r;
    assert_int_equal(wal_scan(&o, &r), 42);
    assert_int_equal(r.last_lsn, 3);
}

static void test_empty_log(void **state)
{
    (void)state;
    wal_scan_result r;
    char missing[128];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    wal_scan_options o = {.dir = missing};
    assert_int_equal(wal_scan(&o, &r), 0);
    assert_int_equal(r.records, 0);
    assert_string_equal(r.last_segment, "");
    o.must_exist = true;
    assert_int_equal(wal_scan(&o, &r), -ENOENT);
    o.dir = dir; /* exists, holds nothing */
    assert_int_equal(wal_scan(&o, &r), -ENOENT);
    assert_non_null(strstr(r.message, "no WAL segment"));
    o.must_exist = false;
    assert_int_equal(wal_scan(&o, &r), 0);

    /* The writer starts the log: one segment, no record yet. */
    wal_writer *w = open_writer(NULL, SEG);
    assert_int_equal(wal_writer_last_lsn(w), 0);
    assert_int_equal(wal_writer_durable_lsn(w), 0);
    wal_writer_close(w);
    o.must_exist = true;
    assert_int_equal(wal_scan(&o, &r), 0);
    assert_int_equal(r.segments, 1);
    assert_int_equal(r.records, 0);
    assert_int_equal(r.last_lsn, 0);
    assert_int_equal(r.end_offset, WAL_SEGMENT_HEADER_LEN);
    uint8_t g[WAL_HASH_LEN];
    wal_genesis_hash(HALL, g);
    assert_memory_equal(r.head_hash, g, WAL_HASH_LEN);
    /* Reopened on the empty segment, it starts at LSN 1. */
    w = open_writer(NULL, SEG);
    append_batch(w, 2, 1000);
    wal_writer_close(w);
    seen s;
    assert_int_equal(scan_check(&r, &s), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.first, 1);
    assert_int_equal(s.bad, 0);
    /* Files that are not segments are ignored. */
    file_write(dir_path("notes.txt"), (const uint8_t *)"hi", 2);
    file_write(dir_path("1.wal"), (const uint8_t *)"hi", 2);
    file_write(dir_path("00000000000000000000.wal"), (const uint8_t *)"hi", 2);
    assert_int_equal(scan_check(&r, &s), 0);
    assert_int_equal(s.n, 2);
}

static void test_writer_open_guards(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_batch(w, 3, 1000);
    wal_writer_close(w);
    wal_writer_options wo = {.dir = dir, .hall_id = HALL, .segment_bytes = SEG, .sync = true};
    /* No end given, but the directory has a log: never start over it. */
    assert_int_equal(wal_writer_open(&w, &wo, NULL), -EEXIST);
    wal_scan_result r;
    assert_int_equal(recover_plain(&r), 0);
    /* Another hall's writer on this log. */
    wo.hall_id = "other-hall";
    assert_int_equal(wal_writer_open(&w, &wo, &r), WAL_E_HALL);
    /* Bad options. */
    wo.hall_id = "";
    assert_int_equal(wal_writer_open(&w, &wo, &r), -EINVAL);
    wo.hall_id = "a-hall-id-that-is-longer-than-32-bytes";
    assert_int_equal(wal_writer_open(&w, &wo, &r), -EINVAL);
    wo.hall_id = HALL;
    wo.segment_bytes = WAL_MIN_SEGMENT_BYTES - 1;
    assert_int_equal(wal_writer_open(&w, &wo, &r), -EINVAL);
    wo.segment_bytes = SEG;
    /* A torn tail found by a plain scan (not cut by recover). */
    long off = 0, size = 0;
    find_record(1, 3, &off, &size);
    size_t n;
    uint8_t *img = file_read(seg_path(1), &n);
    memset(img + off + size / 2, 0, (size_t)(size - size / 2)); /* its second half unwritten */
    file_write(seg_path(1), img, n);
    free(img);
    assert_int_equal(scan_plain(&r), 0);
    assert_true(r.torn);
    assert_int_equal(wal_writer_open(&w, &wo, &r), WAL_E_CORRUPT);
    assert_int_equal(recover_plain(&r), 0);
    assert_int_equal(wal_writer_open(&w, &wo, &r), 0);
    append_batch(w, 1, 2000);
    assert_int_equal(wal_writer_last_lsn(w), 3);
    wal_writer_close(w);
}

/* Bit by bit, the reference definition of CRC32C. */
static uint32_t crc_ref(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(wal_crc32c(0, "123456789", 9), 0xE3069283);
    /* RFC 3720, B.4. */
    uint8_t b[32];
    memset(b, 0, 32);
    assert_int_equal(wal_crc32c(0, b, 32), 0x8A9136AA);
    memset(b, 0xFF, 32);
    assert_int_equal(wal_crc32c(0, b, 32), 0x62A8AB43);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)i;
    assert_int_equal(wal_crc32c(0, b, 32), 0x46DD794E);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)(31 - i);
    assert_int_equal(wal_crc32c(0, b, 32), 0x113FDB5C);
    /* Any length, any split, any alignment: the same as the reference. */
    uint8_t big[1031];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 2654435761u >> 13);
    for (size_t start = 0; start < 9; start++)
        for (size_t len = 0; len + start <= sizeof big; len += 37)
            assert_int_equal(wal_crc32c(0, big + start, len), crc_ref(big + start, len));
    uint32_t whole = wal_crc32c(0, big, sizeof big);
    for (size_t cut = 0; cut <= sizeof big; cut++)
        assert_int_equal(wal_crc32c(wal_crc32c(0, big, cut), big + cut, sizeof big - cut), whole);
    /* Both ways of computing it (the instruction, where the CPU has it, and
     * the tables) agree with the reference on every length and alignment. */
    for (size_t start = 0; start < 9; start++)
        for (size_t len = 0; len + start <= sizeof big; len += 13) {
            uint32_t want = crc_ref(big + start, len);
            assert_int_equal(wal_crc32c_sw(0, big + start, len), want);
            assert_int_equal(wal_crc32c_hw(0, big + start, len), want);
            assert_int_equal(wal_crc32c_hw(wal_crc32c_sw(0, big, start), big + start, len),
                             wal_crc32c_sw(0, big, start + len));
        }
#if defined(__x86_64__)
    print_message("crc32c: %s\n", wal_crc32c_has_hw() ? "SSE4.2 instruction" : "tables");
#endif
}

static void test_strerror(void **state)
{
    (void)state;
    int codes[] = {WAL_E_CORRUPT, WAL_E_CHAIN,  WAL_E_GAP,    WAL_E_TIME, WAL_E_HALL,
                   WAL_E_HEADER,  WAL_E_FAILED, WAL_E_TOOBIG, WAL_E_BUSY, WAL_E_VERSION};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        assert_string_not_equal(wal_strerror(codes[i]), "unknown error");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(wal_strerror(codes[i]), wal_strerror(codes[j]));
    }
    assert_string_equal(wal_strerror(-EIO), strerror(EIO));
    assert_string_equal(wal_strerror(0), "ok");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test_setup_teardown(test_round_trip, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_visit_from_lsn, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_visitor_stops, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_empty_log, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_writer_open_guards, wal_setup, wal_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
