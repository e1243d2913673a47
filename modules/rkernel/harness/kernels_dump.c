/* Kernel parity harness: runs every kernel of rk_core.c on pseudo-random inputs (a fixed LCG, inputs inside the
 * ranges the model guarantees) and prints one FNV-1a hash per kernel call. Built natively and for another
 * architecture (run_xtensa.sh: the ESP32's Xtensa, run under qemu-xtensa), the two outputs must be identical: the
 * kernels are integer-exact, whatever the word size, RK_TL_CHUNK or compiler. Freestanding: no C library; the
 * platform supplies rk_out(buf, n) and calls rk_harness(). */
#include <stdint.h>
#include "rk_core.h"

void rk_out(const char *s, int n);

static uint32_t seed = 12345u;
static uint32_t rnd(void) { seed = seed * 1664525u + 1013904223u; return seed >> 8; }
static int32_t rnd_in(int32_t lo, int32_t hi) { return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1)); }

static uint32_t fnv;
static void hash(const void *p, int n) {
    const uint8_t *b = (const uint8_t *)p;
    for (int i = 0; i < n; i++) { fnv ^= b[i]; fnv *= 16777619u; }
}

static void report(const char *name) {
    char line[48];
    int n = 0;
    while (name[n] && n < 32) { line[n] = name[n]; n++; }
    line[n++] = ' ';
    for (int i = 7; i >= 0; i--) line[n++] = "0123456789abcdef"[(fnv >> (4 * i)) & 15];
    line[n++] = '\n';
    rk_out(line, n);
}

#define D 40
#define F 80
#define RMAX 96
#define CMAX 96
#define H_LIM (1 << 23)
#define A_LIM ((8 << 12) - 1)
#define S_LIM (1 << 21)

static uint8_t w[RMAX * ((CMAX + 4) / 5)];
static int8_t x8[CMAX], x8b[CMAX];
static uint8_t x4[CMAX], x4b[CMAX];
static int32_t y[RMAX], h[D], r[D], k[D], v[D], s[D], o[D], hf[F];
static uint8_t mu[CMAX], wd[D], u[D], sig[256];
static int32_t scratch[RK_TMV_SCRATCH_BYTES / 4];
static uint8_t Wl[6][F * ((F + 4) / 5)];
static int8_t prev[D], prevc[D], xx[D], xs[D], xf[F];

static void ternary(uint8_t *p, int R, int C) {
    for (int i = 0; i < R * rk_row_bytes(C); i++) p[i] = (uint8_t)(rnd() % 243);
}

void rk_harness(void) {
    static const int shapes[][2] = {{1, 1}, {3, 5}, {7, 9}, {40, 40}, {80, 40}, {40, 80}, {96, 96}, {13, 61}};
    for (int j = 0; j < (int)(sizeof shapes / sizeof shapes[0]); j++) {
        int R = shapes[j][0], C = shapes[j][1];
        ternary(w, R, C);
        for (int i = 0; i < C; i++) x8[i] = (int8_t)rnd_in(-127, 127);
        fnv = 2166136261u;
        rk_tmv(w, R, C, x8, y, scratch);
        hash(y, 4 * R);
        report("tmv");
        for (int i = 0; i < rk_fp4_bytes(C); i++) x4[i] = (uint8_t)rnd();
        fnv = 2166136261u;
        rk_tmv4(w, R, C, x4, y, scratch);
        hash(y, 4 * R);
        report("tmv4");
    }
    for (int i = 0; i < D; i++) h[i] = rnd_in(-H_LIM, H_LIM);
    fnv = 2166136261u;
    int32_t a = rk_quant_i8(h, D, x8);
    hash(&a, 4); hash(x8, D);
    a = rk_quant_fp4(h, D, x4);
    hash(&a, 4); hash(x4, rk_fp4_bytes(D));
    report("quant");
    for (int i = 0; i < D; i++) { x8b[i] = (int8_t)rnd_in(-127, 127); mu[i] = (uint8_t)rnd(); x4b[i] = (uint8_t)rnd(); }
    fnv = 2166136261u;
    rk_shift(x8, x8b, mu, xs, D);
    hash(xs, D);
    rk_shift4(x4, x4b, mu, xs, D);
    hash(xs, D);
    report("shift");
    fnv = 2166136261u;
    for (int S = 1; S <= 40; S += 3) {
        for (int i = 0; i < D; i++) y[i] = rnd_in(-(1 << 20), 1 << 20);
        rk_requant(y, D, rnd_in(1, (1 << 14) - 1), S, -A_LIM, A_LIM);
        hash(y, 4 * D);
    }
    report("requant");
    for (int i = 0; i < D; i++) {
        r[i] = rnd_in(-A_LIM, A_LIM); k[i] = rnd_in(-A_LIM, A_LIM); v[i] = rnd_in(-A_LIM, A_LIM);
        s[i] = rnd_in(-S_LIM, S_LIM); wd[i] = (uint8_t)rnd(); u[i] = (uint8_t)rnd();
    }
    for (int i = 0; i < 256; i++) sig[i] = (uint8_t)i;
    fnv = 2166136261u;
    rk_wkv(r, k, v, s, wd, u, sig, o, D);
    hash(o, 4 * D); hash(s, 4 * D);
    rk_square(k, D);
    hash(k, 4 * D);
    rk_add(h, o, D);
    hash(h, 4 * D);
    report("wkv square add");
    fnv = 2166136261u;
    rk_embed(x8, D, 9000, 13, h);
    hash(h, 4 * D);
    ternary(w, 1, D);
    rk_embed_t(w, D, 9000, 13, h);
    hash(h, 4 * D);
    rk_dot_rows(x8, 4, 10, x8b, y);
    hash(y, 16);
    report("embed dot");
    for (int fp4 = 0; fp4 <= 1; fp4++) {
        rk_layer_t p;
        rk_work_t ws;
        p.mu_r = mu; p.mu_k = mu + 1; p.mu_v = mu + 2; p.w = wd; p.u = u; p.sig = sig; p.cmu = mu + 3;
        for (int i = 0; i < 6; i++) {
            int R = i == 4 ? F : D, C = i == 5 ? F : D;
            ternary(Wl[i], R, C);
            p.W[i] = Wl[i];
            p.M[i] = rnd_in(1000, 12000);
            p.S[i] = rnd_in(10, 16);
        }
        p.fp4 = fp4;
        for (int i = 0; i < D; i++) { prev[i] = 0; prevc[i] = 0; s[i] = 0; h[i] = rnd_in(-(1 << 14), 1 << 14); }
        ws.prev = prev; ws.prevc = prevc; ws.state = s; ws.x = xx; ws.xs = xs; ws.xf = xf;
        ws.r = r; ws.k = k; ws.v = v; ws.o = o; ws.hf = hf;
        fnv = 2166136261u;
        for (int step = 0; step < 6; step++) {
            rk_layer(&p, &ws, h, D, F, scratch);
            hash(h, 4 * D); hash(s, 4 * D);
        }
        report(fp4 ? "layer fp4" : "layer i8");
    }
}
