/* Baselines the benchmarks compare rk_tmv against (not part of the board module).
 * rk_tmv_i8: the straightforward kernel, one int8 weight per byte, multiply-accumulate. Compiled with the
 *   extension's flags: gcc -O3 auto-vectorizes it (SSE2 on x86-64).
 * rk_tmv_i8_scalar: the same loop with gcc's loop vectorizer off (what -O2 gives with gcc < 12).
 * rk_tmv_decode: ternary weights decoded trit by trit from the same packed bytes as rk_tmv. */
#include "rk_baseline.h"

void rk_tmv_i8(const int8_t *w, int R, int C, const int8_t *x, int32_t *y) {
    rk_i8_rows(w, R, C, x, y);
}

#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-vectorize")))
#endif
void rk_tmv_i8_scalar(const int8_t *w, int R, int C, const int8_t *x, int32_t *y) {
    int r, c;
    for (r = 0; r < R; r++) {
        const int8_t *row = w + (size_t)r * C;
        int32_t acc = 0;
#if defined(__clang__)
        #pragma clang loop vectorize(disable) interleave(disable)
#endif
        for (c = 0; c < C; c++) {
            acc += row[c] * x[c];
        }
        y[r] = acc;
    }
}

void rk_tmv_decode(const uint8_t *w, int R, int C, const int8_t *x, int32_t *y) {
    const int G = (C + 4) / 5;
    int r, g, k;
    for (r = 0; r < R; r++) {
        const uint8_t *row = w + (size_t)r * G;
        int32_t acc = 0;
        for (g = 0; g < G; g++) {
            unsigned b = row[g];
            for (k = 0; k < 5 && 5 * g + k < C; k++) {
                unsigned d = b % 3;
                b /= 3;
                if (d == 0) {
                    acc -= x[5 * g + k];
                } else if (d == 2) {
                    acc += x[5 * g + k];
                }
            }
        }
        y[r] = acc;
    }
}
