"""Forward-forward against backprop QAT (issue 21): each block objective of `reku train --algo ff`
(--ff-objective, --ff-negatives, --layer-lr; docs/routes.md) and QAT, at the same shape and step budget, on the
home and car skills; and what locality buys in wall-clock (`--wallclock`).

    .venv/bin/python benchmarks/bench_ff.py --out benchmarks/results [--quick] [--dims 40,80,2] [--steps 1000]
    .venv/bin/python benchmarks/bench_ff.py --out benchmarks/results --wallclock | --probe   (only these, on the
                                                                                       rows OUT/ff.json chose)

Every row trains with `reku train`'s defaults otherwise (20,000 generated examples, batch 64, seed 0, lr 3e-3 unless
the row says) and keeps the best of its held-out checkpoints on the generated dev set (1,000 requests, seed 777).
Each route's row reported in the targets (FF against QAT) is the one with the best mean dev exact match over the
skills; test.jsonl gives the final figures only. CPU seconds are the process's user + system time for the row (not
wall time). Writes OUT/ff.json.

--wallclock (run it on an otherwise idle machine): for the routes chosen on dev, QAT and sequential FF on the
machine's threads with the dev exact match every 100 steps (the curve; evaluation time is not counted), and FF with
`--parallel` (one process per layer, one thread each) without evaluations. Wall-clock to an accuracy: QAT and FF
from their curves; pipelined FF, which trains the same model as sequential FF at every step (tests/test_model_ff.py),
at the first step of FF's curve reaching it times its own seconds per step (setup included in all). Adds
"wallclock" to OUT/ff.json."""
import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

from reku import paths
from reku.model import data as datagen
from reku.model.evaluate import evaluate_model
from reku.model.learn import DEV_SEED
from reku.model.skill import load_skill, read_jsonl
from reku.model.train import train
from rkfw import rku

ROWS = [("backprop QAT", {"algo": "qat"}),
        ("backprop QAT, lr 6e-3", {"algo": "qat", "lr": 6e-3}),
        # the per-layer learning rates FF gained most from, given to QAT as well
        ("backprop QAT, lr 6e-3, layer lr 4:1", {"algo": "qat", "lr": 6e-3, "layer_lr": (4, 1)}),
        ("backprop QAT, lr 6e-3, layer lr 8:1", {"algo": "qat", "lr": 6e-3, "layer_lr": (8, 1)}),
        ("backprop QAT, lr 6e-3, layer lr 16:1", {"algo": "qat", "lr": 6e-3, "layer_lr": (16, 1)}),
        ("backprop QAT, lr 6e-3, layer lr 32:1", {"algo": "qat", "lr": 6e-3, "layer_lr": (32, 1)}),
        ("FF, goodness (Hinton)", {"algo": "ff", "ff_objective": "goodness"}),
        ("FF, goodness + block heads", {"algo": "ff", "ff_objective": "goodness+heads"}),
        ("FF, block heads", {"algo": "ff", "ff_objective": "heads"}),
        ("FF, block heads, lr 6e-3", {"algo": "ff", "ff_objective": "heads", "lr": 6e-3}),
        # the directions of issue 21, each at the chosen learning rate (6e-3)
        ("FF, block heads, lr 6e-3, layer lr 2:1", {"algo": "ff", "ff_objective": "heads", "lr": 6e-3,
                                                     "layer_lr": (2, 1)}),
        ("FF, block heads, lr 6e-3, layer lr 1:2", {"algo": "ff", "ff_objective": "heads", "lr": 6e-3,
                                                     "layer_lr": (1, 2)}),
        ("FF, block heads, lr 6e-3, layer lr 4:1", {"algo": "ff", "ff_objective": "heads", "lr": 6e-3,
                                                     "layer_lr": (4, 1)}),
        ("FF, block heads, lr 6e-3, layer lr 8:1", {"algo": "ff", "ff_objective": "heads", "lr": 6e-3,
                                                     "layer_lr": (8, 1)}),
        ("FF, block heads, lr 6e-3, layer lr 16:1", {"algo": "ff", "ff_objective": "heads", "lr": 6e-3,
                                                      "layer_lr": (16, 1)}),
        ("FF, block heads, lr 6e-3, layer lr 32:1", {"algo": "ff", "ff_objective": "heads", "lr": 6e-3,
                                                      "layer_lr": (32, 1)}),
        ("FF, goodness + block heads, lr 6e-3, theta 0.25", {"algo": "ff", "ff_objective": "goodness+heads",
                                                              "lr": 6e-3, "ff_theta": 0.25}),
        ("FF, goodness + block heads, lr 6e-3, theta 4", {"algo": "ff", "ff_objective": "goodness+heads",
                                                           "lr": 6e-3, "ff_theta": 4.0}),
        ("FF, SymBa, lr 6e-3", {"algo": "ff", "ff_objective": "symba", "lr": 6e-3}),
        ("FF, SymBa + block heads, lr 6e-3", {"algo": "ff", "ff_objective": "symba+heads", "lr": 6e-3}),
        ("FF, goodness, hard negatives, lr 6e-3", {"algo": "ff", "ff_objective": "goodness", "lr": 6e-3,
                                                    "ff_negatives": "hard"}),
        ("FF, goodness + block heads, hard negatives, lr 6e-3", {"algo": "ff", "ff_objective": "goodness+heads",
                                                                  "lr": 6e-3, "ff_negatives": "hard"}),
        ("FF, SymBa + block heads, hard negatives, lr 6e-3", {"algo": "ff", "ff_objective": "symba+heads",
                                                               "lr": 6e-3, "ff_negatives": "hard"}),
        # longer runs, both routes at the chosen learning rate: outside the targets (which compare at --steps)
        ("backprop QAT, lr 6e-3, 3x steps", {"algo": "qat", "lr": 6e-3, "steps_x": 3}),
        ("FF, block heads, lr 6e-3, 3x steps", {"algo": "ff", "ff_objective": "heads", "lr": 6e-3, "steps_x": 3})]


def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _config(kw):
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()}


def wallclock(args, res, d, f, L, n_train):
    """res["wallclock"][skill]: curves and timed runs of the routes chosen on dev (module docstring)."""
    from reku.model import evaluate
    rows = dict(ROWS)
    chosen = res["chosen_on_dev"]
    out = res.setdefault("wallclock", {})
    threads = torch.get_num_threads()
    real = evaluate.evaluate_model
    for name in args.skills:
        skill = load_skill(paths.SKILLS / name, lenient=True)
        dev = datagen.generate(skill, 1000, seed=DEV_SEED)
        w = {"threads": threads, "routes": {}, "seconds": {}}
        for key, route, par in (("qat", "qat", False), ("ff", "ff", False), ("ff parallel", "ff", True)):
            kw = dict(rows[chosen[route]])
            spent = [0.0]

            def timed_eval(*a, **k):          # evaluation time is not training time
                t = time.perf_counter()
                r = real(*a, **k)
                spent[0] += time.perf_counter() - t
                marks.append((time.perf_counter() - t0 - spent[0], r["exact_match"]))
                return r

            marks = []
            evaluate.evaluate_model = timed_eval
            t0 = time.perf_counter()
            try:
                _, info = train(skill, dev_data=None if par else dev, log=lambda s: None, d=d, f=f, layers=L,
                                steps=args.steps, n_train=n_train, seed=0, eval_every=100, ff_parallel=par, **kw)
            finally:
                evaluate.evaluate_model = real
            secs = time.perf_counter() - t0 - spent[0]
            w["seconds"][key] = round(secs, 1)
            if not par:
                w["routes"][key] = {"row": chosen[route], "config": _config(kw),
                                    "curve": [[s, e, round(m[0], 1)] for (s, e, _), m in zip(info["evals"], marks)]}
            print("%-5s %-12s %6.1f s wall for %d steps (setup included, evaluations not)" % (
                name, key, secs, args.steps), flush=True)
        curves = {r: w["routes"][r]["curve"] for r in ("qat", "ff")}
        target = min(max(e for _, e, _ in c) for c in curves.values())      # the accuracy both routes reach
        w["target_dev_exact"] = target
        w["to_target_seconds"] = {}
        for key in w["seconds"]:
            c = curves["ff" if key.startswith("ff") else "qat"]
            first = min((s, t) for s, e, t in c if e >= target)
            # the pipelined run has no curve of its own: the same model as sequential FF at every step
            w["to_target_seconds"][key] = first[1] if key in curves else round(
                w["seconds"][key] * first[0] / args.steps, 1)
        print("%-5s dev exact %.3f reached in %s" % (name, target, ", ".join(
            "%s %.0f s" % kv for kv in w["to_target_seconds"].items())), flush=True)
        out[name] = w


def probe(args, res, d, f, L, n_train):
    """res["concat_readout"][skill]: Hinton's readout on the concatenated, length-normalised outputs of all blocks,
    against a readout on the last block's output (the board's), both trained (ternary, as the board's) on the frozen
    network of the FF route chosen on dev; teacher-forced decision accuracy (tokens and pointers) on the dev set.
    A probe, not a board readout: it says whether the concatenation holds more than the final stream."""
    import math
    import types

    from reku.model import rkufile
    from reku.model.ff import BlockHead
    from reku.model.objective import Encoded, readout_loss
    from reku.model.qat import Net
    from reku.model.skill import compile_schema
    from reku.model.tokenizer import ALPHABET
    from rkfw import infer
    import random

    label = res["chosen_on_dev"]["ff"]
    kw = dict(dict(ROWS)[label])
    out = res.setdefault("concat_readout", {})
    for name in args.skills:
        skill = load_skill(paths.SKILLS / name, lenient=True)
        dev = datagen.generate(skill, 1000, seed=DEV_SEED)
        blob, _ = train(skill, dev_data=dev, log=lambda s: None, d=d, f=f, layers=L, steps=args.steps,
                        n_train=n_train, seed=0, eval_every=max(1, args.steps // 4), **kw)
        net = Net.from_rku(rku.load(blob))
        schema, vocab = compile_schema(skill)
        tok = infer.Tokenizer(ALPHABET)
        grammar = rkufile.grammar(schema, vocab)
        tr = Encoded(datagen.generate(skill, n_train, seed=0), tok, grammar, tok.n_in)
        dv = Encoded(dev, tok, grammar, tok.n_in)

        @torch.no_grad()
        def streams(ids):
            hs = [net.embed_q()[ids]]
            for i in range(net.L):
                hs.append(net.block(i, hs[-1]))
            return hs

        def final(hs):
            return hs[-1]

        def concat(hs):
            return torch.cat([h / h.pow(2).mean(-1, keepdim=True).clamp_min(1e-8).sqrt() for h in hs[1:]], -1)

        def accuracy(readout, feats):
            correct = n = 0
            U = dv.mask_table()
            with torch.no_grad():
                for i in range(0, len(dv), 100):
                    b = dv.batch(list(range(i, min(i + 100, len(dv)))))
                    _, c, k = readout_loss(readout, U, b, feats(streams(b["ids"])))
                    correct, n = correct + c, n + k
            return correct / n

        torch.manual_seed(0)
        row = {"row": label, "board_readout": accuracy(net, final)}
        for kind, feats, width in (("final stream", final, net.d), ("concatenated", concat, net.d * net.L)):
            shim = types.SimpleNamespace(dk=net.dk, n_out=net.n_out, d=width, log_temp=net.log_temp, fq=net.fq)
            head = BlockHead(shim)
            opt = torch.optim.AdamW(head.parameters(), lr=kw.get("lr", 3e-3), weight_decay=0.0)
            rng = random.Random(0)
            U = tr.mask_table()
            for step in range(args.steps):
                for g in opt.param_groups:
                    g["lr"] = kw.get("lr", 3e-3) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
                b = tr.batch([rng.randrange(len(tr)) for _ in range(64)])
                loss = readout_loss(head, U, b, feats(streams(b["ids"])))[0]
                opt.zero_grad()
                loss.backward()
                opt.step()
            row[kind] = accuracy(head, feats)
        out[name] = row
        print("%-5s teacher-forced dev decisions: board readout %.3f, probe on the final stream %.3f, on the "
              "concatenated blocks %.3f" % (name, row["board_readout"], row["final stream"], row["concatenated"]),
              flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(paths.ROOT / "benchmarks" / "results"))
    ap.add_argument("--dims", default="40,80,2")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--skills", nargs="*", default=["home", "car"])
    ap.add_argument("--quick", action="store_true", help="60 steps, 2,000 examples")
    ap.add_argument("--only", nargs="*", help="run only these rows (labels) and keep the others of OUT/ff.json")
    ap.add_argument("--wallclock", action="store_true", help="only the wall-clock comparison (module docstring), "
                    "with the routes OUT/ff.json chose on dev")
    ap.add_argument("--probe", action="store_true", help="only the concatenated-readout probe (probe()), on the FF "
                    "route OUT/ff.json chose on dev")
    args = ap.parse_args()
    n_train = 20000
    if args.quick:
        args.steps, n_train = 60, 2000
    d, f, L = (int(v) for v in args.dims.split(","))
    res = {"name": "ff", "command": "python benchmarks/bench_ff.py --out benchmarks/results"
           + (" --quick" if args.quick else ""), "dims": args.dims, "steps": args.steps, "skills": {}}
    prev = Path(args.out) / "ff.json"
    only_extra = args.wallclock or args.probe
    if (args.only or only_extra) and prev.is_file():
        res = dict(json.loads(prev.read_text()), command=res["command"])
    if args.wallclock:
        wallclock(args, res, d, f, L, n_train)
    if args.probe:
        probe(args, res, d, f, L, n_train)
    if only_extra:
        args.skills = [s for s in res["skills"]]
    for name in args.skills if not only_extra else []:
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
            rows[label] = {"config": _config(kw), "steps": steps, "dev_exact": info["eval"]["exact_match"],
                           "test_exact": ev["exact_match"], "test_no_call": ev["no_call_accuracy"],
                           "cpu_seconds": round(secs, 1)}
            print("%-5s %-28s dev %.3f  test %.3f  no-call %.3f  %5.0f s CPU" % (
                name, label, rows[label]["dev_exact"], ev["exact_match"], ev["no_call_accuracy"], secs), flush=True)
        res["skills"][name] = rows

    def best(algo):       # the row of that route with the best mean dev exact match over the skills
        have = [lb for lb, kw in ROWS if kw["algo"] == algo and "steps_x" not in kw
                and all(lb in res["skills"][s] for s in args.skills)]
        return max(have, key=lambda lb: sum(res["skills"][s][lb]["dev_exact"] for s in args.skills))
    ff, qat = best("ff"), best("qat")
    res["chosen_on_dev"] = {"ff": ff, "qat": qat}
    if not args.only and not only_extra:         # a whole run: the probe and the wall-clock of today's choice
        probe(args, res, d, f, L, n_train)
        wallclock(args, res, d, f, L, n_train)
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
