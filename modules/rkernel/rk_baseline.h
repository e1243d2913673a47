#ifndef RK_BASELINE_H
#define RK_BASELINE_H
#include <stddef.h>
#include <stdint.h>
void rk_tmv_i8(const int8_t *w, int R, int C, const int8_t *x, int32_t *y);
void rk_tmv_i8_scalar(const int8_t *w, int R, int C, const int8_t *x, int32_t *y);
void rk_tmv_decode(const uint8_t *w, int R, int C, const int8_t *x, int32_t *y);
#endif
