# The "python" tier of the integer kernels: plain Python, for CPython and MicroPython without native emitters
# (rkfw.kernels imports it only when there is no native module `rkernel`, so a board with one does not hold this
# code and its tables on the heap). Same integers as host/reku/model/reference.py.
from rkfw.kernels import A_LIM, H_LIM, S_LIM  # noqa: F401

def _trit_tables():
    t = []
    for k in range(5):
        a = bytearray(243)
        p = 3 ** k
        for b in range(243):
            a[b] = (b // p) % 3
        t.append(a)
    return t


_T0, _T1, _T2, _T3, _T4 = _trit_tables()
_EV = [0, 0, 0]          # embed_t's three row values, reused: a tuple per call would allocate 32 bytes per step


def tmv(w, R, C, x, y):
    """y[r] = sum_c W[r,c]*x[c]; W packed 5 trits/byte, row stride C//5 bytes."""
    G = C // 5
    T0 = _T0
    T1 = _T1
    T2 = _T2
    T3 = _T3
    T4 = _T4
    o = 0
    for r in range(R):
        acc = 0
        c = 0
        for g in range(o, o + G):
            b = w[g]
            acc += ((T0[b] - 1) * x[c] + (T1[b] - 1) * x[c + 1] + (T2[b] - 1) * x[c + 2]
                    + (T3[b] - 1) * x[c + 3] + (T4[b] - 1) * x[c + 4])
            c += 5
        y[r] = acc
        o += G


def _amax(h, n):
    """max |h[j]| over the n first entries."""
    amax = 0
    for j in range(n):
        a = h[j]
        if a < 0:
            a = -a
        if a > amax:
            amax = a
    return amax


def quant_i8(h, x):
    """x = round(h*127/amax) (half away from zero on magnitudes); returns amax."""
    n = len(x)
    amax = _amax(h, n)
    if amax == 0:
        for j in range(n):
            x[j] = 0
        return 0
    half = amax >> 1
    for j in range(n):
        a = h[j]
        if a < 0:
            x[j] = -((-a * 127 + half) // amax)
        else:
            x[j] = (a * 127 + half) // amax
    return amax


def shift(x, prev, mu, out):
    """Token shift: out = prev + (((x - prev) * mu + 128) >> 8); mu bytes 0..255."""
    for i in range(len(out)):
        p = prev[i]
        out[i] = p + (((x[i] - p) * mu[i] + 128) >> 8)


def copy(src, dst, off=-1):
    """dst[:] = src[:len(dst)]; with off: dst[off:off+len(src)] = src (a key row into the engine's K)."""
    if off < 0:
        for i in range(len(dst)):
            dst[i] = src[i]
    else:
        for i in range(len(src)):
            dst[off + i] = src[i]


def requant(y, n, M, S, lo, hi):
    """y[i] = clamp((y[i]*M + 2**(S-1)) >> S, lo, hi), in place on the first n entries."""
    rnd = 1 << (S - 1)
    for i in range(n):
        q = (y[i] * M + rnd) >> S
        if q < lo:
            q = lo
        elif q > hi:
            q = hi
        y[i] = q


def wkv(r, k, v, s, w, u, sig, out):
    """Per-channel linear recurrence (head size 1) in Q12, state s updated in place:
    kv = (k*v) >> 12; out = (sig[clamp(r>>9)+128] * (s + ((u*kv) >> 8))) >> 8; s = clamp(((s*w) >> 8) + kv)."""
    lim = S_LIM
    for i in range(len(out)):
        kv = (k[i] * v[i]) >> 12
        si = s[i]
        j = r[i] >> 9
        if j < -128:
            j = -128
        elif j > 127:
            j = 127
        out[i] = (sig[j + 128] * (si + ((u[i] * kv) >> 8))) >> 8
        si = ((si * w[i]) >> 8) + kv
        if si > lim:
            si = lim
        elif si < -lim:
            si = -lim
        s[i] = si


def square(k, n):
    """k[i] = (k[i]*k[i]) >> 12 (Q12; inputs already clamped to 0..A_LIM by requant)."""
    for i in range(n):
        a = k[i]
        k[i] = (a * a) >> 12


def add(h, y):
    """h += y, clamped to +-H_LIM."""
    lim = H_LIM
    for i in range(len(h)):
        a = h[i] + y[i]
        if a > lim:
            a = lim
        elif a < -lim:
            a = -lim
        h[i] = a


def embed(e, off, n, M, S, h):
    """h[i] = (int8(e[off+i]) * M + 2**(S-1)) >> S: one row of the int8 embedding table into Q8."""
    rnd = 1 << (S - 1)
    for i in range(n):
        a = e[off + i]
        if a > 127:
            a -= 256
        h[i] = (a * M + rnd) >> S


def embed_t(w, off, n, M, S, h):
    """h[i] = (W[i] * M + 2**(S-1)) >> S: one row of a ternary embedding table (n//5 bytes from byte off)."""
    rnd = 1 << (S - 1)
    vals = _EV
    vals[0] = (-M + rnd) >> S
    vals[1] = rnd >> S
    vals[2] = (M + rnd) >> S
    T0 = _T0
    T1 = _T1
    T2 = _T2
    T3 = _T3
    T4 = _T4
    i = 0
    for g in range(off, off + n // 5):
        b = w[g]
        h[i] = vals[T0[b]]
        h[i + 1] = vals[T1[b]]
        h[i + 2] = vals[T2[b]]
        h[i + 3] = vals[T3[b]]
        h[i + 4] = vals[T4[b]]
        i += 5


def dot_rows(K, n, dk, q, out):
    """out[j] = sum_c K[j*dk+c] * q[c] for j < n; K and q int8 (array('b'))."""
    o = 0
    for j in range(n):
        acc = 0
        for c in range(dk):
            acc += K[o + c] * q[c]
        out[j] = acc
        o += dk
