"""`reku bench`: run the benchmark scripts in benchmarks/ and collect their results.

Each `benchmarks/bench_<name>.py` is a standalone script run as `python bench_<name>.py --out DIR [--quick]`;
it writes `DIR/<name>.json` with at least {"name": ..., "targets": [{"what", "value", "op", "limit", "ok"}]}
(ratios measured against a baseline in the same run), plus whatever figures it measures. This command runs them
and writes benchmarks/results/summary.md."""

import json
import subprocess
import sys
import time

from . import paths
from .errors import RekuError

BENCH_DIR = paths.ROOT / "benchmarks"
RESULTS = BENCH_DIR / "results"


def scripts():
    return sorted(BENCH_DIR.glob("bench_*.py"))


def configure(p):
    p.add_argument("names", nargs="*", help="run only these benchmarks (e.g. kernels protocol)")
    p.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    p.add_argument("--out", default=str(RESULTS), help="results folder (default benchmarks/results)")


def run(args):
    if not BENCH_DIR.is_dir():
        raise RekuError("the benchmarks live in a repository checkout (benchmarks/ next to host/); this reku is "
                        "installed from a wheel: run `make bench` in a clone")
    found = {s.stem[len("bench_"):]: s for s in scripts()}
    unknown = [n for n in args.names if n not in found]
    if unknown:
        raise RekuError("no benchmark named %s (have: %s)" % (", ".join(unknown), ", ".join(sorted(found))))
    chosen = args.names or sorted(found)
    out = paths.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, failed = [], []
    for name in chosen:
        print("== bench %s" % name, flush=True)
        t0 = time.monotonic()
        cmd = [sys.executable, str(found[name]), "--out", str(out)] + (["--quick"] if args.quick else [])
        r = subprocess.run(cmd)
        if r.returncode != 0:
            failed.append(name)
            continue
        res = out / (name + ".json")
        if not res.exists():
            failed.append(name)
            print("bench %s wrote no %s" % (name, res), file=sys.stderr)
            continue
        for t in json.loads(res.read_text()).get("targets", []):
            rows.append((name, t["what"], t["value"], t["op"], t["limit"], t["ok"]))
        print("   (%.1f s)" % (time.monotonic() - t0))
    lines = ["# Benchmark summary", "", "Written by `reku bench`%s." % (" --quick" if args.quick else ""), "",
             "| bench | target | measured | limit | met |", "| --- | --- | --- | --- | --- |"]
    for name, what, value, op, limit, ok in rows:
        lines.append("| %s | %s | %s | %s %s | %s |" % (name, what, _fmt(value), op, _fmt(limit), "yes" if ok else "NO"))
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[4:]))
    if failed:
        raise RekuError("benchmarks failed to run: %s" % ", ".join(failed))
    return 0


def _fmt(v):
    return ("%.3g" % v) if isinstance(v, float) else str(v)
