"""Kernel benchmark: the native ternary matrix-vector product against its baselines, in one run.

Host (CPython extension reku._rkernel, same compiler flags for every kernel):
  tmv (host)        what host inference runs (reku.native.tier().tmv = tmv_host, rk_host.c): the matrix
                    repacked once to 2 bits per weight (cached per weight buffer), AVX2 kernel chosen at run
                    time, else the portable rk_tmv; the ratios of the targets are against this
  rk_tmv            the portable table-lookup ternary kernel over the packed .rku bytes (the board's C path)
  int8 (gcc -O3)    straightforward int8 C kernel, one weight per byte; gcc auto-vectorizes it (SSE2)
  int8 (AVX2)       the same loop with AVX2 allowed for that function (reference only, not a target)
  int8 (scalar)     the same loop with gcc's vectorizer turned off for that function
  decode            ternary weights decoded trit by trit from the packed bytes
  numpy reference   reku.model.reference.tmv (int64 matmul of the unpacked matrix, as the reference runs)
Cortex-M0+ (benchmarks/m0_emulator.py): instructions and cycles per weight on unicorn's Cortex-M0, armv6m code
size, and the home model's per-step / per-query kernel time at 133 MHz, replaying the exact kernel calls the
firmware engine makes for typical queries (recorded on CPython with the native tier).

    .venv/bin/python benchmarks/bench_kernels.py --out benchmarks/results [--quick]
writes results/kernels.json (targets for `reku bench`); --host-only prints the host timings and writes nothing.
"""

import argparse
import json
import os
import platform
import shutil
import sys
import time
from array import array
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import m0_emulator as E  # noqa: E402

from reku import native, paths  # noqa: E402
from reku.model import reference as ref  # noqa: E402
from rkfw import fp4, infer, kernels, rku  # noqa: E402

QUERIES = ["turn on the kitchen light", "dim the bedroom to 30%", "play some jazz in the kitchen",
           "set a timer for 10 minutes for pasta", "set an alarm for 7:30", "lock the front door",
           "turn off all the lights in the living room", "set the thermostat to 21 degrees"]


def timeit(fn, min_time):
    """Best time per call (seconds) over batches lasting about min_time/5 each."""
    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt > min_time / 5 or n > 1 << 22:
            break
        n *= 4
    best = dt / n
    for _ in range(4):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def host(shapes, min_time):
    N = native.raw()
    rng = np.random.default_rng(0)
    rows = []
    for R, C in shapes:
        W = rng.integers(-1, 2, size=(R, C))
        packed = E.pack(W)
        W8 = W.astype(np.int8)
        W64 = W.astype(np.int64)
        x = rng.integers(-127, 128, size=C).astype(np.int8)
        x64 = x.astype(np.int64)
        y = np.zeros(R, dtype=np.int32)
        scratch = bytearray(N.SCRATCH_BYTES)
        want = W64 @ x64
        avx2 = N.host_simd() == "avx2"
        checks = [(N.tmv_host, packed), (N.tmv, packed), (N.tmv_i8, W8), (N.tmv_i8_scalar, W8),
                  (N.tmv_decode, packed)] + ([(N.tmv_i8_avx2, W8)] if avx2 else [])
        for fn, w in checks:
            y[:] = 0
            fn(w, R, C, x, y)
            assert (y == want).all(), fn.__name__
        t = {
            "tmv_host": timeit(lambda: N.tmv_host(packed, R, C, x, y), min_time),
            "rk_tmv": timeit(lambda: N.tmv(packed, R, C, x, y, scratch), min_time),
            "int8_O3": timeit(lambda: N.tmv_i8(W8, R, C, x, y), min_time),
            "int8_scalar": timeit(lambda: N.tmv_i8_scalar(W8, R, C, x, y), min_time),
            "decode": timeit(lambda: N.tmv_decode(packed, R, C, x, y), min_time / 4),
            "numpy_reference": timeit(lambda: ref.tmv(W64, x64), min_time),
        }
        if avx2:
            t["int8_avx2"] = timeit(lambda: N.tmv_i8_avx2(W8, R, C, x, y), min_time)
        t0 = time.perf_counter()
        N.tmv_prepare(packed, R, C)
        prep = time.perf_counter() - t0
        rows.append({"R": R, "C": C, "host_kernel": N.host_simd(), "us": {k: v * 1e6 for k, v in t.items()},
                     "prepare_us_once": prep * 1e6,
                     "speedup": {k: t[k] / t["tmv_host"] for k in t if k != "tmv_host"},
                     "speedup_rk_tmv": {k: t[k] / t["rk_tmv"] for k in t if k not in ("tmv_host", "rk_tmv")}})
    return rows


class Recorder:
    """A kernel tier that forwards to the native kernels and records (name, size) of every call."""

    SIZE = {"tmv": lambda a: (a[1], a[2]), "tmv4": lambda a: (a[1], a[2]), "quant_i8": lambda a: (len(a[1]),),
            "quant_fp4": lambda a: (len(a[0]),), "shift": lambda a: (len(a[3]),), "shift4": lambda a: (len(a[3]),), "copy": lambda a: (len(a[1]),), "requant": lambda a: (a[1],),
            "wkv": lambda a: (len(a[7]),), "square": lambda a: (a[1],), "add": lambda a: (len(a[0]),),
            "embed": lambda a: (a[2],), "embed_t": lambda a: (a[2],), "dot_rows": lambda a: (a[1], a[2]),
            "layer": lambda a: (len(a[0]), len(a[2][10]), bool(a[1][25]))}

    def __init__(self):
        self.calls = []
        tier = native.tier()
        self.TIER = "native"
        for name in kernels.NAMES + kernels.OPTIONAL:
            setattr(self, name, self._wrap(name, getattr(tier, name)))
        self.layer_args = {}      # size -> (h, P, W) of the first layer call of that size (copied)

    def _wrap(self, name, fn):
        size = self.SIZE[name]

        def call(*a):
            sz = size(a)
            self.calls.append((name, sz))
            if name == "layer" and sz not in self.layer_args:
                self.layer_args[sz] = (array("i", a[0]), a[1], [type(b)(b.typecode, b) for b in a[2]])
            return fn(*a)
        return call


def m0_cost(m, name, size, rng, cache, layer_args=None):
    """Cycles and instructions of one kernel call of that size on the emulator (memoized). A fused layer step
    (rk_layer) runs with the model's own weights and the recorded call's residual stream and state."""
    key = (name, size)
    if key in cache:
        return cache[key]
    m.reset_heap()
    if name == "layer":
        h, P, W = layer_args[size]
        n, c = E.layer(m, P, [type(b)(b.typecode, b) for b in W], array("i", h))
    elif name == "tmv":
        R, C = size
        _, n, c = E.tmv(m, rng.integers(-1, 2, size=(R, C)), rng.integers(-127, 128, size=C))
    elif name == "tmv4":
        R, C = size
        xp = array("b", bytes(fp4.fp4_bytes(C)))
        fp4.quant_fp4(array("i", rng.integers(-(1 << 20), 1 << 20, size=C).tolist()), xp)
        _, n, c = E.tmv4(m, rng.integers(-1, 2, size=(R, C)), bytes(xp))
    elif name in ("quant_i8", "quant_fp4"):
        _, _, n, c = E.quant(m, "rk_" + name, rng.integers(-(1 << 20), 1 << 20, size=size[0]))
    elif name == "dot_rows":
        rows, dk = size
        Ka = m.alloc(rows * dk)
        qa = m.alloc(dk)
        oa = m.alloc(4 * rows)
        _, n, c = m.call("rk_dot_rows", Ka, rows, dk, qa, oa)
    elif name == "copy":
        n, c = 0, 0          # a byte loop in the binding, not in the core: counted with the interpreter overhead
    else:
        k = size[0]
        a = [m.alloc(4 * k) for _ in range(8)]
        args = {"shift": (a[0], a[1], a[2], a[3], k), "shift4": (a[0], a[1], a[2], a[3], k), "requant": (a[0], k, 12345, 14, -2047, 2047),
                "wkv": (a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], k), "square": (a[0], k),
                "add": (a[0], a[1], k), "embed": (a[0], k, 8641, 11, a[1]),
                "embed_t": (a[0], k, 8641, 11, a[1])}[name]
        _, n, c = m.call("rk_" + name, *args)
    cache[key] = (n, c)
    return n, c


def m0(quick):
    res = E.measure("-O2")
    res["size_Os"] = E.core_size("-Os")
    model = rku.load(paths.model_path("home").read_bytes())
    img = E.Image("-O2")
    m = E.M0(img)
    rng = np.random.default_rng(7)
    cache = {}
    rec = Recorder()
    eng = infer.Engine(model, rec)
    queries = QUERIES[:3] if quick else QUERIES
    per_query = []
    for q in queries:
        rec.calls = []
        calls, st = eng.run(q)
        n_tot, c_tot = 0, 0
        by = {}
        for name, size in rec.calls:
            n, c = m0_cost(m, name, size, rng, cache, rec.layer_args)
            n_tot += n
            c_tot += c
            by[name] = by.get(name, 0) + c
        per_query.append({"query": q, "tokens_in": st["tokens_in"], "tokens_out": st["tokens_out"],
                          "kernel_calls": len(rec.calls), "instructions": n_tot, "cycles": c_tot,
                          "ms_at_133MHz": c_tot / (E.MHZ * 1e3), "cycles_by_kernel": by, "calls": calls})
    steps = sum(p["tokens_in"] + p["tokens_out"] for p in per_query)
    cyc = sum(p["cycles"] for p in per_query)
    res["home_queries"] = per_query
    res["home_summary"] = {
        "queries": len(per_query),
        "mean_ms_kernels": float(np.mean([p["ms_at_133MHz"] for p in per_query])),
        "max_ms_kernels": float(np.max([p["ms_at_133MHz"] for p in per_query])),
        "mean_steps": steps / len(per_query),
        "cycles_per_step": cyc / steps,
        "ms_per_step": cyc / steps / (E.MHZ * 1e3),
        "mean_kernel_calls": float(np.mean([p["kernel_calls"] for p in per_query])),
    }
    return res


# Cortex-M0+ cycles per x86-64 instruction for plain C: the emulator's cycles of the step-piece kernels
# (requant, quant_i8, shift, wkv, add, square) against callgrind's x86-64 instruction counts of the same calls,
# 1.21 overall, 1.13-1.59 by function (docs/native.md). Interpreter code is branchier and runs from XIP flash:
# the bench also reports the total at 2.0 cycles per instruction as a pessimistic bound.
M0_CYCLES_PER_X86 = 1.21
M0_CYCLES_PER_X86_PESSIMISTIC = 2.0

INTERP_SCRIPT = """
import sys
from rkfw import app as A, infer, rku, status as S, transport


# Stand-ins for the rp2 machine classes the app's step hook touches. Their methods are builtins (C functions,
# as on the board) with the board's call shapes: Pin.value(v) -> abs(v), UART.any() -> int() = 0 (quiet link),
# WDT.feed() -> int().
class Pin:
    OUT = 1
    value = staticmethod(abs)

    def __init__(self, *a, **k):
        pass


class UART:
    any = staticmethod(int)

    def __init__(self, *a, **k):
        pass


class WDT:
    feed = staticmethod(int)

    def __init__(self, *a, **k):
        pass


class Machine:
    Pin = Pin
    UART = UART
    WDT = WDT


profile = {"name": "pico", "port": "rp2", "led": "LED", "led_type": "gpio", "uart": {"id": 0, "tx": 0, "rx": 1}}
app = A.App(profile, {})
app.status = S.Status(profile, {}, machine=Machine)
app.status.arm()
app.transports = [transport.Uart(Machine, profile["uart"])]
with open(sys.argv[1], "rb") as f:
    m = rku.load(f.read())
e = infer.Engine(m)
assert e.tier == "native" and e.fused is not None
e.hook = app.between_steps      # what runs before every step on a board: watchdog, LED, link poll
e.run("turn on the kitchen light")
for q in %r[:int(sys.argv[2])]:
    e.run(q)
"""


def interpreter(exe, queries, heap_kb=320):
    """x86-64 instructions per query that a MicroPython unix build with rkernel compiled in (user C module)
    spends outside rk_core.c while the firmware engine answers the queries: the interpreter, the grammar, the
    bindings, the app's per-step hook (watchdog, LED, UART poll) and the garbage collector (callgrind; difference of runs with N and 0 queries, so import, model
    load and one warm-up query cancel). heap_kb: the unix port's heap: about a Pico's 200 KB in 32-bit words
    (8-byte words make objects about 1.6 times larger; with rkernel built in, tmv's 31 KB of x86-64 table
    scratch lives on that heap too), so collections run about as often as on the board."""
    import re
    import subprocess
    import tempfile
    counts = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "q.py"
        script.write_text(INTERP_SCRIPT % (list(queries),))
        for n in (0, len(queries)):
            out = Path(tmp) / ("cg.%d" % n)
            r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=%s" % out, exe,
                                "-X", "heapsize=%dK" % heap_kb, str(script), str(paths.model_path("home")), str(n)],
                               capture_output=True, text=True, env={"MICROPYPATH": str(paths.FIRMWARE)},
                               cwd=str(HERE.parent))
            if r.returncode:
                raise SystemExit("interpreter measurement failed: %s" % r.stderr[-800:])
            ann = subprocess.run(["callgrind_annotate", "--auto=no", "--threshold=100", str(out)],
                                 check=True, capture_output=True, text=True).stdout
            funcs = {}
            for line in ann.splitlines():
                m = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S+:\S+)", line)
                if m:
                    funcs[m.group(2)] = funcs.get(m.group(2), 0) + int(m.group(1).replace(",", ""))
            counts.append(funcs)
    diff = {k: counts[1].get(k, 0) - counts[0].get(k, 0) for k in set(counts[0]) | set(counts[1])}
    core = sum(v for k, v in diff.items() if "rk_core.c:" in k)
    gc = sum(v for k, v in diff.items() if "/py/gc.c:" in k)
    n = len(queries)
    return {"binary": exe, "heap_kb": heap_kb, "x86_instructions_per_query_outside_core": (sum(diff.values()) - core) / n,
            "of_which_gc": gc / n, "x86_instructions_per_query_in_core": core / n}


def target(what, value, op, limit):
    ok = value <= limit if op == "<=" else value >= limit
    return {"what": what, "value": value, "op": op, "limit": limit, "ok": bool(ok)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--host-only", action="store_true", help="only the host timings, printed; nothing written")
    a = ap.parse_args()
    shapes = [(256, 256), (80, 80), (160, 80), (80, 160)] if a.quick else \
        [(256, 256), (80, 80), (160, 80), (80, 160), (640, 160), (1024, 1024)]
    t0 = time.time()
    hrows = host(shapes, 0.05 if a.quick else 0.3)
    if a.host_only:
        for r in hrows:
            print("host %4dx%-4d tmv (%s) %7.2f us, rk_tmv %7.2f us | speedup of tmv: %s" % (
                r["R"], r["C"], r["host_kernel"], r["us"]["tmv_host"], r["us"]["rk_tmv"],
                ", ".join("%s %.1fx" % kv for kv in r["speedup"].items())))
        return
    mres = m0(a.quick)
    exe = os.environ.get("REKU_MICROPYTHON_RKERNEL")
    if exe and shutil.which("valgrind"):
        it = interpreter(exe, QUERIES[:3] if a.quick else QUERIES)
        ms = it["x86_instructions_per_query_outside_core"] / (E.MHZ * 1e3)
        it["ms_at_133MHz"] = ms * M0_CYCLES_PER_X86
        it["ms_at_133MHz_pessimistic"] = ms * M0_CYCLES_PER_X86_PESSIMISTIC
        mres["interpreter"] = it
    h256 = hrows[0]["speedup"]
    hk = hrows[0]["host_kernel"]
    t = mres["tmv_256"]
    i8 = mres["i8_256"]
    targets = [
        target("M0+ tmv 256x256 instructions/weight", t["instr_per_weight"], "<=", 1.5),
        target("M0+ armv6m core code size (bytes, -O2)", mres["size"]["text"], "<=", 8192),
        target("M0+ int8 dot / rk_tmv instructions (same run)", i8["instructions"] / t["instructions"], ">=", 3.0),
        target("host 256x256: tmv (host path, %s) vs int8 C, scalar (x)" % hk, h256["int8_scalar"], ">=", 3.0),
        target("host 256x256: tmv (host path, %s) vs int8 C, gcc -O3 auto-vectorized (x)" % hk, h256["int8_O3"],
               ">=", 3.0),
        target("host 256x256: tmv (host path, %s) vs numpy reference (x)" % hk, h256["numpy_reference"], ">=", 20.0),
        target("RP2040 home query, kernels only, mean (ms at 133 MHz)", mres["home_summary"]["mean_ms_kernels"],
               "<=", 150.0),
    ]
    if "interpreter" in mres:
        k = mres["home_summary"]["mean_ms_kernels"]
        it = mres["interpreter"]
        targets.append(target("RP2040 home query, kernels + interpreter, mean (estimate, ms at 133 MHz)",
                              k + it["ms_at_133MHz"], "<=", 150.0))
        targets.append(target("  the same at %.1f M0+ cycles per x86-64 instruction (pessimistic)"
                              % M0_CYCLES_PER_X86_PESSIMISTIC, k + it["ms_at_133MHz_pessimistic"], "<=", 150.0))
    out = {"name": "kernels", "targets": targets, "host": hrows, "m0": mres,
           "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine(),
                       "numpy": np.__version__},
           "quick": a.quick, "seconds": time.time() - t0}
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "kernels.json").write_text(json.dumps(out, indent=1) + "\n")
    for r in hrows:
        print("host %4dx%-4d tmv (%s) %7.2f us, rk_tmv %7.2f us | speedup of tmv: %s" % (
            r["R"], r["C"], r["host_kernel"], r["us"]["tmv_host"], r["us"]["rk_tmv"],
            ", ".join("%s %.1fx" % kv for kv in r["speedup"].items())))
    print("M0+ 256x256: %.3f instr/weight, %.3f cycles/weight (int8: %.2f instr, %.2f cycles); core %d bytes" % (
        t["instr_per_weight"], t["cycles_per_weight"], i8["instr_per_weight"], i8["cycles_per_weight"],
        mres["size"]["text"]))
    s = mres["home_summary"]
    print("home model on RP2040 (kernels only): %.2f ms/step, mean query %.1f ms (%.1f steps)" % (
        s["ms_per_step"], s["mean_ms_kernels"], s["mean_steps"]))
    for tt in targets:
        print("  %-62s %10.3f %s %-8g %s" % (tt["what"], tt["value"], tt["op"], tt["limit"], "ok" if tt["ok"] else "NO"))


if __name__ == "__main__":
    main()
