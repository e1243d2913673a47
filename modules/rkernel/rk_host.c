/* rk_host: the host-only ternary matrix-vector product over a 2-bit repacked layout. See rk_host.h.
 * Built only into the CPython extension (setup.py); the AVX2 kernel is compiled with a function-level target
 * attribute and chosen at run time, so the extension still builds and runs on any CPU. */
#include <string.h>

#include "rk_host.h"
#include "rk_baseline.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define RK_HOST_X86 1
#include <immintrin.h>
#else
#define RK_HOST_X86 0
#endif

static int rk_chunks(int C) {
    return (C + 127) >> 7;
}

size_t rk_host_prep_bytes(int R, int C) {
    return (size_t)R * (size_t)rk_chunks(C) * 32u;
}

size_t rk_host_xpad_bytes(int C) {
    return (size_t)rk_chunks(C) * 128u + 31u;
}

void rk_host_prepare(const uint8_t *w, int R, int C, uint8_t *out) {
    const int G = (C + 4) / 5;
    const size_t rb = (size_t)rk_chunks(C) * 32u;
    int r, g, k;
    memset(out, 0, (size_t)R * rb);
    for (r = 0; r < R; r++) {
        const uint8_t *row = w + (size_t)r * G;
        uint8_t *o = out + (size_t)r * rb;
        for (g = 0; g < G; g++) {
            unsigned b = row[g];
            for (k = 0; k < 5; k++, b /= 3) {
                const int c = 5 * g + k;
                if (c < C) {
                    o[(c >> 7) * 32 + (c & 31)] |= (uint8_t)((b % 3) << (2 * ((c >> 5) & 3)));
                }
            }
        }
    }
}

/* Portable C over the same layout. */
static void rk_host_tmv_c(const uint8_t *p, int R, int C, const int8_t *x, int32_t *y) {
    const int nch = rk_chunks(C);
    const size_t rb = (size_t)nch * 32u;
    int32_t sumx = 0;
    int r, c;
    for (c = 0; c < C; c++) {
        sumx += x[c];
    }
    for (r = 0; r < R; r++) {
        const uint8_t *o = p + (size_t)r * rb;
        int32_t a = 0;
        for (c = 0; c < C; c++) {
            a += (int32_t)((o[(c >> 7) * 32 + (c & 31)] >> (2 * ((c >> 5) & 3))) & 3) * x[c];
        }
        y[r] = a - sumx;
    }
}

#if RK_HOST_X86

int rk_host_avx2(void) {
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx2") ? 1 : 0;
    }
    return have;
}

/* 32 weights of plane k of a chunk times the matching 32 inputs: int16 lanes, two products each. */
#define RK_PLANE(wv, k, xk) \
    _mm256_maddubs_epi16(_mm256_and_si256((k) ? _mm256_srli_epi16(wv, 2 * (k)) : (wv), m3), xk)

/* One chunk of one row: the 4 planes summed in int16 (|lane| <= 4 * 512 = 2048). */
#define RK_CHUNK(wv, x0, x1, x2, x3) \
    _mm256_add_epi16(_mm256_add_epi16(RK_PLANE(wv, 0, x0), RK_PLANE(wv, 1, x1)), \
        _mm256_add_epi16(RK_PLANE(wv, 2, x2), RK_PLANE(wv, 3, x3)))

/* int16 sums are widened every RK_FLUSH chunks: 8 * 2048 = 16384 < 32768. */
#define RK_FLUSH 8

__attribute__((target("avx2"))) static inline int32_t rk_hsum(__m256i a) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

__attribute__((target("avx2"))) static void rk_host_tmv_avx2(const uint8_t *p, int R, int C, const int8_t *xp,
    int32_t sumx, int32_t *y) {
    const int nch = rk_chunks(C);
    const size_t rb = (size_t)nch * 32u;
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m256i one = _mm256_set1_epi16(1);
    int r = 0;
    for (; r + 4 <= R; r += 4) {
        const uint8_t *p0 = p + (size_t)r * rb;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        int j0, j;
        for (j0 = 0; j0 < nch; j0 += RK_FLUSH) {
            const int j1 = nch - j0 < RK_FLUSH ? nch : j0 + RK_FLUSH;
            __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
            for (j = j0; j < j1; j++) {
                const __m256i x0 = _mm256_load_si256((const __m256i *)(xp + 128 * j));
                const __m256i x1 = _mm256_load_si256((const __m256i *)(xp + 128 * j + 32));
                const __m256i x2 = _mm256_load_si256((const __m256i *)(xp + 128 * j + 64));
                const __m256i x3 = _mm256_load_si256((const __m256i *)(xp + 128 * j + 96));
                const uint8_t *q = p0 + 32 * (size_t)j;
                const __m256i w0 = _mm256_loadu_si256((const __m256i *)q);
                const __m256i w1 = _mm256_loadu_si256((const __m256i *)(q + rb));
                const __m256i w2 = _mm256_loadu_si256((const __m256i *)(q + 2 * rb));
                const __m256i w3 = _mm256_loadu_si256((const __m256i *)(q + 3 * rb));
                s0 = _mm256_add_epi16(s0, RK_CHUNK(w0, x0, x1, x2, x3));
                s1 = _mm256_add_epi16(s1, RK_CHUNK(w1, x0, x1, x2, x3));
                s2 = _mm256_add_epi16(s2, RK_CHUNK(w2, x0, x1, x2, x3));
                s3 = _mm256_add_epi16(s3, RK_CHUNK(w3, x0, x1, x2, x3));
            }
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(s0, one));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(s1, one));
            a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(s2, one));
            a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(s3, one));
        }
        {
            /* four horizontal sums at once: [a0 a1 a2 a3] per 128-bit lane, then the two lanes added */
            const __m256i h01 = _mm256_hadd_epi32(a0, a1), h23 = _mm256_hadd_epi32(a2, a3);
            const __m256i h = _mm256_hadd_epi32(h01, h23);
            __m128i v = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            v = _mm_sub_epi32(v, _mm_set1_epi32(sumx));
            _mm_storeu_si128((__m128i *)(y + r), v);
        }
    }
    for (; r < R; r++) {
        const uint8_t *q = p + (size_t)r * rb;
        __m256i a = _mm256_setzero_si256();
        int j0, j;
        for (j0 = 0; j0 < nch; j0 += RK_FLUSH) {
            const int j1 = nch - j0 < RK_FLUSH ? nch : j0 + RK_FLUSH;
            __m256i s = _mm256_setzero_si256();
            for (j = j0; j < j1; j++) {
                const __m256i w0 = _mm256_loadu_si256((const __m256i *)(q + 32 * (size_t)j));
                s = _mm256_add_epi16(s, RK_CHUNK(w0, _mm256_load_si256((const __m256i *)(xp + 128 * j)),
                    _mm256_load_si256((const __m256i *)(xp + 128 * j + 32)),
                    _mm256_load_si256((const __m256i *)(xp + 128 * j + 64)),
                    _mm256_load_si256((const __m256i *)(xp + 128 * j + 96))));
            }
            a = _mm256_add_epi32(a, _mm256_madd_epi16(s, one));
        }
        y[r] = rk_hsum(a) - sumx;
    }
}

/* For the benchmark only: the int8 baseline's loop (rk_tmv_i8 in rk_baseline.c) compiled the same way but with
 * AVX2 allowed, to show what the wider vectors alone give an int8 kernel. Not a target comparison. */
__attribute__((target("avx2"))) void rk_host_i8_avx2(const int8_t *w, int R, int C, const int8_t *x, int32_t *y) {
    rk_i8_rows(w, R, C, x, y);
}

#else

int rk_host_avx2(void) {
    return 0;
}

#endif

void rk_host_tmv(const uint8_t *p, int R, int C, const int8_t *x, int32_t *y, int8_t *xpad, int avx2) {
#if RK_HOST_X86
    if (avx2) {
        /* 32-byte aligned copy of x, zero past C: padding columns then add nothing whatever their u */
        int8_t *xp = (int8_t *)(((uintptr_t)xpad + 31) & ~(uintptr_t)31);
        const size_t n = (size_t)rk_chunks(C) * 128u;
        int32_t sumx = 0;
        int c;
        memcpy(xp, x, (size_t)C);
        memset(xp + C, 0, n - (size_t)C);
        for (c = 0; c < C; c++) {
            sumx += x[c];
        }
        rk_host_tmv_avx2(p, R, C, xp, sumx, y);
        return;
    }
#else
    (void)avx2;
#endif
    (void)xpad;
    rk_host_tmv_c(p, R, C, x, y);
}
