# Viper tier of the two O(rows x cols) kernels (rkfw.kernels picks it where the viper emitter exists; the
# O(d) pieces stay in Python). Same integers as the Python tier and the numpy reference.
# Viper loads through ptr8 are unsigned: int8 values are re-signed by hand; int32 results are only stored.
import micropython

PROVIDES = ("tmv", "dot_rows")


def _digits():
    d = bytearray(243 * 5)
    for b in range(243):
        v = b
        for k in range(5):
            d[5 * b + k] = v % 3
            v //= 3
    return d


_D = _digits()


@micropython.viper
def _tmv(w, R: int, C: int, x, y, dig):
    pw = ptr8(w)
    px = ptr8(x)
    py = ptr32(y)
    pd = ptr8(dig)
    G = C // 5
    o = 0
    for r in range(R):
        acc = 0
        c = 0
        for g in range(G):
            b = int(pw[o + g]) * 5
            for k in range(5):
                t = int(pd[b + k])
                if t != 1:
                    v = int(px[c + k])
                    if v > 127:
                        v -= 256
                    if t == 2:
                        acc += v
                    else:
                        acc -= v
            c += 5
        py[r] = acc
        o += G


def tmv(w, R, C, x, y):
    _tmv(w, R, C, x, y, _D)


@micropython.viper
def _dot_rows(K, n: int, dk: int, q, out):
    pk = ptr8(K)
    pq = ptr8(q)
    po = ptr32(out)
    o = 0
    for j in range(n):
        acc = 0
        for c in range(dk):
            a = int(pk[o + c])
            if a > 127:
                a -= 256
            b = int(pq[c])
            if b > 127:
                b -= 256
            acc += a * b
        po[j] = acc
        o += dk


def dot_rows(K, n, dk, q, out):
    _dot_rows(K, n, dk, q, out)
