"""Forward-forward against backprop QAT (issue 21): each block objective of `reku train --algo ff`
(--ff-objective goodness | goodness+heads | heads, docs/routes.md) and QAT, at the same shape and step budget, on
the home and car skills.

    .venv/bin/python benchmarks/bench_ff.py --out benchmarks/results [--quick] [--dims 40,80,2] [--steps 1000]

Every row trains with `reku train`'s defaults otherwise (20,000 generated examples, batch 64, seed 0, lr 3e-3 unless
the row says) and keeps the best of its held-out checkpoints on the generated dev set (1,000 requests, seed 777).
Each route's row reported in the targets (FF against QAT) is the one with the best mean dev exact match over the
skills; test.jsonl gives the final figures only. CPU seconds are the process's user + system time for the row (not wall time). Writes OUT/ff.json."""
import argparse
import json
import resource
import sys
from pathlib import Path

from reku import paths
from reku.model import data as datagen
from reku.model.evaluate import evaluate_model
from reku.model.learn import DEV_SEED
from reku.model.skill import load_skill, read_jsonl
from reku.model.train import train
from rkfw import rku

ROWS = [("backprop QAT", {"algo": "qat"}),
        ("backprop QAT, lr 6e-3", {"algo": "qat", "lr": 6e-3}),
        ("FF, goodness (Hinton)", {"algo": "ff", "ff_objective": "goodness"}),
        ("FF, goodness + block heads", {"algo": "ff", "ff_objective": "goodness+heads"}),
        ("FF, block heads", {"algo": "ff", "ff_objective": "heads"}),
        ("FF, block heads, lr 6e-3", {"algo": "ff", "ff_objective": "heads", "lr": 6e-3}),
        # longer runs, both routes at the chosen learning rate: outside the targets (which compare at --steps)
        ("backprop QAT, lr 6e-3, 3x steps", {"algo": "qat", "lr": 6e-3, "steps_x": 3}),
        ("FF, block heads, lr 6e-3, 3x steps", {"algo": "ff", "ff_objective": "heads", "lr": 6e-3, "steps_x": 3})]


def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(paths.ROOT / "benchmarks" / "results"))
    ap.add_argument("--dims", default="40,80,2")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--skills", nargs="*", default=["home", "car"])
    ap.add_argument("--quick", action="store_true", help="60 steps, 2,000 examples")
    ap.add_argument("--only", nargs="*", help="run only these rows (labels) and keep the others of OUT/ff.json")
    args = ap.parse_args()
    n_train = 20000
    if args.quick:
        args.steps, n_train = 60, 2000
    d, f, L = (int(v) for v in args.dims.split(","))
    res = {"name": "ff", "command": "python benchmarks/bench_ff.py --out benchmarks/results"
           + (" --quick" if args.quick else ""), "dims": args.dims, "steps": args.steps, "skills": {}}
    prev = Path(args.out) / "ff.json"
    if args.only and prev.is_file():
        res["skills"] = json.loads(prev.read_text())["skills"]
    for name in args.skills:
        skill = load_skill(paths.SKILLS / name, lenient=True)
        dev = datagen.generate(skill, 1000, seed=DEV_SEED)
        test = read_jsonl(paths.SKILLS / name / "test.jsonl")
        rows = res["skills"].get(name, {})
        for label, kw in ROWS:
            if args.only and label not in args.only:
                continue
            t0 = cpu()
            kw = dict(kw)
            steps = args.steps * kw.pop("steps_x", 1)
            blob, info = train(skill, dev_data=dev, log=lambda s: None, d=d, f=f, layers=L, steps=steps,
                               n_train=n_train, seed=0, eval_every=max(1, steps // 4), **kw)
            secs = cpu() - t0
            m = rku.load(blob)
            ev = evaluate_model(m, test)
            rows[label] = {"config": kw, "steps": steps, "dev_exact": info["eval"]["exact_match"], "test_exact": ev["exact_match"],
                           "test_no_call": ev["no_call_accuracy"], "cpu_seconds": round(secs, 1)}
            print("%-5s %-28s dev %.3f  test %.3f  no-call %.3f  %5.0f s CPU" % (
                name, label, rows[label]["dev_exact"], ev["exact_match"], ev["no_call_accuracy"], secs), flush=True)
        res["skills"][name] = rows
    def best(algo):       # the row of that route with the best mean dev exact match over the skills
        have = [lb for lb, kw in ROWS if kw["algo"] == algo and "steps_x" not in kw
                and all(lb in res["skills"][s] for s in args.skills)]
        return max(have, key=lambda lb: sum(res["skills"][s][lb]["dev_exact"] for s in args.skills))
    ff, qat = best("ff"), best("qat")
    res["chosen_on_dev"] = {"ff": ff, "qat": qat}
    res["targets"] = []
    for s in args.skills:
        gap = round(100 * (res["skills"][s][qat]["test_exact"] - res["skills"][s][ff]["test_exact"]), 1)
        res["targets"].append({"what": "%s: %s vs %s, test exact (points behind)" % (s, ff, qat),
                               "value": gap, "op": "<=", "limit": 5, "ok": gap <= 5})
    lq, lf = "backprop QAT, lr 6e-3, 3x steps", "FF, block heads, lr 6e-3, 3x steps"
    res["longer_runs"] = {s: round(100 * (res["skills"][s][lq]["test_exact"] - res["skills"][s][lf]["test_exact"]), 1)
                          for s in args.skills if lq in res["skills"][s] and lf in res["skills"][s]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ff.json").write_text(json.dumps(res, indent=1) + "\n")
    for t in res["targets"]:
        print("%-70s %s %s %s  %s" % (t["what"], t["value"], t["op"], t["limit"], "ok" if t["ok"] else "MISSED"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
