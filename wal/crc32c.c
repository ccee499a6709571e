/* wal/crc32c.c: CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of every record and segment header. On x86-64 with SSE4.2 (the
 * CPU is asked once) the crc32 instruction, 8 bytes at a time; elsewhere
 * slice-by-8 over tables built once per process (pthread_once). Any thread
 * may call it; both give the same value (tests/unit/test_wal_roundtrip.c).
 *
 * Invariants: wal_crc32c(0, "123456789", 9) == 0xE3069283 (the standard
 * check value, as iSCSI and ext4 compute it), and feeding a buffer in
 * pieces gives the same value as feeding it whole.
 *
 * Never: change the polynomial or the pre/post inversion: every segment
 * on disk depends on them. */
#include "wal/wal.h"
#include "wal/wal_internal.h"

#include <pthread.h>
#include <string.h>

static uint32_t table[8][256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void build(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

uint32_t wal_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    pthread_once(&once, build);
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo, hi;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* One unaligned load each; the bytes are in the order we need. */
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
#else
        lo = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
#endif
        lo ^= crc;
        crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
              table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
              table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) uint32_t wal_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t c = ~crc;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}

static bool have_hw;
static pthread_once_t hw_once = PTHREAD_ONCE_INIT;

static void ask_cpu(void)
{
    have_hw = __builtin_cpu_supports("sse4.2");
}

bool wal_crc32c_has_hw(void)
{
    pthread_once(&hw_once, ask_cpu);
    return have_hw;
}

uint32_t wal_crc32c(uint32_t crc, const void *buf, size_t len)
{
    return wal_crc32c_has_hw() ? wal_crc32c_hw(crc, buf, len) : wal_crc32c_sw(crc, buf, len);
}
#else
uint32_t wal_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    return wal_crc32c_sw(crc, buf, len);
}

bool wal_crc32c_has_hw(void)
{
    return false;
}

uint32_t wal_crc32c(uint32_t crc, const void *buf, size_t len)
{
    return wal_crc32c_sw(crc, buf, len);
}
#endif
