"""Oscillation of ternary weights during QAT, with and without dampening and freezing (issue 3).

    python benchmarks/bench_flips.py --out benchmarks/results [--size tiny] [--steps 1500]

Trains the same model (same seed, data and schedule) three times: plain STE, STE + dampening, STE + dampening +
iterative freezing (reku train's default). Reports the flip rate (ternary values that changed, per weight per
optimizer step) over the whole run and over its last 40% (where the schedule's learning rate is small and flips
are oscillation rather than learning), the fraction of weights frozen at the end, and the generated dev set's
exact match. Writes flips.json."""
import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "host"))
sys.path.insert(0, str(ROOT / "firmware"))

CONFIGS = [
    ("STE only", {"dampen": 0, "freeze_after": 0}),
    ("STE + dampening", {"dampen": 1e-3, "freeze_after": 0}),
    ("STE + dampening + freezing (default)", {"dampen": 1e-3, "freeze_after": 0.6}),
    ("STE + strong dampening (0.1)", {"dampen": 0.1, "freeze_after": 0}),
    ("STE + strong dampening (0.1) + freezing", {"dampen": 0.1, "freeze_after": 0.6}),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--skill", default=str(ROOT / "skills" / "home"))
    ap.add_argument("--size", default="tiny", choices=["tiny", "small", "medium", "large"])
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--quick", action="store_true", help="300 steps (smoke run)")
    args = ap.parse_args()
    from reku.model import data as datagen
    from reku.model.skill import load_skill
    from reku.model.train import train

    steps = 300 if args.quick else args.steps
    skill = load_skill(args.skill)
    dev = datagen.generate(skill, 300, seed=1000)
    res = {"name": "flips", "machine": "%s, %s, Python %s" % (platform.machine(), platform.system(),
                                                                platform.python_version()),
           "command": "python benchmarks/bench_flips.py --size %s --steps %d" % (args.size, steps), "runs": []}
    for label, kw in CONFIGS:
        t0 = time.time()
        _, info = train(skill, size=args.size, steps=steps, n_train=10000, seed=0, log=lambda s: None,
                        dev_data=dev, eval_every=0, **kw)
        fl = info["flip_rate"]
        tail = fl[int(0.6 * len(fl)):]
        row = {"config": label, "steps": info["steps"], "flip_rate_all": sum(fl) / len(fl),
               "flip_rate_last40": sum(tail) / max(1, len(tail)), "frozen": info["frozen"],
               "dev_exact": info["eval"]["exact_match"], "seconds": round(time.time() - t0, 1)}
        res["runs"].append(row)
        print("%-38s flips/weight/step %.2e (last 40%%: %.2e)  frozen %.1f%%  dev exact %.3f  %.0fs" % (
            label, row["flip_rate_all"], row["flip_rate_last40"], 100 * row["frozen"], row["dev_exact"],
            row["seconds"]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "flips.json").write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
