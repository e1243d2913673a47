# Packed FP4 activations (docs/format.md, "Packed FP4 activations"): the buffers of an FP4 layer hold two 4-bit
# codes per byte plus 2-bit block shifts, and these kernels write and read them. Imported by rkfw.infer only
# for a model with FP4 layers on a tier without FP4 kernels (Python, viper) or with low-rank corrections (an int8
# model, and the native tier, which has quant_fp4, shift4 and tmv4 in C, do not pay for this code on the heap).
# Same integers as host/reku/model/reference.py (quant_fp4, shift, tmv of the unpacked values).

from rkfw.kernels import fp4_bytes
from rkfw.kernels_py import _T0, _T1, _T2, _T3, _T4, _amax

FP4MAG = (0, 1, 2, 3, 4, 6, 8, 12)                  # the doubled E2M1 magnitudes, by code m (3 bits)
FP4IDX = (0, 1, 2, 3, 4, 4, 5, 5, 6, 6, 6, 7, 7)    # m of reference.FP4TAB[u], u = 0..12


def _put(x, i, v):
    """x[i] = byte v (0..255) into an array('b'), which holds it as v - 256 above 127."""
    x[i] = v - 256 if v > 127 else v


def quant_fp4(h, x):
    """FP4 E2M1 with a power-of-two scale per block of 8, packed into x (fp4_bytes(len(h)) bytes): code
    sign << 3 | m of the value sign * FP4MAG[m] << s, two per byte (even index low), then each block's s
    (0..3) in 2 bits. Values as reference.quant_fp4 (|value| <= 96); returns amax. len(h) a multiple of 8."""
    n = len(h)
    amax = _amax(h, n)
    if amax == 0:
        for j in range(fp4_bytes(n)):
            x[j] = 0
        return 0
    half = amax >> 1
    idx = FP4IDX
    sb = n >> 1
    sacc = 0
    for b0 in range(0, n, 8):
        bm = 0
        for j in range(b0, b0 + 8):
            a = h[j]
            if a < 0:
                a = -a
            t = (a * 96 + half) // amax
            if t > bm:
                bm = t
        if bm <= 12:
            s = 0
        elif bm <= 24:
            s = 1
        elif bm <= 48:
            s = 2
        else:
            s = 3
        rnd = (1 << s) >> 1
        for j in range(b0, b0 + 8):
            a = h[j]
            neg = a < 0
            if neg:
                a = -a
            u = ((a * 96 + half) // amax + rnd) >> s
            c = idx[u] if u < 12 else 7
            if neg and c:
                c |= 8
            if j & 1:
                _put(x, j >> 1, v | (c << 4))
            else:
                v = c
        q = (b0 >> 2) & 6
        sacc |= s << q
        if q == 6 or b0 + 8 >= n:
            _put(x, sb + (b0 >> 5), sacc)
            sacc = 0
    return amax


def unpack4(x, n, out):
    """out[j] = value j of the packed FP4 vector x of n values, for j < n (int8 out)."""
    sb = n >> 1
    for j in range(n):
        out[j] = _fp4_at(x, sb, j)


def shift4(x, prev, mu, out):
    """shift() of two packed FP4 vectors x, prev (len(out) values each) into int8 out."""
    n = len(out)
    mag = FP4MAG
    sb = n >> 1
    for b0 in range(0, n, 8):
        k = sb + (b0 >> 5)
        q = (b0 >> 2) & 6
        sx = ((x[k] & 255) >> q) & 3
        sp = ((prev[k] & 255) >> q) & 3
        for j in range(b0, b0 + 8):
            e = (j & 1) << 2
            c = ((x[j >> 1] & 255) >> e) & 15
            a = mag[c & 7] << sx
            if c & 8:
                a = -a
            c = ((prev[j >> 1] & 255) >> e) & 15
            p = mag[c & 7] << sp
            if c & 8:
                p = -p
            out[j] = p + (((a - p) * mu[j] + 128) >> 8)


def _fp4_at(x, sb, j):
    """Value j of a packed FP4 vector whose shifts start at byte sb (= n/2)."""
    c = ((x[j >> 1] & 255) >> ((j & 1) << 2)) & 15
    v = FP4MAG[c & 7] << (((x[sb + (j >> 5)] & 255) >> ((j >> 2) & 6)) & 3)
    return -v if c & 8 else v


def tmv4(w, R, C, x, y):
    """tmv() with a packed FP4 input x (C values): column groups outside, so each input is decoded once."""
    G = C // 5
    sb = C >> 1
    T0 = _T0
    T1 = _T1
    T2 = _T2
    T3 = _T3
    T4 = _T4
    for r in range(R):
        y[r] = 0
    for g in range(G):
        c = 5 * g
        x0 = _fp4_at(x, sb, c)
        x1 = _fp4_at(x, sb, c + 1)
        x2 = _fp4_at(x, sb, c + 2)
        x3 = _fp4_at(x, sb, c + 3)
        x4 = _fp4_at(x, sb, c + 4)
        o = g
        for r in range(R):
            b = w[o]
            y[r] += ((T0[b] - 1) * x0 + (T1[b] - 1) * x1 + (T2[b] - 1) * x2 + (T3[b] - 1) * x3
                     + (T4[b] - 1) * x4)
            o += G


def act_bytes(d, f, acts):
    """Bytes of rkfw.infer.Engine's activation buffers: x (d) and xf (f), shared by the layers, packed FP4 when
    every layer is FP4, else int8; each layer's token-shift state prev and prevc (d), packed when that layer is
    FP4; xs (d), the token shift's int8 output and the input of the head and the pointer. The Engine allocates
    exactly these; the PTQ route's --act-budget-kb and `reku inspect` count them."""
    n4 = 0
    for a in acts:
        if a == "fp4":
            n4 += 1
    L = len(acts)
    if n4 == L:
        shared = fp4_bytes(d) + fp4_bytes(f)
    else:
        shared = d + f
    return d + shared + 2 * (n4 * fp4_bytes(d) + (L - n4) * d)


try:
    from rkfw.fp4_viper import tmv4     # where the port has the viper emitter (not CPython, not the wasm build)
except (ImportError, SyntaxError, ValueError, NotImplementedError):
    pass
