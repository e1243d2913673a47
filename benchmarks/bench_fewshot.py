"""Few-example benchmark (issue 19): a new user's experience. For home and car, a 30-line sample of the skill's
examples.jsonl (random.Random(30), fixed) becomes a skill of its own (the same tools.json); `reku train` with its
defaults and a 20-minute cap on the 2 cores trains a model from it; `reku eval` measures it on the skill's
test.jsonl, used for this final figure only (nothing is chosen on it). The third skill, greenhouse, was written
for this benchmark: its test set before its 30 example lines, both before any training on it.

The dev set that choices are made on: the skill's other example lines (the ones the sample left out: hand-written,
never trained on in this benchmark), each placeholder filled once (random.Random(7)), no noise added.

    .venv/bin/python benchmarks/bench_fewshot.py --out benchmarks/results [--quick] [--skills home car]
        [--dev-only] [--name fewshot] [--keep DIR] [-- reku train options...]

Writes OUT/NAME.json (default fewshot.json). --quick: a 1-minute cap (a smoke run; its figures are not the
benchmark's). --dev-only: no test-set figure (for choices). Options after `--` go to `reku train` as given (e.g.
`-- --schema-lines 0`).
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


def example_lines(skill_dir):
    return [ln for ln in (skill_dir / "examples.jsonl").read_text().splitlines()
            if ln.strip() and not ln.lstrip().startswith("//")]


def sample_lines(skill_dir, n=SAMPLE, seed=30):
    return random.Random(seed).sample(example_lines(skill_dir), n)


def dev_lines(skill_dir, sample):
    """The lines the sample left out, placeholders filled once (reku.model.data.requests): hand-written requests."""
    from reku.model import data
    from reku.model.skill import load_skill
    skill = load_skill(skill_dir)
    rest = [json.loads(ln) for ln in example_lines(skill_dir) if ln not in sample]
    return [json.dumps(r) for r in data.requests(rest, skill)]


def evaluate(model, data_file):
    ev = subprocess.run(REKU + ["eval", "--model", str(model), "--data", str(data_file), "--json"],
                        capture_output=True, text=True, cwd=str(ROOT))
    if ev.returncode != 0:
        raise SystemExit("reku eval failed on %s: %s" % (data_file, ev.stderr.strip()[-500:]))
    return json.loads(ev.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skills", nargs="+", default=["home", "car", "greenhouse"])
    ap.add_argument("--dev-only", action="store_true", help="no test-set figure (runs that make a choice)")
    ap.add_argument("--name", default="fewshot", help="results file OUT/NAME.json")
    ap.add_argument("--keep", metavar="DIR", help="also keep each trained model as DIR/SKILL.rku (to read its misses: "
                    "reku eval --errors N)")
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    minutes = 1 if args.quick else 20
    res = {"name": args.name, "command": "python benchmarks/bench_fewshot.py --out benchmarks/results"
           + (" --quick" if args.quick else "") + (" --dev-only" if args.dev_only else "")
           + (" --skills " + " ".join(args.skills) if args.skills != ["home", "car", "greenhouse"] else "")
           + (" --name " + args.name if args.name != "fewshot" else "") + (" -- " + " ".join(extra) if extra else ""),
           "train_options": extra, "sample_lines": SAMPLE, "minutes_cap": minutes, "skills": {}}
    targets = []
    for name in args.skills:
        src = ROOT / "skills" / name
        with tempfile.TemporaryDirectory() as d:
            sk = Path(d) / name
            sk.mkdir()
            shutil.copyfile(src / "tools.json", sk / "tools.json")
            lines = sample_lines(src)
            (sk / "examples.jsonl").write_text("\n".join(lines) + "\n")
            dev = Path(d) / "dev.jsonl"
            dev.write_text("\n".join(dev_lines(src, set(lines))) + "\n")
            fns = sorted({c["name"] for ln in lines for c in json.loads(ln)["calls"]})
            model = Path(d) / "model.rku"
            t0 = time.time()
            r = subprocess.run(REKU + ["train", "--skill", str(sk), "--out", str(model), "--minutes", str(minutes),
                                       "--quiet"] + extra, capture_output=True, text=True, cwd=str(ROOT))
            wall = time.time() - t0
            if r.returncode != 0:
                raise SystemExit("reku train failed for %s: %s" % (name, r.stderr.strip()[-500:]))
            n_dev = len([ln for ln in dev.read_text().splitlines() if ln.strip()])
            dv = evaluate(model, dev) if n_dev else None      # greenhouse: its 30 lines are all the sample
            if args.keep:
                Path(args.keep).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(model, Path(args.keep) / (name + ".rku"))
            e = None if args.dev_only else evaluate(model, src / "test.jsonl")
            # requests for values the schema lacks (written before any refusing model): no call, and why
            rf = None if args.dev_only or not (src / "refuse.jsonl").exists() else evaluate(model, src / "refuse.jsonl")
        n_fns = len(json.loads((src / "tools.json").read_text()))
        res["skills"][name] = {"train_wall_s": wall, "functions_in_sample": len(fns), "functions": n_fns,
                               "train_summary": r.stdout.strip().splitlines()[-1], "coverage_notes":
                               sum(1 for ln in r.stderr.splitlines() if "example line" in ln or "no example" in ln),
                               "dev_requests": n_dev, "dev": dv, "test": e, "refuse": rf}
        if dv:
            print("%s: dev (%d unsampled example lines) exact %.3f, no-call %.3f"
                  % (name, n_dev, dv["exact_match"], dv["no_call_accuracy"]), flush=True)
        if e is None:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            (out / (args.name + ".json")).write_text(json.dumps(res, indent=1) + "\n")
            continue
        targets.append({"what": "few-example %s (30 lines, %d min): test exact match" % (name, minutes),
                        "value": round(e["exact_match"], 3), "op": ">=", "limit": 0.9, "ok": e["exact_match"] >= 0.9})
        targets.append({"what": "few-example %s (30 lines, %d min): test no-call accuracy" % (name, minutes),
                        "value": round(e["no_call_accuracy"], 3), "op": ">=", "limit": 0.9,
                        "ok": e["no_call_accuracy"] >= 0.9})
        print("%s: %d of %d functions in the sample; trained in %.0f s; test exact %.3f, no-call %.3f"
              % (name, len(fns), n_fns, wall, e["exact_match"], e["no_call_accuracy"]), flush=True)
        if rf:
            print("%s: out-of-schema values (%d): no call %.3f, reason and parameter %.3f"
                  % (name, rf["n"], rf["exact_match"], rf.get("reason_accuracy", 0.0)), flush=True)
        res["targets"] = targets                    # written after each skill: a cut run keeps what it measured
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / (args.name + ".json")).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
