#ifndef RK_BASELINE_H
#define RK_BASELINE_H
#include <stddef.h>
#include <stdint.h>
void rk_tmv_i8(const int8_t *w, int R, int C, const int8_t *x, int32_t *y);

/* The straightforward int8 kernel's loop, inlined into each baseline so that every one is this loop compiled
 * under its own flags (rk_tmv_i8: the build's; rk_host_i8_avx2: AVX2 allowed). */
static inline void rk_i8_rows(const int8_t *w, int R, int C, const int8_t *x, int32_t *y) {
    int r, c;
    for (r = 0; r < R; r++) {
        const int8_t *row = w + (size_t)r * C;
        int32_t acc = 0;
        for (c = 0; c < C; c++) {
            acc += row[c] * x[c];
        }
        y[r] = acc;
    }
}
void rk_tmv_i8_scalar(const int8_t *w, int R, int C, const int8_t *x, int32_t *y);
void rk_tmv_decode(const uint8_t *w, int R, int C, const int8_t *x, int32_t *y);
#endif
