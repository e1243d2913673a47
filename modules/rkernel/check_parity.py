# Parity of the native kernels with the firmware's Python tier (rkfw.kernels.PYTHON), which
# tests/test_model_kernels.py holds to the numpy reference. Runs on MicroPython (with `rkernel` importable:
# the natmod .mpy or a firmware with the user C module) and on CPython (tests/test_native.py passes
# reku._rkernel). Usage on the unix port, from the repository root (see docs/native.md):
#   MICROPYPATH=<dir with rkernel.mpy>:firmware micropython modules/rkernel/check_parity.py [skills/home/model.rku]
# Prints one line per group of checks and "parity ok" at the end; raises AssertionError on the first mismatch.
from array import array

from rkfw import fp4, kernels

try:
    PY = kernels.PYTHON
except AttributeError:      # MicroPython with the native module: kernels never imported the Python tier
    from rkfw import kernels_py
    PY = kernels.Tier("python", dict((n, getattr(kernels_py, n)) for n in kernels.NAMES))


class Rng:
    """Small deterministic generator (same sequence on CPython and MicroPython, no `random` needed)."""

    def __init__(self, seed):
        self.s = (seed * 2654435761 + 12345) & 0x7FFFFFFF

    def next(self):
        self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
        return self.s >> 8

    def int(self, lo, hi):
        """Uniform in lo..hi inclusive (hi - lo < 2**23)."""
        return lo + self.next() % (hi - lo + 1)

    def big(self, lim):
        """Uniform-ish in -lim..lim for lim up to 2**31."""
        v = ((self.next() << 8) ^ self.next()) % (2 * lim + 1)
        return v - lim


def same(a, b, what):
    la, lb = list(a), list(b)
    if la != lb:
        for i in range(min(len(la), len(lb))):
            if la[i] != lb[i]:
                raise AssertionError("%s: index %d: native %r, python %r" % (what, i, la[i], lb[i]))
        raise AssertionError("%s: lengths %d vs %d" % (what, len(la), len(lb)))


def pack(rows, C):
    """Ternary rows (lists of -1/0/1, length C, C % 5 == 0) -> packed bytes."""
    out = bytearray()
    for row in rows:
        for g in range(0, C, 5):
            b = 0
            p = 1
            for k in range(5):
                b += (row[g + k] + 1) * p
                p *= 3
            out.append(b)
    return bytes(out)


def check_tmv(nat, rng):
    n = 0
    shapes = [(1, 5), (2, 5), (3, 10), (4, 40), (5, 35), (7, 45), (8, 40), (13, 80), (40, 85), (80, 80),
              (160, 80), (80, 160), (9, 200), (4, 205), (33, 325)]
    for R, C in shapes:
        for mode in ("random", "zero-x", "max-x", "min-x", "ones", "minus-ones", "zero-w"):
            if mode == "ones":
                rows = [[1] * C for _ in range(R)]
            elif mode == "minus-ones":
                rows = [[-1] * C for _ in range(R)]
            elif mode == "zero-w":
                rows = [[0] * C for _ in range(R)]
            else:
                rows = [[rng.int(-1, 1) for _ in range(C)] for _ in range(R)]
            if mode == "zero-x":
                x = array("b", [0] * C)
            elif mode == "max-x":
                x = array("b", [127] * C)
            elif mode == "min-x":
                x = array("b", [-127] * C)
            else:
                x = array("b", [rng.int(-127, 127) for _ in range(C)])
            w = pack(rows, C)
            y1 = array("i", [0] * R)
            y2 = array("i", [0] * R)
            nat.tmv(w, R, C, x, y1)
            PY.tmv(w, R, C, x, y2)
            same(y1, y2, "tmv %dx%d %s" % (R, C, mode))
            # zero-copy views and a preallocated scratch give the same result
            y3 = array("i", [7] * R)
            nat.tmv(memoryview(w), R, C, x, y3, bytearray(nat.SCRATCH_BYTES))
            same(y3, y2, "tmv %dx%d %s (memoryview, scratch)" % (R, C, mode))
            n += 2
            if hasattr(nat, "tmv_host"):     # CPython extension only: the host fast path (rk_host.c)
                y4 = array("i", [7] * R)
                nat.tmv_host(w, R, C, x, y4)
                same(y4, y2, "tmv_host %dx%d %s" % (R, C, mode))
                n += 1
    return n


def check_quant(nat, rng):
    n = 0
    top = (1 << 24) - 1
    for n8 in (8, 16, 40, 80, 160, 320):
        for mode in ("random", "zero", "max", "one", "neg", "small", "mixed-scale"):
            if mode == "zero":
                h = [0] * n8
            elif mode == "max":
                h = [top if (j & 1) else -top for j in range(n8)]
            elif mode == "one":
                h = [0] * n8
                h[rng.int(0, n8 - 1)] = rng.int(1, top)
            elif mode == "neg":
                h = [-rng.int(0, top) for _ in range(n8)]
            elif mode == "small":
                h = [rng.int(-3, 3) for _ in range(n8)]
            elif mode == "mixed-scale":
                h = [rng.int(-top, top) >> rng.int(0, 23) for _ in range(n8)]
            else:
                h = [rng.int(-top, top) for _ in range(n8)]
            ha = array("i", h)
            x1 = array("b", [0] * n8)
            x2 = array("b", [0] * n8)
            a1 = nat.quant_i8(ha, x1)
            a2 = PY.quant_i8(ha, x2)
            assert a1 == a2, "quant_i8 amax %d vs %d" % (a1, a2)
            same(x1, x2, "quant_i8 n=%d %s" % (n8, mode))
            # packed FP4: the same bytes
            p1 = array("b", [5] * fp4.fp4_bytes(n8))
            p2 = array("b", [0] * fp4.fp4_bytes(n8))
            a1 = nat.quant_fp4(ha, p1)
            a2 = fp4.quant_fp4(ha, p2)
            assert a1 == a2, "quant_fp4 amax %d vs %d" % (a1, a2)
            same(p1, p2, "quant_fp4 n=%d %s" % (n8, mode))
            n += 2
    return n


def check_fp4_inputs(nat, rng):
    """shift4 and tmv4 on packed FP4 vectors (quant_fp4's output)."""
    n = 0
    top = (1 << 24) - 1
    for C in (40, 80, 160, 320):
        x = array("b", [0] * fp4.fp4_bytes(C))
        p = array("b", [0] * fp4.fp4_bytes(C))
        fp4.quant_fp4(array("i", [rng.int(-top, top) >> rng.int(0, 23) for _ in range(C)]), x)
        fp4.quant_fp4(array("i", [rng.int(-top, top) for _ in range(C)]), p)
        mu = bytes([rng.int(0, 255) for _ in range(C)])
        o1 = array("b", [0] * C)
        o2 = array("b", [0] * C)
        nat.shift4(x, p, mu, o1)
        fp4.shift4(x, p, mu, o2)
        same(o1, o2, "shift4 n=%d" % C)
        for R in (1, 5, 13, 80):
            w = pack([[rng.int(-1, 1) for _ in range(C)] for _ in range(R)], C)
            y1 = array("i", [7] * R)
            y2 = array("i", [0] * R)
            nat.tmv4(w, R, C, x, y1)
            fp4.tmv4(w, R, C, x, y2)
            same(y1, y2, "tmv4 %dx%d" % (R, C))
            n += 1
        n += 1
    return n


def check_step_pieces(nat, rng):
    n = 0
    sig = bytes([rng.int(0, 255) for _ in range(256)])
    for size in (1, 3, 8, 40, 80, 161):
        x = array("b", [rng.int(-127, 127) for _ in range(size)])
        prev = array("b", [rng.int(-127, 127) for _ in range(size)])
        mu = bytes([rng.int(0, 255) for _ in range(size)])
        o1 = array("b", [0] * size)
        o2 = array("b", [0] * size)
        nat.shift(x, prev, mu, o1)
        PY.shift(x, prev, mu, o2)
        same(o1, o2, "shift")
        c = array("b", [0] * size)
        nat.copy(x, c)
        same(c, x, "copy")
        c1 = array("b", [7] * (size + 9))
        c2 = array("b", [7] * (size + 9))
        nat.copy(x, c1, 5)
        PY.copy(x, c2, 5)
        same(c1, c2, "copy at an offset")
        # requant: model range (32-bit path) and large values (64-bit path)
        for ylim, M, S in ((1 << 16, 9636, 14), (1 << 16, 16383, 30), (1 << 24, 1 << 20, 20),
                           ((1 << 31) - 1, (1 << 31) - 1, 40), (1 << 15, -12345, 7), (1 << 20, 3, 1)):
            y = [rng.big(ylim) for _ in range(size)]
            for lo, hi in ((-kernels.A_LIM, kernels.A_LIM), (0, kernels.A_LIM), (-(1 << 23), 1 << 23)):
                a1 = array("i", y)
                a2 = array("i", y)
                nat.requant(a1, size, M, S, lo, hi)
                PY.requant(a2, size, M, S, lo, hi)
                same(a1, a2, "requant M=%d S=%d" % (M, S))
                n += 1
        A = kernels.A_LIM
        r = array("i", [rng.int(-A, A) for _ in range(size)])
        k = array("i", [rng.int(-A, A) for _ in range(size)])
        v = array("i", [rng.int(-A, A) for _ in range(size)])
        s0 = [rng.big(kernels.S_LIM) for _ in range(size)]
        w = bytes([rng.int(0, 255) for _ in range(size)])
        u = bytes([rng.int(0, 255) for _ in range(size)])
        s1 = array("i", s0)
        s2 = array("i", s0)
        o1 = array("i", [0] * size)
        o2 = array("i", [0] * size)
        nat.wkv(r, k, v, s1, w, u, sig, o1)
        PY.wkv(r, k, v, s2, w, u, sig, o2)
        same(o1, o2, "wkv out")
        same(s1, s2, "wkv state")
        # extremes: saturated inputs and state
        e = array("i", [A] * size)
        ne = array("i", [-A] * size)
        for rr, kk, vv, ss in ((e, e, e, kernels.S_LIM), (ne, e, ne, -kernels.S_LIM), (e, ne, e, kernels.S_LIM)):
            s1 = array("i", [ss] * size)
            s2 = array("i", [ss] * size)
            nat.wkv(rr, kk, vv, s1, b"\xff" * size, b"\xff" * size, sig, o1)
            PY.wkv(rr, kk, vv, s2, b"\xff" * size, b"\xff" * size, sig, o2)
            same(o1, o2, "wkv extreme out")
            same(s1, s2, "wkv extreme state")
        g = [rng.int(0, A) for _ in range(size)]
        g1 = array("i", g)
        g2 = array("i", g)
        nat.square(g1, size)
        PY.square(g2, size)
        same(g1, g2, "square")
        H = 1 << 23
        h = [rng.big(H) for _ in range(size)]
        yy = array("i", [rng.big(H) for _ in range(size)])
        h1 = array("i", h)
        h2 = array("i", h)
        nat.add(h1, yy)
        PY.add(h2, yy)
        same(h1, h2, "add")
        emb = bytes([rng.int(0, 255) for _ in range(3 * size + 5)])
        embt = bytes([rng.int(0, 242) for _ in range(size // 5 + 3)])
        for M, S in ((8641, 11), (16383, 14), (1 << 24, 30), ((1 << 31) - 1, 45)):
            e1 = array("i", [0] * size)
            e2 = array("i", [0] * size)
            nat.embed(emb, size + 3, size, M, S, e1)
            PY.embed(emb, size + 3, size, M, S, e2)
            same(e1, e2, "embed M=%d S=%d" % (M, S))
            t1 = array("i", [7] * size)
            t2 = array("i", [7] * size)
            nat.embed_t(embt, 3, size, M, S, t1)
            PY.embed_t(embt, 3, size, M, S, t2)
            same(t1, t2, "embed_t M=%d S=%d" % (M, S))
        dk = 40
        Kb = array("b", [rng.int(-127, 127) for _ in range(size * dk)])
        q = array("b", [rng.int(-127, 127) for _ in range(dk)])
        d1 = array("i", [0] * size)
        d2 = array("i", [0] * size)
        nat.dot_rows(Kb, size, dk, q, d1)
        PY.dot_rows(Kb, size, dk, q, d2)
        same(d1, d2, "dot_rows")
        n += 10
    return n


QUERIES = ("turn on the kitchen light", "dim the bedroom to 30%", "set a timer for 10 minutes for pasta", "")


def check_engine(nat, model_path):
    """The firmware engine with the native tier against the Python tier: calls and residual stream."""
    from rkfw import infer, rku
    with open(model_path, "rb") as f:
        m = rku.load(f.read())
    funcs = {}
    for name in kernels.NAMES + kernels.OPTIONAL:
        funcs[name] = getattr(nat, name)
    tn = kernels.Tier("native", funcs)
    e1 = infer.Engine(m, tn)          # each layer's step in one native call (rk_layer)
    e2 = infer.Engine(m, PY)          # the same step composed from the Python tier's kernels
    assert (e1.fused is not None) == (not e1.lr) and e2.fused is None     # low-rank models: no fused step
    n = 0
    for q in QUERIES:
        c1 = e1.run(q)[0]
        c2 = e2.run(q)[0]
        assert c1 == c2, "engine calls differ for %r: %r vs %r" % (q, c1, c2)
        same(e1.h, e2.h, "engine residual stream after %r" % q)
        n += 1
    return n


def main(nat, model_path=None, out=print):
    rng = Rng(1)
    out("tmv: %d checks" % check_tmv(nat, rng))
    out("quant: %d checks" % check_quant(nat, rng))
    out("step pieces: %d checks" % check_step_pieces(nat, rng))
    out("packed FP4 inputs: %d checks" % check_fp4_inputs(nat, rng))
    if model_path:
        out("engine: %d queries" % check_engine(nat, model_path))
    out("parity ok")


if __name__ == "__main__":
    import sys
    import rkernel
    main(rkernel, sys.argv[1] if len(sys.argv) > 1 else None)
