"""Kernel contract: the firmware's Python tier (rkfw.kernels) gives exactly the integers of the numpy
reference (reku.model.reference) for every piece of the recurrent step."""
from array import array

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from reku.model import reference as ref
from rkfw import fp4 as F
from rkfw import kernels as K

PY = K.PYTHON
i8 = st.integers(-127, 127)
H = st.integers(-(1 << 23), 1 << 23)


def vec(elem, n):
    return st.lists(elem, min_size=n, max_size=n)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(1, 6).map(lambda g: 5 * g), st.data())
def test_tmv(R, C, data):
    W = np.array(data.draw(vec(vec(st.integers(-1, 1), C), R)))
    x = data.draw(vec(i8, C))
    y = array("i", [0] * R)
    PY.tmv(ref.pack_ternary(W), R, C, array("b", x), y)
    assert list(y) == list(ref.tmv(W, x))
    assert (ref.unpack_ternary(ref.pack_ternary(W), R, C) == W).all()


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5).map(lambda b: 8 * b).flatmap(lambda n: vec(H, n)))
def test_quant_i8_and_fp4(h):
    for fw, rf, lim in ((PY.quant_i8, ref.quant_i8, 127), (F.quant_fp4, ref.quant_fp4, 96)):
        if fw is F.quant_fp4:
            # packed two codes per byte plus the block shifts, read back with unpack4
            p = array("b", [7] * F.fp4_bytes(len(h)))
            amax = fw(array("i", h), p)
            x = array("b", [0] * len(h))
            F.unpack4(p, len(h), x)
        else:
            x = array("b", [0] * len(h))
            amax = fw(array("i", h), x)
        want, want_amax = rf(h)
        assert amax == want_amax == max(abs(v) for v in h)
        assert list(x) == list(want)
        assert max(abs(v) for v in x) <= lim
        # zero stays zero, nonzero outputs keep the sign, and the largest input maps to the top value
        assert all((b == 0) if a == 0 else (b == 0 or (a > 0) == (b > 0)) for a, b in zip(h, x))
        if amax:
            assert max(abs(v) for v in x) == lim


def test_quant_fp4_grid():
    """Every FP4 output is a signed E2M1 value {0,.5,1,1.5,2,3,4,6} times 2 * 2**s for its block's s."""
    rng = np.random.default_rng(0)
    grid = {0, 1, 2, 3, 4, 6, 8, 12}
    for _ in range(200):
        h = rng.integers(-(1 << 20), 1 << 20, size=32) >> rng.integers(0, 20, size=32)
        x, _ = ref.quant_fp4(h)
        for b in range(0, 32, 8):
            blk = np.abs(x[b:b + 8])
            assert any(all(v % (1 << s) == 0 and (v >> s) in grid for v in blk) for s in range(4))


def test_fp4_packing_layout():
    """docs/format.md, "Packed FP4 activations": codes sign << 3 | m two per byte (even index low), then the
    2-bit block shifts four per byte; 40 values take 20 + 2 bytes."""
    assert [F.fp4_bytes(n) for n in (8, 32, 40, 80, 96)] == [5, 17, 22, 43, 51]
    h = [0] * 40
    h[0], h[1], h[9], h[39] = 96, -12, -48, 5      # amax 96, so the values are 96, -16, -48, 4
    p = array("b", [0] * 22)
    assert F.quant_fp4(array("i", h), p) == 96
    b = bytes(p)
    assert b[0] == 0x7 | 0xA << 4                 # +12 << 3 (m 7), -2 << 3 (sign | m 2): block 0 has s = 3
    assert b[4] == 0xF << 4                        # value 9: -12 << 2 (sign | m 7), high nibble
    assert b[19] == 0x4 << 4                       # value 39: +4 (m 4), s = 0
    assert b[20] == 3 | 2 << 2 and b[21] == 0      # shifts of blocks 0..3, then block 4
    assert sum(b) == 0xA7 + 0xF0 + 0x40 + 0x0B
    x = array("b", [0] * 40)
    F.unpack4(p, 40, x)
    assert list(x) == list(ref.quant_fp4(h)[0]) and (x[0], x[1], x[9], x[39]) == (96, -16, -48, 4)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4).map(lambda b: 40 * b).flatmap(
    lambda n: st.tuples(vec(H, n), vec(H, n), vec(st.integers(0, 255), n))))
def test_shift4_reads_packed_fp4(t):
    a, b, mu = t
    n = len(a)
    x, p = array("b", [0] * F.fp4_bytes(n)), array("b", [0] * F.fp4_bytes(n))
    F.quant_fp4(array("i", a), x)
    F.quant_fp4(array("i", b), p)
    out = array("b", [0] * n)
    F.shift4(x, p, bytes(mu), out)
    assert list(out) == list(ref.shift(ref.quant_fp4(a)[0], ref.quant_fp4(b)[0], np.array(mu)))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(1, 3).map(lambda g: 40 * g), st.data())
def test_tmv4_reads_packed_fp4(R, C, data):
    W = np.array(data.draw(vec(vec(st.integers(-1, 1), C), R)))
    h = data.draw(vec(H, C))
    x = array("b", [0] * F.fp4_bytes(C))
    F.quant_fp4(array("i", h), x)
    y = array("i", [0] * R)
    F.tmv4(ref.pack_ternary(W), R, C, x, y)
    assert list(y) == list(ref.tmv(W, ref.quant_fp4(h)[0]))


def test_quant_i8_property_max_maps_to_127():
    rng = np.random.default_rng(1)
    for _ in range(100):
        h = rng.integers(-(1 << 23), 1 << 23, size=40)
        x, amax = ref.quant_i8(h)
        assert np.abs(x).max() == 127
        # rounding error at most half a step
        assert np.all(np.abs(x * amax - h * 127) <= amax // 2 + 1)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 16).flatmap(lambda n: st.tuples(vec(i8, n), vec(i8, n), vec(st.integers(0, 255), n))))
def test_shift(t):
    x, prev, mu = t
    out = array("b", [0] * len(x))
    PY.shift(array("b", x), array("b", prev), bytes(mu), out)
    assert list(out) == list(ref.shift(x, prev, np.array(mu)))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 16).flatmap(lambda n: vec(st.integers(-(1 << 16), 1 << 16), n)),
       st.integers(1 << 13, (1 << 14) - 1), st.integers(1, 30))
def test_requant(y, M, S):
    a = array("i", y)
    PY.requant(a, len(y), M, S, -2047, 2047)
    assert list(a) == list(ref.requant(y, M, S, -2047, 2047))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 16).flatmap(lambda n: st.tuples(
    vec(st.integers(-2047, 2047), n), vec(st.integers(-2047, 2047), n), vec(st.integers(-2047, 2047), n),
    vec(st.integers(-(1 << 21), 1 << 21), n), vec(st.integers(0, 255), n), vec(st.integers(0, 255), n))))
def test_wkv(t):
    r, k, v, s, w, u = t
    from reku.model.reference import sig_lut
    sig = sig_lut()
    out = array("i", [0] * len(r))
    sa = array("i", s)
    PY.wkv(array("i", r), array("i", k), array("i", v), sa, bytes(w), bytes(u), bytes(sig), out)
    o2, s2 = ref.wkv(np.array(r), np.array(k), np.array(v), np.array(s), np.array(w), np.array(u),
                     sig.astype(np.int64))
    assert list(out) == list(o2) and list(sa) == list(s2)
    assert all(abs(q) < (1 << 30) for q in out)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 16).flatmap(lambda n: st.tuples(vec(H, n), vec(H, n))))
def test_add_square_embed(t):
    h, y = t
    a = array("i", h)
    PY.add(a, array("i", y))
    assert list(a) == list(ref.add(np.array(h), np.array(y)))
    k = array("i", [abs(v) % 2048 for v in h])
    want = ref.square(np.array(k))
    PY.square(k, len(k))
    assert list(k) == list(want)
    row = np.array([v % 255 - 127 for v in y], dtype=np.int8)
    out = array("i", [0] * len(y))
    PY.embed(b"\x00\x00" + row.tobytes(), 2, len(y), 12345, 17, out)
    assert list(out) == list(ref.embed(row, 12345, 17))


def test_dot_rows():
    rng = np.random.default_rng(2)
    Kt = rng.integers(-127, 128, size=(9, 40))
    q = rng.integers(-127, 128, size=40)
    out = array("i", [0] * 9)
    PY.dot_rows(array("b", Kt.reshape(-1).tolist()), 9, 40, array("b", q.tolist()), out)
    assert list(out) == list(Kt @ q)


def test_embed_ternary_row():
    rng = np.random.default_rng(3)
    E = rng.integers(-1, 2, size=(4, 40))
    w = ref.pack_ternary(E)
    out = array("i", [0] * 40)
    PY.embed_t(w, 2 * 8, 40, 12345, 17, out)
    assert list(out) == list(ref.embed(E[2], 12345, 17))
