"""The native kernels (modules/rkernel/rk_core.c) built as the CPython extension reku._rkernel: integer
parity with the numpy reference (reku.model.reference) and with the firmware's Python tier, over random
shapes (odd sizes, C not a multiple of 5, short column chunks) and edge values; the firmware engine running
on the C kernels gives the reference's calls."""
import json
import sys
from array import array

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reku import native, paths
from reku.errors import RekuError
from reku.model import reference as ref
from reku.model.reference import Reference
from reku.model.synth import random_model
from rkfw import fp4, infer, kernels, rku

N = native.raw()          # fails (not skips) when the extension was not built
TRITS = np.array([1, 3, 9, 27, 81])
TOP = (1 << 24) - 1


def pack_any(W):
    """Packed bytes for any C (the last byte of a row padded with zero weights when C % 5 != 0)."""
    W = np.asarray(W, dtype=np.int64)
    R, C = W.shape
    G = (C + 4) // 5
    Wp = np.zeros((R, 5 * G), dtype=np.int64)
    Wp[:, :C] = W
    return ((Wp + 1).reshape(R, G, 5) * TRITS).sum(-1).astype(np.uint8).tobytes()


def c_tmv(W, x):
    R, C = W.shape
    y = array("i", [0] * R)
    N.tmv(pack_any(W), R, C, array("b", [int(v) for v in x]), y)
    return np.array(y, dtype=np.int64)


def test_extension_is_the_built_core():
    assert native.available()
    assert N.__name__ == "reku._rkernel"
    for name in kernels.NAMES + kernels.OPTIONAL:
        assert callable(getattr(N, name)), name


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 37), st.integers(1, 260), st.integers(0, 2 ** 32 - 1),
       st.sampled_from(["random", "max", "min", "zero", "alternate"]))
def test_tmv_matches_numpy_any_shape(R, C, seed, xmode):
    rng = np.random.default_rng(seed)
    W = rng.integers(-1, 2, size=(R, C))
    x = {"random": rng.integers(-127, 128, size=C), "max": np.full(C, 127), "min": np.full(C, -127),
         "zero": np.zeros(C, dtype=np.int64), "alternate": np.where(np.arange(C) % 2, 127, -127)}[xmode]
    assert (c_tmv(W, x) == W @ x).all()


@pytest.mark.parametrize("R,C", [(256, 256), (80, 80), (160, 80), (80, 160), (640, 160), (1000, 1005), (3, 45)])
def test_tmv_model_shapes_and_extremes(R, C):
    rng = np.random.default_rng(R * 7 + C)
    for W in (rng.integers(-1, 2, size=(R, C)), np.ones((R, C), dtype=np.int64), -np.ones((R, C), dtype=np.int64)):
        for x in (rng.integers(-127, 128, size=C), np.full(C, 127), np.full(C, -127)):
            want = W @ x
            assert (c_tmv(W, x) == want).all()
            if C % 5 == 0:       # the .rku packing of the reference gives the same bytes
                assert pack_any(W) == ref.pack_ternary(W)
                assert (native.tmv(ref.pack_ternary(W), R, C, x) == ref.tmv(ref.unpack_ternary(
                    ref.pack_ternary(W), R, C), x)).all()


def test_tmv_zero_copy_views_scratch_and_numpy_inputs():
    rng = np.random.default_rng(5)
    W = rng.integers(-1, 2, size=(50, 120))
    x = rng.integers(-127, 128, size=120)
    blob = b"\x00" * 7 + pack_any(W) + b"\x00" * 3
    y = np.zeros(50, dtype=np.int32)
    N.tmv(memoryview(blob)[7:7 + 50 * 24], 50, 120, x.astype(np.int8), y, bytearray(N.SCRATCH_BYTES))
    assert (y == W @ x).all()
    y2 = native.tmv(np.frombuffer(pack_any(W), dtype=np.uint8), 50, 120, x)
    assert y2.dtype == np.int32 and (y2 == W @ x).all()


HOST_PATHS = ["tmv_host", "prepared_c"] + (["prepared_avx2"] if N.host_simd() == "avx2" else [])


def host_tmv(path, packed, R, C, x):
    """y from one of the host fast path's entries (modules/rkernel/rk_host.c)."""
    y = np.zeros(R, dtype=np.int32)
    x = np.asarray(x).astype(np.int8)
    if path == "tmv_host":
        N.tmv_host(packed, R, C, x, y)
    else:
        N.tmv_prepared(N.tmv_prepare(packed, R, C), R, C, x, y, path == "prepared_avx2")
    return y.astype(np.int64)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 37), st.integers(1, 400), st.integers(0, 2 ** 32 - 1),
       st.sampled_from(["random", "max", "min", "zero", "alternate"]), st.sampled_from(["random", "+1", "-1", "0"]))
def test_host_fast_path_matches_numpy_any_shape(R, C, seed, xmode, wmode):
    rng = np.random.default_rng(seed)
    W = {"random": rng.integers(-1, 2, size=(R, C)), "+1": np.ones((R, C), dtype=np.int64),
         "-1": -np.ones((R, C), dtype=np.int64), "0": np.zeros((R, C), dtype=np.int64)}[wmode]
    x = {"random": rng.integers(-128, 128, size=C), "max": np.full(C, 127), "min": np.full(C, -128),
         "zero": np.zeros(C, dtype=np.int64), "alternate": np.where(np.arange(C) % 2, 127, -128)}[xmode]
    packed = pack_any(W)
    for path in HOST_PATHS:
        assert (host_tmv(path, packed, R, C, x) == W @ x).all(), path


@pytest.mark.parametrize("R,C", [(1, 1), (1, 5), (3, 7), (4, 127), (5, 128), (7, 129), (4, 255), (9, 256),
                                 (13, 131), (80, 80), (160, 80), (80, 160), (2, 2047), (3, 65535)])
def test_host_fast_path_shapes_and_extremes(R, C):
    rng = np.random.default_rng(R * 1000 + C)
    for W in (np.ones((R, C), dtype=np.int64), -np.ones((R, C), dtype=np.int64), rng.integers(-1, 2, size=(R, C))):
        packed = pack_any(W)
        for x in (np.full(C, -128), np.full(C, 127), rng.integers(-128, 128, size=C)):
            want = W @ x
            assert (c_tmv(W, x) == want).all()
            for path in HOST_PATHS:
                assert (host_tmv(path, packed, R, C, x) == want).all(), (path, x[0])


def test_host_fast_path_empty_shapes():
    for R, C in ((0, 0), (0, 7), (3, 0)):
        for path in HOST_PATHS:
            assert (host_tmv(path, b"\x00" * (R * ((C + 4) // 5)), R, C, np.zeros(C)) == 0).all()


def test_host_prepare_layout():
    """2 bits per weight, u = W + 1; bits 2k..2k+1 of byte i of chunk j hold column 128j + 32k + i."""
    rng = np.random.default_rng(5)
    R, C = 3, 300
    W = rng.integers(-1, 2, size=(R, C))
    p = np.frombuffer(N.tmv_prepare(pack_any(W), R, C), dtype=np.uint8).reshape(R, 3, 32)
    for c in range(C):
        assert ((p[:, c // 128, c % 32] >> (2 * ((c // 32) % 4))) & 3 == W[:, c] + 1).all()
    for c in range(C, 384):                                                                 # padding u = 0
        assert ((p[:, c // 128, c % 32] >> (2 * ((c // 32) % 4))) & 3 == 0).all()


def test_host_fast_path_forced_portable_and_cache():
    """simd(False) runs the portable rk_tmv (and empties the cache); only immutable weight buffers are cached,
    so a bytearray edited between calls still gives the right answer."""
    rng = np.random.default_rng(9)
    R, C = 33, 205
    W = rng.integers(-1, 2, size=(R, C))
    x = rng.integers(-128, 128, size=C)
    packed = pack_any(W)
    best = native.simd()
    try:
        assert native.simd(False) == "portable"
        assert N.host_cache() == (0, 0)
        assert (native.tmv(packed, R, C, x) == W @ x).all()
        assert N.host_cache() == (0, 0)
        native.simd(True)
        assert native.simd() == best
        N.host_cache(True)
        blob = bytearray(packed)
        assert (native.tmv(blob, R, C, x) == W @ x).all()
        assert (native.tmv(memoryview(blob).toreadonly(), R, C, x) == W @ x).all()
        assert N.host_cache() == (0, 0)
        blob[:] = pack_any(-W)
        assert (native.tmv(blob, R, C, x) == -W @ x).all()
        view = memoryview(b"\x07" + packed)[1:]
        for _ in range(2):
            assert (native.tmv(view, R, C, x) == W @ x).all()
            assert (native.tmv(packed, R, C, x) == W @ x).all()
        assert N.host_cache()[0] == (2 if best == "avx2" else 0)
        with pytest.raises(ValueError):
            N.tmv_host(packed[:-1], R, C, x.astype(np.int8), np.zeros(R, dtype=np.int32))
        with pytest.raises(ValueError):
            N.tmv_host(packed, R, C, x.astype(np.int8), np.zeros(R - 1, dtype=np.int32))
        with pytest.raises(ValueError):
            N.tmv_prepared(b"\x00" * 10, R, C, x.astype(np.int8), np.zeros(R, dtype=np.int32), False)
    finally:
        native.simd(True)
        N.host_cache(True)


def test_host_simd_env_var_forces_portable():
    import os
    import subprocess
    env = dict(os.environ, REKU_NO_SIMD="1")
    out = subprocess.run([sys.executable, "-c", "from reku import native; print(native.simd())"], env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "portable"


def test_native_tier_uses_the_host_fast_path():
    assert native.tier().tmv is N.tmv_host


def test_tl_build_table():
    rng = np.random.default_rng(3)
    d = np.array([[(b // 3 ** k) % 3 - 1 for k in range(5)] for b in range(243)])
    for x in [rng.integers(-127, 128, size=5) for _ in range(20)] + [np.full(5, 127), np.full(5, -127)]:
        t = array("i", [0] * 244)
        N.tl_build(array("b", x.tolist()), t)
        assert list(t[:243]) == list(d @ x)


@pytest.mark.parametrize("R,C", [(1, 5), (17, 33), (256, 256)])
def test_baselines_are_correct(R, C):
    """The benchmark's comparison kernels compute the same product (a fast wrong baseline would be no baseline)."""
    rng = np.random.default_rng(R + C)
    W = rng.integers(-1, 2, size=(R, C))
    x = rng.integers(-127, 128, size=C).astype(np.int8)
    for fn, w in ((N.tmv_i8, W.astype(np.int8)), (N.tmv_i8_scalar, W.astype(np.int8)), (N.tmv_decode, pack_any(W))):
        y = np.zeros(R, dtype=np.int32)
        fn(w, R, C, x, y)
        assert (y == W @ x).all(), fn.__name__


def hvec():
    return st.integers(1, 40).map(lambda b: 8 * b).flatmap(
        lambda n: st.lists(st.one_of(st.integers(-TOP, TOP), st.sampled_from([0, TOP, -TOP, 1, -1])),
                           min_size=n, max_size=n))


def c_quant(name, h):
    """(values, amax, raw output) of the C quantizer; quant_fp4's packed output read back with unpack4."""
    if name == "quant_i8":
        x = array("b", [0] * len(h))
        amax = N.quant_i8(array("i", h), x)
        return list(x), amax, bytes(x)
    p = array("b", [5] * fp4.fp4_bytes(len(h)))
    amax = N.quant_fp4(array("i", h), p)
    x = array("b", [0] * len(h))
    fp4.unpack4(p, len(h), x)
    return list(x), amax, bytes(p)


@settings(max_examples=300, deadline=None)
@given(hvec())
def test_quant_matches_reference(h):
    for name in ("quant_i8", "quant_fp4"):
        x, amax, raw = c_quant(name, h)
        want, want_amax = getattr(ref, name)(h)
        assert amax == want_amax
        assert x == list(want), name
        x2, a2 = getattr(native, name)(np.array(h))
        assert a2 == amax and list(x2) == list(want)
        # the same bytes as the firmware's Python tier (the packed FP4 layout is one format)
        py = array("b", [0] * len(raw))
        (kernels.PYTHON.quant_i8 if name == "quant_i8" else fp4.quant_fp4)(array("i", h), py)
        assert bytes(py) == raw, name


def test_quant_edges():
    for h in ([0] * 16, [TOP] * 8, [-TOP] * 8, [1] + [0] * 7, [TOP, -1, 1, 0, 2, -2, 3, TOP >> 4] * 2,
              [(-1) ** j * (TOP >> j) for j in range(24)]):
        for name in ("quant_i8", "quant_fp4"):
            x, amax, _ = c_quant(name, h)
            want, want_amax = getattr(ref, name)(h)
            assert (amax, x) == (want_amax, list(want)), (name, h)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12).map(lambda b: 40 * b), st.integers(1, 40), st.integers(0, 2 ** 32 - 1))
def test_packed_fp4_inputs_match_reference(n, R, seed):
    """tmv4 and shift4 read quant_fp4's packed output: W @ x and the token shift of the reference's values."""
    rng = np.random.default_rng(seed)
    h, hp = rng.integers(-TOP, TOP + 1, size=n), rng.integers(-TOP, TOP + 1, size=n) >> int(rng.integers(0, 20))
    x, p = array("b", [0] * fp4.fp4_bytes(n)), array("b", [0] * fp4.fp4_bytes(n))
    N.quant_fp4(array("i", h.tolist()), x)
    N.quant_fp4(array("i", hp.tolist()), p)
    xv, pv = ref.quant_fp4(h)[0], ref.quant_fp4(hp)[0]
    W = rng.integers(-1, 2, size=(R, n))
    y = array("i", [0] * R)
    N.tmv4(ref.pack_ternary(W), R, n, x, y)
    assert list(y) == list(W @ xv)
    mu = rng.integers(0, 256, size=n)
    out = array("b", [0] * n)
    N.shift4(x, p, bytes(mu.tolist()), out)
    assert list(out) == list(ref.shift(xv, pv, mu))


def test_packed_fp4_bad_sizes_are_errors():
    x = array("b", [0] * fp4.fp4_bytes(40))
    with pytest.raises(ValueError, match="multiple of 8"):
        N.quant_fp4(array("i", [1] * 12), x)
    with pytest.raises(ValueError):
        N.quant_fp4(array("i", [1] * 48), x)                 # 48 values need 25 bytes, x has 22
    with pytest.raises(ValueError):
        N.tmv4(bytes(8 * 16), 2, 80, x, array("i", [0, 0]))  # 80 inputs need 43 bytes
    with pytest.raises(ValueError):
        N.shift4(x, x, bytes(48), array("b", [0] * 48))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 200), st.integers(0, 2 ** 32 - 1))
def test_step_pieces_match_reference(n, seed):
    rng = np.random.default_rng(seed)
    A, S_LIM, H = ref.A_LIM, ref.S_LIM, ref.H_LIM
    x = rng.integers(-127, 128, size=n)
    prev = rng.integers(-127, 128, size=n)
    mu = rng.integers(0, 256, size=n)
    out = array("b", [0] * n)
    N.shift(array("b", x.tolist()), array("b", prev.tolist()), bytes(mu.tolist()), out)
    assert list(out) == list(ref.shift(x, prev, mu))

    for M, S, ylim in ((int(rng.integers(1 << 13, 1 << 14)), int(rng.integers(1, 31)), 1 << 16),
                       (int(rng.integers(1, 1 << 31)), int(rng.integers(1, 63)), 1 << 31)):
        y = rng.integers(-ylim, ylim, size=n)
        for lo, hi in ((-A, A), (0, A), (-H, H)):
            a = array("i", y.tolist())
            N.requant(a, n, M, S, lo, hi)
            assert list(a) == list(ref.requant(y, M, S, lo, hi)), (M, S)

    r, k, v = (rng.integers(-A, A + 1, size=n) for _ in range(3))
    s = rng.integers(-S_LIM, S_LIM + 1, size=n)
    w, u, sig = rng.integers(0, 256, size=n), rng.integers(0, 256, size=n), rng.integers(0, 256, size=256)
    sa, o = array("i", s.tolist()), array("i", [0] * n)
    N.wkv(*(array("i", t.tolist()) for t in (r, k, v)), sa, bytes(w.tolist()), bytes(u.tolist()),
          bytes(sig.tolist()), o)
    o2, s2 = ref.wkv(r, k, v, s, w, u, sig)
    assert list(o) == list(o2) and list(sa) == list(s2)

    g = rng.integers(0, A + 1, size=n)
    ga = array("i", g.tolist())
    N.square(ga, n)
    assert list(ga) == list(ref.square(g))

    h, yy = rng.integers(-H, H + 1, size=n), rng.integers(-H, H + 1, size=n)
    ha = array("i", h.tolist())
    N.add(ha, array("i", yy.tolist()))
    assert list(ha) == list(ref.add(h, yy))

    row = rng.integers(-127, 128, size=n).astype(np.int8)
    for M, S in ((int(rng.integers(1, 1 << 14)), 11), (int(rng.integers(1, 1 << 31)), 40)):
        e = array("i", [0] * n)
        N.embed(b"\x01\x02\x03" + row.tobytes(), 3, n, M, S, e)
        assert list(e) == list(ref.embed(row.astype(np.int64), M, S))

    dk = int(rng.integers(1, 50))
    K = rng.integers(-127, 128, size=(n, dk))
    q = rng.integers(-127, 128, size=dk)
    d = array("i", [0] * n)
    N.dot_rows(array("b", K.reshape(-1).tolist()), n, dk, array("b", q.tolist()), d)
    assert list(d) == list(K @ q)


def test_parity_script_with_python_tier_and_bundled_model():
    """modules/rkernel/check_parity.py is the check run on MicroPython with the board module loaded
    (docs/native.md); here it runs against the CPython build of the same core."""
    sys.path.insert(0, str(paths.ROOT / "modules" / "rkernel"))
    try:
        import check_parity
    finally:
        sys.path.pop(0)
    lines = []
    check_parity.main(N, str(paths.model_path("home")), out=lines.append)
    assert lines[-1] == "parity ok" and any(line.startswith("engine: 4") for line in lines)


TOOLS = json.loads((paths.SKILLS / "home" / "tools.json").read_text())
QUERIES = ["turn on the kitchen light", "dim the bedroom to 30%", "play some jazz in the kitchen",
           "set a timer for 10 minutes for pasta", "", "LOCK THE FRONT DOOR!!!", "x" * 300,
           "set the volume to 100 and stop the music in the garage", "'"]


@pytest.mark.parametrize("cfg", [dict(seed=1, d=40, f=80, layers=1),
                                 dict(seed=2, d=40, f=80, layers=2, acts=["fp4", "i8"]),
                                 dict(seed=3, d=80, f=120, layers=1, gain=4.0)])
def test_engine_on_native_kernels_matches_reference(cfg):
    m = rku.load(random_model(TOOLS, **cfg))
    eng = infer.Engine(m, native.tier())
    assert eng.tier == "native" and eng.fused is not None     # each layer's step is one rk_layer call
    r = Reference(m)
    r.reset()
    eng._reset()
    rng = np.random.default_rng(0)
    for t in rng.integers(0, m.arch["n_in"] + m.arch["n_out"], size=40):
        eng.step(int(t))
        assert list(eng.h) == list(r.step(int(t)))
    for q in QUERIES:
        assert eng.run(q)[0] == r.run(q)[0], q


def test_bundled_model_on_native_kernels():
    m = rku.load(paths.model_path("home").read_bytes())
    eng = infer.Engine(m, native.tier())
    r = Reference(m)
    for q in QUERIES[:4]:
        assert eng.run(q)[0] == r.run(q)[0], q


def test_bad_arguments_raise():
    y = array("i", [0] * 4)
    x = array("b", [0] * 10)
    with pytest.raises(ValueError):
        N.tmv(b"\x00" * 7, 4, 10, x, y)               # weights too short for 4 rows of 2 bytes
    with pytest.raises(ValueError):
        N.tmv(b"\x00" * 8, 5, 10, x, y)               # y too short
    with pytest.raises(ValueError):
        N.tmv(b"\x00" * 8, 4, -1, x, y)
    with pytest.raises(TypeError):
        N.tmv(b"\x00" * 8, 4, 10, x, array("b", [0] * 16))   # y must hold int32
    with pytest.raises(BufferError):
        N.tmv(b"\x00" * 8, 4, 10, x, bytes(16))       # read-only output
    with pytest.raises(ValueError):
        N.tmv(b"\x00" * 8, 4, 10, x, y, bytearray(16))  # scratch too small
    with pytest.raises(ValueError):
        N.quant_i8(array("i", [1, 2]), array("b", [0] * 3))
    with pytest.raises(ValueError):
        N.requant(array("i", [1]), 1, 5, 0, -1, 1)
    with pytest.raises(ValueError):
        N.wkv(*(array("i", [0]),) * 4, b"\x00", b"\x00", b"\x00" * 255, array("i", [0]))
    with pytest.raises(ValueError):
        native.tmv(b"\x00" * 8, 4, 10, np.full(10, 300))


def _layer_args(d=10, f=20):
    P = [bytes(d)] * 5 + [bytes(256), bytes(d)] + [bytes(d * (d // 5))] * 4 + [bytes(f * (d // 5)),
                                                                             bytes(d * (f // 5))]
    P += [100] * 6 + [8] * 6 + [False]
    W = [array("b", [0] * d), array("b", [0] * d), array("i", [0] * d), array("b", [0] * d), array("b", [0] * d),
         array("b", [0] * f)] + [array("i", [0] * d) for _ in range(4)] + [array("i", [0] * f)]
    return array("i", [0] * d), P, W


def test_layer_bad_arguments_raise():
    h, P, W = _layer_args()
    N.layer(h, tuple(P), tuple(W))                                 # well-formed: runs
    with pytest.raises(ValueError):
        N.layer(h, tuple(P[:-1]), tuple(W))                        # P needs 26 items
    with pytest.raises(ValueError):
        N.layer(h, P, W[:-1])                                      # W needs 11
    bad = list(P)
    bad[11] = bytes(10)                                            # Ck too short for f x d
    with pytest.raises(ValueError):
        N.layer(h, bad, W)
    bad = list(P)
    bad[19] = 0                                                    # S out of 1..62
    with pytest.raises(ValueError):
        N.layer(h, bad, W)
    bad = list(W)
    bad[2] = array("b", [0] * 10)                                  # the state holds int32
    with pytest.raises(TypeError):
        N.layer(h, P, bad)
    with pytest.raises(ValueError):
        N.layer(array("i", [0] * 11), P, W)                        # buffers shorter than h


def test_copy_with_offset():
    K = array("b", [0] * 12)
    N.copy(array("b", [1, -2, 3]), K, 4)
    assert list(K) == [0, 0, 0, 0, 1, -2, 3, 0, 0, 0, 0, 0]
    N.copy(array("b", [5, 6, 7]), K, 9)
    assert list(K[9:]) == [5, 6, 7]
    with pytest.raises(ValueError):
        N.copy(array("b", [5, 6, 7]), K, 10)                       # does not fit from off
    kernels.PYTHON.copy(array("b", [9, 9]), K, 0)
    assert list(K[:3]) == [9, 9, 0]


def test_missing_extension_is_a_user_error(monkeypatch):
    import builtins
    real = builtins.__import__

    def fake(name, *a, **k):
        if name.endswith("_rkernel") or (a and a[2] and "_rkernel" in a[2]):
            raise ImportError("no module named reku._rkernel")
        return real(name, *a, **k)

    monkeypatch.setattr(native, "_mod", None)
    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(RekuError, match="pip install -e"):
        native.raw()
    assert not native.available()
