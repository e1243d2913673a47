"""Board benchmark: query latency, tokens/s and boot time to the first answer on the virtual board, per runtime
and kernel tier, and the heap a query needs on MicroPython.

    .venv/bin/python benchmarks/bench_board.py --out benchmarks/results [--quick]

Writes OUT/board.json. What is measured:
- virtual board (firmware unchanged, pico profile, home model, UART over a pty): for each runtime available
  (MicroPython 1.29 WebAssembly under Node, CPython) the set of typical home queries below, each answered
  over the wire: on-board time (the "us" field of the QUERY reply: engine.run() only) and round trip (host
  clock around Client.query: framing, pty, JSON). Median and p90. The tier is the one the board picked (INFO).
- boot time to first answer: from VirtualBoard.start() (process start, interpreter load, firmware import,
  profile, model load) to the reply of the first QUERY, measured on the host clock.
- in-process engine on CPython for each tier available on the host (python; native = the C kernels of
  reku._rkernel): the same queries through rkfw.infer.Engine, on-board time only.
- tokens/s: (tokens_in + tokens_out) of a query / its on-board time (prefill and decode steps together).
- heap on MicroPython (WebAssembly build, 32-bit pointers and 31-bit small ints like the rp2 port), running
  the firmware's own App (rkfw.app, pico profile, model read from the filesystem into RAM as on a board
  without ROMFS): gc.mem_alloc() after gc.collect() at each boot stage (code imported, model read, parsed,
  engine built); resident = after App.load_model(); per query, the bytes App.handle(QUERY) allocates with
  gc.disable() (nothing is freed, so resident + that bounds the peak during a query from above; resident
  bounds it from below). The wasm build's heap grows on demand (its heapsize option is not a hard limit), so
  the smallest heap that works cannot be found by bisection there.
"""
import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reku import paths
from reku.client import Client
from reku.sim import VirtualBoard, available_runtimes, micropython_mjs
from rkfw import infer, rku

HERE = Path(__file__).resolve().parent

MODEL = paths.SKILLS / "home" / "model.rku"
QUERIES = ["turn on the kitchen light", "dim the bedroom to 30%", "play some jazz in the kitchen",
           "set a timer for 10 minutes for pasta", "set an alarm for 7:30", "lock the front door",
           "turn off all the lights in the living room", "set the thermostat to 21 degrees"]
HEAP_LIMIT = 160 * 1024

HEAP_RUNNER = r'''
import fs from "fs";
import path from "path";
import { pathToFileURL } from "url";
const [mpPath, fwDir, modelFile, profileFile, queriesFile, probeFile, memoryFile] = process.argv.slice(2);
const { loadMicroPython } = await import(pathToFileURL(mpPath).href);
let out = "";
const mp = await loadMicroPython({ linebuffer: true,
  stdout: (s) => { out += s + "\n"; }, stderr: (s) => { out += s + "\n"; } });
function copyIn(src, dst) {
  try { mp.FS.mkdir(dst); } catch (e) {}
  for (const name of fs.readdirSync(src)) {
    const s = path.join(src, name), d = dst + "/" + name;
    if (fs.statSync(s).isDirectory()) { if (name !== "__pycache__") copyIn(s, d); }
    else if (name.endsWith(".py") || name.endsWith(".mpy")) mp.FS.writeFile(d, fs.readFileSync(s));
  }
}
copyIn(fwDir, "/board");
mp.FS.writeFile("/board/model.rku", fs.readFileSync(modelFile));
mp.FS.writeFile("/board/board.json", fs.readFileSync(profileFile));
mp.FS.writeFile("/board/queries.json", fs.readFileSync(queriesFile));
mp.FS.writeFile("/board/heap_probe.py", fs.readFileSync(probeFile));
if (memoryFile) mp.FS.writeFile("/board/memory.rkm", fs.readFileSync(memoryFile));
// One top-level call per stage: this build collects garbage only when control returns to JavaScript
// (heap_probe.py says why), so each stage is followed by a gc.collect() call of its own.
const collect = () => mp.runPython("import gc\ngc.collect()");
try {
  mp.runPython("import os, sys\nos.chdir('/board')\nsys.path.insert(0, '/board')\nimport heap_probe\n");
  collect();
  mp.runPython("heap_probe.start()");
  const n = mp.pyimport("heap_probe").NSTEPS;
  for (let i = 0; i < n; i++) {
    mp.runPython("heap_probe.step(" + i + ")");
    collect();
    mp.runPython("heap_probe.mark(" + i + ")");
  }
  mp.runPython("heap_probe.finish()");
}
catch (e) { out += "RESULT " + JSON.stringify({ error: String(e.message || e).split("\n").slice(-2).join(" ") }) + "\n"; }
process.stdout.write(out);
'''


def pct(xs, p):
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p * (len(s) - 1))))]


def summary(us_list, rt_ms=None, tokens=None):
    out = {"on_board_ms": {"median": statistics.median(us_list) / 1000, "p90": pct(us_list, 0.9) / 1000,
                           "n": len(us_list)}}
    if rt_ms is not None:
        out["round_trip_ms"] = {"median": statistics.median(rt_ms), "p90": pct(rt_ms, 0.9)}
    if tokens is not None:
        rates = [t / (u / 1e6) for t, u in zip(tokens, us_list)]
        out["tokens_per_s"] = {"median": statistics.median(rates), "total": sum(tokens) / (sum(us_list) / 1e6)}
    return out


def virtual_board(runtime, queries, rounds):
    t0 = time.perf_counter()
    with VirtualBoard(runtime=runtime, board="pico", model="home") as vb:
        t_serving = time.perf_counter() - t0
        with Client.serial(vb.port, timeout=120) as c:
            first = c.query(queries[0])
            t_first = time.perf_counter() - t0
            info = c.info()
            us, rt, toks, answered = [], [], [], 0
            for _ in range(rounds):
                for q in queries:
                    a = time.perf_counter()
                    r = c.query(q)
                    rt.append((time.perf_counter() - a) * 1000)
                    us.append(r.us)
                    toks.append(r.tokens_in + r.tokens_out)
                    answered += 1
    res = summary(us, rt, toks)
    res.update({"runtime": info["runtime"], "tier": info["model"]["tier"], "answered": answered,
                "queries": len(us), "first_calls": [c.name for c in first.calls],
                "boot_to_serving_s": t_serving, "boot_to_first_answer_s": t_first})
    return res


def in_process(tier, queries, rounds):
    model = rku.load(MODEL.read_bytes())
    e = infer.Engine(model, tier)
    e.run(queries[0])
    us, toks = [], []
    for _ in range(rounds):
        for q in queries:
            a = time.perf_counter_ns()
            calls, st = e.run(q)
            us.append((time.perf_counter_ns() - a) / 1000)
            toks.append(st["tokens_in"] + st["tokens_out"])
    res = summary(us, None, toks)
    res.update({"runtime": "cpython %s (in-process engine)" % platform.python_version(), "tier": e.tier})
    return res


def mpy_firmware(dst, march=None):
    """firmware/rkfw compiled with mpy-cross as `reku deploy` does (bytecode .mpy for MicroPython 1.29); with
    march (an ARM device), the viper modules too, for that architecture, as `reku deploy` does for a board."""
    from reku import deploy
    binary = deploy.pick_mpy_cross(6, 3, False)[3]
    (dst / "rkfw").mkdir(parents=True)
    for src in sorted((paths.FIRMWARE / "rkfw").glob("*.py")):
        rel = "rkfw/" + src.name
        if deploy.NATIVE_DECORATOR.search(src.read_text()):
            if march:
                (dst / "rkfw" / (src.stem + ".mpy")).write_bytes(deploy.compile_mpy(binary, src, rel, march))
                continue
            # viper code needs -march of a real board; the wasm build has no viper emitter and falls back
            (dst / "rkfw" / src.name).write_bytes(src.read_bytes())
            continue
        (dst / "rkfw" / (src.stem + ".mpy")).write_bytes(deploy.compile_mpy(binary, src, rel))
    return dst


def heap(queries, mpy=False, memory=None):
    with tempfile.TemporaryDirectory() as tmp:
        fw = mpy_firmware(Path(tmp) / "fw") if mpy else paths.FIRMWARE
        runner = Path(tmp) / "heap.mjs"
        runner.write_text(HEAP_RUNNER)
        qfile = Path(tmp) / "queries.json"
        qfile.write_text(json.dumps(queries))
        cmd = ["node", str(runner), str(micropython_mjs()), str(fw), str(MODEL),
               str(paths.BOARDS / "pico.json"), str(qfile), str(HERE / "heap_probe.py")] + ([str(memory)] if memory else [])
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        raise SystemExit("heap measurement failed: %s" % (r.stdout + r.stderr)[-500:])
    h = json.loads(lines[-1][7:])
    if h.get("error") or h.get("answered") != len(queries):
        raise SystemExit("heap measurement: the firmware did not answer every query: %s" % h)
    prev = h["start"]
    stages = []
    for name, alloc in h["stages"]:
        stages.append({"stage": name, "heap_bytes": alloc, "delta_bytes": alloc - prev})
        prev = alloc
    qa = h["query_alloc"]
    return {"code": "mpy (mpy-cross, as reku deploy)" if mpy else "py source (compiled on the board)",
            "interpreter_start_bytes": h["start"], "stages": stages,
            "resident_after_load_bytes": h["resident"], "memory_records": h.get("memory_records", 0),
            "query_alloc_gc_off_bytes": {"max": max(qa), "median": statistics.median(qa), "per_query": qa},
            "peak_upper_bound_bytes": h["resident"] + max(qa),
            "method": "gc.mem_alloc() after gc.collect() at each boot stage; resident = after App.load_model(); "
                      "per query: bytes allocated by App.handle(QUERY) with gc.disable() (nothing freed), so "
                      "the peak during a query lies between resident and resident + that (the upper bound)"}


def heap_on(port, natmod=None, queries=None, march="armv6m", frozen=False, memory=None):
    """The same heap probe on a MicroPython device (a board, or MicroPython's qemu port on a pty) through
    `mpremote mount`: firmware as .mpy, the bundled model, the pico profile, and the native module `natmod`
    (an rkernel.mpy for the device's ARCH) when given; the viper modules cross-compiled for `march` (the pico
    profile's armv6m, which Cortex-M3 and later run too). frozen: the device's firmware has rkfw frozen in
    (`reku firmware build`): no firmware files are mounted. A model in the device's ROMFS (/rom/model.rku, or an
    image compiled in with modules/rkrom) is mapped from there. The figures include what mpremote's mount
    machinery holds on the device's heap (its "start")."""
    import shutil
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "lib").mkdir()
        if not frozen:
            mpy_firmware(d / "lib", march=march)
        if natmod:
            shutil.copyfile(natmod, d / "lib" / "rkernel.mpy")
        shutil.copyfile(MODEL, d / "model.rku")
        shutil.copyfile(paths.BOARDS / "pico.json", d / "board.json")
        (d / "queries.json").write_text(json.dumps(queries or QUERIES))
        shutil.copyfile(HERE / "heap_probe.py", d / "heap_probe.py")
        if memory:
            shutil.copyfile(memory, d / "memory.rkm")
        r = subprocess.run([sys.executable, "-m", "mpremote", "connect", port, "mount", str(d), "exec",
                            "import sys; sys.path.insert(0, '/remote/lib'); sys.path.insert(0, '/remote'); import heap_probe; "
                            "heap_probe.run()"],
                           capture_output=True, text=True, timeout=900)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        raise SystemExit("heap measurement on %s failed: %s" % (port, (r.stdout + r.stderr)[-500:]))
    h = json.loads(lines[-1][7:])
    if h.get("error"):
        print("  %s after the stages below" % h["error"])
    prev = h["start"]
    for name, alloc in h.get("stages", []):
        print("  %8d B  (+%6d above the previous stage)  %s" % (alloc - h["start"], alloc - prev, name))
        prev = alloc
    if "resident" in h:
        qa = max(h["query_alloc"])
        print("  model from %s" % h.get("model_path"))
        if h.get("query_us"):
            print("  query time (the device's ticks_us, emulated on qemu): median %d us" % sorted(h["query_us"])[
                len(h["query_us"]) // 2])
        print("  tier %s; resident %d B above the start (%d B at the start); a query allocates up to %d B; "
              "peak upper bound %d B above the start; %d of %d queries answered"
              % (h["tier"], h["resident"] - h["start"], h["start"], qa, h["resident"] - h["start"] + qa,
                 h["answered"], len(h["query_alloc"])))
    return h


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(paths.ROOT / "benchmarks" / "results"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--heap-on", metavar="PORT", help="only the heap probe, on the MicroPython device at PORT "
                    "(mpremote), e.g. MicroPython's qemu port on /dev/pts/N; prints, writes nothing")
    ap.add_argument("--natmod", help="with --heap-on: an rkernel.mpy for the device's ARCH to load")
    ap.add_argument("--march", default="armv6m", help="with --heap-on: mpy-cross -march for the viper modules "
                    "(default armv6m, the Pico's; Cortex-M3 and later run it too)")
    ap.add_argument("--heap-wasm", action="store_true", help="only the heap probe, on the WebAssembly build "
                    "(firmware as .mpy); prints, writes nothing")
    ap.add_argument("--model", help="with --heap-on or --heap-wasm: this .rku instead of the bundled home model")
    ap.add_argument("--memory", metavar="FILE", help="with --heap-on or --heap-wasm: a memory of corrections made "
                    "for the model (benchmarks/bench_memory.py --keep writes one), loaded after the model")
    ap.add_argument("--frozen", action="store_true", help="with --heap-on: the device's firmware has rkfw frozen "
                    "in (reku firmware build): mount no firmware files")
    args = ap.parse_args()
    global MODEL
    if args.model:
        MODEL = Path(args.model)
    if args.heap_on:
        heap_on(args.heap_on, args.natmod, march=args.march, frozen=args.frozen, memory=args.memory)
        return
    if args.heap_wasm:
        h = heap(QUERIES, mpy=True, memory=args.memory)
        for st in h["stages"]:
            print("  %8d B  (+%6d above the previous stage)  %s" % (st["heap_bytes"], st["delta_bytes"], st["stage"]))
        print("  resident %d B; a query allocates up to %d B; peak upper bound %d B" % (
            h["resident_after_load_bytes"], h["query_alloc_gc_off_bytes"]["max"], h["peak_upper_bound_bytes"]))
        return
    queries = QUERIES[:4] if args.quick else QUERIES
    rounds = 1 if args.quick else 3
    res = {"name": "board", "command": "python benchmarks/bench_board.py --out benchmarks/results"
           + (" --quick" if args.quick else ""),
           "machine": "%s, %s, Python %s" % (platform.machine(), platform.processor() or platform.system(),
                                             platform.python_version()),
           "queries": queries, "rounds": rounds, "virtual_board": {}, "in_process": {}}
    for runtime in available_runtimes():
        print("virtual board:", runtime, flush=True)
        res["virtual_board"][runtime] = virtual_board(runtime, queries, rounds)
    from reku import native
    for tier in native.tiers():
        print("in-process engine:", tier.TIER, flush=True)
        res["in_process"][tier.TIER] = in_process(tier, queries, rounds)
    targets = []
    if "micropython" in available_runtimes():
        print("heap on MicroPython", flush=True)
        res["micropython_heap_source"] = heap(queries, mpy=False)
        res["micropython_heap"] = h = heap(queries, mpy=True)
        targets.append({"what": "MicroPython: peak heap during a query (upper bound: resident after boot with "
                                ".mpy code and the model in RAM + query allocations with gc off), bytes",
                        "value": h["peak_upper_bound_bytes"], "op": "<=", "limit": HEAP_LIMIT,
                        "ok": h["peak_upper_bound_bytes"] <= HEAP_LIMIT})
    for rt, v in res["virtual_board"].items():
        frac = v["answered"] / v["queries"]
        targets.append({"what": "%s virtual board: queries answered (fraction)" % rt, "value": frac,
                        "op": ">=", "limit": 1.0, "ok": frac >= 1.0})
    if "native" in res["in_process"]:
        ip = res["in_process"]
        res["native_vs_python_speedup"] = ip["python"]["on_board_ms"]["median"] / ip["native"]["on_board_ms"]["median"]
    res["targets"] = targets
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "board.json").write_text(json.dumps(res, indent=2) + "\n")
    for k, v in list(res["virtual_board"].items()) + [("in-process " + k, v) for k, v in res["in_process"].items()]:
        line = "%-22s tier %-6s on-board median %.1f ms p90 %.1f ms  %.0f tokens/s" % (
            k, v["tier"], v["on_board_ms"]["median"], v["on_board_ms"]["p90"], v["tokens_per_s"]["total"])
        if "round_trip_ms" in v:
            line += "  round trip median %.1f ms p90 %.1f ms  boot to first answer %.2f s" % (
                v["round_trip_ms"]["median"], v["round_trip_ms"]["p90"], v["boot_to_first_answer_s"])
        print(line)
    for key in ("micropython_heap_source", "micropython_heap"):
        if key not in res:
            continue
        h = res[key]
        print("MicroPython heap, code as %s:" % h["code"])
        for st in h["stages"]:
            print("  heap %7d B (+%6d)  %s" % (st["heap_bytes"], st["delta_bytes"], st["stage"]))
        print("MicroPython heap: resident after load %d B, query alloc (gc off) max %d B, peak <= %d B" % (
            h["resident_after_load_bytes"], h["query_alloc_gc_off_bytes"]["max"], h["peak_upper_bound_bytes"]))
    for t in targets:
        print("%s: %s %s %s -> %s" % (t["what"], t["value"], t["op"], t["limit"], "ok" if t["ok"] else "MISSED"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
