/* CPython bindings of rk_core: the extension module reku._rkernel (built by setup.py). Same functions and
 * arguments as the MicroPython module `rkernel` (mod_rkernel.c) and firmware/rkfw/kernels.py; any object
 * with the buffer protocol works: int8 vectors need 1-byte items, int32 vectors 4-byte items. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "rk_baseline.h"
#include "rk_core.h"
#include "rk_host.h"

#define NBUF 8

typedef struct {
    Py_buffer v[NBUF];
    int n;
} rk_bufs;

static void rk_free(rk_bufs *b) {
    while (b->n > 0) {
        PyBuffer_Release(&b->v[--b->n]);
    }
}

/* Borrows a C-contiguous buffer of `itemsize`-byte items; returns its item count or -1 (exception set). */
static Py_ssize_t rk_get(rk_bufs *b, PyObject *o, Py_ssize_t itemsize, int writable, const char *what, void **ptr) {
    Py_buffer *v = &b->v[b->n];
    if (PyObject_GetBuffer(o, v, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0) {
        return -1;
    }
    b->n++;
    if (v->itemsize != itemsize) {
        PyErr_Format(PyExc_TypeError, "%s: need %zd-byte items, got %zd-byte items", what, itemsize, v->itemsize);
        return -1;
    }
    *ptr = v->buf;
    return v->len / itemsize;
}

static int rk_need(Py_ssize_t have, Py_ssize_t need, const char *what) {
    if (have < need) {
        PyErr_Format(PyExc_ValueError, "%s: need %zd items, got %zd", what, need, have);
        return -1;
    }
    return 0;
}

static int rk_shape(int R, int C) {
    if (R < 0 || C < 0 || C > 65535) {
        PyErr_Format(PyExc_ValueError, "tmv: bad shape %d x %d (0 <= C <= 65535)", R, C);
        return -1;
    }
    return 0;
}

typedef void (*rk_mv_fn)(const void *, int, int, const int8_t *, int32_t *);

static void rk_i8(const void *w, int R, int C, const int8_t *x, int32_t *y) {
    rk_tmv_i8(w, R, C, x, y);
}

static void rk_i8s(const void *w, int R, int C, const int8_t *x, int32_t *y) {
    rk_tmv_i8_scalar(w, R, C, x, y);
}

static void rk_dec(const void *w, int R, int C, const int8_t *x, int32_t *y) {
    rk_tmv_decode(w, R, C, x, y);
}

static int rk_fp4_n(Py_ssize_t n, const char *what) {
    if (n % 8 != 0) {
        PyErr_Format(PyExc_ValueError, "%s: FP4 vectors need a multiple of 8 values, got %zd", what, n);
        return -1;
    }
    return 0;
}

/* Shared by tmv, tmv4 and the baselines: (w, R, C, x, y); packed = weights are 5 trits per byte; packed == 2:
 * tmv4 (x packed FP4). */
static PyObject *rk_mv(PyObject *args, int packed, rk_mv_fn fn, const char *name) {
    PyObject *ow, *ox, *oy, *os = NULL;
    int R, C;
    rk_bufs b = {.n = 0};
    void *w, *x, *y, *s;
    Py_ssize_t nw, nx, ny, ns;
    int32_t *scratch = NULL, *given = NULL;
    if (!PyArg_ParseTuple(args, packed && fn == NULL ? "OiiOO|O" : "OiiOO", &ow, &R, &C, &ox, &oy, &os)
        || rk_shape(R, C) < 0) {
        return NULL;
    }
    if ((nw = rk_get(&b, ow, 1, 0, name, &w)) < 0 || (nx = rk_get(&b, ox, 1, 0, name, &x)) < 0
        || (ny = rk_get(&b, oy, 4, 1, name, &y)) < 0
        || rk_need(nw, (Py_ssize_t)R * (packed ? rk_row_bytes(C) : C), name) < 0
        || (packed == 2 && rk_fp4_n(C, name) < 0) || rk_need(nx, packed == 2 ? rk_fp4_bytes(C) : C, name) < 0
        || rk_need(ny, R, name) < 0) {
        goto fail;
    }
    if (os != NULL) {
        if ((ns = rk_get(&b, os, 1, 1, name, &s)) < 0 || rk_need(ns, RK_TMV_SCRATCH_BYTES + 3, name) < 0) {
            goto fail;
        }
        given = (int32_t *)(((uintptr_t)s + 3) & ~(uintptr_t)3);
    } else if (fn == NULL) {
        scratch = PyMem_RawMalloc(RK_TMV_SCRATCH_BYTES);
        if (scratch == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    if (packed == 2) {
        rk_tmv4(w, R, C, x, y, given ? given : scratch);
    } else if (fn == NULL) {
        rk_tmv(w, R, C, x, y, given ? given : scratch);
    } else {
        fn(w, R, C, x, y);
    }
    Py_END_ALLOW_THREADS
    PyMem_RawFree(scratch);
    rk_free(&b);
    Py_RETURN_NONE;
fail:
    rk_free(&b);
    return NULL;
}

static PyObject *py_tmv(PyObject *self, PyObject *args) {
    (void)self;
    return rk_mv(args, 1, NULL, "tmv");
}

static PyObject *py_tmv4(PyObject *self, PyObject *args) {
    (void)self;
    return rk_mv(args, 2, NULL, "tmv4");
}

static PyObject *py_tmv_i8(PyObject *self, PyObject *args) {
    (void)self;
    return rk_mv(args, 0, rk_i8, "tmv_i8");
}

static PyObject *py_tmv_i8_scalar(PyObject *self, PyObject *args) {
    (void)self;
    return rk_mv(args, 0, rk_i8s, "tmv_i8_scalar");
}

#if defined(__x86_64__) && defined(__GNUC__)
static void rk_i8a(const void *w, int R, int C, const int8_t *x, int32_t *y) {
    rk_host_i8_avx2(w, R, C, x, y);
}

/* tmv_i8_avx2(w, R, C, x, y): benchmark reference, the int8 baseline's loop with AVX2 allowed. */
static PyObject *py_tmv_i8_avx2(PyObject *self, PyObject *args) {
    (void)self;
    if (!rk_host_avx2()) {
        PyErr_SetString(PyExc_RuntimeError, "tmv_i8_avx2: this CPU has no AVX2");
        return NULL;
    }
    return rk_mv(args, 0, rk_i8a, "tmv_i8_avx2");
}
#endif

static PyObject *py_tmv_decode(PyObject *self, PyObject *args) {
    (void)self;
    return rk_mv(args, 1, rk_dec, "tmv_decode");
}

/* ---------------------------------------------------------------------------------------------------
 * Host fast path (rk_host.c): the matrix repacked once to 2 bits per weight, AVX2 kernel chosen at run time.
 * tmv_host(w, R, C, x, y) is what host inference uses (reku.native.tier()): it keeps the repacked copy of
 * each immutable weight buffer it sees (bytes, or a read-only memoryview of bytes, such as the tensors of a
 * model loaded from a file), keyed on that object (held by a strong reference, so the key stays valid and
 * its bytes cannot change). Anything else, or with the fast path off, runs rk_tmv. The GIL stays held:
 * the cache has no lock, and a call takes microseconds.
 * ------------------------------------------------------------------------------------------------- */

#define RK_HC_N 64
#define RK_HC_MAX_BYTES ((size_t)256 << 20)

typedef struct {
    PyObject *key;
    int R, C;
    uint8_t *prep;
    size_t nbytes;
} rk_hc_entry;

static rk_hc_entry rk_hc[RK_HC_N];
static int rk_hc_n = 0;
static size_t rk_hc_bytes = 0;
static int rk_simd = -1;                 /* -1: not decided yet; 0: portable rk_tmv; 1: AVX2 */
static int8_t rk_xpad[65536 + 160];     /* >= rk_host_xpad_bytes(65535); used with the GIL held */

static void rk_hc_clear(void) {
    while (rk_hc_n > 0) {
        rk_hc_entry *e = &rk_hc[--rk_hc_n];
        Py_DECREF(e->key);
        PyMem_RawFree(e->prep);
    }
    rk_hc_bytes = 0;
}

static int rk_simd_on(void) {
    if (rk_simd < 0) {
        const char *env = getenv("REKU_NO_SIMD");
        rk_simd = (env != NULL && env[0] != '\0' && env[0] != '0') ? 0 : rk_host_avx2();
    }
    return rk_simd;
}

/* Immutable bytes behind o: bytes itself, or a read-only memoryview whose exporter is bytes. */
static int rk_immutable(PyObject *o) {
    if (PyBytes_CheckExact(o)) {
        return 1;
    }
    if (PyMemoryView_Check(o)) {
        Py_buffer *v = PyMemoryView_GET_BUFFER(o);
        return v->readonly && v->obj != NULL && PyBytes_CheckExact(v->obj) && PyBuffer_IsContiguous(v, 'C');
    }
    return 0;
}

/* The repacked matrix of (o, R, C), made and cached on first use; NULL when o is not cacheable, or on error
 * (then with an exception set). */
static const uint8_t *rk_hc_get(PyObject *o, int R, int C) {
    int i;
    Py_buffer v;
    size_t nb;
    uint8_t *prep;
    for (i = 0; i < rk_hc_n; i++) {
        if (rk_hc[i].key == o && rk_hc[i].R == R && rk_hc[i].C == C) {
            return rk_hc[i].prep;
        }
    }
    if (!rk_immutable(o)) {
        return NULL;
    }
    if (PyObject_GetBuffer(o, &v, PyBUF_C_CONTIGUOUS) < 0) {
        return NULL;
    }
    if (v.itemsize != 1 || rk_need(v.len, (Py_ssize_t)R * rk_row_bytes(C), "tmv_host") < 0) {
        if (v.itemsize != 1) {
            PyErr_SetString(PyExc_TypeError, "tmv_host: need 1-byte items");
        }
        PyBuffer_Release(&v);
        return NULL;
    }
    nb = rk_host_prep_bytes(R, C);
    if (nb > RK_HC_MAX_BYTES) {
        PyBuffer_Release(&v);
        return NULL;
    }
    if (rk_hc_n == RK_HC_N || rk_hc_bytes + nb > RK_HC_MAX_BYTES) {
        rk_hc_clear();
    }
    prep = PyMem_RawMalloc(nb ? nb : 1);
    if (prep == NULL) {
        PyBuffer_Release(&v);
        PyErr_NoMemory();
        return NULL;
    }
    rk_host_prepare(v.buf, R, C, prep);
    PyBuffer_Release(&v);
    Py_INCREF(o);
    rk_hc[rk_hc_n].key = o;
    rk_hc[rk_hc_n].R = R;
    rk_hc[rk_hc_n].C = C;
    rk_hc[rk_hc_n].prep = prep;
    rk_hc[rk_hc_n].nbytes = nb;
    rk_hc_n++;
    rk_hc_bytes += nb;
    return prep;
}

/* tmv_host(w, R, C, x, y): same arguments and result as tmv (without scratch); the host fast path. */
static PyObject *py_tmv_host(PyObject *self, PyObject *args) {
    PyObject *ow, *ox, *oy;
    int R, C;
    rk_bufs b = {.n = 0};
    void *x, *y;
    Py_ssize_t nx, ny;
    const uint8_t *prep = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "OiiOO", &ow, &R, &C, &ox, &oy) || rk_shape(R, C) < 0) {
        return NULL;
    }
    if (rk_simd_on()) {
        prep = rk_hc_get(ow, R, C);
        if (prep == NULL && PyErr_Occurred()) {
            return NULL;
        }
    }
    if (prep == NULL) {
        return rk_mv(args, 1, NULL, "tmv_host");
    }
    if ((nx = rk_get(&b, ox, 1, 0, "tmv_host", &x)) < 0 || (ny = rk_get(&b, oy, 4, 1, "tmv_host", &y)) < 0
        || rk_need(nx, C, "tmv_host") < 0 || rk_need(ny, R, "tmv_host") < 0) {
        rk_free(&b);
        return NULL;
    }
    rk_host_tmv(prep, R, C, x, y, rk_xpad, 1);
    rk_free(&b);
    Py_RETURN_NONE;
}

/* tmv_prepare(w, R, C) -> bytes: the repacked (2 bits per weight) matrix rk_host.h describes. */
static PyObject *py_tmv_prepare(PyObject *self, PyObject *args) {
    PyObject *ow, *out;
    int R, C;
    rk_bufs b = {.n = 0};
    void *w;
    Py_ssize_t nw;
    (void)self;
    if (!PyArg_ParseTuple(args, "Oii", &ow, &R, &C) || rk_shape(R, C) < 0) {
        return NULL;
    }
    if ((nw = rk_get(&b, ow, 1, 0, "tmv_prepare", &w)) < 0
        || rk_need(nw, (Py_ssize_t)R * rk_row_bytes(C), "tmv_prepare") < 0) {
        rk_free(&b);
        return NULL;
    }
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)rk_host_prep_bytes(R, C));
    if (out != NULL) {
        rk_host_prepare(w, R, C, (uint8_t *)PyBytes_AS_STRING(out));
    }
    rk_free(&b);
    return out;
}

/* tmv_prepared(p, R, C, x, y, avx2): y = W @ x from the repacked p; avx2 = 0 runs the portable C version. */
static PyObject *py_tmv_prepared(PyObject *self, PyObject *args) {
    PyObject *op, *ox, *oy;
    int R, C, avx2;
    rk_bufs b = {.n = 0};
    void *p, *x, *y;
    Py_ssize_t np_, nx, ny;
    (void)self;
    if (!PyArg_ParseTuple(args, "OiiOOp", &op, &R, &C, &ox, &oy, &avx2) || rk_shape(R, C) < 0) {
        return NULL;
    }
    if (avx2 && !rk_host_avx2()) {
        PyErr_SetString(PyExc_RuntimeError, "tmv_prepared: this CPU (or build) has no AVX2 kernel");
        return NULL;
    }
    if ((np_ = rk_get(&b, op, 1, 0, "tmv_prepared", &p)) < 0 || (nx = rk_get(&b, ox, 1, 0, "tmv_prepared", &x)) < 0
        || (ny = rk_get(&b, oy, 4, 1, "tmv_prepared", &y)) < 0
        || rk_need(np_, (Py_ssize_t)rk_host_prep_bytes(R, C), "tmv_prepared") < 0
        || rk_need(nx, C, "tmv_prepared") < 0 || rk_need(ny, R, "tmv_prepared") < 0) {
        rk_free(&b);
        return NULL;
    }
    rk_host_tmv(p, R, C, x, y, rk_xpad, avx2);
    rk_free(&b);
    Py_RETURN_NONE;
}

/* host_simd([on]) -> name of the kernel tmv_host runs ("avx2" or "portable"); on = False forces the portable
 * path, True restores the CPU's best (the env var REKU_NO_SIMD=1 sets the default to portable). */
static PyObject *py_host_simd(PyObject *self, PyObject *args) {
    int on = -1;
    (void)self;
    if (!PyArg_ParseTuple(args, "|p", &on)) {
        return NULL;
    }
    if (on >= 0) {
        rk_simd = on ? rk_host_avx2() : 0;
        if (!rk_simd) {
            rk_hc_clear();
        }
    }
    return PyUnicode_FromString(rk_simd_on() ? "avx2" : "portable");
}

/* host_cache() -> (entries, bytes) of tmv_host's repacked copies; host_cache(True) empties it first. */
static PyObject *py_host_cache(PyObject *self, PyObject *args) {
    int clear = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "|p", &clear)) {
        return NULL;
    }
    if (clear) {
        rk_hc_clear();
    }
    return Py_BuildValue("(in)", rk_hc_n, (Py_ssize_t)rk_hc_bytes);
}

/* quant_i8(h, x) -> amax over n = len(x) values; quant_fp4(h, x): n = len(h) values packed into x. */
static PyObject *rk_quant(PyObject *args, int fp4, const char *name) {
    PyObject *oh, *ox;
    rk_bufs b = {.n = 0};
    void *h, *x;
    Py_ssize_t nh, nx;
    int32_t amax;
    if (!PyArg_ParseTuple(args, "OO", &oh, &ox)) {
        return NULL;
    }
    if ((nh = rk_get(&b, oh, 4, 0, name, &h)) < 0 || (nx = rk_get(&b, ox, 1, 1, name, &x)) < 0
        || (fp4 ? rk_fp4_n(nh, name) < 0 || rk_need(nx, rk_fp4_bytes((int)nh), name) < 0
                : rk_need(nh, nx, name) < 0)) {
        rk_free(&b);
        return NULL;
    }
    amax = fp4 ? rk_quant_fp4(h, (int)nh, x) : rk_quant_i8(h, (int)nx, x);
    rk_free(&b);
    return PyLong_FromLong(amax);
}

static PyObject *py_quant_i8(PyObject *self, PyObject *args) {
    (void)self;
    return rk_quant(args, 0, "quant_i8");
}

static PyObject *py_quant_fp4(PyObject *self, PyObject *args) {
    (void)self;
    return rk_quant(args, 1, "quant_fp4");
}

/* shift(x, prev, mu, out): n = len(out); shift4: x and prev packed FP4. */
static PyObject *rk_shift_any(PyObject *args, int fp4, const char *name) {
    PyObject *o[4];
    void *p[4];
    Py_ssize_t n[4];
    rk_bufs b = {.n = 0};
    int i;
    if (!PyArg_ParseTuple(args, "OOOO", &o[0], &o[1], &o[2], &o[3])) {
        return NULL;
    }
    for (i = 0; i < 4; i++) {
        if ((n[i] = rk_get(&b, o[i], 1, i == 3, name, &p[i])) < 0) {
            goto fail;
        }
    }
    if (fp4 && rk_fp4_n(n[3], name) < 0) {
        goto fail;
    }
    for (i = 0; i < 3; i++) {
        if (rk_need(n[i], fp4 && i < 2 ? rk_fp4_bytes((int)n[3]) : n[3], name) < 0) {
            goto fail;
        }
    }
    if (fp4) {
        rk_shift4(p[0], p[1], p[2], p[3], (int)n[3]);
    } else {
        rk_shift(p[0], p[1], p[2], p[3], (int)n[3]);
    }
    rk_free(&b);
    Py_RETURN_NONE;
fail:
    rk_free(&b);
    return NULL;
}

static PyObject *py_shift(PyObject *self, PyObject *args) {
    (void)self;
    return rk_shift_any(args, 0, "shift");
}

static PyObject *py_shift4(PyObject *self, PyObject *args) {
    (void)self;
    return rk_shift_any(args, 1, "shift4");
}

/* copy(src, dst[, off]): dst[i] = src[i] for i < len(dst); with off >= 0: dst[off + i] = src[i] for
 * i < len(src) (same item size). */
static PyObject *py_copy(PyObject *self, PyObject *args) {
    PyObject *os, *od;
    Py_buffer s, d;
    Py_ssize_t off = -1;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO|n", &os, &od, &off)) {
        return NULL;
    }
    if (PyObject_GetBuffer(os, &s, PyBUF_C_CONTIGUOUS) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(od, &d, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&s);
        return NULL;
    }
    if (s.itemsize != d.itemsize || (off < 0 ? s.len < d.len : off * d.itemsize + s.len > d.len)) {
        PyErr_SetString(PyExc_ValueError, off < 0 ? "copy: src must have dst's item size and at least its length"
            : "copy: src must have dst's item size and fit in dst from off");
        PyBuffer_Release(&s);
        PyBuffer_Release(&d);
        return NULL;
    }
    if (off < 0) {
        memmove(d.buf, s.buf, (size_t)d.len);
    } else {
        memmove((char *)d.buf + off * d.itemsize, s.buf, (size_t)s.len);
    }
    PyBuffer_Release(&s);
    PyBuffer_Release(&d);
    Py_RETURN_NONE;
}

/* requant(y, n, M, S, lo, hi) in place. */
static PyObject *py_requant(PyObject *self, PyObject *args) {
    PyObject *oy;
    int n, S;
    long M, lo, hi;
    rk_bufs b = {.n = 0};
    void *y;
    Py_ssize_t ny;
    (void)self;
    if (!PyArg_ParseTuple(args, "Oilill", &oy, &n, &M, &S, &lo, &hi)) {
        return NULL;
    }
    if (S < 1 || S > 62 || M < INT32_MIN || M > INT32_MAX || lo < INT32_MIN || hi > INT32_MAX || n < 0) {
        PyErr_SetString(PyExc_ValueError, "requant: bad n, M, S or bounds");
        return NULL;
    }
    if ((ny = rk_get(&b, oy, 4, 1, "requant", &y)) < 0 || rk_need(ny, n, "requant") < 0) {
        rk_free(&b);
        return NULL;
    }
    rk_requant(y, n, (int32_t)M, S, (int32_t)lo, (int32_t)hi);
    rk_free(&b);
    Py_RETURN_NONE;
}

/* wkv(r, k, v, s, w, u, sig, out): n = len(out). */
static PyObject *py_wkv(PyObject *self, PyObject *args) {
    static const int isz[8] = {4, 4, 4, 4, 1, 1, 1, 4};
    PyObject *o[8];
    void *p[8];
    Py_ssize_t n[8];
    rk_bufs b = {.n = 0};
    int i;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7])) {
        return NULL;
    }
    for (i = 0; i < 8; i++) {
        if ((n[i] = rk_get(&b, o[i], isz[i], i == 3 || i == 7, "wkv", &p[i])) < 0) {
            goto fail;
        }
    }
    for (i = 0; i < 6; i++) {
        if (rk_need(n[i], n[7], "wkv") < 0) {
            goto fail;
        }
    }
    if (rk_need(n[6], 256, "wkv sig") < 0) {
        goto fail;
    }
    rk_wkv(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], (int)n[7]);
    rk_free(&b);
    Py_RETURN_NONE;
fail:
    rk_free(&b);
    return NULL;
}

/* square(k, n) in place. */
static PyObject *py_square(PyObject *self, PyObject *args) {
    PyObject *ok;
    int n;
    rk_bufs b = {.n = 0};
    void *k;
    Py_ssize_t nk;
    (void)self;
    if (!PyArg_ParseTuple(args, "Oi", &ok, &n)) {
        return NULL;
    }
    if ((nk = rk_get(&b, ok, 4, 1, "square", &k)) < 0 || n < 0 || rk_need(nk, n, "square") < 0) {
        rk_free(&b);
        return NULL;
    }
    rk_square(k, n);
    rk_free(&b);
    Py_RETURN_NONE;
}

/* add(h, y): n = len(h). */
static PyObject *py_add(PyObject *self, PyObject *args) {
    PyObject *oh, *oy;
    rk_bufs b = {.n = 0};
    void *h, *y;
    Py_ssize_t nh, ny;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO", &oh, &oy)) {
        return NULL;
    }
    if ((nh = rk_get(&b, oh, 4, 1, "add", &h)) < 0 || (ny = rk_get(&b, oy, 4, 0, "add", &y)) < 0
        || rk_need(ny, nh, "add") < 0) {
        rk_free(&b);
        return NULL;
    }
    rk_add(h, y, (int)nh);
    rk_free(&b);
    Py_RETURN_NONE;
}

/* embed_t(w, off, n, M, S, h): one ternary embedding row (n/5 bytes from byte off) into Q8. */
static PyObject *py_embed_t(PyObject *self, PyObject *args) {
    PyObject *ow, *oh;
    Py_ssize_t off;
    int n, S;
    long M;
    rk_bufs b = {.n = 0};
    void *w, *h;
    Py_ssize_t nw, nh;
    (void)self;
    if (!PyArg_ParseTuple(args, "OniliO", &ow, &off, &n, &M, &S, &oh)) {
        return NULL;
    }
    if (S < 1 || S > 62 || M < INT32_MIN || M > INT32_MAX || n < 0 || off < 0) {
        PyErr_SetString(PyExc_ValueError, "embed_t: bad off, n, M or S");
        return NULL;
    }
    if ((nw = rk_get(&b, ow, 1, 0, "embed_t", &w)) < 0 || (nh = rk_get(&b, oh, 4, 1, "embed_t", &h)) < 0
        || rk_need(nw, off + n / 5, "embed_t w") < 0 || rk_need(nh, n / 5 * 5, "embed_t h") < 0) {
        rk_free(&b);
        return NULL;
    }
    rk_embed_t((const uint8_t *)w + off, n, (int32_t)M, S, h);
    rk_free(&b);
    Py_RETURN_NONE;
}

/* embed(e, off, n, M, S, h): h[i] = (int8(e[off+i])*M + 2**(S-1)) >> S. */
static PyObject *py_embed(PyObject *self, PyObject *args) {
    PyObject *oe, *oh;
    Py_ssize_t off;
    int n, S;
    long M;
    rk_bufs b = {.n = 0};
    void *e, *h;
    Py_ssize_t ne, nh;
    (void)self;
    if (!PyArg_ParseTuple(args, "OniliO", &oe, &off, &n, &M, &S, &oh)) {
        return NULL;
    }
    if (S < 1 || S > 62 || M < INT32_MIN || M > INT32_MAX || n < 0 || off < 0) {
        PyErr_SetString(PyExc_ValueError, "embed: bad off, n, M or S");
        return NULL;
    }
    if ((ne = rk_get(&b, oe, 1, 0, "embed", &e)) < 0 || (nh = rk_get(&b, oh, 4, 1, "embed", &h)) < 0
        || rk_need(ne, off + n, "embed e") < 0 || rk_need(nh, n, "embed h") < 0) {
        rk_free(&b);
        return NULL;
    }
    rk_embed((const int8_t *)e + off, n, (int32_t)M, S, h);
    rk_free(&b);
    Py_RETURN_NONE;
}

/* dot_rows(K, n, dk, q, out). */
static PyObject *py_dot_rows(PyObject *self, PyObject *args) {
    PyObject *oK, *oq, *oo;
    int n, dk;
    rk_bufs b = {.n = 0};
    void *K, *q, *out;
    Py_ssize_t nK, nq, no;
    (void)self;
    if (!PyArg_ParseTuple(args, "OiiOO", &oK, &n, &dk, &oq, &oo)) {
        return NULL;
    }
    if (n < 0 || dk < 0) {
        PyErr_SetString(PyExc_ValueError, "dot_rows: bad n or dk");
        return NULL;
    }
    if ((nK = rk_get(&b, oK, 1, 0, "dot_rows", &K)) < 0 || (nq = rk_get(&b, oq, 1, 0, "dot_rows", &q)) < 0
        || (no = rk_get(&b, oo, 4, 1, "dot_rows", &out)) < 0 || rk_need(nK, (Py_ssize_t)n * dk, "dot_rows K") < 0
        || rk_need(nq, dk, "dot_rows q") < 0 || rk_need(no, n, "dot_rows out") < 0) {
        rk_free(&b);
        return NULL;
    }
    rk_dot_rows(K, n, dk, q, out);
    rk_free(&b);
    Py_RETURN_NONE;
}

/* tl_build(x5, t): the 243-entry table of one group of 5 int8 inputs (exposed for tests). */
static PyObject *py_tl_build(PyObject *self, PyObject *args) {
    PyObject *ox, *ot;
    rk_bufs b = {.n = 0};
    void *x, *t;
    Py_ssize_t nx, nt;
    const int8_t *xv;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO", &ox, &ot)) {
        return NULL;
    }
    if ((nx = rk_get(&b, ox, 1, 0, "tl_build", &x)) < 0 || (nt = rk_get(&b, ot, 4, 1, "tl_build", &t)) < 0
        || rk_need(nx, 5, "tl_build x") < 0 || rk_need(nt, RK_TL_STRIDE, "tl_build t") < 0) {
        rk_free(&b);
        return NULL;
    }
    xv = x;
    rk_tl_build(t, xv[0], xv[1], xv[2], xv[3], xv[4]);
    rk_free(&b);
    Py_RETURN_NONE;
}

/* layer(h, P, W[, scratch]): one layer's step (rk_layer), as the MicroPython module's layer (mod_rkernel.c).
 * P = (mu_r, mu_k, mu_v, w, u, sig, cmu, Wr, Wk, Wv, Wo, Ck, Cv, M0..M5, S0..S5, fp4), W = (prev, prevc,
 * state, x, xs, xf, r, k, v, o, hf); d = len(h), f = len(hf). The optional scratch is accepted and ignored. */
static PyObject *py_layer(PyObject *self, PyObject *args) {
    /* item size, writable, length (0: d, 1: f, 2: 256) of W[0..10], h, then P[0..6] */
    static const int wsz[11] = {1, 1, 4, 1, 1, 1, 4, 4, 4, 4, 4}, wlen[11] = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    static const int plen[7] = {0, 0, 0, 0, 0, 2, 0};
    static int32_t scratch[RK_TMV_SCRATCH_BYTES / 4];
    PyObject *oh, *oP, *oW, *os = NULL, *P = NULL, *W = NULL;
    Py_buffer v[25];
    void *ptr[25];
    Py_ssize_t n[25], d, f;
    int nb = 0, i, fp4;
    rk_layer_t p;
    rk_work_t w;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOO|O", &oh, &oP, &oW, &os)) {
        return NULL;
    }
    P = PySequence_Fast(oP, "layer: P must be a sequence");
    W = P ? PySequence_Fast(oW, "layer: W must be a sequence") : NULL;
    if (W == NULL) {
        goto fail;
    }
    if (PySequence_Fast_GET_SIZE(P) != 26 || PySequence_Fast_GET_SIZE(W) != 11) {
        PyErr_SetString(PyExc_ValueError, "layer: P needs 26 items, W 11");
        goto fail;
    }
    for (i = 0; i < 25; i++) {
        /* 0..10: W, 11: h, 12..18: P[0..6], 19..24: P[7..12] (matrices) */
        PyObject *o = i < 11 ? PySequence_Fast_GET_ITEM(W, i) : i == 11 ? oh : PySequence_Fast_GET_ITEM(P, i - 12);
        int isz = i < 11 ? wsz[i] : i == 11 ? 4 : 1;
        int wr = i <= 11;
        if (PyObject_GetBuffer(o, &v[nb], PyBUF_C_CONTIGUOUS | (wr ? PyBUF_WRITABLE : 0)) < 0) {
            goto fail;
        }
        nb++;
        if (v[i].itemsize != isz) {
            PyErr_Format(PyExc_TypeError, "layer: item %d needs %d-byte items", i, isz);
            goto fail;
        }
        ptr[i] = v[i].buf;
        n[i] = v[i].len / isz;
    }
    d = n[11];
    f = n[10];
    if (d > 65535 || f > 65535) {
        PyErr_SetString(PyExc_ValueError, "layer: bad shape");
        goto fail;
    }
    if ((fp4 = PyObject_IsTrue(PySequence_Fast_GET_ITEM(P, 25))) < 0
        || (fp4 && (rk_fp4_n(d, "layer") < 0 || rk_fp4_n(f, "layer") < 0))) {
        goto fail;
    }
    for (i = 0; i < 11; i++) {
        /* an FP4 layer's prev, prevc, x, xf (W[0], W[1], W[3], W[5]) hold packed FP4 */
        Py_ssize_t need = wlen[i] ? f : d;
        if (fp4 && (i == 0 || i == 1 || i == 3 || i == 5)) {
            need = rk_fp4_bytes((int)need);
        }
        if (rk_need(n[i], need, "layer W") < 0) {
            goto fail;
        }
    }
    for (i = 0; i < 7; i++) {
        if (rk_need(n[12 + i], plen[i] == 2 ? 256 : d, "layer P") < 0) {
            goto fail;
        }
    }
    for (i = 0; i < 6; i++) {
        Py_ssize_t R = i == 4 ? f : d, C = i == 5 ? f : d;
        long M = PyLong_AsLong(PySequence_Fast_GET_ITEM(P, 13 + i));
        long S = PyLong_AsLong(PySequence_Fast_GET_ITEM(P, 19 + i));
        if (PyErr_Occurred()) {
            goto fail;
        }
        if (S < 1 || S > 62) {
            PyErr_SetString(PyExc_ValueError, "layer: bad S");
            goto fail;
        }
        if (rk_need(n[19 + i], R * rk_row_bytes((int)C), "layer matrix") < 0) {
            goto fail;
        }
        p.W[i] = ptr[19 + i];
        p.M[i] = (int32_t)M;
        p.S[i] = (int32_t)S;
    }
    p.fp4 = fp4;
    p.mu_r = ptr[12];
    p.mu_k = ptr[13];
    p.mu_v = ptr[14];
    p.w = ptr[15];
    p.u = ptr[16];
    p.sig = ptr[17];
    p.cmu = ptr[18];
    w.prev = ptr[0];
    w.prevc = ptr[1];
    w.state = ptr[2];
    w.x = ptr[3];
    w.xs = ptr[4];
    w.xf = ptr[5];
    w.r = ptr[6];
    w.k = ptr[7];
    w.v = ptr[8];
    w.o = ptr[9];
    w.hf = ptr[10];
    rk_layer(&p, &w, ptr[11], (int)d, (int)f, scratch);
    while (nb > 0) {
        PyBuffer_Release(&v[--nb]);
    }
    Py_DECREF(P);
    Py_DECREF(W);
    Py_RETURN_NONE;
fail:
    while (nb > 0) {
        PyBuffer_Release(&v[--nb]);
    }
    Py_XDECREF(P);
    Py_XDECREF(W);
    return NULL;
}

static PyMethodDef rk_methods[] = {
    {"tmv", py_tmv, METH_VARARGS, "tmv(w, R, C, x, y[, scratch]): y = W @ x for packed ternary W (R x C), int8 x, int32 y."},
    {"quant_i8", py_quant_i8, METH_VARARGS, "quant_i8(h, x) -> amax: int32 h to int8 x (absmax, 127 levels)."},
    {"quant_fp4", py_quant_fp4, METH_VARARGS, "quant_fp4(h, x) -> amax: int32 h to packed FP4 in x (rk_fp4_bytes(len(h)) bytes)."},
    {"shift", py_shift, METH_VARARGS, "shift(x, prev, mu, out): token shift, out = prev + (((x-prev)*mu) >> 8)."},
    {"shift4", py_shift4, METH_VARARGS, "shift4(x, prev, mu, out): shift of packed FP4 x and prev into int8 out."},
    {"tmv4", py_tmv4, METH_VARARGS, "tmv4(w, R, C, x, y[, scratch]): tmv with a packed FP4 x."},
    {"copy", py_copy, METH_VARARGS, "copy(src, dst[, off]): dst[:] = src[:len(dst)]; with off: dst[off:off+len(src)] = src."},
    {"requant", py_requant, METH_VARARGS, "requant(y, n, M, S, lo, hi): y = clamp((y*M + 2**(S-1)) >> S)."},
    {"wkv", py_wkv, METH_VARARGS, "wkv(r, k, v, s, w, u, sig, out): time-mixing recurrence, s in place."},
    {"square", py_square, METH_VARARGS, "square(k, n): k = (k*k) >> 8."},
    {"add", py_add, METH_VARARGS, "add(h, y): h = clamp(h + y, +-H_LIM)."},
    {"embed_t", py_embed_t, METH_VARARGS, "embed_t(w, off, n, M, S, h): one ternary embedding row into Q8."},
    {"embed", py_embed, METH_VARARGS, "embed(e, off, n, M, S, h): one int8 embedding row into Q8."},
    {"dot_rows", py_dot_rows, METH_VARARGS, "dot_rows(K, n, dk, q, out): out[j] = K[j] . q (int8)."},
    {"layer", py_layer, METH_VARARGS, "layer(h, P, W[, scratch]): one layer's whole step (rk_layer), h in place."},
    {"tl_build", py_tl_build, METH_VARARGS, "tl_build(x5, t): lookup table of one group of 5 inputs."},
    {"tmv_i8", py_tmv_i8, METH_VARARGS, "tmv_i8(w, R, C, x, y): baseline int8 kernel (w = R*C int8)."},
    {"tmv_i8_scalar", py_tmv_i8_scalar, METH_VARARGS, "tmv_i8_scalar(w, R, C, x, y): same, not vectorized."},
    {"tmv_host", py_tmv_host, METH_VARARGS, "tmv_host(w, R, C, x, y): tmv on the host fast path (repacked, cached, AVX2)."},
    {"tmv_prepare", py_tmv_prepare, METH_VARARGS, "tmv_prepare(w, R, C) -> bytes: the 2-bit host layout of W."},
    {"tmv_prepared", py_tmv_prepared, METH_VARARGS, "tmv_prepared(p, R, C, x, y, avx2): tmv from tmv_prepare's p."},
    {"host_simd", py_host_simd, METH_VARARGS, "host_simd([on]) -> 'avx2' or 'portable': tmv_host's kernel."},
    {"host_cache", py_host_cache, METH_VARARGS, "host_cache([clear]) -> (entries, bytes) of tmv_host's cache."},
#if defined(__x86_64__) && defined(__GNUC__)
    {"tmv_i8_avx2", py_tmv_i8_avx2, METH_VARARGS, "tmv_i8_avx2(w, R, C, x, y): int8 baseline with AVX2 allowed (reference)."},
#endif
    {"tmv_decode", py_tmv_decode, METH_VARARGS, "tmv_decode(w, R, C, x, y): baseline, trit-by-trit decode."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef rk_module = {
    PyModuleDef_HEAD_INIT, "_rkernel", "reku's native kernels (modules/rkernel/rk_core.c).", -1, rk_methods,
    NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC PyInit__rkernel(void) {
    PyObject *m = PyModule_Create(&rk_module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "TL_CHUNK", RK_TL_CHUNK) < 0
        || PyModule_AddIntConstant(m, "SCRATCH_BYTES", RK_TMV_SCRATCH_BYTES + 3) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
