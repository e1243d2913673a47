/* rk_host: a host-only fast path for the ternary matrix-vector product, compiled into the CPython extension
 * reku._rkernel only (never into the board module: rk_core.c stays the portable C99 core).
 *
 * The .rku bytes (5 trits per byte, base 3) are repacked once into a SIMD-friendly layout, 2 bits per weight:
 *   u = W + 1 in {0, 1, 2}; each row is padded to Cp = ceil(C/128)*128 columns (padding u = 0) and split into
 *   chunks of 128 columns, 32 bytes each: bits 2k..2k+1 of byte i of chunk j hold u for column 128j + 32k + i.
 * So a 32-byte load, a shift by 2k and a mask give the 32 u's of columns 128j + 32k .. +31, in the order of x.
 * y[r] = sum_c u[r,c] * x[c] - sum_c x[c]: unsigned u times signed x is exactly what x86's pmaddubsw takes
 * (two products per int16 lane, |sum| <= 512: no saturation), so 32 weights cost one multiply-add.
 *
 * rk_host_tmv is integer-exact with rk_tmv for any shape (C <= 65535) and any int8 x (-128 included). */
#ifndef RK_HOST_H
#define RK_HOST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of the repacked matrix: R * ceil(C/128) * 32. */
size_t rk_host_prep_bytes(int R, int C);

/* Bytes of the padded-input scratch rk_host_tmv needs: ceil(C/128) * 128, plus 31 for its alignment. */
size_t rk_host_xpad_bytes(int C);

/* Repacks the .rku bytes w (R rows of ceil(C/5) bytes) into out (rk_host_prep_bytes(R, C) bytes). */
void rk_host_prepare(const uint8_t *w, int R, int C, uint8_t *out);

/* Which kernels this CPU runs: 1 when the AVX2 kernel is compiled in and the CPU has AVX2, else 0. */
int rk_host_avx2(void);

/* y = W @ x over the repacked matrix p. xpad: rk_host_xpad_bytes(C) bytes of scratch. avx2 = 0 runs the
 * portable C version of the same layout (exact, slow: for tests and non-AVX2 CPUs that were given a
 * repacked matrix); avx2 = 1 needs rk_host_avx2(). */
void rk_host_tmv(const uint8_t *p, int R, int C, const int8_t *x, int32_t *y, int8_t *xpad, int avx2);

#if defined(__x86_64__) && defined(__GNUC__)
/* Benchmark reference only: rk_tmv_i8's loop compiled with AVX2 allowed (call only when rk_host_avx2()). */
void rk_host_i8_avx2(const int8_t *w, int R, int C, const int8_t *x, int32_t *y);
#endif

#ifdef __cplusplus
}
#endif

#endif
