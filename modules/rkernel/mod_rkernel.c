/* MicroPython bindings of rk_core: the module `rkernel`, built either into the firmware (user C module:
 * micropython.mk / micropython.cmake) or as a dynamic native module (natmod/Makefile, .mpy).
 *
 * Same functions and arguments as firmware/rkfw/kernels.py, which imports this module when present:
 *   tmv(w, R, C, x, y[, scratch])  tmv4(w, R, C, x, y[, scratch])  quant_i8(h, x) -> amax
 *   quant_fp4(h, x) -> amax  shift(x, prev, mu, out)  shift4(x, prev, mu, out)
 *   copy(src, dst[, off])  requant(y, n, M, S, lo, hi)  wkv(r, k, v, s, w, u, sig, out)  square(k, n)  add(h, y)
 *   embed(e, off, n, M, S, h)  embed_t(w, off, n, M, S, h)  dot_rows(K, n, dk, q, out)
 *   layer(h, P, W[, scratch])  (one layer's whole step, see rk_layer in rk_core.h)
 * Buffers: weights/bytes any buffer (bytes, bytearray, memoryview into a ROMFS file, array); int8 vectors
 * array('b') (or any 1-byte buffer); int32 vectors array('i'); packed FP4 vectors (quant_fp4's output, tmv4's
 * and shift4's inputs) any 1-byte buffer of rk_fp4_bytes(n) bytes, n a multiple of 8.
 * tmv's lookup tables need RK_TMV_SCRATCH_BYTES (7808 on microcontrollers) of scratch, allocated once: in
 * the natmod as static BSS (RAM taken at import), in firmware on the GC heap at the first tmv call after
 * import (kept by a root pointer, dropped again by __init__ at the first import after a soft reset).
 * An explicit bytearray(rkernel.SCRATCH_BYTES) can be passed as 6th argument instead. */
#if MICROPY_ENABLE_DYNRUNTIME
#include "py/dynruntime.h"
#else
#include "py/runtime.h"
#endif

#include "rk_core.h"

#ifndef BYTEARRAY_TYPECODE
#define BYTEARRAY_TYPECODE 1
#endif

/* Item size of a buffer's typecode (bytes, bytearray and memoryviews of them count as 1). */
static size_t rkm_itemsize(int tc) {
    switch (tc) {
        case 'h': case 'H': return 2;
        case 'i': case 'I': case 'f': return 4;
        case 'l': case 'L': return sizeof(long);
        case 'q': case 'Q': case 'd': return 8;
        default: return 1;
    }
}

/* Gets o's buffer, checks its item size (1 or 4: int8/bytes or int32) and returns the number of items. */
static size_t rkm_buf(mp_obj_t o, mp_buffer_info_t *bi, int flags, size_t isz) {
    size_t s;
    mp_get_buffer_raise(o, bi, flags);
    s = rkm_itemsize(bi->typecode);
    if (s != isz || (isz == 4 && bi->typecode == 'f')) {
        mp_raise_TypeError(isz == 4 ? MP_ERROR_TEXT("rkernel: need an int32 array('i')")
            : MP_ERROR_TEXT("rkernel: need a 1-byte buffer"));
    }
    return bi->len / isz;
}

static void rkm_need(size_t have, size_t need) {
    if (have < need) {
        mp_raise_ValueError(MP_ERROR_TEXT("rkernel: buffer too small"));
    }
}

#if MICROPY_ENABLE_DYNRUNTIME
/* natmod BSS must not be static (tools/mpy_ld.py) */
int32_t rkm_scratch_bss[RK_TMV_SCRATCH_BYTES / 4];
static int32_t *rkm_scratch(void) {
    return rkm_scratch_bss;
}
#elif MICROPY_MODULE_BUILTIN_INIT
MP_REGISTER_ROOT_POINTER(void *rkernel_scratch);
static int32_t *rkm_scratch(void) {
    if (MP_STATE_VM(rkernel_scratch) == NULL) {
        MP_STATE_VM(rkernel_scratch) = m_new(int32_t, RK_TMV_SCRATCH_BYTES / 4);
    }
    return MP_STATE_VM(rkernel_scratch);
}
/* Runs at the first import after each soft reset (the heap was reset: forget the old block). */
static mp_obj_t rkm_init(void) {
    MP_STATE_VM(rkernel_scratch) = NULL;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(rkm_init_obj, rkm_init);
#else
#define RKM_SCRATCH_PER_CALL 1
#endif

static void rkm_fp4_n(size_t n) {
    if (n % 8 != 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("rkernel: FP4 vectors need a multiple of 8 values"));
    }
}

/* rk_tmv, or rk_tmv4 for a packed FP4 x */
static void rkm_mv(int fp4, const uint8_t *w, int R, int C, const void *x, int32_t *y, int32_t *scratch) {
    if (fp4) {
        rk_tmv4(w, R, C, x, y, scratch);
    } else {
        rk_tmv(w, R, C, x, y, scratch);
    }
}

/* tmv(w, R, C, x, y[, scratch]); tmv4: the same with a packed FP4 x */
static mp_obj_t rkm_tmv_any(size_t n_args, const mp_obj_t *args, int fp4) {
    mp_buffer_info_t w, x, y, s;
    mp_int_t R = mp_obj_get_int(args[1]);
    mp_int_t C = mp_obj_get_int(args[2]);
    int32_t *scratch;
    if (R < 0 || C < 0 || C > 65535) {
        mp_raise_ValueError(fp4 ? MP_ERROR_TEXT("rkernel.tmv4: bad shape") : MP_ERROR_TEXT("rkernel.tmv: bad shape"));
    }
    if (fp4) {
        rkm_fp4_n((size_t)C);
    }
    rkm_need(rkm_buf(args[0], &w, MP_BUFFER_READ, 1), (size_t)R * rk_row_bytes((int)C));
    rkm_need(rkm_buf(args[3], &x, MP_BUFFER_READ, 1), fp4 ? (size_t)rk_fp4_bytes((int)C) : (size_t)C);
    rkm_need(rkm_buf(args[4], &y, MP_BUFFER_WRITE, 4), (size_t)R);
    if (n_args > 5) {
        mp_get_buffer_raise(args[5], &s, MP_BUFFER_WRITE);
        rkm_need(s.len, RK_TMV_SCRATCH_BYTES + 3);
        /* tables are int32: align */
        scratch = (int32_t *)(((uintptr_t)s.buf + 3) & ~(uintptr_t)3);
        rkm_mv(fp4, w.buf, (int)R, (int)C, x.buf, y.buf, scratch);
    } else {
        #ifdef RKM_SCRATCH_PER_CALL
        scratch = m_new(int32_t, RK_TMV_SCRATCH_BYTES / 4);
        rkm_mv(fp4, w.buf, (int)R, (int)C, x.buf, y.buf, scratch);
        m_del(int32_t, scratch, RK_TMV_SCRATCH_BYTES / 4);
        #else
        rkm_mv(fp4, w.buf, (int)R, (int)C, x.buf, y.buf, rkm_scratch());
        #endif
    }
    return mp_const_none;
}

static mp_obj_t rkm_tmv(size_t n_args, const mp_obj_t *args) {
    return rkm_tmv_any(n_args, args, 0);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rkm_tmv_obj, 5, 6, rkm_tmv);

static mp_obj_t rkm_tmv4(size_t n_args, const mp_obj_t *args) {
    return rkm_tmv_any(n_args, args, 1);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rkm_tmv4_obj, 5, 6, rkm_tmv4);

/* quant_i8: n = len(x); quant_fp4: n = len(h) values packed into x */
static mp_obj_t rkm_quant(mp_obj_t h_in, mp_obj_t x_in, int fp4) {
    mp_buffer_info_t h, x;
    size_t nx = rkm_buf(x_in, &x, MP_BUFFER_WRITE, 1);
    size_t nh = rkm_buf(h_in, &h, MP_BUFFER_READ, 4);
    if (fp4) {
        rkm_fp4_n(nh);
        rkm_need(nx, (size_t)rk_fp4_bytes((int)nh));
        return mp_obj_new_int(rk_quant_fp4(h.buf, (int)nh, x.buf));
    }
    rkm_need(nh, nx);
    return mp_obj_new_int(rk_quant_i8(h.buf, (int)nx, x.buf));
}

/* quant_i8(h, x) -> amax */
static mp_obj_t rkm_quant_i8(mp_obj_t h_in, mp_obj_t x_in) {
    return rkm_quant(h_in, x_in, 0);
}
static MP_DEFINE_CONST_FUN_OBJ_2(rkm_quant_i8_obj, rkm_quant_i8);

/* quant_fp4(h, x) -> amax */
static mp_obj_t rkm_quant_fp4(mp_obj_t h_in, mp_obj_t x_in) {
    return rkm_quant(h_in, x_in, 1);
}
static MP_DEFINE_CONST_FUN_OBJ_2(rkm_quant_fp4_obj, rkm_quant_fp4);

/* shift(x, prev, mu, out), n = len(out); shift4: x and prev packed FP4 */
static mp_obj_t rkm_shift_any(const mp_obj_t *args, int fp4) {
    mp_buffer_info_t x, p, mu, out;
    size_t n = rkm_buf(args[3], &out, MP_BUFFER_WRITE, 1);
    size_t nin = n;
    if (fp4) {
        rkm_fp4_n(n);
        nin = (size_t)rk_fp4_bytes((int)n);
    }
    rkm_need(rkm_buf(args[0], &x, MP_BUFFER_READ, 1), nin);
    rkm_need(rkm_buf(args[1], &p, MP_BUFFER_READ, 1), nin);
    rkm_need(rkm_buf(args[2], &mu, MP_BUFFER_READ, 1), n);
    if (fp4) {
        rk_shift4(x.buf, p.buf, mu.buf, out.buf, (int)n);
    } else {
        rk_shift(x.buf, p.buf, mu.buf, out.buf, (int)n);
    }
    return mp_const_none;
}

static mp_obj_t rkm_shift(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    return rkm_shift_any(args, 0);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rkm_shift_obj, 4, 4, rkm_shift);

static mp_obj_t rkm_shift4(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    return rkm_shift_any(args, 1);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rkm_shift4_obj, 4, 4, rkm_shift4);

/* copy(src, dst[, off]): dst[i] = src[i] for i < len(dst); with off >= 0: dst[off + i] = src[i] for
 * i < len(src) */
static mp_obj_t rkm_copy(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t s, d;
    size_t i, isz, n;
    mp_int_t off = n_args > 2 ? mp_obj_get_int(args[2]) : -1;
    uint8_t *dst;
    mp_get_buffer_raise(args[0], &s, MP_BUFFER_READ);
    mp_get_buffer_raise(args[1], &d, MP_BUFFER_WRITE);
    isz = rkm_itemsize(s.typecode);
    if (isz != rkm_itemsize(d.typecode)) {
        mp_raise_TypeError(MP_ERROR_TEXT("rkernel.copy: item sizes differ"));
    }
    if (off < 0) {
        rkm_need(s.len, d.len);
        n = d.len;
        dst = d.buf;
    } else {
        rkm_need(d.len, (size_t)off * isz + s.len);
        n = s.len;
        dst = (uint8_t *)d.buf + (size_t)off * isz;
    }
    for (i = 0; i < n; i++) {
        dst[i] = ((const uint8_t *)s.buf)[i];
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rkm_copy_obj, 2, 3, rkm_copy);

/* requant(y, n, M, S, lo, hi) */
static mp_obj_t rkm_requant(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t y;
    mp_int_t n = mp_obj_get_int(args[1]);
    mp_int_t S = mp_obj_get_int(args[3]);
    (void)n_args;
    if (n < 0 || S < 1 || S > 62) {
        mp_raise_ValueError(MP_ERROR_TEXT("rkernel.requant: bad n or S"));
    }
    rkm_need(rkm_buf(args[0], &y, MP_BUFFER_RW, 4), (size_t)n);
    rk_requant(y.buf, (int)n, (int32_t)mp_obj_get_int(args[2]), (int)S, (int32_t)mp_obj_get_int(args[4]),
        (int32_t)mp_obj_get_int(args[5]));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rkm_requant_obj, 6, 6, rkm_requant);

/* wkv(r, k, v, s, w, u, sig, out) */
static mp_obj_t rkm_wkv(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t r, k, v, s, w, u, sig, out;
    size_t n = rkm_buf(args[7], &out, MP_BUFFER_WRITE, 4);
    (void)n_args;
    rkm_need(rkm_buf(args[0], &r, MP_BUFFER_READ, 4), n);
    rkm_need(rkm_buf(args[1], &k, MP_BUFFER_READ, 4), n);
    rkm_need(rkm_buf(args[2], &v, MP_BUFFER_READ, 4), n);
    rkm_need(rkm_buf(args[3], &s, MP_BUFFER_RW, 4), n);
    rkm_need(rkm_buf(args[4], &w, MP_BUFFER_READ, 1), n);
    rkm_need(rkm_buf(args[5], &u, MP_BUFFER_READ, 1), n);
    rkm_need(rkm_buf(args[6], &sig, MP_BUFFER_READ, 1), 256);
    rk_wkv(r.buf, k.buf, v.buf, s.buf, w.buf, u.buf, sig.buf, out.buf, (int)n);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rkm_wkv_obj, 8, 8, rkm_wkv);

/* square(k, n) */
static mp_obj_t rkm_square(mp_obj_t k_in, mp_obj_t n_in) {
    mp_buffer_info_t k;
    mp_int_t n = mp_obj_get_int(n_in);
    if (n < 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("rkernel.square: bad n"));
    }
    rkm_need(rkm_buf(k_in, &k, MP_BUFFER_RW, 4), (size_t)n);
    rk_square(k.buf, (int)n);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(rkm_square_obj, rkm_square);

/* add(h, y) */
static mp_obj_t rkm_add(mp_obj_t h_in, mp_obj_t y_in) {
    mp_buffer_info_t h, y;
    size_t n = rkm_buf(h_in, &h, MP_BUFFER_RW, 4);
    rkm_need(rkm_buf(y_in, &y, MP_BUFFER_READ, 4), n);
    rk_add(h.buf, y.buf, (int)n);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(rkm_add_obj, rkm_add);

/* embed(e, off, n, M, S, h) */
static mp_obj_t rkm_embed(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t e, h;
    mp_int_t off = mp_obj_get_int(args[1]);
    mp_int_t n = mp_obj_get_int(args[2]);
    mp_int_t S = mp_obj_get_int(args[4]);
    (void)n_args;
    if (off < 0 || n < 0 || S < 1 || S > 62) {
        mp_raise_ValueError(MP_ERROR_TEXT("rkernel.embed: bad off, n or S"));
    }
    rkm_need(rkm_buf(args[0], &e, MP_BUFFER_READ, 1), (size_t)(off + n));
    rkm_need(rkm_buf(args[5], &h, MP_BUFFER_WRITE, 4), (size_t)n);
    rk_embed((const int8_t *)e.buf + off, (int)n, (int32_t)mp_obj_get_int(args[3]), (int)S, h.buf);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rkm_embed_obj, 6, 6, rkm_embed);

/* embed_t(w, off, n, M, S, h) */
static mp_obj_t rkm_embed_t(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t w, h;
    mp_int_t off = mp_obj_get_int(args[1]);
    mp_int_t n = mp_obj_get_int(args[2]);
    mp_int_t S = mp_obj_get_int(args[4]);
    (void)n_args;
    if (off < 0 || n < 0 || S < 1 || S > 62) {
        mp_raise_ValueError(MP_ERROR_TEXT("rkernel.embed_t: bad off, n or S"));
    }
    rkm_need(rkm_buf(args[0], &w, MP_BUFFER_READ, 1), (size_t)(off + n / 5));
    rkm_need(rkm_buf(args[5], &h, MP_BUFFER_WRITE, 4), (size_t)(n / 5 * 5));
    rk_embed_t((const uint8_t *)w.buf + off, (int)n, (int32_t)mp_obj_get_int(args[3]), (int)S, h.buf);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rkm_embed_t_obj, 6, 6, rkm_embed_t);

/* dot_rows(K, n, dk, q, out) */
static mp_obj_t rkm_dot_rows(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t K, q, out;
    mp_int_t n = mp_obj_get_int(args[1]);
    mp_int_t dk = mp_obj_get_int(args[2]);
    (void)n_args;
    if (n < 0 || dk < 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("rkernel.dot_rows: bad n or dk"));
    }
    rkm_need(rkm_buf(args[0], &K, MP_BUFFER_READ, 1), (size_t)(n * dk));
    rkm_need(rkm_buf(args[3], &q, MP_BUFFER_READ, 1), (size_t)dk);
    rkm_need(rkm_buf(args[4], &out, MP_BUFFER_WRITE, 4), (size_t)n);
    rk_dot_rows(K.buf, (int)n, (int)dk, q.buf, out.buf);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rkm_dot_rows_obj, 5, 5, rkm_dot_rows);

/* layer(h, P, W[, scratch]): one layer's step (rk_layer), h int32 of d, in place.
 * P = (mu_r, mu_k, mu_v, w, u, sig, cmu, Wr, Wk, Wv, Wo, Ck, Cv, M0..M5, S0..S5, fp4)  (26 items)
 * W = (prev, prevc, state, x, xs, xf, r, k, v, o, hf)  (11 items; f = len(hf)) */
static mp_obj_t rkm_layer(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t b;
    rk_layer_t p;
    rk_work_t w;
    size_t np, nw, i, d, f, dq;
    mp_obj_t *P, *W;
    int32_t *scratch;
    static const uint8_t wrows[6] = {0, 0, 0, 0, 1, 0}, wcols[6] = {0, 0, 0, 0, 0, 1};  /* 1: f, 0: d */
    d = rkm_buf(args[0], &b, MP_BUFFER_RW, 4);
    int32_t *h = b.buf;
    mp_obj_get_array(args[1], &np, &P);
    mp_obj_get_array(args[2], &nw, &W);
    if (np != 26 || nw != 11) {
        mp_raise_ValueError(MP_ERROR_TEXT("rkernel.layer: P needs 26 items, W 11"));
    }
    f = rkm_buf(W[10], &b, MP_BUFFER_WRITE, 4);
    w.hf = b.buf;
    if (d > 65535 || f > 65535) {
        mp_raise_ValueError(MP_ERROR_TEXT("rkernel.layer: bad shape"));
    }
    p.fp4 = mp_obj_is_true(P[25]);
    if (p.fp4) {
        rkm_fp4_n(d);
        rkm_fp4_n(f);
    }
    /* packed FP4 (prev, prevc, x, xf) in an FP4 layer */
    dq = p.fp4 ? (size_t)rk_fp4_bytes((int)d) : d;
    rkm_need(rkm_buf(W[0], &b, MP_BUFFER_RW, 1), dq); w.prev = b.buf;
    rkm_need(rkm_buf(W[1], &b, MP_BUFFER_RW, 1), dq); w.prevc = b.buf;
    rkm_need(rkm_buf(W[2], &b, MP_BUFFER_RW, 4), d); w.state = b.buf;
    rkm_need(rkm_buf(W[3], &b, MP_BUFFER_WRITE, 1), dq); w.x = b.buf;
    rkm_need(rkm_buf(W[4], &b, MP_BUFFER_WRITE, 1), d); w.xs = b.buf;
    rkm_need(rkm_buf(W[5], &b, MP_BUFFER_WRITE, 1), p.fp4 ? (size_t)rk_fp4_bytes((int)f) : f); w.xf = b.buf;
    rkm_need(rkm_buf(W[6], &b, MP_BUFFER_WRITE, 4), d); w.r = b.buf;
    rkm_need(rkm_buf(W[7], &b, MP_BUFFER_WRITE, 4), d); w.k = b.buf;
    rkm_need(rkm_buf(W[8], &b, MP_BUFFER_WRITE, 4), d); w.v = b.buf;
    rkm_need(rkm_buf(W[9], &b, MP_BUFFER_WRITE, 4), d); w.o = b.buf;
    rkm_need(rkm_buf(P[0], &b, MP_BUFFER_READ, 1), d); p.mu_r = b.buf;
    rkm_need(rkm_buf(P[1], &b, MP_BUFFER_READ, 1), d); p.mu_k = b.buf;
    rkm_need(rkm_buf(P[2], &b, MP_BUFFER_READ, 1), d); p.mu_v = b.buf;
    rkm_need(rkm_buf(P[3], &b, MP_BUFFER_READ, 1), d); p.w = b.buf;
    rkm_need(rkm_buf(P[4], &b, MP_BUFFER_READ, 1), d); p.u = b.buf;
    rkm_need(rkm_buf(P[5], &b, MP_BUFFER_READ, 1), 256); p.sig = b.buf;
    rkm_need(rkm_buf(P[6], &b, MP_BUFFER_READ, 1), d); p.cmu = b.buf;
    for (i = 0; i < 6; i++) {
        size_t R = wrows[i] ? f : d, C = wcols[i] ? f : d;
        mp_int_t S = mp_obj_get_int(P[19 + i]);
        rkm_need(rkm_buf(P[7 + i], &b, MP_BUFFER_READ, 1), R * (size_t)rk_row_bytes((int)C));
        p.W[i] = b.buf;
        p.M[i] = (int32_t)mp_obj_get_int(P[13 + i]);
        if (S < 1 || S > 62) {
            mp_raise_ValueError(MP_ERROR_TEXT("rkernel.layer: bad S"));
        }
        p.S[i] = (int32_t)S;
    }
    if (n_args > 3) {
        mp_get_buffer_raise(args[3], &b, MP_BUFFER_WRITE);
        rkm_need(b.len, RK_TMV_SCRATCH_BYTES + 3);
        scratch = (int32_t *)(((uintptr_t)b.buf + 3) & ~(uintptr_t)3);
        rk_layer(&p, &w, h, (int)d, (int)f, scratch);
    } else {
        #ifdef RKM_SCRATCH_PER_CALL
        scratch = m_new(int32_t, RK_TMV_SCRATCH_BYTES / 4);
        rk_layer(&p, &w, h, (int)d, (int)f, scratch);
        m_del(int32_t, scratch, RK_TMV_SCRATCH_BYTES / 4);
        #else
        rk_layer(&p, &w, h, (int)d, (int)f, rkm_scratch());
        #endif
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rkm_layer_obj, 3, 4, rkm_layer);

#if MICROPY_ENABLE_DYNRUNTIME

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    mp_store_global(MP_QSTR_tmv, MP_OBJ_FROM_PTR(&rkm_tmv_obj));
    mp_store_global(MP_QSTR_quant_i8, MP_OBJ_FROM_PTR(&rkm_quant_i8_obj));
    mp_store_global(MP_QSTR_quant_fp4, MP_OBJ_FROM_PTR(&rkm_quant_fp4_obj));
    mp_store_global(MP_QSTR_shift, MP_OBJ_FROM_PTR(&rkm_shift_obj));
    mp_store_global(MP_QSTR_tmv4, MP_OBJ_FROM_PTR(&rkm_tmv4_obj));
    mp_store_global(MP_QSTR_shift4, MP_OBJ_FROM_PTR(&rkm_shift4_obj));
    mp_store_global(MP_QSTR_copy, MP_OBJ_FROM_PTR(&rkm_copy_obj));
    mp_store_global(MP_QSTR_requant, MP_OBJ_FROM_PTR(&rkm_requant_obj));
    mp_store_global(MP_QSTR_wkv, MP_OBJ_FROM_PTR(&rkm_wkv_obj));
    mp_store_global(MP_QSTR_square, MP_OBJ_FROM_PTR(&rkm_square_obj));
    mp_store_global(MP_QSTR_add, MP_OBJ_FROM_PTR(&rkm_add_obj));
    mp_store_global(MP_QSTR_embed, MP_OBJ_FROM_PTR(&rkm_embed_obj));
    mp_store_global(MP_QSTR_embed_t, MP_OBJ_FROM_PTR(&rkm_embed_t_obj));
    mp_store_global(MP_QSTR_dot_rows, MP_OBJ_FROM_PTR(&rkm_dot_rows_obj));
    mp_store_global(MP_QSTR_layer, MP_OBJ_FROM_PTR(&rkm_layer_obj));
    mp_store_global(MP_QSTR_SCRATCH_BYTES, MP_OBJ_NEW_SMALL_INT(RK_TMV_SCRATCH_BYTES + 3));
    MP_DYNRUNTIME_INIT_EXIT
}

#else

static const mp_rom_map_elem_t rkm_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_rkernel) },
    #if MICROPY_MODULE_BUILTIN_INIT
    { MP_ROM_QSTR(MP_QSTR___init__), MP_ROM_PTR(&rkm_init_obj) },
    #endif
    { MP_ROM_QSTR(MP_QSTR_tmv), MP_ROM_PTR(&rkm_tmv_obj) },
    { MP_ROM_QSTR(MP_QSTR_quant_i8), MP_ROM_PTR(&rkm_quant_i8_obj) },
    { MP_ROM_QSTR(MP_QSTR_quant_fp4), MP_ROM_PTR(&rkm_quant_fp4_obj) },
    { MP_ROM_QSTR(MP_QSTR_shift), MP_ROM_PTR(&rkm_shift_obj) },
    { MP_ROM_QSTR(MP_QSTR_tmv4), MP_ROM_PTR(&rkm_tmv4_obj) },
    { MP_ROM_QSTR(MP_QSTR_shift4), MP_ROM_PTR(&rkm_shift4_obj) },
    { MP_ROM_QSTR(MP_QSTR_copy), MP_ROM_PTR(&rkm_copy_obj) },
    { MP_ROM_QSTR(MP_QSTR_requant), MP_ROM_PTR(&rkm_requant_obj) },
    { MP_ROM_QSTR(MP_QSTR_wkv), MP_ROM_PTR(&rkm_wkv_obj) },
    { MP_ROM_QSTR(MP_QSTR_square), MP_ROM_PTR(&rkm_square_obj) },
    { MP_ROM_QSTR(MP_QSTR_add), MP_ROM_PTR(&rkm_add_obj) },
    { MP_ROM_QSTR(MP_QSTR_embed), MP_ROM_PTR(&rkm_embed_obj) },
    { MP_ROM_QSTR(MP_QSTR_embed_t), MP_ROM_PTR(&rkm_embed_t_obj) },
    { MP_ROM_QSTR(MP_QSTR_dot_rows), MP_ROM_PTR(&rkm_dot_rows_obj) },
    { MP_ROM_QSTR(MP_QSTR_layer), MP_ROM_PTR(&rkm_layer_obj) },
    { MP_ROM_QSTR(MP_QSTR_SCRATCH_BYTES), MP_ROM_INT(RK_TMV_SCRATCH_BYTES + 3) },
};
static MP_DEFINE_CONST_DICT(rkm_globals, rkm_globals_table);

const mp_obj_module_t rkernel_user_cmodule = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&rkm_globals,
};

MP_REGISTER_MODULE(MP_QSTR_rkernel, rkernel_user_cmodule);

#endif
