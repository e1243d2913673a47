"""`reku learn`: fine-tune a deployed model on what its board learnt from use (the FEEDBACK lines that
`reku feedback pull` copied), at the same shape, by the same QAT as `reku train`.

The feedback becomes examples: a "corrected" line teaches its corrected calls, a "success" line the calls the board
gave; a "failure" line says only what was wrong, so it is counted and left out. Lines are split in two halves by a
hash of the request text (the same request always falls in the same half): one trains, the other measures what
the product's own phrasing gained. Training mixes the training half (repeated to `--share` of the examples) with
generated examples of the skill, so the model does not forget the rest of its skill. Before anything is written,
the new model is measured on a held-out set of the skill (a generated dev set unless `--check FILE` gives one)
and refused when it lost more than `--tolerance` of exact match there."""

import hashlib
import json
import sys
from pathlib import Path

from .. import paths
from ..errors import RekuError

DEV_SEED = 777          # the generated dev set model choices are made on (docs/model.md)


def read_feedback(files):
    """(examples {"query", "calls"}, counts): the teachable lines of the feedback files, in order, deduplicated by
    request text (the last line about a request wins)."""
    by_text, counts = {}, {"lines": 0, "corrected": 0, "success": 0, "failure": 0, "unreadable": 0}
    for f in files:
        try:
            text = Path(f).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise RekuError("cannot read feedback file %s: %s" % (f, getattr(e, "strerror", None) or e)) from None
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            counts["lines"] += 1
            try:
                fb = json.loads(line)
                outcome = fb["outcome"]
                query = fb["text"]
                calls = fb["corrected"] if outcome == "corrected" else fb.get("calls", [])
                assert isinstance(query, str) and isinstance(calls, list) and outcome in counts
            except (ValueError, KeyError, TypeError, AssertionError):
                counts["unreadable"] += 1          # a line cut by a power loss, or not feedback
                continue
            counts[outcome] += 1
            if outcome != "failure":
                by_text[query] = {"query": query, "calls": calls}
    return list(by_text.values()), counts


def split(examples):
    """(train, held_out): by a hash of the request text, about half each."""
    train, held = [], []
    for ex in examples:
        h = hashlib.sha256(ex["query"].encode("utf-8")).digest()[0]
        (held if h & 1 else train).append(ex)
    return train, held


def mix(replay, feedback, share):
    """(examples, repeats): the feedback repeated so that it is about `share` of the examples, after the replay."""
    reps = max(1, round(share * len(replay) / ((1 - share) * len(feedback)))) if feedback else 0
    return replay + feedback * reps, reps


def learn(model_blob, feedback, skill, steps=150, seed=0, share=0.2, lr=1e-3, n_replay=3000, check=None,
          tolerance=0.01, log=print):
    """(new model bytes or None when refused, report). feedback: examples from read_feedback()."""
    import torch  # noqa: F401  (training needs it; the error for a wheel without it is reku.cli's)
    from rkfw import rku
    from . import data as datagen
    from .evaluate import evaluate_model
    from .qat import Net
    from .rkufile import grammar_table, refusals
    from .skill import compile_schema
    from .train import TrainConfig, train
    model = rku.load(model_blob)
    refuse = refusals(model)
    if bytes(grammar_table(*compile_schema(skill, refuse=refuse > 0))) != bytes(model.tensor("grammar").data):
        raise RekuError("the model's functions differ from the skill %s's tools.json: learn from the skill it was "
                        "trained on" % skill.path)
    train_fb, held_fb = split(feedback)
    if not train_fb:
        raise RekuError("no feedback to learn from: %d teachable lines, none in the training half (corrected or "
                        "successful requests are needed)" % len(feedback))
    check = check if check is not None else datagen.generate(skill, 1000, seed=DEV_SEED, refusals=refuse)
    replay = datagen.generate(skill, n_replay, seed=seed + 1, refusals=refuse)
    examples, reps = mix(replay, train_fb, share)
    before = {"feedback_held_out": evaluate_model(model, held_fb) if held_fb else None,
              "feedback_train": evaluate_model(model, train_fb), "check": evaluate_model(model, check)}
    net = Net.from_rku(model)
    cfg = TrainConfig(steps=steps, seed=seed, lr=lr, eval_every=0, freeze_after=0, dampen=0, refusals=refuse)
    blob, info = train(skill, cfg, init=net, examples=examples, log=log,
                       id_extra=["learn", model.sha256, sorted(ex["query"] for ex in train_fb), steps, share, lr])
    new = rku.load(blob)
    after = {"feedback_held_out": evaluate_model(new, held_fb) if held_fb else None,
             "feedback_train": evaluate_model(new, train_fb), "check": evaluate_model(new, check)}
    drop = before["check"]["exact_match"] - after["check"]["exact_match"]
    report = {"model": model.model_id, "new_model": new.model_id, "feedback": {"train": len(train_fb),
              "held_out": len(held_fb), "repeated": reps}, "steps": info["steps"], "seconds": info["seconds"],
              "before": before, "after": after, "check_drop": drop, "tolerance": tolerance,
              "refused": drop > tolerance}
    return (None if report["refused"] else blob), report


def configure(p):
    p.add_argument("--model", required=True, help="the deployed model (.rku file or bundled skill name)")
    p.add_argument("--feedback", required=True, nargs="+", metavar="FILE",
                   help="JSONL files of `reku feedback pull`")
    p.add_argument("--out", required=True, help="the new .rku (written only when it is not worse)")
    p.add_argument("--skill", help="skill directory (default: the bundled skill the model was trained for)")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--share", type=float, default=0.2, help="share of the training examples that are feedback "
                   "(the rest: generated examples of the skill, so it does not forget; default 0.2)")
    p.add_argument("--check", metavar="FILE", help="held-out JSONL set of the skill that must not get worse "
                   "(default: 1,000 generated requests, seed %d)" % DEV_SEED)
    p.add_argument("--tolerance", type=float, default=0.01, help="largest exact-match loss accepted on the check "
                   "set (default 0.01)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")


def run(args):
    from .skill import load_skill, read_jsonl
    mpath = paths.model_file(args.model)
    blob = mpath.read_bytes()
    try:
        from rkfw import rku
        meta = rku.load(blob).info()
    except Exception as e:
        raise RekuError("%s is not a usable .rku model: %s" % (mpath, e)) from None
    skill_dir = Path(args.skill) if args.skill else paths.SKILLS / str(meta.get("train", {}).get("skill", ""))
    if not (skill_dir / "tools.json").is_file():
        raise RekuError("no skill for %s: give --skill DIR (its tools.json and examples.jsonl)" % mpath)
    if not 0 < args.share < 1:
        raise RekuError("--share must be between 0 and 1, got %s" % args.share)
    skill = load_skill(skill_dir, lenient=True)
    examples, counts = read_feedback(args.feedback)
    check = read_jsonl(args.check) if args.check else None
    log = (lambda s: None) if args.json else (lambda s: print(s, file=sys.stderr))
    new, rep = learn(blob, examples, skill, steps=args.steps, seed=args.seed, share=args.share, check=check,
                     tolerance=args.tolerance, log=log)
    rep["feedback"]["counts"] = counts
    if new is not None:
        out = Path(args.out)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_bytes(new)
        tmp.replace(out)
    if args.json:
        print(json.dumps(rep))
    else:
        def row(name, key):
            b, a = rep["before"][key], rep["after"][key]
            if b is None:
                return "  %-26s (none held out)" % name
            return "  %-26s exact %.3f -> %.3f   no-call %.3f -> %.3f   (%d)" % (
                name, b["exact_match"], a["exact_match"], b["no_call_accuracy"], a["no_call_accuracy"], b["n"])
        c = counts
        print("feedback: %d lines (%d corrected, %d success, %d failure without a correction, %d unreadable); %d "
              "requests to learn, %d held out" % (c["lines"], c["corrected"], c["success"], c["failure"],
                                                  c["unreadable"], rep["feedback"]["train"],
                                                  rep["feedback"]["held_out"]))
        print(row("feedback, held-out half", "feedback_held_out"))
        print(row("feedback, training half", "feedback_train"))
        print(row("skill check set", "check"))
    if new is None:
        raise RekuError("not written: the new model lost %.3f exact match on the skill's check set (tolerance %.3f); "
                        "the deployed model stays best" % (rep["check_drop"], args.tolerance))
    if not args.json:
        print("wrote %s (%s, %d bytes): `reku upload --port PORT %s` puts it on the board"
              % (args.out, rep["new_model"], len(new), args.out))
    return 0
