"""`reku train`, `reku quantize`, `reku eval`, `reku inspect`."""

import json
import math
import struct
import sys
from pathlib import Path

from .. import paths
from ..errors import RekuError
from .data import NEGATIVES, REFUSALS

DEFAULT_BUDGET_KB = 128
DEFAULT_BOARD = "pico"          # `reku train` sizes the model for this board unless told otherwise


# ---- board profiles --------------------------------------------------------------------------------------
# Heap accounting of a query on a board (`reku inspect`, `reku train --board`), calibrated on a 32-bit ARM
# MicroPython: v1.28's qemu port (mps2-an385, Cortex-M3: the word size and object layout of rp2 and esp32), the
# firmware as .mpy, the viper tier a stock board runs, the bundled home model (bench_board.py --heap-on; stages
# in docs/firmware.md "Memory"). The WebAssembly build, measured the same way, agrees within 1% (103,952 B against
# 104,880 B for the d 95 home model; 153,328 B against 154,288 B for the d 150 one, issue 17). Estimates: 108,930 B
# and 160,197 B.
APP_HEAP = 18.9 * 1024         # boot path before a model: rkfw.app, proto, port, status, transport, the App (19,280 B)
RUNTIME_CODE = 21.6 * 1024     # inference code: rku, infer, kernels (+ viper kernels) (22,112 B)
META_FACTOR = 3.2              # per byte of header JSON + 45 per tensor, once parsed (5,200 B for the home model's 1,667: 3.12)
BUFFER_FACTOR = 1.8            # per byte of engine buffers, the engine's other objects included (16,192 / 9,302: 1.74)
QUERY_HEAP = 6 * 1024         # one query's allocations (3,744 B measured)
# A model with FP4 layers on a tier without FP4 kernels (Python, viper) also loads rkfw.fp4: its code (2.5 KB) and
# the qstr pool growth it causes; measured on the WebAssembly build (peak of all-FP4 and one-FP4-layer models of
# d 80 f 160 against the int8 one, buffers aside: 7.0 and 6.9 KB). The native module needs none of it.
FP4_CODE = 7.0 * 1024
HEAP_TARGET_SHARE = 0.78      # keep the peak under 78% of the heap at boot (Pico: 160 KB of 205 KB)
FILE_LIMIT = 128 * 1024


def board_profiles():
    from rkfw import boards
    out = {}
    for name in boards.names(str(paths.BOARDS)):
        try:
            out[name] = boards.load(name, str(paths.BOARDS))
        except boards.BoardError:
            continue
    return out


def board_budget(profile, overhead=None):
    """(model file budget in bytes, heap in bytes) of a board profile. Without ROMFS the file is read into RAM,
    in one block (at most block_kb): it gets what is left of HEAP_TARGET_SHARE of the heap after the firmware and
    the model runtime (`overhead`, default: a medium model's metadata and buffers); with ROMFS it stays in flash."""
    heap = profile["heap_kb"] * 1024
    if overhead is None:
        overhead = APP_HEAP + RUNTIME_CODE + META_FACTOR * 4000 + BUFFER_FACTOR * 11000 + QUERY_HEAP
    if profile.get("romfs"):
        return min(FILE_LIMIT, profile["fs_kb"] * 1024 // 2), heap
    return max(0, min(FILE_LIMIT, profile["block_kb"] * 1024, int(heap * HEAP_TARGET_SHARE - overhead))), heap


# ---- train -------------------------------------------------------------------------------------------------
SCHEMA_LINES = 0.3          # reku train's default, chosen on the few-example benchmark's dev split (docs/results.md)


def configure_train(p):
    p.add_argument("--skill", required=True, help="skill directory (tools.json + examples.jsonl)")
    p.add_argument("--out", required=True, help="output .rku file")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--board", help="size the model for this board profile (hw/boards/NAME.json)")
    g.add_argument("--budget-kb", type=float, help="size the model to fit N KB")
    p.add_argument("--minutes", type=float, help="wall-time cap")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=3000, help="optimizer steps (the time cap may end it earlier)")
    p.add_argument("--size", choices=["tiny", "small", "medium", "large"], help="override the budget-chosen size")
    p.add_argument("--dims", help="width, channel-mixing width and layers, e.g. 40,80,2 (overrides --size)")
    p.add_argument("--acts", help="activation precision per layer, e.g. i8,fp4 (default all int8)")
    p.add_argument("--examples", type=int, default=20000, help="generated training examples")
    p.add_argument("--schema-lines", type=float, default=SCHEMA_LINES, metavar="SHARE",
                   help="also learn from lines the schema itself gives (function names, descriptions, parameter "
                   "kinds and units; reku.model.phrase): the share of a function's training requests drawn from them "
                   "(a function without example lines always draws from them; default %(default)s); 0 turns them off")
    p.add_argument("--prior", default="auto", metavar="FILE|auto|none",
                   help="start from a general prior (reku prior build): auto, the default, is the one packaged with "
                   "reku when there is one and its shape fits the board; none trains from random weights")
    p.add_argument("--negatives", type=float, default=NEGATIVES, metavar="SHARE",
                   help="share of training requests that ask for nothing the skill does (the model learns to answer "
                   "them with no call; default %(default)s)")
    p.add_argument("--refusals", type=float, default=REFUSALS, metavar="SHARE",
                   help="share of training requests that ask for a value the schema does not allow (a number out of "
                   "its range, an unknown enum value): the model learns to answer them with no call and the reason "
                   "(default %(default)s); 0 turns refusing off")
    p.add_argument("--hold-out", type=float, default=0, metavar="SHARE",
                   help="keep this share of examples.jsonl out of training and choose the best checkpoint on it "
                   "(hand-written requests, each placeholder filled once) instead of on 300 generated requests")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--eval-every", type=int, default=250, help="steps between held-out evaluations (best is kept)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--no-dampen", action="store_true", help="disable oscillation dampening")
    p.add_argument("--no-freeze", action="store_true", help="disable freezing of oscillating weights")
    p.add_argument("--algo", choices=["qat", "ff"], default="qat",
                   help="training route: quantization-aware (qat) or forward-forward (ff, docs/routes.md)")
    p.add_argument("--ff-objective", default="heads", metavar="heads|goodness|symba|goodness+heads|symba+heads",
                   help="forward-forward: each block's own objective: a readout of its own trained with it (heads, "
                   "the default: the best measured, docs/routes.md), its goodness on positive vs negative sequences "
                   "(Hinton's loss, or SymBa's pair loss), or a goodness with heads")
    p.add_argument("--ff-negatives", default="grammar", choices=["grammar", "hard"],
                   help="forward-forward negatives: another token the grammar allows (default), or the model's own "
                   "wrong decisions where it makes any (hard)")
    p.add_argument("--layer-lr", metavar="M0,M1,...",
                   help="learning-rate multiplier of each layer (embedding + block 0, block 1, ...; the readout with "
                   "the last), e.g. 8,1 (docs/routes.md)")
    p.add_argument("--parallel", action="store_true",
                   help="forward-forward: train each layer below the last in a process of its own, pipelined (the "
                   "same model as without, docs/routes.md)")
    p.add_argument("--float", action="store_true", help="train a float checkpoint for `reku quantize` (issue 8)")
    p.add_argument("--lenient", action="store_true",
                   help="drop example lines that break the schema (counted) instead of stopping at the first")
    p.add_argument("--quiet", action="store_true")


def _dims(args):
    if not args.dims:
        return {}
    try:
        d, f, L = (int(v) for v in args.dims.split(","))
    except ValueError:
        raise RekuError("--dims %s: expected three integers D,F,L (e.g. 40,80,2)" % args.dims)
    if d <= 0 or d % 5 or f <= 0 or f % 5 or not 1 <= L <= 8:
        raise RekuError("--dims %s: D and F must be positive multiples of 5, L between 1 and 8" % args.dims)
    return {"d": d, "f": f, "layers": L}


def _floats(opt, text):
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise RekuError("%s %s: expected numbers separated by commas (e.g. 2,1)" % (opt, text))


def _board_fits(board):
    """fits(blob): the model fits `board` (file limit, and the estimated peak heap of a query, reku inspect)."""
    from rkfw import rku

    def fits(blob):
        return inspect_model(rku.load(blob), len(blob))["boards"][board]["fits"]

    return fits


def _train_config(args, **kw):
    from .train import TrainConfig
    try:
        return TrainConfig(size=args.size, **_dims(args), steps=args.steps, minutes=args.minutes, seed=args.seed,
                           n_train=args.examples, schema_lines=args.schema_lines, negatives=args.negatives,
                           refusals=args.refusals, batch=args.batch, lr=args.lr, eval_every=args.eval_every,
                           dampen=0 if args.no_dampen else 1e-3, freeze_after=0 if args.no_freeze else 0.6,
                           acts=args.acts.split(",") if args.acts else None, ff_objective=args.ff_objective,
                           ff_negatives=args.ff_negatives, layer_lr=_floats("--layer-lr", args.layer_lr),
                           ff_parallel=args.parallel, **kw)
    except ValueError as e:
        raise RekuError(str(e))


def _from_prior(args, skill, cfg, budget, fits, target):
    """(network to start from, model id extra) for --prior: the prior's blocks with fresh rows for the skill's own
    tokens (reku.model.prior.transfer), or (None, ()) to train from random weights. A prior whose shape does not fit
    the target, or --dims/--size given, means from scratch (said on stderr when the prior was asked for by name)."""
    from rkfw import rku
    from .objective import build_model_bytes
    from .prior import packaged, transfer
    from .skill import compile_schema
    if args.prior == "none":
        return None, ()
    path = packaged() if args.prior == "auto" else Path(args.prior)
    if path is None:
        return None, ()
    if not path.is_file():
        raise RekuError("--prior %s: no such file" % path)
    try:
        prior = rku.load(path.read_bytes())
    except Exception as e:
        raise RekuError("--prior %s: not a .rku model (%s)" % (path, e))
    why = None
    if args.size or args.dims:
        why = "--size/--dims asks for another shape"
    else:
        schema, vocab = compile_schema(skill, refuse=cfg.refusals > 0)
        net = transfer(prior, len(vocab))
        blob = build_model_bytes(net, schema, vocab, "size-probe")
        n = len(blob)
        if (budget and n > budget) or (fits and not fits(blob)):
            why = "its shape (d=%d) gives a %d-byte model that does not fit the %s" % (net.d, n, target)
    if why:
        if args.prior != "auto":
            print("not starting from the prior %s: %s; training from random weights" % (path, why), file=sys.stderr)
        return None, ()
    return net, ("prior", prior.sha256)


def run_train(args):
    from . import data as datagen
    from .skill import load_skill
    from .train import train
    if args.algo == "ff" and args.float:
        raise RekuError("--algo ff trains the ternary (QAT) network only; --float is not supported with it")
    given = {"--ff-objective": args.ff_objective != "heads", "--ff-negatives": args.ff_negatives != "grammar"}
    for opt in given:
        if given[opt] and args.algo != "ff":
            raise RekuError("%s is for --algo ff (forward-forward); this run is --algo %s" % (opt, args.algo))
    budget, fits, target = None, None, None
    if args.budget_kb:
        budget = int(args.budget_kb * 1024)
        target = "%g KB file budget" % args.budget_kb
    else:
        board = args.board or DEFAULT_BOARD
        profiles = board_profiles()
        if board not in profiles:
            raise RekuError("unknown board %r (have: %s)" % (board, ", ".join(sorted(profiles))))
        fits = _board_fits(board)
        target = "board %s" % board
    cfg = _train_config(args, algo="float" if args.float else args.algo, budget_bytes=budget, fits=fits)
    skill = load_skill(args.skill, lenient=args.lenient)
    if skill.dropped:
        print("%s: %d example lines break the schema and were dropped (--lenient), the first: line %d: %s"
              % (Path(args.skill) / "examples.jsonl", len(skill.dropped), *skill.dropped[0]), file=sys.stderr)
    dev = None
    if args.hold_out:
        try:
            skill.examples, dev = datagen.hold_out(skill, args.hold_out)
        except ValueError as e:
            raise RekuError("%s: %s" % (Path(args.skill) / "examples.jsonl", e))
    from .skill import coverage
    notes = ["%s: %s; add a line like\n    %s" % (Path(args.skill) / "examples.jsonl", why, line)
             for why, line in coverage(skill)]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def log(s):
        # the gaps in the examples are said as training starts (its first line): a run that stops on an error
        # before that says only the error
        while notes:
            print(notes.pop(0), file=sys.stderr, flush=True)
        if not args.quiet:
            print(s, flush=True)
    if args.float:
        return _train_float(args, skill, cfg, log)
    if dev is None:
        dev = datagen.generate(skill, 300, seed=args.seed + 1000, schema=cfg.schema_lines, refusals=cfg.refusals,
                               negatives=datagen.NEGATIVES if cfg.negatives is None else cfg.negatives)
    init, id_extra = _from_prior(args, skill, cfg, budget, fits, target)
    try:
        blob, info = train(skill, cfg, dev_data=dev, log=log, png=str(out.with_suffix(".png")), init=init,
                           id_extra=id_extra)
    except ValueError as e:
        raise RekuError(str(e))
    if cfg.acts and len(cfg.acts) != info["layers"]:
        raise RekuError("--acts lists %d layers, the model has %d" % (len(cfg.acts), info["layers"]))
    if (budget and len(blob) > budget) or (fits and not fits(blob)):
        raise RekuError("trained model (%d bytes) does not fit the %s" % (len(blob), target))
    out.write_bytes(blob)
    ev = info.get("eval", {})
    print("wrote %s: %s%d bytes, d=%d f=%d layers=%d, %d steps in %.0fs; held-out (%s) exact %.3f, no-call %.3f; "
          "training chart %s" % (out, ("forward-forward, " if args.algo == "ff" else "") + (
                                     "from the prior, " if init is not None else ""), len(blob), info["d"], info["f"],
                                 info["layers"], info["steps"], info["seconds"],
                                 "%d example lines kept out" % len(dev) if args.hold_out else "generated",
                                 ev.get("exact_match", 0), ev.get("no_call_accuracy", 0), out.with_suffix(".png")))
    return 0


def _train_float(args, skill, cfg, log):
    """`reku train --float`: the same network trained without quantization, saved as a torch checkpoint for
    `reku quantize` (docs/routes.md)."""
    from .ptq import save_checkpoint
    from .train import train
    out = Path(args.out)
    try:
        _, info = train(skill, cfg, log=log)
    except ValueError as e:
        raise RekuError(str(e))
    net = info["net"]
    save_checkpoint(out, net, Path(args.skill).resolve(), info["schema"], info["vocab"], info["model_id"], args.seed,
                    {"steps": info["steps"]})
    print("wrote %s: float checkpoint, d=%d f=%d layers=%d, %d steps in %.0fs; last loss %.4f; "
          "`reku quantize --checkpoint %s --out FILE.rku` makes a .rku"
          % (out, info["d"], info["f"], info["layers"], info["steps"], info["seconds"],
             info["history"][-1][1] if info["history"] else float("nan"), out))
    return 0


# ---- quantize ----------------------------------------------------------------------------------------------
def configure_quantize(p):
    p.add_argument("--checkpoint", required=True, help="float checkpoint of `reku train --float`")
    p.add_argument("--out", required=True, help="output .rku file")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--svd-rank", type=int, help="low-rank correction of this rank on every ternary tensor")
    g.add_argument("--svd-budget-kb", type=float, help="low-rank corrections chosen to fit N KB of extra file")
    p.add_argument("--act-budget-kb", type=float,
                   help="choose FP4/int8 per layer by measured sensitivity so the activation buffers fit N KB")
    p.add_argument("--refine-steps", type=int, default=2000,
                   help="steps refining the corrections' factors on generated calibration data (0: the SVD alone)")
    p.add_argument("--calib", type=int, default=400, help="generated calibration examples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run_quantize(args):
    from .ptq import quantize
    if not Path(args.checkpoint).exists():
        raise RekuError("checkpoint %s not found" % args.checkpoint)
    for name, v in (("--svd-rank", args.svd_rank), ("--svd-budget-kb", args.svd_budget_kb)):
        if v is not None and v < 0:
            raise RekuError("%s must be >= 0 (got %s)" % (name, v))
    if args.act_budget_kb is not None and args.act_budget_kb <= 0:
        raise RekuError("--act-budget-kb must be > 0 (got %s)" % args.act_budget_kb)
    if args.refine_steps < 0:
        raise RekuError("--refine-steps must be >= 0 (got %s)" % args.refine_steps)
    if args.calib < 1:
        raise RekuError("--calib must be >= 1")
    try:
        blob, info = quantize(args.checkpoint, svd_rank=args.svd_rank,
                              svd_budget_bytes=None if args.svd_budget_kb is None else int(args.svd_budget_kb * 1024),
                              act_budget_bytes=None if args.act_budget_kb is None else int(args.act_budget_kb * 1024),
                              n_calib=args.calib, seed=args.seed, refine_steps=args.refine_steps)
    except ValueError as e:
        raise RekuError(str(e))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(blob)
    info.pop("net")
    if args.json:
        print(json.dumps(dict(info, out=str(out))))
        return 0
    print("wrote %s: %d bytes (plain PTQ %d, low-rank +%d, rank %d in all), acts %s (activation buffers %d B); "
          "calibration loss %.4f plain, %.4f with low-rank%s; generated held-out exact %.3f (%d)"
          % (out, info["bytes"], info["bytes_plain"], info["svd_bytes"], sum(info["ranks"].values()),
             ",".join(info["acts"]), info["act_ram"], info["calib_loss_plain"], info["calib_loss_svd"],
             "" if info["calib_loss_refined"] is None else
             ", %.4f refined (%d steps)" % (info["calib_loss_refined"], info["refine_steps"]),
             info["exact_match"], info["n_eval"]))
    return 0


# ---- eval --------------------------------------------------------------------------------------------------
def configure_eval(p):
    p.add_argument("--model", required=True, help=".rku file or bundled skill name (e.g. home)")
    p.add_argument("--data", required=True, help="JSONL file of {query, calls}")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--engine", choices=["reference", "firmware"], default="reference",
                   help="numpy reference (default) or the firmware engine (identical results, slower)")
    p.add_argument("--errors", type=int, default=0, help="list up to N mistakes")


def load_model(name_or_path):
    from rkfw import rku
    path = paths.model_file(name_or_path)
    try:
        return rku.load(path.read_bytes()), path
    except rku.RkuError as e:
        raise RekuError("%s: %s" % (path, e))


def run_eval(args):
    from .evaluate import evaluate_model
    from .skill import read_jsonl
    model, path = load_model(args.model)
    if not Path(args.data).exists():
        raise RekuError("data file %s not found" % args.data)
    data = read_jsonl(args.data)
    if not data:
        raise RekuError("%s has no examples" % args.data)
    res = evaluate_model(model, data, engine="reference" if args.engine == "reference" else "firmware",
                         with_errors=bool(args.errors))
    errors = res.pop("errors", [])
    if args.json:
        print(json.dumps(res))
    else:
        print("%s on %s (%d examples)" % (path, args.data, res["n"]))
        for k in ("exact_match", "name_accuracy", "argument_accuracy", "no_call_accuracy", "call_recall", "valid",
                  "reason_accuracy"):
            if k in res:
                print("  %-18s %.3f" % (k, res[k]))
    for e in errors[:args.errors]:
        print("  MISS %r\n    expected %s\n    got      %s" % (e["query"], json.dumps(e["expected"]),
                                                              json.dumps(e["got"])), file=sys.stderr)
    return 0


# ---- inspect -----------------------------------------------------------------------------------------------
def configure_repack(p):
    p.add_argument("file", help="a .rku file of format version 1 (or a refusing version 2 file, marked 3)")
    p.add_argument("--out", help="where to write the converted file (default: over FILE)")


def run_repack(args):
    from rkfw import rku
    from .rkufile import repack
    src = Path(args.file)
    try:
        blob = src.read_bytes()
    except OSError as e:
        raise RekuError("%s: cannot read (%s)" % (src, e.strerror or e))
    try:
        out = repack(blob)
    except (rku.RkuError, ValueError, KeyError, struct.error) as e:
        raise RekuError("%s: %s" % (src, e))
    dst = Path(args.out or args.file)
    tmp = dst.with_name(dst.name + ".tmp")
    tmp.write_bytes(out)
    tmp.replace(dst)
    print("wrote %s: %d bytes (format version %d), from %d bytes" % (dst, len(out), struct.unpack_from("<H", out, 4)[0],
                                                                     len(blob)))
    return 0


def configure_inspect(p):
    p.add_argument("file", help=".rku file or bundled skill name")
    p.add_argument("--json", action="store_true")


def inference_ram(model):
    """Bytes of the buffers rkfw.infer.Engine preallocates for `model` (its arrays: activations, FP4 layers
    packed, int32 state and scratch, pointer keys, ids, low-rank working buffers, the grammar's allowed set), read
    off an Engine built on the Python tier rather than re-derived. Not counted: the copies of low-rank factors
    that the Python tier makes on MicroPython, which has no memoryview cast (model bytes, about the size of the
    .lr tensors)."""
    from array import array

    from rkfw import infer, kernels
    e = infer.Engine(model, kernels.PYTHON)
    seen, total = set(), 0
    todo = list(vars(e).values()) + list(vars(e.grammar).values())
    while todo:
        v = todo.pop()
        if isinstance(v, array):
            if id(v) not in seen:
                seen.add(id(v))
                total += len(v) * v.itemsize
        elif isinstance(v, (list, tuple)):
            todo += v
        elif isinstance(v, dict):
            todo += v.values()
    return total


def inspect_model(model, nbytes):
    from rkfw import infer
    tern = [t for t in model.tensors.values() if t.dtype == "t"]
    n_tern = sum(math.prod(t.shape) for t in tern)
    tern_bytes = sum(len(t.data) for t in tern)
    scale_bytes = 4 * len(tern)        # the per-tensor scale the kernels use: M (< 2**14) and S (<= 30)
    other = {t.name: len(t.data) for t in model.tensors.values()      # i8, u8, lr: 1 byte each
             if t.dtype != "t" and t.name not in ("grammar", "meta")}
    bufs = inference_ram(model)
    meta_len = len(json.dumps(model.meta)) + 45 * len(model.tensors)
    res = {"model_id": model.model_id, "sha256": model.sha256, "file_bytes": nbytes, "arch": model.arch,
           "functions": infer.Grammar(model.tensor("grammar").data).n_fns, "vocab_out": model.arch["n_out"],
           "ternary_params": n_tern, "other_params": sum(other.values()),
           "bits_per_ternary_weight": 8.0 * (tern_bytes + scale_bytes) / max(1, n_tern),
           "ram_buffers_bytes": bufs}
    runtime = int(APP_HEAP + RUNTIME_CODE + META_FACTOR * meta_len + BUFFER_FACTOR * bufs + QUERY_HEAP
                  + (FP4_CODE if "fp4" in model.arch["acts"] else 0))
    res["peak_heap_model_in_ram"] = runtime + nbytes
    res["peak_heap_model_in_flash"] = runtime
    res["boards"] = {name: board_fit(prof, res) for name, prof in board_profiles().items()}
    return res


def board_fit(profile, res):
    """Does the model of inspect_model's `res` fit `profile`: its file within FILE_LIMIT and, read into RAM (no
    ROMFS), within the profile's largest single block; the estimated peak within HEAP_TARGET_SHARE of its heap."""
    budget, heap = board_budget(profile)
    romfs = profile.get("romfs")
    nbytes = res["file_bytes"]
    need = res["peak_heap_model_in_flash"] if romfs else res["peak_heap_model_in_ram"]
    block_ok = romfs or nbytes <= profile["block_kb"] * 1024       # the file is read into one allocation
    return {"fits": bool(nbytes <= FILE_LIMIT and block_ok and need <= heap * HEAP_TARGET_SHARE),
            "budget_bytes": budget, "heap_bytes": heap, "peak_heap": need, "block_bytes": profile["block_kb"] * 1024}


def run_inspect(args):
    model, path = load_model(args.file)
    res = inspect_model(model, path.stat().st_size)
    if args.json:
        print(json.dumps(res))
        return 0
    a = res["arch"]
    print("%s  (%s)" % (path, res["model_id"]))
    print("  sha256            %s" % res["sha256"])
    print("  file              %d bytes" % res["file_bytes"])
    print("  architecture      %s: d=%d f=%d layers=%d dk=%d max_in=%d acts=%s"
          % (a.get("type"), a["d"], a["f"], a["layers"], a["dk"], a["max_in"], ",".join(a["acts"])))
    print("  functions         %d (%d output tokens)" % (res["functions"], res["vocab_out"]))
    print("  ternary params    %d  (%.3f bits/weight incl. scales)" % (res["ternary_params"],
                                                                         res["bits_per_ternary_weight"]))
    print("  other params      %d  (uint8 mu/decay/bonus, sigmoid LUT, int8 embedding if any)" % res["other_params"])
    print("  RAM at inference  %d bytes of engine buffers; peak heap with the firmware ~%d (model read into RAM),"
          " ~%d (model in ROMFS)" % (res["ram_buffers_bytes"], res["peak_heap_model_in_ram"],
                                     res["peak_heap_model_in_flash"]))
    if res["boards"]:
        for name, b in res["boards"].items():
            print("  board %-16s %-12s peak heap ~%6d of %6d (limit %d%%); file %d B, largest block %d B" % (
                name, "fits" if b["fits"] else "DOES NOT FIT", b["peak_heap"], b["heap_bytes"],
                100 * HEAP_TARGET_SHARE, res["file_bytes"], b["block_bytes"]))
    else:
        print("  boards            no board profiles in %s" % paths.BOARDS)
    return 0
