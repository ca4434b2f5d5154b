/*
 * hash.c - CRC-32C (Castagnoli, reflected) and FNV-1a 64. CRCs cover checkpoint records
 * and every byte of disk-buffer records (written and read back), so on x86-64 with SSE4.2
 * the CRC32 instruction does 8 bytes at a time; elsewhere a table built once, lazily,
 * under pthread_once. Hashes cover at most a file's fingerprint bytes.
 *
 * The instruction takes 3 cycles and depends on the previous result, so one stream of
 * input runs at a third of what the unit can do. Long inputs are cut into three lanes
 * computed side by side and joined: the CRC register is linear, so the register after
 * A then B is the register after A moved over |B| zero bytes, xor the register of B from
 * zero. Moving over a fixed number of zero bytes is linear too: four table lookups, tables
 * built at start from 32 single-bit registers. That makes a disk buffer's CRCs about 3x
 * cheaper (tests/unit/core/test_hash.c checks every length and offset against the table).
 */
#include "core/hash.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define MARS_CRC_HW 1
#endif

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static int crc_have_hw;

#ifdef MARS_CRC_HW
enum { LANE_LONG = 8192, LANE_SHORT = 256 };

/* t[k][v]: the register v << 8k moved over a lane's length in zero bytes */
struct crc_move {
    uint32_t t[4][256];
};
static struct crc_move crc_long, crc_short;

__attribute__((target("sse4.2"))) static uint32_t crc_hw1(uint32_t crc, const unsigned char *p,
                                                          size_t len)
{
    uint64_t c = crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = _mm_crc32_u8(c32, *p++);
    return c32;
}

static uint32_t crc_shift(const struct crc_move *m, uint32_t c)
{
    return m->t[0][c & 0xff] ^ m->t[1][(c >> 8) & 0xff] ^ m->t[2][(c >> 16) & 0xff] ^
           m->t[3][c >> 24];
}

/* Three lanes of lane bytes each, side by side, joined into crc. */
__attribute__((target("sse4.2"))) static uint32_t crc_hw3(uint32_t crc, const unsigned char *p,
                                                          size_t lane, const struct crc_move *t)
{
    uint64_t a = crc, b = 0, c = 0;
    for (size_t i = 0; i < lane; i += 8) {
        uint64_t va, vb, vc;
        memcpy(&va, p + i, 8);
        memcpy(&vb, p + lane + i, 8);
        memcpy(&vc, p + 2 * lane + i, 8);
        a = _mm_crc32_u64(a, va);
        b = _mm_crc32_u64(b, vb);
        c = _mm_crc32_u64(c, vc);
    }
    uint32_t ab = crc_shift(t, (uint32_t)a) ^ (uint32_t)b;
    return crc_shift(t, ab) ^ (uint32_t)c;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const unsigned char *p,
                                                         size_t len)
{
    while (len >= 3 * LANE_LONG) {
        crc = crc_hw3(crc, p, LANE_LONG, &crc_long);
        p += 3 * LANE_LONG;
        len -= 3 * LANE_LONG;
    }
    while (len >= 3 * LANE_SHORT) {
        crc = crc_hw3(crc, p, LANE_SHORT, &crc_short);
        p += 3 * LANE_SHORT;
        len -= 3 * LANE_SHORT;
    }
    return crc_hw1(crc, p, len);
}

__attribute__((target("sse4.2"))) static void crc_move_init(struct crc_move *t, size_t lane)
{
    static const unsigned char zeros[LANE_LONG];
    uint32_t bit[32];
    for (int j = 0; j < 32; j++)
        bit[j] = crc_hw1(1u << j, zeros, lane);
    for (int k = 0; k < 4; k++)
        for (uint32_t v = 0; v < 256; v++) {
            uint32_t m = 0;
            for (int j = 0; j < 8; j++)
                if (v & (1u << j))
                    m ^= bit[8 * k + j];
            t->t[k][v] = m;
        }
}
#endif

static void crc_init(void)
{
#ifdef MARS_CRC_HW
    __builtin_cpu_init();
    crc_have_hw = __builtin_cpu_supports("sse4.2");
    if (crc_have_hw) {
        crc_move_init(&crc_long, LANE_LONG);
        crc_move_init(&crc_short, LANE_SHORT);
    }
#endif
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t mars_crc32c(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    pthread_once(&crc_once, crc_init);
    crc = ~crc;
#ifdef MARS_CRC_HW
    if (crc_have_hw)
        return ~crc_hw(crc, p, len);
#endif
    while (len--)
        crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

uint64_t mars_hash64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    while (len--) {
        h ^= *p++;
        h *= 0x100000001b3ULL;
    }
    return h;
}
