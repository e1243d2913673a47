"""Local learning benchmark (`reku learn`, issue 20): a household that asks in its own way, the bundled home model
fine-tuned on that household's corrections, measured on the half of its requests it did not learn from and on the
skill's check set (1,000 generated requests, seed 777: the dev set model choices are made on).

    .venv/bin/python benchmarks/bench_learn.py --out benchmarks/results [--quick]

The household's feedback (47 corrected requests) is written by this script: phrasings the examples of the home skill
do not contain ("make it dark in the kitchen", "i can't see a thing in the office", "crank the bedroom fan", "tidy up
the hallway", "go purple in the kitchen", "let me in through the patio", "batten down the back door"), each with the
call it should give, as a board's FEEDBACK would store them after corrections. Writes OUT/learn.json.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from reku import paths
from reku.model import learn as L
from reku.model.skill import load_skill

ROOMS = ["living room", "kitchen", "bedroom", "bathroom", "hallway", "office", "garage", "garden"]


def household():
    key = lambda r: r.replace(" ", "_")           # noqa: E731
    out = []

    def fb(text, calls):
        out.append({"t": 0, "text": text, "outcome": "corrected", "calls": [], "corrected": calls})
    for r in ROOMS:
        fb("make it dark in the %s" % r, [{"name": "set_light", "arguments": {"room": key(r), "state": "off"}}])
        fb("i can't see a thing in the %s" % r, [{"name": "set_light", "arguments": {"room": key(r), "state": "on"}}])
        fb("crank the %s fan" % r, [{"name": "set_fan", "arguments": {"room": key(r), "speed": "high"}}])
        fb("tidy up the %s" % r, [{"name": "vacuum", "arguments": {"action": "start", "room": key(r)}}])
    for c in ["red", "orange", "yellow", "green", "blue", "purple", "pink"]:
        fb("go %s in the kitchen" % c, [{"name": "set_light_color", "arguments": {"room": "kitchen", "color": c}}])
    for d in ["front", "back", "garage", "patio"]:
        fb("let me in through the %s" % d, [{"name": "unlock_door", "arguments": {"door": d}}])
        fb("batten down the %s door" % d, [{"name": "lock_door", "arguments": {"door": d}}])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(paths.ROOT / "benchmarks" / "results"))
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    steps = 40 if args.quick else 150
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "household.jsonl"
        f.write_text("".join(json.dumps(x) + "\n" for x in household()))
        examples, counts = L.read_feedback([f])
    skill = load_skill(paths.SKILLS / "home", lenient=True)
    t0 = time.time()
    blob, rep = L.learn((paths.SKILLS / "home" / "model.rku").read_bytes(), examples, skill, steps=steps,
                        log=lambda s: None)
    rep["wall_s"] = time.time() - t0
    b, a = rep["before"], rep["after"]
    gain = a["feedback_held_out"]["exact_match"] - b["feedback_held_out"]["exact_match"]
    rep.update({"name": "learn", "command": "python benchmarks/bench_learn.py --out benchmarks/results"
                + (" --quick" if args.quick else ""), "feedback_counts": counts, "held_out_gain": gain})
    rep["targets"] = [
        {"what": "local learning: exact match gain on the household's held-out requests (points)",
         "value": round(100 * gain, 1), "op": ">=", "limit": 10, "ok": gain >= 0.10},
        {"what": "local learning: exact-match loss on the skill's check set (points)",
         "value": round(100 * rep["check_drop"], 1), "op": "<=", "limit": 1, "ok": rep["check_drop"] <= 0.01},
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "learn.json").write_text(json.dumps(rep, indent=1) + "\n")
    for k in ("feedback_held_out", "feedback_train", "check"):
        print("%-18s exact %.3f -> %.3f  no-call %.3f -> %.3f  (%d)" % (k, b[k]["exact_match"], a[k]["exact_match"],
              b[k]["no_call_accuracy"], a[k]["no_call_accuracy"], b[k]["n"]))
    print("refused" if rep["refused"] else "accepted", "in %.0f s" % rep["wall_s"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
