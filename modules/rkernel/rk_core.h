/* rk_core: reku's portable C99 inference kernels (no MicroPython or CPython headers).
 *
 * Integer-exact with the numpy reference (host/reku/model/reference.py) and the firmware's pure-Python tier
 * (firmware/rkfw/kernels.py): same names, same arguments, same rounding. See docs/native.md.
 *
 * Ternary packing: W (R rows x C cols, entries -1/0/+1), row-major, G = ceil(C/5) bytes per row,
 * byte[r*G+g] = sum_k (W[r,5g+k]+1) * 3**k. (.rku models have C % 5 == 0; for other C the missing trits of
 * a row's last byte are taken as 0 weights, i.e. digit 1.)
 *
 * Conventions: int8 vectors are int8_t, int32 vectors int32_t, bytes (mu, w, u, sig) uint8_t. Python's `>>`
 * floors: so does `>>` on negative int32/int64 with gcc/clang (arithmetic shift); no signed division is used.
 */
#ifndef RK_CORE_H
#define RK_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && defined(__thumb__) && defined(__ARM_ARCH_6M__) && !defined(RK_NO_ASM)
/* Cortex-M0/M0+ (RP2040): assembly loops over tables that hold two groups per word (see rk_core.c). */
#define RK_M0_ASM 1
#else
#define RK_M0_ASM 0
#endif

/* Groups of 5 columns whose lookup tables are built together: tmv works through the columns in chunks of
 * RK_TL_CHUNK groups, so its scratch memory is fixed: 7808 bytes on microcontrollers (8 int32 tables, or 16
 * paired int16 tables on Cortex-M0), 31 KB on 64-bit hosts (32 tables). */
#if RK_M0_ASM
#undef RK_TL_CHUNK
#define RK_TL_CHUNK 16
#define RK_TL_TABLES (RK_TL_CHUNK / 2)
#else
#ifndef RK_TL_CHUNK
#if UINTPTR_MAX > 0xffffffffu
#define RK_TL_CHUNK 32
#else
#define RK_TL_CHUNK 8
#endif
#endif
#define RK_TL_TABLES RK_TL_CHUNK
#endif
/* One table: 243 32-bit entries, stored with a stride of 244 (976 bytes). */
#define RK_TL_STRIDE 244
/* Scratch bytes rk_tmv needs (any matrix shape). */
#define RK_TMV_SCRATCH_BYTES (RK_TL_TABLES * RK_TL_STRIDE * 4)

/* Bytes per packed row, ceil(C/5), for 0 <= C <= 65535 (a multiply: Cortex-M0 has no divider). */
static inline int rk_row_bytes(int C) {
    return (int)((((uint32_t)C + 4u) * 52429u) >> 18);
}

/* Fixed-point formats and limits of the recurrent step (reference.py): h in Q8; r, k, v, the time-mixing
 * state and the channel-mixing hidden in Q12. */
#define RK_QA 12
#define RK_H_LIM (1 << 23)
#define RK_A_LIM ((8 << RK_QA) - 1)
#define RK_S_LIM (1 << 21)

/* y[r] = sum_c W[r,c] * x[c] for r < R. x: C int8. scratch: RK_TMV_SCRATCH_BYTES bytes, 4-byte aligned.
 * Table-lookup kernel: for each group of 5 inputs the 243 partial sums are built once, then every packed
 * weight byte costs one table read and one add. */
void rk_tmv(const uint8_t *w, int R, int C, const int8_t *x, int32_t *y, int32_t *scratch);

/* rk_tmv with a packed FP4 input (C values, see rk_quant_fp4). */
void rk_tmv4(const uint8_t *w, int R, int C, const uint8_t *x, int32_t *y, int32_t *scratch);

/* One group's table: t[b] = sum_k (digit_k(b) - 1) * x_k for b = 0..242 (t has room for 244 entries). */
void rk_tl_build(int32_t *t, int x0, int x1, int x2, int x3, int x4);

#if RK_M0_ASM
/* Generic table generator (Thumb-1): t[b] = bias + sum_k (digit_k(b) - 1) * x_k modulo 2**32, b = 0..242. */
void rk_tl_build_m0(int32_t *t, int x0, int x1, int x2, int x3, int x4, int bias);
#endif

/* amax = max |h[j]| over n; x[j] = sgn(h) * ((|h|*127 + amax/2) // amax), 0 when amax == 0. Returns amax.
 * |h| < 2**24. */
int32_t rk_quant_i8(const int32_t *h, int n, int8_t *x);

/* Packed FP4 vectors (docs/format.md): n values (n a multiple of 8) in rk_fp4_bytes(n) bytes: n/2 bytes of
 * 4-bit codes (value 2j in the low nibble of byte j, 2j+1 in the high one), code = sign << 3 | m for the value
 * sign * {0,1,2,3,4,6,8,12}[m] << s, then the 2-bit shift s of each block of 8 (block b at bits 2*(b%4) of
 * byte n/2 + b/4). */
static inline int rk_fp4_bytes(int n) {
    return (n >> 1) + ((n + 31) >> 5);
}

/* FP4 E2M1 with a power-of-two scale per block of 8 (n a multiple of 8), the doubled values |v| <= 96 of
 * reference.quant_fp4, packed into x (rk_fp4_bytes(n) bytes). Returns amax. */
int32_t rk_quant_fp4(const int32_t *h, int n, uint8_t *x);

/* out[i] = prev[i] + (((x[i] - prev[i]) * mu[i] + 128) >> 8)  (token shift, mu 0..255). */
void rk_shift(const int8_t *x, const int8_t *prev, const uint8_t *mu, int8_t *out, int n);

/* rk_shift of two packed FP4 vectors x, prev (n values each) into int8 out. */
void rk_shift4(const uint8_t *x, const uint8_t *prev, const uint8_t *mu, int8_t *out, int n);

/* y[i] = clamp((y[i]*M + 2**(S-1)) >> S, lo, hi) in place, 1 <= S <= 62. */
void rk_requant(int32_t *y, int n, int32_t M, int S, int32_t lo, int32_t hi);

/* Time-mixing recurrence per channel, state s updated in place (r, k, v, s, out in Q12; w, u, sig Q8):
 * kv = (k*v) >> 12; out = (sig[clamp(r >> 9, -128, 127) + 128] * (s + ((u*kv) >> 8))) >> 8;
 * s = clamp(((s*w) >> 8) + kv, -S_LIM, S_LIM). Needs |r|, |k|, |v| <= A_LIM and |s| <= S_LIM (as the model
 * guarantees) for 32-bit intermediates. */
void rk_wkv(const int32_t *r, const int32_t *k, const int32_t *v, int32_t *s, const uint8_t *w,
    const uint8_t *u, const uint8_t *sig, int32_t *out, int n);

/* k[i] = (k[i]*k[i]) >> 12, for |k| <= A_LIM. */
void rk_square(int32_t *k, int n);

/* h[i] = clamp(h[i] + y[i], -H_LIM, H_LIM). */
void rk_add(int32_t *h, const int32_t *y, int n);

/* h[i] = (e[i]*M + 2**(S-1)) >> S for int8 e (one embedding row). */
void rk_embed(const int8_t *e, int n, int32_t M, int S, int32_t *h);

/* One row of a ternary embedding table: n/5 packed bytes (5 trits each, base 3, first trit least
 * significant; trit t means weight t-1) into h[i] = (W[i]*M + 2**(S-1)) >> S. */
void rk_embed_t(const uint8_t *w, int n, int32_t M, int S, int32_t *h);

/* out[j] = sum_c K[j*dk + c] * q[c] for j < n (int8 K, q). */
void rk_dot_rows(const int8_t *K, int n, int dk, const int8_t *q, int32_t *out);

/* One recurrent layer's step (time mixing, then channel mixing) as one call: the same kernel sequence, on
 * the same buffers, as the engine's step in firmware/rkfw/infer.py, so a board pays one interpreter call per
 * layer instead of about 25. W[0..5] = Wr, Wk, Wv, Wo, Ck, Cv (packed ternary) with requant scales M[i]/2**S[i];
 * fp4 selects the activation quantizer. The caller keeps the state (prev, prevc, state) and the scratch. */
typedef struct {
    const uint8_t *mu_r, *mu_k, *mu_v, *w, *u, *sig, *cmu;
    const uint8_t *W[6];
    int32_t M[6];
    int32_t S[6];
    int32_t fp4;
} rk_layer_t;

typedef struct {
    int8_t *prev, *prevc;      /* d int8, or packed FP4 (rk_fp4_bytes(d)) when fp4 */
    int32_t *state;
    int8_t *x, *xs, *xf;       /* d, d, f; x and xf hold packed FP4 when fp4 */
    int32_t *r, *k, *v, *o, *hf;  /* d, d, d, d, f */
} rk_work_t;

/* h (d int32, Q8) in place; needs 1 <= S[i] <= 62. scratch: as rk_tmv. */
void rk_layer(const rk_layer_t *p, const rk_work_t *s, int32_t *h, int d, int f, int32_t *scratch);

#ifdef __cplusplus
}
#endif

#endif
