"""The training routes of issue 8 side by side, at equal size and steps, on each bundled skill's held-out set:
backprop QAT, forward-forward, float + PTQ, float + PTQ + activation-aware SVD corrections (several ranks and a
byte budget; the SVD alone and with its factors refined), and activation precision all-int8 / all-FP4 / chosen mix.

    python benchmarks/bench_routes.py --out benchmarks/results [--dims 40,80,2] [--steps 1000] [--skills home car]

Every row is a `reku` command (printed and stored); training time is the CPU time (user + system) of that command
(and of the float training for the PTQ rows), peak memory its maximum resident set. Writes routes.json. A full
run (both skills) takes about 30 minutes on 2 cores."""
import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(args):
    """(stdout, CPU seconds (user + system, all threads), peak resident MB) of one reku command, run under a wrapper
    that reports its own rusage. CPU time, not wall time: it does not depend on what else the machine runs."""
    code = ("import resource, sys; from reku.cli import main; rc = main(sys.argv[1:]); "
            "u = resource.getrusage(resource.RUSAGE_SELF); "
            "print('@@usage', u.ru_maxrss, u.ru_utime + u.ru_stime); sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code] + args, capture_output=True, text=True, cwd=str(ROOT))
    if r.returncode != 0:
        raise SystemExit("reku %s failed: %s" % (" ".join(args), r.stderr.strip()[-400:]))
    use = [ln.split() for ln in r.stdout.splitlines() if ln.startswith("@@usage")][-1]
    return r.stdout, float(use[2]), int(use[1]) / 1024.0


def evaluate(model, test):
    out, _, _ = timed(["eval", "--model", str(model), "--data", str(test), "--json"])
    return json.loads([l for l in out.splitlines() if l.startswith("{")][-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--skills", nargs="*", default=["home", "car"])
    ap.add_argument("--dims", default="40,80,2")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--examples", type=int, default=20000, help="generated training examples per run")
    ap.add_argument("--work", default="/tmp/reku-routes")
    ap.add_argument("--quick", action="store_true", help="60 steps, home only (smoke run)")
    args = ap.parse_args()
    if args.quick:
        args.steps, args.skills, args.examples = 60, ["home"], 2000
    sys.path.insert(0, str(ROOT / "host"))
    sys.path.insert(0, str(ROOT / "firmware"))
    from rkfw.fp4 import act_bytes
    d, f, L = (int(v) for v in args.dims.split(","))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    res = {"name": "routes", "machine": "%s, %s, Python %s, %d CPUs" % (
        platform.machine(), platform.system(), platform.python_version(), os.cpu_count()),
        "dims": args.dims, "steps": args.steps, "skills": {}}
    all_fp4 = act_bytes(d, f, ["fp4"] * L)
    mix_budget = act_bytes(d, f, ["fp4"] + ["i8"] * (L - 1))     # room for one FP4 layer: a mix
    for name in args.skills:
        skill = ROOT / "skills" / name
        test = skill / "test.jsonl"
        common = ["--skill", str(skill), "--dims", args.dims, "--steps", str(args.steps), "--examples",
                  str(args.examples), "--seed", "0", "--quiet"]
        rows = []

        def row(label, cmd, model, secs, mb, train_of=None):
            ev = evaluate(model, test)
            r = {"route": label, "command": "reku " + " ".join(cmd), "bytes": model.stat().st_size,
                 "exact_match": ev["exact_match"], "no_call_accuracy": ev["no_call_accuracy"],
                 "train_cpu_seconds": round(secs, 1), "peak_mb": round(mb, 1) if mb else None}
            if train_of:
                r["train_cpu_seconds"] = round(train_of[0] + secs, 1)
                r["peak_mb"] = round(max(train_of[1], mb or 0), 1)
            rows.append(r)
            print("%-6s %-36s exact %.3f  no-call %.3f  %6d B  %6.0f s CPU  %6.0f MB" % (
                name, label, r["exact_match"], r["no_call_accuracy"], r["bytes"], r["train_cpu_seconds"],
                r["peak_mb"] or 0), flush=True)

        for label, extra, out in (("backprop QAT (int8 acts)", [], "qat.rku"),
                                  ("backprop QAT, all FP4 acts", ["--acts", ",".join(["fp4"] * L)], "qat_fp4.rku"),
                                  ("forward-forward", ["--algo", "ff"], "ff.rku")):
            cmd = ["train"] + common + extra + ["--out", str(work / (name + "_" + out))]
            _, secs, mb = timed(cmd)
            row(label, cmd, work / (name + "_" + out), secs, mb)
        ck = work / (name + "_float.pt")
        cmd = ["train", "--float"] + common + ["--out", str(ck)]
        _, fsecs, fmb = timed(cmd)
        res.setdefault("float_train", {})[name] = {"command": "reku " + " ".join(cmd), "seconds": round(fsecs, 1),
                                                   "peak_mb": fmb}
        plain = None
        svd0 = ["--refine-steps", "0"]          # the SVD alone; the other SVD rows refine its factors (default)
        variants = [("float + PTQ", []),
                    ("float + PTQ + SVD rank 1", ["--svd-rank", "1"] + svd0),
                    ("float + PTQ + SVD rank 2", ["--svd-rank", "2"] + svd0),
                    ("float + PTQ + SVD rank 4", ["--svd-rank", "4"] + svd0),
                    ("float + PTQ + SVD, 10% byte budget", ["BUDGET"] + svd0),
                    ("float + PTQ + SVD rank 1, refined", ["--svd-rank", "1"]),
                    ("float + PTQ + SVD rank 4, refined", ["--svd-rank", "4"]),
                    ("float + PTQ + SVD, 10% byte budget, refined", ["BUDGET"]),
                    ("float + PTQ, all FP4 acts (budget %d B)" % all_fp4, ["--act-budget-kb", "%.6f" % ((all_fp4 + 0.5) / 1024.0)]),
                    ("float + PTQ, chosen mix (budget %d B)" % mix_budget,
                     ["--act-budget-kb", "%.6f" % ((mix_budget + 0.5) / 1024.0)])]
        for i, (label, extra) in enumerate(variants):
            if "BUDGET" in extra:
                extra = ["--svd-budget-kb", "%.3f" % (0.10 * plain / 1024.0)] + extra[1:]
            out = work / ("%s_ptq%d.rku" % (name, i))
            cmd = ["quantize", "--checkpoint", str(ck), "--out", str(out)] + extra
            _, secs, mb = timed(cmd)
            if plain is None:
                plain = out.stat().st_size
            row(label, cmd, out, secs, mb, train_of=(fsecs, fmb or 0))
        res["skills"][name] = rows
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "routes.json").write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
