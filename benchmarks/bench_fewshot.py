"""Few-example benchmark (issue 19): a new user's experience. For home and car, a 30-line sample of the skill's
examples.jsonl (random.Random(30), fixed) becomes a skill of its own (the same tools.json); `reku train` with its
defaults and a 20-minute cap on the 2 cores trains a model from it; `reku eval` measures it on the skill's
test.jsonl, used for this final figure only (nothing is chosen on it).

    .venv/bin/python benchmarks/bench_fewshot.py --out benchmarks/results [--quick] [--skills home car]

Writes OUT/fewshot.json. --quick: a 1-minute cap (a smoke run; its figures are not the benchmark's).
"""
import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REKU = [sys.executable, "-m", "reku.cli"]
SAMPLE = 30


def sample_lines(skill_dir, n=SAMPLE, seed=30):
    lines = [ln for ln in (skill_dir / "examples.jsonl").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("//")]
    return random.Random(seed).sample(lines, n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skills", nargs="+", default=["home", "car"])
    args = ap.parse_args()
    minutes = 1 if args.quick else 20
    res = {"name": "fewshot", "command": "python benchmarks/bench_fewshot.py --out benchmarks/results"
           + (" --quick" if args.quick else ""), "sample_lines": SAMPLE, "minutes_cap": minutes, "skills": {}}
    targets = []
    for name in args.skills:
        src = ROOT / "skills" / name
        with tempfile.TemporaryDirectory() as d:
            sk = Path(d) / name
            sk.mkdir()
            shutil.copyfile(src / "tools.json", sk / "tools.json")
            lines = sample_lines(src)
            (sk / "examples.jsonl").write_text("\n".join(lines) + "\n")
            fns = sorted({c["name"] for ln in lines for c in json.loads(ln)["calls"]})
            model = Path(d) / "model.rku"
            t0 = time.time()
            r = subprocess.run(REKU + ["train", "--skill", str(sk), "--out", str(model), "--minutes", str(minutes),
                                       "--quiet"], capture_output=True, text=True, cwd=str(ROOT))
            wall = time.time() - t0
            if r.returncode != 0:
                raise SystemExit("reku train failed for %s: %s" % (name, r.stderr.strip()[-500:]))
            ev = subprocess.run(REKU + ["eval", "--model", str(model), "--data", str(src / "test.jsonl"), "--json"],
                                capture_output=True, text=True, cwd=str(ROOT))
            if ev.returncode != 0:
                raise SystemExit("reku eval failed for %s: %s" % (name, ev.stderr.strip()[-500:]))
            e = json.loads(ev.stdout.strip().splitlines()[-1])
        n_fns = len(json.loads((src / "tools.json").read_text()))
        res["skills"][name] = {"train_wall_s": wall, "functions_in_sample": len(fns), "functions": n_fns,
                               "train_summary": r.stdout.strip().splitlines()[-1], "coverage_notes":
                               sum(1 for ln in r.stderr.splitlines() if "example line" in ln or "no example" in ln),
                               "test": e}
        targets.append({"what": "few-example %s (30 lines, %d min): test exact match" % (name, minutes),
                        "value": round(e["exact_match"], 3), "op": ">=", "limit": 0.9, "ok": e["exact_match"] >= 0.9})
        targets.append({"what": "few-example %s (30 lines, %d min): test no-call accuracy" % (name, minutes),
                        "value": round(e["no_call_accuracy"], 3), "op": ">=", "limit": 0.9,
                        "ok": e["no_call_accuracy"] >= 0.9})
        print("%s: %d of %d functions in the sample; trained in %.0f s; test exact %.3f, no-call %.3f"
              % (name, len(fns), n_fns, wall, e["exact_match"], e["no_call_accuracy"]), flush=True)
        res["targets"] = targets                    # written after each skill: a cut run keeps what it measured
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "fewshot.json").write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
