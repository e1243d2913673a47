"""The native core compiled for Cortex-M0+ (armv6m, arm-none-eabi-gcc) and run on unicorn's Cortex-M0 model:
code size within budget, Thumb-2 refused by the emulated CPU, and the same integers as the numpy reference,
for the assembly path (RP2040) and for the portable C path (what armv7m, xtensa and RISC-V builds run).
Needs the Debian package gcc-arm-none-eabi (no C library: the kernels and the harness link only libgcc)."""
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reku import paths
from reku.model import reference as ref

sys.path.insert(0, str(paths.ROOT / "benchmarks"))
import m0_emulator as E  # noqa: E402

sys.path.pop(0)

CODE_BUDGET = 8 * 1024
TOP = (1 << 24) - 1


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    try:
        E.toolchain()
    except E.ToolchainMissing as e:
        pytest.fail(str(e), pytrace=False)
    return tmp_path_factory.mktemp("m0")


@pytest.fixture(scope="module", params=["asm", "portable-c"])
def m0(request, out):
    return E.M0(E.Image("-O2", out=out, no_asm=request.param == "portable-c"))


@pytest.mark.parametrize("opt", ["-O2", "-Os"])
def test_core_code_size_within_budget(out, opt):
    size = E.core_size(opt, out=out)
    assert size["data"] == 0 and size["bss"] == 0      # nothing a native .mpy could not hold
    assert 1000 < size["text"] <= CODE_BUDGET, size


def test_emulated_cpu_refuses_thumb2(out):
    """A Thumb-2-only instruction (movw r0, #1) faults on the Cortex-M0 model but runs on a Cortex-M3, so the
    instruction counts come from code the M0+ can execute."""
    from unicorn import UcError
    from unicorn import arm_const as A
    code = bytes.fromhex("40f20100") + b"\x00\xbf"       # movw r0, #1 ; nop

    def run(cpu):
        uc = E.new_cpu(cpu)
        uc.mem_map(E.FLASH, 0x1000)
        uc.mem_write(E.FLASH, code)
        uc.emu_start(E.FLASH | 1, E.FLASH + 4)
        return uc.reg_read(A.UC_ARM_REG_R0)

    assert run(A.UC_CPU_ARM_CORTEX_M3) == 1
    with pytest.raises(UcError):
        run(A.UC_CPU_ARM_CORTEX_M0)
    m = E.M0(E.Image("-O2", out=out))
    assert m.uc.ctl_get_cpu_model() == A.UC_CPU_ARM_CORTEX_M0


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 21), st.integers(1, 130), st.integers(0, 2 ** 32 - 1),
       st.sampled_from(["random", "max", "min", "zero"]))
def test_tmv_on_m0_matches_numpy(m0, R, C, seed, xmode):
    """Rows not a multiple of 4 (C tail loop), chunks shorter than 8 groups (computed jump into the unrolled
    loop), C not a multiple of 5 (padded last group)."""
    rng = np.random.default_rng(seed)
    W = rng.integers(-1, 2, size=(R, C))
    x = {"random": rng.integers(-127, 128, size=C), "max": np.full(C, 127), "min": np.full(C, -127),
         "zero": np.zeros(C, dtype=np.int64)}[xmode]
    y, n, _ = E.tmv(m0, W, x, count=False)
    assert (y == W @ x).all()


@pytest.mark.parametrize("R,C", [(256, 256), (80, 80), (160, 80), (80, 160), (8, 400), (12, 45)])
def test_tmv_on_m0_model_shapes(m0, R, C):
    rng = np.random.default_rng(R + C)
    for W in (rng.integers(-1, 2, size=(R, C)), np.ones((R, C), dtype=np.int64)):
        for x in (rng.integers(-127, 128, size=C), np.full(C, -127)):
            assert (E.tmv(m0, W, x, count=False)[0] == W @ x).all()


def test_tl_build_on_m0(m0):
    rng = np.random.default_rng(4)
    d = np.array([[(b // 3 ** k) % 3 - 1 for k in range(5)] for b in range(243)])
    for x in [rng.integers(-127, 128, size=5) for _ in range(10)] + [np.full(5, 127), np.full(5, -127)]:
        m0.reset_heap()
        t = m0.alloc(244 * 4)
        m0.call("rk_tl_build", t, *[int(v) for v in x], count=False)
        got = np.frombuffer(m0.read(t, 243 * 4), dtype=np.int32)
        assert (got == d @ x).all()


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 20).map(lambda b: 8 * b).flatmap(
    lambda n: st.lists(st.one_of(st.integers(-TOP, TOP), st.sampled_from([0, TOP, -TOP, 1])), min_size=n,
                       max_size=n)))
def test_quant_on_m0_matches_reference(m0, h):
    for name in ("quant_i8", "quant_fp4"):
        x, amax, _, _ = E.quant(m0, "rk_" + name, h, count=False)
        want, want_amax = getattr(ref, name)(h)
        assert amax == want_amax and list(x) == list(want), name


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 21), st.integers(1, 4).map(lambda g: 40 * g), st.integers(0, 2 ** 32 - 1))
def test_packed_fp4_inputs_on_m0_match_reference(m0, R, C, seed):
    """rk_tmv4 and rk_shift4 read rk_quant_fp4's packed vectors: W @ x and the token shift of the values."""
    from array import array

    from rkfw import fp4
    rng = np.random.default_rng(seed)
    h, hp = rng.integers(-TOP, TOP + 1, size=C), rng.integers(-TOP, TOP + 1, size=C) >> int(rng.integers(0, 20))
    xp, pp = array("b", bytes(fp4.fp4_bytes(C))), array("b", bytes(fp4.fp4_bytes(C)))
    fp4.quant_fp4(array("i", h.tolist()), xp)
    fp4.quant_fp4(array("i", hp.tolist()), pp)
    xv, pv = ref.quant_fp4(h)[0], ref.quant_fp4(hp)[0]
    W = rng.integers(-1, 2, size=(R, C))
    assert (E.tmv4(m0, W, bytes(xp), count=False)[0] == W @ xv).all()
    mu = rng.integers(0, 256, size=C)
    m0.reset_heap()
    xa, pa, ma, oa = m0.alloc(bytes(xp)), m0.alloc(bytes(pp)), m0.alloc(bytes(mu.tolist())), m0.alloc(C)
    m0.call("rk_shift4", xa, pa, ma, oa, C, count=False)
    assert (np.frombuffer(m0.read(oa, C), dtype=np.int8) == ref.shift(xv, pv, mu)).all()


def test_step_pieces_on_m0_match_reference(m0):
    """requant's 32-bit fast path and 64-bit fallback (libgcc multiply), wkv, shift, square, add, embed."""
    rng = np.random.default_rng(9)
    A, S_LIM, H = ref.A_LIM, ref.S_LIM, ref.H_LIM
    n = 37

    def i32(a):
        return np.asarray(a, dtype=np.int32).tobytes()

    def get32(addr):
        return np.frombuffer(m0.read(addr, 4 * n), dtype=np.int32).astype(np.int64)

    for M, S, ylim in ((12345, 14, 1 << 16), (1 << 20, 20, 1 << 24), ((1 << 31) - 1, 45, (1 << 31) - 1),
                       (-777, 3, 1 << 15)):
        y = rng.integers(-ylim, ylim, size=n)
        m0.reset_heap()
        a = m0.alloc(i32(y))
        m0.call("rk_requant", a, n, M, S, -H, H, count=False)
        assert (get32(a) == ref.requant(y, M, S, -H, H)).all(), (M, S)
    r, k, v = (rng.integers(-A, A + 1, size=n) for _ in range(3))
    s = rng.integers(-S_LIM, S_LIM + 1, size=n)
    w, u, sig = (rng.integers(0, 256, size=z) for z in (n, n, 256))
    m0.reset_heap()
    ra, ka, va, sa = (m0.alloc(i32(t)) for t in (r, k, v, s))
    wa, ua, ga = (m0.alloc(bytes(t.tolist())) for t in (w, u, sig))
    oa = m0.alloc(4 * n)
    m0.call("rk_wkv", ra, ka, va, sa, wa, ua, ga, oa, n, count=False)
    o2, s2 = ref.wkv(r, k, v, s, w, u, sig)
    assert (get32(oa) == o2).all() and (get32(sa) == s2).all()
    x, p = rng.integers(-127, 128, size=n), rng.integers(-127, 128, size=n)
    m0.reset_heap()
    xa, pa, ma = (m0.alloc(bytes((t % 256).tolist())) for t in (x, p, w))
    oa = m0.alloc(n)
    m0.call("rk_shift", xa, pa, ma, oa, n, count=False)
    assert (np.frombuffer(m0.read(oa, n), dtype=np.int8) == ref.shift(x, p, w)).all()
    g = rng.integers(0, A + 1, size=n)
    m0.reset_heap()
    ga = m0.alloc(i32(g))
    m0.call("rk_square", ga, n, count=False)
    assert (get32(ga) == ref.square(g)).all()
    h, yy = rng.integers(-H, H + 1, size=n), rng.integers(-H, H + 1, size=n)
    m0.reset_heap()
    ha, ya = m0.alloc(i32(h)), m0.alloc(i32(yy))
    m0.call("rk_add", ha, ya, n, count=False)
    assert (get32(ha) == ref.add(h, yy)).all()
    row = rng.integers(-127, 128, size=n)
    for M, S in ((8641, 11), ((1 << 31) - 1, 40)):
        m0.reset_heap()
        ea, ha = m0.alloc(bytes((row % 256).tolist())), m0.alloc(4 * n)
        m0.call("rk_embed", ea, n, M, S, ha, count=False)
        assert (get32(ha) == ref.embed(row, M, S)).all()


def _m0_engine(m0, model):
    """The firmware engine whose fused layer step runs as rk_layer on the emulated Cortex-M0 (the other
    kernels on the Python tier)."""
    from rkfw import infer, kernels
    funcs = {name: getattr(kernels.PYTHON, name) for name in kernels.NAMES}     # FP4 kernels: rkfw.fp4
    funcs["layer"] = lambda h, P, W: E.layer(m0, P, W, h, count=False)
    return infer.Engine(model, kernels.Tier("m0", funcs))


@pytest.mark.parametrize("which", ["bundled", "random-fp4"])
def test_layer_on_m0_matches_python_tier(m0, which):
    """rk_layer (one call per layer, as the board module runs it) against the engine's step composed from the
    Python tier's kernels: the same residual stream after every step and the same calls."""
    import json

    from reku.model.synth import random_model
    from rkfw import infer, kernels, rku
    if which == "bundled":
        model = rku.load(paths.model_path("home").read_bytes())
        queries = ["dim the bedroom to 30%", "play some jazz in the kitchen"]
    else:
        tools = json.loads((paths.SKILLS / "home" / "tools.json").read_text())
        model = rku.load(random_model(tools, seed=5, d=40, f=80, layers=2, acts=["fp4", "i8"]))
        assert len(infer.Engine(model, kernels.PYTHON).prev[0]) == 22     # packed: 40 values in 22 bytes
        queries = ["turn on the kitchen light"]
    e1 = _m0_engine(m0, model)
    e2 = infer.Engine(model, kernels.PYTHON)
    assert e1.fused is not None and e2.fused is None
    for t in (3, 17, 5, 40, 2):
        e1.step(t)
        e2.step(t)
        assert list(e1.h) == list(e2.h) and list(e1.state[1]) == list(e2.state[1])
    for q in queries:
        assert e1.run(q) == e2.run(q), q
        assert list(e1.h) == list(e2.h)


def test_instruction_counter_counts(m0):
    """The counter the benchmark reports from: a bigger matrix costs proportionally more, cycles >= instructions."""
    rng = np.random.default_rng(0)
    W1, W2 = rng.integers(-1, 2, size=(64, 80)), rng.integers(-1, 2, size=(128, 80))
    x = rng.integers(-127, 128, size=80)
    _, n1, c1 = E.tmv(m0, W1, x)
    _, n2, c2 = E.tmv(m0, W2, x)
    assert 0 < n1 < n2 < 2 * n1 and c1 >= n1 and c2 >= n2
    E.tmv(m0, W1, x, count=False)          # cached uncounted translation must not hide instructions
    assert E.tmv(m0, W1, x)[1:] == (n1, c1)


def test_kernel_benchmark_costs_every_kernel_an_fp4_model_calls(m0):
    """benchmarks/bench_kernels.py replays an engine's kernel calls on the emulator: every kernel the engine
    can call has a size recorder, and the packed-FP4 ones (a model with FP4 layers and low-rank corrections
    takes the composed step) are costed on the emulator, not skipped."""
    import json

    from reku.model.synth import random_model
    from rkfw import infer, kernels, rku
    sys.path.insert(0, str(paths.ROOT / "benchmarks"))
    try:
        import bench_kernels as B
    finally:
        sys.path.pop(0)
    assert set(kernels.NAMES + kernels.OPTIONAL) <= set(B.Recorder.SIZE)
    tools = json.loads((paths.SKILLS / "home" / "tools.json").read_text())
    model = rku.load(random_model(tools, seed=5, d=40, f=80, layers=2, acts=["fp4", "fp4"], lowrank=2))
    rec = B.Recorder()
    infer.Engine(model, rec).run("turn on the kitchen light")
    seen = {name for name, _ in rec.calls}
    assert {"quant_fp4", "shift4", "tmv4"} <= seen
    rng, cache = np.random.default_rng(0), {}
    for name, size in set(rec.calls):
        n, c = B.m0_cost(m0, name, size, rng, cache)
        assert c >= n and (n > 0 or name == "copy"), (name, size)
