/* rk_core: reku's portable C99 inference kernels. See rk_core.h and docs/native.md.
 *
 * Two code paths for the ternary matrix-vector product, same results:
 *  - portable C (every target but ARMv6-M; 64-bit hosts read the weights 8 bytes at a time);
 *  - ARMv6-M (Cortex-M0/M0+, RP2040): the two hot loops in Thumb-1 assembly, because gcc neither keeps
 *    four accumulators in high registers nor stores table entries with stm (the C version of the same
 *    algorithm compiles to about 2x the instructions per weight).
 */
#include "rk_core.h"

/* No library calls: the dynamic native module (natmod) links no libc. Loops that gcc would turn into
 * memset calls are built with -fno-tree-loop-distribute-patterns there. */

#if UINTPTR_MAX > 0xffffffffu
#define RK_WIDE 1
#else
#define RK_WIDE 0
#endif

/* Magnitude of FP4 code m (0..7): {0,1,2,3,4,6,8,12}[m], as 4-bit fields of a constant (no data section). */
#define RK_FP4MAG(m) ((int32_t)((0xC8643210u >> ((m) << 2)) & 15u))

/* Value i of a packed FP4 vector of n values (rk_core.h describes the layout). */
static inline int32_t rk_fp4_at(const uint8_t *x, int n, int i) {
    int32_t c = (x[i >> 1] >> ((i & 1) << 2)) & 15;
    int32_t v = RK_FP4MAG(c & 7) << ((x[(n >> 1) + (i >> 5)] >> ((i >> 2) & 6)) & 3);
    return c & 8 ? -v : v;
}

/* Input i of a matrix-vector product: of the int8 x, or (x NULL) of the packed FP4 xp; 0 outside [0, C). */
static inline int rk_in(const int8_t *x, const uint8_t *xp, int C, int i) {
    return i < 0 || i >= C ? 0 : x != NULL ? x[i] : (int)rk_fp4_at(xp, C, i);
}

/* ---------------------------------------------------------------------------------------------------
 * Ternary matrix-vector product, table-lookup style (T-MAC / bitnet.cpp TL).
 *
 * A packed byte b holds 5 trits d_k = digit_k(b) (base 3, little-endian) of W = d - 1. For one input
 * vector, the dot product of 5 inputs with each of the 243 possible trit patterns is precomputed:
 *     T_g[b] = sum_k (d_k(b) - 1) * x[5g + k]
 * and then y[r] = sum_g T_g[w[r*G + g]]: one byte load, one table load and one add per 5 weights.
 * A table costs 243 stores (generated in index order, no loads) shared by all R rows.
 * ------------------------------------------------------------------------------------------------- */

#if RK_M0_ASM

/* ARMv6-M. A table word holds the entries of two groups: low half = T_a[b] + 32768 (unsigned, so no borrow
 * reaches the high half), high half = T_b[b] (signed). Both are generated at once by the same additions on
 * packed words X_k = x_k + x'_k * 65536, which halves the table cost; the lookup reads a half with
 * ldrh/ldrsh at the same instruction count, and the 32768 biases are subtracted at the end. */

/* r0 = t, r1..r3 = x0..x2, stack: x3, x4, bias. The table is walked in index order: the innermost digit
 * d0 gives three entries (base - x0, base, base + x0) stored with one stm. */
__asm__(
    "  .text\n"
    "  .syntax unified\n"
    "  .balign 2\n"
    "  .global rk_tl_build_m0\n"
    "  .type rk_tl_build_m0, %function\n"
    "  .thumb_func\n"
    "rk_tl_build_m0:\n"
    "  push {r4, r5, r6, r7, lr}\n"
    "  mov r4, r8\n  mov r5, r9\n  mov r6, r10\n  mov r7, r11\n"
    "  push {r4, r5, r6, r7}\n"
    "  mov r4, r1\n"                 /* r4 = x0 */
    "  mov r5, r2\n"                 /* r5 = x1 */
    "  ldr r6, [sp, #36]\n"          /* x3 */
    "  lsls r7, r3, #1\n"
    "  adds r7, r7, r3\n"
    "  subs r7, r6, r7\n"
    "  mov r8, r7\n"                 /* r8 = x3 - 3*x2: next d3 */
    "  ldr r7, [sp, #40]\n"          /* x4 */
    "  lsls r1, r6, #1\n"
    "  adds r1, r1, r6\n"
    "  subs r1, r7, r1\n"
    "  mov r9, r1\n"                 /* r9 = x4 - 3*x3: next d4 */
    "  adds r1, r2, r3\n"
    "  adds r1, r1, r6\n"
    "  adds r1, r1, r7\n"
    "  ldr r2, [sp, #44]\n"
    "  subs r2, r2, r1\n"            /* r2 = base = bias - (x1 + x2 + x3 + x4) */
    "  lsls r6, r5, #1\n"
    "  subs r6, r3, r6\n"            /* r6 = x2 - 2*x1: next d2 */
    "  movs r1, #81\n"
    "  lsls r1, r1, #2\n"
    "  mov r10, r1\n"                /* r10 = 324 bytes: one d4 slice */
    "  adds r7, r0, r1\n"            /* r7 = end of the current d4 slice */
    "  movs r3, #243\n"
    "  lsls r3, r3, #2\n"
    "  adds r3, r0, r3\n"
    "  mov r11, r3\n"                /* r11 = end of the table */
    "1:\n"
#define RK_B3(next) \
    "  subs r1, r2, r4\n  adds r3, r2, r4\n  stm r0!, {r1, r2, r3}\n  adds r2, r2, r5\n" \
    "  subs r1, r2, r4\n  adds r3, r2, r4\n  stm r0!, {r1, r2, r3}\n  adds r2, r2, r5\n" \
    "  subs r1, r2, r4\n  adds r3, r2, r4\n  stm r0!, {r1, r2, r3}\n  adds r2, r2, " next "\n"
    RK_B3("r6") RK_B3("r6") RK_B3("r6")
#undef RK_B3
    "  add r2, r8\n"
    "  cmp r0, r7\n"
    "  bne 1b\n"
    "  add r2, r9\n"
    "  add r7, r10\n"
    "  cmp r0, r11\n"
    "  bne 1b\n"
    "  pop {r4, r5, r6, r7}\n"
    "  mov r8, r4\n  mov r9, r5\n  mov r10, r6\n  mov r11, r7\n"
    "  pop {r4, r5, r6, r7, pc}\n"
    "  .size rk_tl_build_m0, .-rk_tl_build_m0\n");

/* Four rows at a time over one chunk of 16 groups (8 paired tables): y[r..r+3] += sum_k T_k[w[row, k]] for
 * the 4-row blocks from y to yend. r0 = p (row 0's first byte of the chunk, minus skip), r1 = G, r2 = y,
 * r3 = yend; stack: tab, entry (byte offset of the first unrolled step to run: a short chunk of 16 - skip
 * groups starts at step skip, with p moved back by skip so the load offsets still match). */
void rk_tl_rows4_m0(const uint8_t *p, int G, int32_t *y, int32_t *yend, const int32_t *tab, int entry);
__asm__(
    "  .text\n"
    "  .syntax unified\n"
    "  .balign 2\n"
    "  .global rk_tl_rows4_m0\n"
    "  .type rk_tl_rows4_m0, %function\n"
    "  .thumb_func\n"
    "rk_tl_rows4_m0:\n"
    "  push {r4, r5, r6, r7, lr}\n"
    "  mov r4, r8\n  mov r5, r9\n  mov r6, r10\n  mov r7, r11\n"
    "  push {r4, r5, r6, r7}\n"
    "  sub sp, #12\n"
    "  str r3, [sp, #0]\n"           /* yend */
    "  ldr r4, [sp, #48]\n"
    "  str r4, [sp, #4]\n"           /* tab */
    "  lsls r5, r1, #2\n"
    "  str r5, [sp, #8]\n"           /* 4G: next block of rows */
    "  ldr r5, [sp, #52]\n"          /* entry offset */
    "  adr r6, 3f\n"
    "  adds r6, r6, r5\n"
    "  mov lr, r6\n"                 /* lr = first step to run */
    "  mov r7, r2\n"                 /* r7 = y */
    "  mov r5, r1\n"
    "  adds r1, r0, r5\n"
    "  adds r2, r1, r5\n"
    "  adds r3, r2, r5\n"            /* r0..r3 = rows 0..3 */
    "  movs r5, #244\n"
    "  lsls r5, r5, #2\n"
    "  mov r12, r5\n"                /* r12 = table stride, 976 bytes */
    "2:\n"
    "  ldr r5, [r7, #0]\n  mov r8, r5\n"
    "  ldr r5, [r7, #4]\n  mov r9, r5\n"
    "  ldr r5, [r7, #8]\n  mov r10, r5\n"
    "  ldr r5, [r7, #12]\n  mov r11, r5\n"
    "  ldr r4, [sp, #4]\n"
    "  adds r6, r4, #2\n"            /* r4 = low halves (even steps), r6 = high halves (odd steps) */
    "  mov pc, lr\n"
    "  .balign 4\n"
    "3:\n"
#define RK_ROW(p, k, ld, t, acc) \
    "  ldrb r5, [" p ", #" k "]\n  lsls r5, r5, #2\n  " ld " r5, [" t ", r5]\n  add " acc ", r5\n"
#define RK_EVEN(k) RK_ROW("r0", k, "ldrh", "r4", "r8") RK_ROW("r1", k, "ldrh", "r4", "r9") \
    RK_ROW("r2", k, "ldrh", "r4", "r10") RK_ROW("r3", k, "ldrh", "r4", "r11")
#define RK_ODD(k) RK_ROW("r0", k, "ldrsh", "r6", "r8") RK_ROW("r1", k, "ldrsh", "r6", "r9") \
    RK_ROW("r2", k, "ldrsh", "r6", "r10") RK_ROW("r3", k, "ldrsh", "r6", "r11") "  add r4, r12\n  add r6, r12\n"
    RK_EVEN("0") RK_ODD("1") RK_EVEN("2") RK_ODD("3") RK_EVEN("4") RK_ODD("5") RK_EVEN("6") RK_ODD("7")
    RK_EVEN("8") RK_ODD("9") RK_EVEN("10") RK_ODD("11") RK_EVEN("12") RK_ODD("13") RK_EVEN("14") RK_ODD("15")
#undef RK_EVEN
#undef RK_ODD
#undef RK_ROW
    "  mov r5, r8\n  str r5, [r7, #0]\n"
    "  mov r5, r9\n  str r5, [r7, #4]\n"
    "  mov r5, r10\n  str r5, [r7, #8]\n"
    "  mov r5, r11\n  str r5, [r7, #12]\n"
    "  adds r7, #16\n"
    "  ldr r5, [sp, #8]\n"
    "  adds r0, r0, r5\n  adds r1, r1, r5\n  adds r2, r2, r5\n  adds r3, r3, r5\n"
    "  ldr r5, [sp, #0]\n"
    "  cmp r7, r5\n"
    "  beq 4f\n"
    "  b 2b\n"
    "4:\n"
    "  add sp, #12\n"
    "  pop {r4, r5, r6, r7}\n"
    "  mov r8, r4\n  mov r9, r5\n  mov r10, r6\n  mov r11, r7\n"
    "  pop {r4, r5, r6, r7, pc}\n"
    "  .size rk_tl_rows4_m0, .-rk_tl_rows4_m0\n");

/* Byte offset of unrolled step k: even steps are 16 instructions, odd steps 18. */
#define RK_STEP_OFF(k) (((k) >> 1) * 68 + ((k) & 1) * 32)
#define RK_BIAS 32768

void rk_tl_build(int32_t *t, int x0, int x1, int x2, int x3, int x4) {
    rk_tl_build_m0(t, x0, x1, x2, x3, x4, 0);
}

static void rk_tmv_in(const uint8_t *w, int R, int C, const int8_t *x, const uint8_t *xp, int32_t *y,
    int32_t *scratch) {
    const int G = rk_row_bytes(C);
    const int R4 = R & ~3;
    int32_t nlow = 0;          /* biased low-half lookups per row of the assembly loop, over all chunks */
    int g0, r;
    for (g0 = 0; g0 < G; g0 += RK_TL_CHUNK) {
        const int ng = G - g0 < RK_TL_CHUNK ? G - g0 : RK_TL_CHUNK;
        nlow += RK_TL_TABLES - ((RK_TL_CHUNK - ng + 1) >> 1);
    }
    for (r = 0; r < R4; r++) {
        y[r] = -nlow * RK_BIAS;
    }
    for (; r < R; r++) {
        y[r] = 0;
    }
    for (g0 = 0; g0 < G; g0 += RK_TL_CHUNK) {
        const int ng = G - g0 < RK_TL_CHUNK ? G - g0 : RK_TL_CHUNK;
        const int skip = RK_TL_CHUNK - ng;
        const int j0 = skip >> 1;
        int j;
        /* paired table j holds steps k = 2*(j0 + j) (low) and k + 1 (high); step k is group g0 + k - skip */
        for (j = 0; j < RK_TL_TABLES - j0; j++) {
            const int c0 = 5 * (g0 + 2 * (j0 + j) - skip);
            uint32_t X[5];
            int i;
            if (x != NULL && c0 >= 5 * g0 && c0 + 10 <= C) {
                const int8_t *a = x + c0;
                for (i = 0; i < 5; i++) {
                    X[i] = (uint32_t)(int32_t)a[i] + ((uint32_t)(int32_t)a[i + 5] << 16);
                }
            } else {
                for (i = 0; i < 5; i++) {
                    int lo = c0 >= 5 * g0 ? rk_in(x, xp, C, c0 + i) : 0;
                    X[i] = (uint32_t)lo + ((uint32_t)rk_in(x, xp, C, c0 + 5 + i) << 16);
                }
            }
            rk_tl_build_m0(scratch + j * RK_TL_STRIDE, (int)X[0], (int)X[1], (int)X[2], (int)X[3], (int)X[4],
                RK_BIAS);
        }
        if (R4 > 0) {
            rk_tl_rows4_m0(w + g0 - skip, G, y, y + R4, scratch, RK_STEP_OFF(skip));
        }
        for (r = R4; r < R; r++) {
            const uint8_t *p = w + (size_t)r * G + g0 - skip;
            const uint16_t *t16 = (const uint16_t *)scratch;
            int32_t a = y[r];
            int k;
            for (k = skip; k < RK_TL_CHUNK; k++) {
                uint16_t v = t16[((k >> 1) - j0) * (2 * RK_TL_STRIDE) + 2 * p[k] + (k & 1)];
                a += (k & 1) ? (int32_t)(int16_t)v : (int32_t)v - RK_BIAS;
            }
            y[r] = a;
        }
    }
}

#else

#if RK_WIDE
/* 64-bit hosts: the 27 sums of digits d0..d2 (L), then 9 copies shifted by the d3, d4 sums. Writing 28
 * entries per copy (the last is overwritten by the next copy, or lands in the 244th slot) keeps the inner
 * loop a fixed-length add that gcc vectorizes. */
void rk_tl_build(int32_t *t, int x0, int x1, int x2, int x3, int x4) {
    int32_t L[28];
    int32_t h3, h4;
    int i, d1, d2, d3, d4;
    int32_t b2 = -x1 - x2;
    i = 0;
    for (d2 = 0; d2 < 3; d2++, b2 += x2) {
        int32_t b = b2;
        for (d1 = 0; d1 < 3; d1++, b += x1, i += 3) {
            L[i] = b - x0;
            L[i + 1] = b;
            L[i + 2] = b + x0;
        }
    }
    L[27] = 0;
    h4 = -x3 - x4;
    for (d4 = 0; d4 < 3; d4++, h4 += x4) {
        h3 = h4;
        for (d3 = 0; d3 < 3; d3++, h3 += x3, t += 27) {
            for (i = 0; i < 28; i++) {
                t[i] = L[i] + h3;
            }
        }
    }
}
#else
/* 32-bit targets: entries generated in index order, no loads (odometer over d4, d3, d2; d1, d0 unrolled). */
void rk_tl_build(int32_t *t, int x0, int x1, int x2, int x3, int x4) {
    int32_t b4 = -(x1 + x2 + x3 + x4);
    int d4, d3, d2;
    for (d4 = 0; d4 < 3; d4++, b4 += x4) {
        int32_t b3 = b4;
        for (d3 = 0; d3 < 3; d3++, b3 += x3) {
            int32_t b2 = b3;
            for (d2 = 0; d2 < 3; d2++, b2 += x2, t += 9) {
                int32_t b1 = b2;
                t[0] = b1 - x0; t[1] = b1; t[2] = b1 + x0;
                b1 += x1;
                t[3] = b1 - x0; t[4] = b1; t[5] = b1 + x0;
                b1 += x1;
                t[6] = b1 - x0; t[7] = b1; t[8] = b1 + x0;
            }
        }
    }
}
#endif

#endif

#if !RK_M0_ASM

#if RK_WIDE
/* 8 weight bytes in one load (little-endian hosts: x86-64, aarch64; assembled bytewise elsewhere). */
static inline uint64_t rk_ld64(const uint8_t *p) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t u;
    __builtin_memcpy(&u, p, 8);
    return u;
#else
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24
        | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
#endif
}
#endif

/* y[r] += sum_{k < ng} T_k[w[r*G + g0 + k]] for rows r0..R-1 (portable). */
static void rk_tl_rows(const uint8_t *w, int G, int g0, int ng, int r0, int R, const int32_t *tab, int32_t *y) {
    int r = r0;
    const int S = RK_TL_STRIDE;
    for (; r + 2 <= R; r += 2) {
        const uint8_t *p = w + (size_t)r * G + g0;
        const uint8_t *q = p + G;
        const int32_t *t = tab;
        int32_t a0 = y[r], a1 = y[r + 1], b0 = 0, b1 = 0;
        int k = 0;
#if RK_WIDE
        for (; k + 8 <= ng; k += 8, t += 8 * S) {
            uint64_t u = rk_ld64(p + k), v = rk_ld64(q + k);
            a0 += t[u & 255]; b0 += t[S + ((u >> 8) & 255)];
            a0 += t[2 * S + ((u >> 16) & 255)]; b0 += t[3 * S + ((u >> 24) & 255)];
            a0 += t[4 * S + ((u >> 32) & 255)]; b0 += t[5 * S + ((u >> 40) & 255)];
            a0 += t[6 * S + ((u >> 48) & 255)]; b0 += t[7 * S + (u >> 56)];
            a1 += t[v & 255]; b1 += t[S + ((v >> 8) & 255)];
            a1 += t[2 * S + ((v >> 16) & 255)]; b1 += t[3 * S + ((v >> 24) & 255)];
            a1 += t[4 * S + ((v >> 32) & 255)]; b1 += t[5 * S + ((v >> 40) & 255)];
            a1 += t[6 * S + ((v >> 48) & 255)]; b1 += t[7 * S + (v >> 56)];
        }
#endif
        for (; k < ng; k++, t += S) {
            a0 += t[p[k]];
            a1 += t[q[k]];
        }
        y[r] = a0 + b0;
        y[r + 1] = a1 + b1;
    }
    for (; r < R; r++) {
        const uint8_t *p = w + (size_t)r * G + g0;
        const int32_t *t = tab;
        int32_t a = y[r];
        int k;
        for (k = 0; k < ng; k++, t += S) {
            a += t[p[k]];
        }
        y[r] = a;
    }
}

static void rk_tmv_in(const uint8_t *w, int R, int C, const int8_t *x, const uint8_t *xp, int32_t *y,
    int32_t *scratch) {
    const int G = rk_row_bytes(C);
    int g0, r;
    for (r = 0; r < R; r++) {
        y[r] = 0;
    }
    for (g0 = 0; g0 < G; g0 += RK_TL_CHUNK) {
        int ng = G - g0 < RK_TL_CHUNK ? G - g0 : RK_TL_CHUNK;
        int k;
        for (k = 0; k < ng; k++) {
            int c = 5 * (g0 + k);
            int32_t *t = scratch + k * RK_TL_STRIDE;
            if (x != NULL && c + 5 <= C) {
                rk_tl_build(t, x[c], x[c + 1], x[c + 2], x[c + 3], x[c + 4]);
            } else {
                rk_tl_build(t, rk_in(x, xp, C, c), rk_in(x, xp, C, c + 1), rk_in(x, xp, C, c + 2),
                    rk_in(x, xp, C, c + 3), rk_in(x, xp, C, c + 4));
            }
        }
        rk_tl_rows(w, G, g0, ng, 0, R, scratch, y);
    }
}

#endif

void rk_tmv(const uint8_t *w, int R, int C, const int8_t *x, int32_t *y, int32_t *scratch) {
    rk_tmv_in(w, R, C, x, NULL, y, scratch);
}

void rk_tmv4(const uint8_t *w, int R, int C, const uint8_t *x, int32_t *y, int32_t *scratch) {
    rk_tmv_in(w, R, C, NULL, x, y, scratch);
}

/* ---------------------------------------------------------------------------------------------------
 * Activation quantization. Quotients of magnitudes (C's / truncates, Python's // floors).
 * ------------------------------------------------------------------------------------------------- */

static int32_t rk_amax(const int32_t *h, int n) {
    int32_t amax = 0;
    int j;
    for (j = 0; j < n; j++) {
        int32_t v = h[j] < 0 ? -h[j] : h[j];
        if (v > amax) {
            amax = v;
        }
    }
    return amax;
}

/* Quotients q = (m*k + amax/2) // amax for 0 <= m <= amax, k <= 127: one division per vector (the
 * reciprocal R = (k << 25) // amax), then per value q_est = (m*R) >> 25, which is q, q-1 or q-2 (m*R < 2**32
 * since m <= amax), and an exact correction with the remainder. Cortex-M0 has no divide instruction. */
typedef struct {
    uint32_t amax, half, k, R;
} rk_qdiv_t;

static void rk_qdiv_init(rk_qdiv_t *d, int32_t amax, uint32_t k) {
    d->amax = (uint32_t)amax;
    d->half = (uint32_t)amax >> 1;
    d->k = k;
    d->R = (uint32_t)amax < (1u << 24) ? (k << 25) / (uint32_t)amax : 0;
}

/* The reciprocal path (R != 0) on scalars, so that a caller's loop keeps A, half, k and R in registers (gcc
 * reloads them from the struct on Cortex-M0 otherwise). */
static inline uint32_t rk_qdiv_r(uint32_t m, uint32_t A, uint32_t half, uint32_t k, uint32_t R) {
    uint32_t q = (m * R) >> 25;
    uint32_t r = m * k + half - q * A;
    if (r >= A) {                   /* q_est is q, q-1 or q-2 */
        r -= A;
        q++;
        if (r >= A) {
            q++;
        }
    }
    return q;
}

static inline uint32_t rk_qdiv(const rk_qdiv_t *d, uint32_t m) {
    if (d->R) {
        return rk_qdiv_r(m, d->amax, d->half, d->k, d->R);
    }
    /* amax >= 2**24 (outside the models' range): exact 64-bit division */
    return (uint32_t)(((uint64_t)m * d->k + d->half) / d->amax);
}

int32_t rk_quant_i8(const int32_t *h, int n, int8_t *x) {
    int32_t amax = rk_amax(h, n);
    rk_qdiv_t d;
    int j;
    if (amax == 0) {
        for (j = 0; j < n; j++) {
            x[j] = 0;
        }
        return 0;
    }
    rk_qdiv_init(&d, amax, 127);
    if (d.R) {
        /* the models' range: the reciprocal path with its constants hoisted; |v| = (v + s) ^ s and back
         * (q ^ s) - s, with s = v >> 31 */
        const uint32_t A = d.amax, half = d.half, R = d.R;
        for (j = 0; j < n; j++) {
            int32_t v = h[j];
            int32_t s = v >> 31;
            uint32_t q = rk_qdiv_r((uint32_t)((v + s) ^ s), A, half, 127u, R);
            x[j] = (int8_t)(((int32_t)q ^ s) - s);
        }
        return amax;
    }
    for (j = 0; j < n; j++) {
        int32_t v = h[j];
        int32_t q = (int32_t)rk_qdiv(&d, (uint32_t)(v < 0 ? -v : v));
        x[j] = (int8_t)(v < 0 ? -q : q);
    }
    return amax;
}

int32_t rk_quant_fp4(const int32_t *h, int n, uint8_t *x) {
    int32_t amax = rk_amax(h, n);
    rk_qdiv_t d;
    int b0, j;
    if (amax == 0) {
        for (j = 0; j < rk_fp4_bytes(n); j++) {
            x[j] = 0;
        }
        return 0;
    }
    rk_qdiv_init(&d, amax, 96);
    for (b0 = 0; b0 < n; b0 += 8) {
        int32_t bm = 0, t[8];
        int s, rnd, q;
        uint8_t *sb = x + (n >> 1) + (b0 >> 5);
        for (j = 0; j < 8; j++) {
            int32_t v = h[b0 + j];
            t[j] = (int32_t)rk_qdiv(&d, (uint32_t)(v < 0 ? -v : v));
            if (t[j] > bm) {
                bm = t[j];
            }
        }
        s = bm <= 12 ? 0 : bm <= 24 ? 1 : bm <= 48 ? 2 : 3;
        rnd = (1 << s) >> 1;
        for (j = 0; j < 8; j += 2) {
            uint32_t c2 = 0;
            int k;
            for (k = 0; k < 2; k++) {
                int32_t v = h[b0 + j + k];
                int32_t u = (t[j + k] + rnd) >> s;
                /* code of FP4TAB[u]: {0,1,2,3,4,4,5,5,6,6,6,7,7}[u], 7 from u = 11 on */
                uint32_t c = u < 8 ? (0x55443210u >> (4 * u)) & 0xF : u < 11 ? 6u : 7u;
                if (v < 0 && c != 0) {
                    c |= 8u;
                }
                c2 |= c << (4 * k);
            }
            x[(b0 + j) >> 1] = (uint8_t)c2;
        }
        q = (b0 >> 2) & 6;
        *sb = (uint8_t)((q == 0 ? 0 : *sb & ((1u << q) - 1u)) | ((unsigned)s << q));
    }
    return amax;
}

/* ---------------------------------------------------------------------------------------------------
 * Recurrent step pieces (reference.py: shift, requant, wkv, square, add, embed, dot_rows).
 * ------------------------------------------------------------------------------------------------- */

void rk_shift(const int8_t *x, const int8_t *prev, const uint8_t *mu, int8_t *out, int n) {
    int i;
    for (i = 0; i < n; i++) {
        int32_t p = prev[i];
        out[i] = (int8_t)(p + (((x[i] - p) * (int32_t)mu[i] + 128) >> 8));
    }
}

void rk_shift4(const uint8_t *x, const uint8_t *prev, const uint8_t *mu, int8_t *out, int n) {
    int b, j;
    for (b = 0; b < n; b += 8) {
        /* the block's two shifts once, then each value from its nibble */
        const int q = (b >> 2) & 6;
        const int sx = (x[(n >> 1) + (b >> 5)] >> q) & 3, sp = (prev[(n >> 1) + (b >> 5)] >> q) & 3;
        for (j = b; j < b + 8; j++) {
            const int e = (j & 1) << 2;
            const int32_t cx = (x[j >> 1] >> e) & 15, cp = (prev[j >> 1] >> e) & 15;
            int32_t a = RK_FP4MAG(cx & 7) << sx, p = RK_FP4MAG(cp & 7) << sp;
            if (cx & 8) {
                a = -a;
            }
            if (cp & 8) {
                p = -p;
            }
            out[j] = (int8_t)(p + (((a - p) * (int32_t)mu[j] + 128) >> 8));
        }
    }
}

#if defined(__GNUC__)
#define RK_NOINLINE __attribute__((noinline))
#else
#define RK_NOINLINE
#endif

static inline int32_t rk_clamp(int32_t v, int32_t lo, int32_t hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* clamp((a*M + 2**(S-1)) >> S) in 64 bits (a library multiply on Cortex-M0: kept out of the fast loop). */
static RK_NOINLINE int32_t rk_requant64(int32_t a, int32_t M, int S, int32_t lo, int32_t hi) {
    int64_t v = ((int64_t)a * M + ((int64_t)1 << (S - 1))) >> S;
    return v < lo ? lo : v > hi ? hi : (int32_t)v;
}

void rk_requant(int32_t *y, int n, int32_t M, int S, int32_t lo, int32_t hi) {
    int i;
    if (S < 1 || S > 62) {
        return;
    }
    if (M > -(1 << 14) && M < (1 << 14) && S <= 30) {
        /* the models: |y| < 2**16 and |M| < 2**14, so y*M + 2**(S-1) fits 32 bits */
        const int32_t rnd = (int32_t)1 << (S - 1);
        for (i = 0; i < n; i++) {
            int32_t a = y[i];
            if ((uint32_t)(a + 0xFFFF) <= 0x1FFFEu) {
                y[i] = rk_clamp((a * M + rnd) >> S, lo, hi);
            } else {
                y[i] = rk_requant64(a, M, S, lo, hi);
            }
        }
    } else {
        for (i = 0; i < n; i++) {
            y[i] = rk_requant64(y[i], M, S, lo, hi);
        }
    }
}

void rk_wkv(const int32_t *r, const int32_t *k, const int32_t *v, int32_t *s, const uint8_t *w,
    const uint8_t *u, const uint8_t *sig, int32_t *out, int n) {
    int i;
    for (i = 0; i < n; i++) {
        int32_t kv = (k[i] * v[i]) >> RK_QA;
        int32_t si = s[i];
        int32_t j = r[i] >> (RK_QA - 3);
        int32_t ns;
        j = j < -128 ? -128 : j > 127 ? 127 : j;
        out[i] = ((int32_t)sig[j + 128] * (si + ((int32_t)u[i] * kv >> 8))) >> 8;
        ns = ((si * (int32_t)w[i]) >> 8) + kv;
        s[i] = ns > RK_S_LIM ? RK_S_LIM : ns < -RK_S_LIM ? -RK_S_LIM : ns;
    }
}

void rk_square(int32_t *k, int n) {
    int i;
    for (i = 0; i < n; i++) {
        k[i] = (k[i] * k[i]) >> RK_QA;
    }
}

void rk_add(int32_t *h, const int32_t *y, int n) {
    int i;
    for (i = 0; i < n; i++) {
        int32_t a = h[i] + y[i];
        h[i] = a > RK_H_LIM ? RK_H_LIM : a < -RK_H_LIM ? -RK_H_LIM : a;
    }
}

void rk_embed(const int8_t *e, int n, int32_t M, int S, int32_t *h) {
    int i;
    if (S < 1 || S > 62) {
        return;
    }
    if (M > -(1 << 23) && M < (1 << 23) && S <= 30) {
        const int32_t rnd = (int32_t)1 << (S - 1);
        for (i = 0; i < n; i++) {
            h[i] = (e[i] * M + rnd) >> S;
        }
    } else {
        for (i = 0; i < n; i++) {
            h[i] = rk_requant64(e[i], M, S, INT32_MIN, INT32_MAX);
        }
    }
}

void rk_embed_t(const uint8_t *w, int n, int32_t M, int S, int32_t *h) {
    int32_t vals[3];
    int g, k;
    if (S < 1 || S > 62) {
        return;
    }
    {
        const int64_t rnd = (int64_t)1 << (S - 1);
        vals[0] = (int32_t)((-(int64_t)M + rnd) >> S);
        vals[1] = (int32_t)(rnd >> S);
        vals[2] = (int32_t)(((int64_t)M + rnd) >> S);
    }
    for (g = 0; g < n / 5; g++) {
        unsigned b = w[g];
        for (k = 0; k < 5; k++) {
            *h++ = vals[b % 3];
            b /= 3;
        }
    }
}

void rk_dot_rows(const int8_t *K, int n, int dk, const int8_t *q, int32_t *out) {
    int j, c;
    for (j = 0; j < n; j++) {
        const int8_t *row = K + (size_t)j * dk;
        int32_t acc = 0;
        for (c = 0; c < dk; c++) {
            acc += row[c] * q[c];
        }
        out[j] = acc;
    }
}

/* dst[i] = src[i] (a loop, not memcpy: the board builds link no C library) */
static void rk_copy8(const int8_t *src, int8_t *dst, int n) {
    int i;
    for (i = 0; i < n; i++) {
        dst[i] = src[i];
    }
}

/* The layer's activation quantizer, token shift and input product: int8, or packed FP4 in x, prev, xf. */
static void rk_lq(int fp4, const int32_t *h, int n, int8_t *x) {
    if (fp4) {
        rk_quant_fp4(h, n, (uint8_t *)x);
    } else {
        rk_quant_i8(h, n, x);
    }
}

static void rk_lshift(int fp4, const int8_t *x, const int8_t *prev, const uint8_t *mu, int8_t *out, int n) {
    if (fp4) {
        rk_shift4((const uint8_t *)x, (const uint8_t *)prev, mu, out, n);
    } else {
        rk_shift(x, prev, mu, out, n);
    }
}

static void rk_lmv(int fp4, const uint8_t *w, int R, int C, const int8_t *x, int32_t *y, int32_t *scratch) {
    rk_tmv_in(w, R, C, fp4 ? NULL : x, fp4 ? (const uint8_t *)x : NULL, y, scratch);
}

void rk_layer(const rk_layer_t *p, const rk_work_t *s, int32_t *h, int d, int f, int32_t *scratch) {
    const int q = p->fp4 != 0;
    const int nprev = q ? rk_fp4_bytes(d) : d;
    /* time mixing */
    rk_lq(q, h, d, s->x);
    rk_lshift(q, s->x, s->prev, p->mu_r, s->xs, d);
    rk_tmv(p->W[0], d, d, s->xs, s->r, scratch);
    rk_requant(s->r, d, p->M[0], (int)p->S[0], -RK_A_LIM, RK_A_LIM);
    rk_lshift(q, s->x, s->prev, p->mu_k, s->xs, d);
    rk_tmv(p->W[1], d, d, s->xs, s->k, scratch);
    rk_requant(s->k, d, p->M[1], (int)p->S[1], -RK_A_LIM, RK_A_LIM);
    rk_lshift(q, s->x, s->prev, p->mu_v, s->xs, d);
    rk_tmv(p->W[2], d, d, s->xs, s->v, scratch);
    rk_requant(s->v, d, p->M[2], (int)p->S[2], -RK_A_LIM, RK_A_LIM);
    rk_copy8(s->x, s->prev, nprev);
    rk_wkv(s->r, s->k, s->v, s->state, p->w, p->u, p->sig, s->o, d);
    rk_lq(q, s->o, d, s->x);
    rk_lmv(q, p->W[3], d, d, s->x, s->o, scratch);
    rk_requant(s->o, d, p->M[3], (int)p->S[3], -RK_H_LIM, RK_H_LIM);
    rk_add(h, s->o, d);
    /* channel mixing */
    rk_lq(q, h, d, s->x);
    rk_lshift(q, s->x, s->prevc, p->cmu, s->xs, d);
    rk_copy8(s->x, s->prevc, nprev);
    rk_tmv(p->W[4], f, d, s->xs, s->hf, scratch);
    rk_requant(s->hf, f, p->M[4], (int)p->S[4], 0, RK_A_LIM);
    rk_square(s->hf, f);
    rk_lq(q, s->hf, f, s->xf);
    rk_lmv(q, p->W[5], d, f, s->xf, s->o, scratch);
    rk_requant(s->o, d, p->M[5], (int)p->S[5], -RK_H_LIM, RK_H_LIM);
    rk_add(h, s->o, d);
}
