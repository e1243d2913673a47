"""Federated fine-tuning benchmark (`reku federate`, issue 20): a fleet of 100 simulated homes, each asking in its
own way, fine-tunes the bundled home model on Flower's simulation engine (Ray); compared with the same data
trained centrally (`reku learn` on the pooled feedback), with update compression, FedProx, and differential
privacy with secure aggregation.

    .venv/bin/python benchmarks/bench_federated.py --out benchmarks/results [--quick] [--rows fedavg,central,...]

The fleet (written by this script, seed 0; `--fleet-seed 1` gives the dev fleet): every home has its own rooms
(3 to 6 of 8), its own names for some of them ("the den" for the living room, "the study" for the office), 2 to 4
ways of asking taken from 14 that the skill's examples do not contain ("make it dark in the den", "crank the study
fan"), 8 to 40 feedback lines, and its own share of corrections (30-90%; the other lines are requests the board got
right, "success" lines). Each home's lines split in two halves by a hash of the request (reku.model.learn.split):
one is its training data, the other (pooled over the fleet) the held-out set every row is measured on, with the
skill's check set (1,000 generated requests, seed 777).

Rows (same data, same number of examples processed: rounds x clients per round x local steps x 64; learning
rates chosen on the dev fleet: 3e-3 for the clients, 1e-3 central, the best there of those the check-set gate of
`reku learn` accepts):
  central   reku learn on the pooled training halves, 2,000 steps
  fedavg    FedAvg, 20 rounds, 10 of 100 clients per round, 10 local steps, dense float32 updates
  compress  fedavg with top-k 1% + FP4 updates and error feedback
  sign      fedavg with one sign bit per entry and a mean magnitude per block of 32, error feedback
  fedprox   FedProx (mu 0.01)
  dp        fedavg with client-side clipping, Gaussian noise z = 0.8 (epsilon 6.7 at delta 1e-5) and SecAgg+;
            the clipping norm is the median update norm the fedavg row measured (training data only)
Writes OUT/federated.json.
"""
import argparse
import hashlib
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from reku import paths
from reku.model import federate as F
from reku.model import learn as L

ROOMS = ["living_room", "kitchen", "bedroom", "bathroom", "hallway", "office", "garage", "garden"]
SAY = {r: r.replace("_", " ") for r in ROOMS}
NICKNAMES = {"living_room": ["den", "snug", "front room"], "office": ["study", "workroom"],
             "bedroom": ["master bedroom", "loft"], "hallway": ["entry", "landing"], "garden": ["yard", "backyard"],
             "bathroom": ["washroom"], "garage": ["workshop"], "kitchen": ["galley"]}
DOORS = ["front", "back", "garage", "patio"]
COLORS = ["red", "orange", "yellow", "green", "blue", "purple", "pink"]


def call(name, **args):
    return [{"name": name, "arguments": args}]


IDIOMS = [   # (text template, calls): {room} is the home's name for a room, {r} the room, {door}, {color}, {n}
    ("make it dark in the {room}", lambda r, **_: call("set_light", room=r, state="off")),
    ("i can't see a thing in the {room}", lambda r, **_: call("set_light", room=r, state="on")),
    ("crank the {room} fan", lambda r, **_: call("set_fan", room=r, speed="high")),
    ("the {room} is stuffy", lambda r, **_: call("set_fan", room=r, speed="medium")),
    ("tidy up the {room}", lambda r, **_: call("vacuum", action="start", room=r)),
    ("go {color} in the {room}", lambda r, color, **_: call("set_light_color", room=r, color=color)),
    ("let me in through the {door}", lambda door, **_: call("unlock_door", door=door)),
    ("batten down the {door} door", lambda door, **_: call("lock_door", door=door)),
    ("shush the {room}", lambda r, **_: call("stop_music", room=r)),
    ("kill the tunes in the {room}", lambda r, **_: call("stop_music", room=r)),
    ("bring the {room} lights down to {n} percent", lambda r, n, **_: call("set_brightness", room=r, level=n)),
    ("open the {room} shades all the way", lambda r, **_: call("set_blinds", room=r, position=100)),
    ("what's the air like in the {room}", lambda r, **_: call("get_sensor", sensor="air_quality", room=r)),
    ("give me {n} minutes on the clock", lambda n, **_: call("start_timer", minutes=n)),
]


def fleet(skill, n=100, seed=0):
    """[feedback lines of home 0, of home 1, ...] (FEEDBACK line dicts as a board stores them)."""
    from reku.model import data as datagen
    rng = random.Random(seed)
    homes = []
    for h in range(n):
        rooms = rng.sample(ROOMS, rng.randint(3, 6))
        names = {r: SAY[r] for r in rooms}
        for r in rng.sample(rooms, rng.randint(0, 2)):
            names[r] = rng.choice(NICKNAMES[r])
        idioms = rng.sample(IDIOMS, rng.randint(2, 4))
        n_lines = rng.randint(8, 40)
        corrected = rng.uniform(0.3, 0.9)
        successes = datagen.generate(skill, n_lines, seed=seed * 100003 + h)
        lines = []
        for i in range(n_lines):
            if rng.random() < corrected:
                text, calls = rng.choice(idioms)
                r = rng.choice(rooms)
                kw = {"r": r, "door": rng.choice(DOORS), "color": rng.choice(COLORS), "n": rng.choice(
                    [5, 10, 15, 20, 25, 30, 40, 45, 50, 60, 75, 80, 90])}
                lines.append({"t": i, "text": text.format(room=names[r], **kw), "outcome": "corrected", "calls": [],
                              "corrected": calls(**kw)})
            else:
                ex = successes[i]
                lines.append({"t": i, "text": ex["query"], "outcome": "success", "calls": ex["calls"]})
        homes.append(lines)
    return homes


def write_fleet(homes, d):
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    for i, lines in enumerate(homes):
        (d / ("home%03d.jsonl" % i)).write_text("".join(json.dumps(x) + "\n" for x in lines))
    return d


def pooled(d):
    """(train halves pooled, held-out halves pooled) over the fleet's files, as each client splits its own."""
    tr, ho = [], []
    for f in F.feedback_files(str(d)):
        ex, _ = L.read_feedback([f])
        a, b = L.split(ex)
        tr += a
        ho += b
    return tr, ho


def energy(skill, fleet_seed=1):
    """How much of one client's local update (home 0 of the dev fleet, 10 steps at lr 3e-3) lies in its largest
    entries: {share of entries: share of the update's squared L2 norm}. What top-k keeps of it."""
    import numpy as np
    d = write_fleet(fleet(skill, 1, fleet_seed), Path(tempfile.mkdtemp()) / "fleet")
    cfg = F.check_config(dict(F.DEFAULTS, **{"model": str(paths.SKILLS / "home" / "model.rku"),
                                             "feedback-dir": str(d), "lr": 3e-3}))
    train_fb, _ = F.client_examples(cfg, {"partition-id": 0})
    w0 = F.get_weights(F.new_net(F.base(cfg["model"], "")[1]))
    w, _ = F.local_train(cfg, w0, train_fb, 1, 0)
    e = np.sort((F.flat(w) - F.flat(w0)) ** 2)[::-1]
    return {q: round(float(e[:int(q * e.size)].sum() / e.sum()), 4) for q in (0.01, 0.04, 0.1, 0.3)}


def rate(c):
    return c["exact"] / c["n"] if c and c["n"] else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(paths.ROOT / "benchmarks" / "results"))
    ap.add_argument("--quick", action="store_true", help="20 homes, 5 rounds of 4 clients, 3 local steps")
    ap.add_argument("--rows", default="central,fedavg,compress,sign,fedprox,dp")
    ap.add_argument("--fleet-seed", type=int, default=0, help="1: the dev fleet the settings were chosen on")
    ap.add_argument("--lr", type=float, default=3e-3, help="clients' learning rate (chosen on the dev fleet)")
    ap.add_argument("--central-lr", type=float, default=1e-3,
                    help="the central row's: the best on the dev fleet of those the check-set gate accepts")
    ap.add_argument("--name", default="federated", help="results file OUT/NAME.json")
    ap.add_argument("--dp-clip", type=float, help="the dp row's clipping norm (default: fedavg's median update norm)")
    ap.add_argument("--energy", action="store_true", help="only print how concentrated a client's update is")
    ap.add_argument("--keep", action="store_true", help="keep the other rows of OUT/NAME.json (same fleet)")
    args = ap.parse_args()
    if args.energy:
        for q, share in energy(F.base(str(paths.SKILLS / "home" / "model.rku"), "")[2]).items():
            print("largest %4.0f%% of the entries: %5.1f%% of the update's squared norm" % (100 * q, 100 * share))
        return 0
    q = args.quick
    n_homes, rounds, per_round, local = (20, 5, 4, 3) if q else (100, 20, 10, 10)
    blob, model, skill = F.base(str(paths.SKILLS / "home" / "model.rku"), "")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {"name": "federated", "command": "python benchmarks/bench_federated.py --out benchmarks/results"
           + (" --quick" if q else ""), "homes": n_homes, "rounds": rounds, "clients_per_round": per_round,
           "local_steps": local, "fleet_seed": args.fleet_seed, "lr": args.lr, "central_lr": args.central_lr,
           "rows": {}}
    rows = args.rows.split(",")
    prev = out / (args.name + ".json")
    if args.keep and prev.is_file():
        old = json.loads(prev.read_text())
        res["rows"], res["before"] = old["rows"], old.get("before", {})
    with tempfile.TemporaryDirectory() as tmp:
        d = write_fleet(fleet(skill, n_homes, args.fleet_seed), Path(tmp) / "fleet")
        tr, ho = pooled(d)
        res["fleet"] = {"train": len(tr), "held_out": len(ho), "sha256": hashlib.sha256(
            json.dumps([json.loads(f.read_text().splitlines()[0]) for f in F.feedback_files(str(d))]).encode())
            .hexdigest()[:12]}
        base_cfg = {"model": str(paths.SKILLS / "home" / "model.rku"), "feedback-dir": str(d), "rounds": rounds,
                    "clients-per-round": per_round, "local-steps": local, "lr": args.lr, "quiet": True}
        check = None
        if "central" in rows:
            t0 = time.time()
            _, rep = L.learn(blob, tr + ho, skill, steps=rounds * per_round * local, share=0.3, lr=args.central_lr,
                             log=lambda s: None)
            res["before"] = {"held_out": rep["before"]["feedback_held_out"]["exact_match"],
                             "check": rep["before"]["check"]["exact_match"]}
            res["rows"]["central"] = {"held_out": rep["after"]["feedback_held_out"]["exact_match"],
                                      "check": rep["after"]["check"]["exact_match"], "wall_s": time.time() - t0,
                                      "held_out_n": rep["after"]["feedback_held_out"]["n"]}
            print("central   held-out %.3f -> %.3f  check %.3f -> %.3f  %.0fs" % (
                res["before"]["held_out"], res["rows"]["central"]["held_out"], res["before"]["check"],
                res["rows"]["central"]["check"], time.time() - t0), flush=True)
        extra = {"fedavg": {}, "compress": {"compress": "topk", "density": 0.01},
                 "sign": {"compress": "sign"}, "fedprox": {"strategy": "fedprox", "mu": 0.01},
                 "dp": {"dp-noise": 0.8, "secagg": True}}
        for name in [r for r in rows if r in extra]:
            cfg = dict(F.DEFAULTS, **base_cfg, **extra[name], out=str(Path(tmp) / (name + ".rku")))
            if name == "dp":
                norm = (res["rows"].get("fedavg") or {}).get("median_update_norm")
                cfg["dp-clip"] = args.dp_clip or norm or F.DEFAULTS["dp-clip"]
            t0 = time.time()
            rep = F.simulate(F.check_config(cfg))
            norms = [r["update_norm"] for r in rep["rounds"] if r["update_norm"] is not None]
            row = {"held_out": rep["feedback_held_out"]["exact_match"], "held_out_n": rep["feedback_held_out"]["n"],
                   "check": rate(rep["check_after"]), "check_before": rate(rep["check_before"]),
                   "bytes_per_client": rep["bytes_per_client"], "dense_bytes": rep["dense_bytes"],
                   "median_update_norm": sorted(norms)[len(norms) // 2] if norms else None, "dp": rep["dp"],
                   "refused": rep["refused"], "wall_s": time.time() - t0, "config": {k: cfg[k] for k in extra[name]}}
            if name == "dp":
                row["config"]["dp-clip"] = cfg["dp-clip"]
            res["rows"][name] = row
            check = row["check_before"]
            print("%-9s held-out %.3f  check %.3f  %s  %.0fs" % (
                name, row["held_out"], row["check"], "" if row["bytes_per_client"] is None else
                "%.1f KB/client/round" % (row["bytes_per_client"] / 1024), row["wall_s"]), flush=True)
            (out / (args.name + ".json")).write_text(json.dumps(res, indent=1) + "\n")
    R = res["rows"]
    if check is not None:
        res.setdefault("before", {})["check"] = check

    def pts(a, b):
        return None if a is None or b is None else round(100 * (a - b), 1)
    targets = []
    if "central" in R and "fedavg" in R:
        gap = pts(R["central"]["held_out"], R["fedavg"]["held_out"])
        targets.append({"what": "federated (FedAvg) vs central, fleet held-out exact (points behind)", "value": gap,
                        "op": "<=", "limit": 2, "ok": gap <= 2})
    for row, what in (("compress", "top-k 1% + FP4"), ("sign", "sign bits + block scales")):
        if row in R and "fedavg" in R:
            ratio = R["fedavg"]["bytes_per_client"] / R[row]["bytes_per_client"]
            loss = pts(R["fedavg"]["held_out"], R[row]["held_out"])
            targets.append({"what": "update bytes per client per round, dense / %s" % what, "value": round(ratio, 1),
                            "op": ">=", "limit": 20, "ok": ratio >= 20})
            targets.append({"what": "%s: held-out exact lost (points)" % what, "value": loss, "op": "<=", "limit": 1,
                            "ok": loss <= 1})
    if "dp" in R and "fedavg" in R:
        loss = pts(R["fedavg"]["held_out"], R["dp"]["held_out"])
        targets.append({"what": "DP (epsilon %.2f, delta 1e-5) + SecAgg+: held-out exact lost (points)"
                        % R["dp"]["dp"]["epsilon"], "value": loss, "op": "<=", "limit": 3, "ok": loss <= 3})
    res["targets"] = targets
    (out / (args.name + ".json")).write_text(json.dumps(res, indent=1) + "\n")
    for t in targets:
        print("%-70s %s %s %s  %s" % (t["what"], t["value"], t["op"], t["limit"], "ok" if t["ok"] else "MISSED"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
