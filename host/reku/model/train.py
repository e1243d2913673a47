"""Training a skill's model (`reku train`): one loop, three routes. A TrainConfig says what to train; a route
(QAT, float, forward-forward) supplies each step's batch, loss and gradient clipping; the loop does the rest
(shape, schedule, ternary flip monitoring and freezing, held-out checkpoints, the .rku)."""

import dataclasses
import hashlib
import json
import random
import time

import numpy as np
import torch

from rkfw import infer, rku

from . import data as datagen
from . import rkufile
from .objective import Encoded, build_model_bytes, loss_fn
from .optim import FlipMonitor, optimize
from .qat import Net
from .skill import compile_schema
from .tokenizer import ALPHABET


SIZES = {          # name: (d, f, layers)
    "tiny": (40, 80, 1),
    "small": (80, 160, 2),
    "medium": (120, 240, 2),
    "large": (160, 320, 3),
}


def shapes():
    """Network shapes (d, f, layers) from the smallest file to the largest: tiny, then every width from 45 to 160 in
    steps of 5 with two layers and f = 2d (small and medium among them), then large."""
    return [SIZES["tiny"]] + [(d, 2 * d, 2) for d in range(45, 165, 5)] + [SIZES["large"]]


def fit_shape(schema, vocab, n_in, fits):
    """The largest shape whose untrained .rku satisfies fits(blob) (a file budget, or a board's heap, see
    reku.model.cli); None when not even tiny does."""
    best = None
    torch.manual_seed(0)
    for d, f, L in shapes():
        if not fits(build_model_bytes(Net(n_in, len(vocab), d=d, f=f, layers=L), schema, vocab, "size-probe")):
            break
        best = (d, f, L)
    return best


def _bar(frac, width=24):
    n = int(frac * width)
    return "[" + "=" * n + " " * (width - n) + "]"


@dataclasses.dataclass
class TrainConfig:
    """What to train. Shape: `size` (SIZES) and/or d, f, layers; neither: the largest shape that `fits` (a
    predicate on the untrained .rku bytes) or, without one, a file of at most `budget_bytes` (default 128 KB).
    Length: `steps` or `minutes` of wall time, whichever ends first (the learning-rate schedule follows the
    earlier). `algo`: "qat" (ternary quantization-aware training), "float" (no quantization, for
    reku.model.ptq) or "ff" (forward-forward, reku.model.ff)."""
    algo: str = "qat"
    size: str = None
    d: int = None
    f: int = None
    layers: int = None
    dk: int = 40
    acts: list = None
    steps: int = 2000
    minutes: float = None
    batch: int = 64
    lr: float = 3e-3
    warmup: int = 50                  # steps of linear learning-rate warm-up before the cosine decay
    n_train: int = 20000
    schema_lines: float = 0.0         # share of a function's generated requests drawn from its schema's lines
    negatives: float = None           # share of generated requests for nothing (None: data.NEGATIVES)
    refusals: float = 0.0             # share of generated requests asking for a value the schema lacks (> 0: the
                                      # model may refuse a value, rkfw.infer.Grammar)
    seed: int = 0
    eval_every: int = 250
    dampen: float = 1e-3              # oscillation dampening weight (QAT, FF)
    freeze_after: float = 0.6         # share of the run after which oscillating weights freeze (0: never)
    freeze_threshold: float = 0.02
    ff_objective: str = "heads"       # forward-forward: each block's objective (reku.model.ff.OBJECTIVES)
    ff_negatives: str = "grammar"     # forward-forward: negatives (reku.model.ff.NEGATIVES)
    layer_lr: tuple = None            # learning-rate multiplier per layer: embedding + block 0, block 1, ... (QAT, FF)
    ff_theta: float = 1.0             # forward-forward: the goodness threshold of Hinton's loss (ff.THETA)
    ff_parallel: bool = False         # forward-forward: one process per layer, pipelined (reku.model.ff.Pipeline)
    budget_bytes: int = None
    fits: object = None

    def __post_init__(self):
        if self.algo not in ROUTES:
            raise ValueError("unknown training algorithm %r (%s)" % (self.algo, ", ".join(ROUTES)))
        if self.steps < 1:
            raise ValueError("steps must be at least 1 (got %s)" % self.steps)
        if self.minutes is not None and self.minutes <= 0:
            raise ValueError("minutes must be > 0 (got %s)" % self.minutes)
        if not 0 <= self.schema_lines <= 1:
            raise ValueError("--schema-lines is a share between 0 and 1 (got %s)" % self.schema_lines)
        if self.negatives is not None and not 0 <= self.negatives < 1:
            raise ValueError("--negatives is a share between 0 and 1 (got %s)" % self.negatives)
        if not 0 <= self.refusals < 1:
            raise ValueError("--refusals is a share between 0 and 1 (got %s)" % self.refusals)
        from .ff import NEGATIVES, OBJECTIVES
        if self.ff_objective not in OBJECTIVES:
            raise ValueError("unknown forward-forward objective %r (%s)" % (self.ff_objective, ", ".join(OBJECTIVES)))
        if self.ff_negatives not in NEGATIVES:
            raise ValueError("unknown forward-forward negatives %r (%s)" % (self.ff_negatives, ", ".join(NEGATIVES)))
        if self.layer_lr is not None and not all(v > 0 for v in self.layer_lr):
            raise ValueError("per-layer learning-rate multipliers must be > 0 (got %s)" % (self.layer_lr,))
        if self.ff_parallel:
            why = ("it is for --algo ff" if self.algo != "ff" else "it needs a step count, not a time cap"
                   if self.minutes else "hard negatives need the whole network's readout in every layer's process"
                   if self.ff_negatives == "hard" else None)
            if why:
                raise ValueError("parallel forward-forward training: " + why)


def layer_scales(layer_lr, L, n_groups):
    """The learning-rate multiplier of each parameter group from one multiplier per layer (a readout group of its
    own, as forward-forward's without block heads, takes the last layer's)."""
    if len(layer_lr) != L:
        raise ValueError("%d per-layer learning-rate multipliers for %d layers" % (len(layer_lr), L))
    return list(layer_lr) + [layer_lr[-1]] * (n_groups - L)


class QATRoute:
    """Ternary quantization-aware training: the readout's cross-entropy through the whole network."""
    quantized = True
    id_key = []                       # added to the model id's hash (QAT ids unchanged since before routes)
    extra = {}                        # added to the file's "train" metadata

    def __init__(self, net, ds, U, vocab, seed, cfg=None):
        self.net, self.ds, self.U = net, ds, U
        self.groups = [list(net.parameters())]
        self.scales = [1.0]
        if cfg is not None and cfg.layer_lr:
            from .ff import layer_groups
            self.groups = layer_groups(net)
            self.groups[-2:] = [self.groups[-2] + self.groups[-1]]     # the readout with the last block
            self.scales = layer_scales(cfg.layer_lr, net.L, len(self.groups))
            self.id_key = [["layer_lr", list(cfg.layer_lr)]]
            self.extra = {"layer_lr": list(cfg.layer_lr)}

    def batch(self, idx):
        return self.ds.batch(idx)

    def param_groups(self):
        """The optimizer's parameter groups, each with its learning-rate multiplier `scale`."""
        return [{"params": g, "scale": s} for g, s in zip(self.groups, self.scales)]

    def tlinears(self):
        """The ternary layers this process trains (dampened, monitored, frozen here)."""
        return self.net.tlinears()

    def sync(self, step):
        """Make the network whole as it is after `step` steps (parallel forward-forward only)."""

    def close(self):
        """Stop whatever the route started."""

    def loss(self, b):
        """(loss to backpropagate, readout loss, correct, n, progress text)."""
        loss, correct, n = loss_fn(self.net, self.U, b)
        return loss, loss, correct, n, ""

    def clip(self):
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)


class FloatRoute(QATRoute):
    """The float route (`reku train --float`): the same network and loss without ternarisation or activation
    rounding, hence no dampening, freezing or held-out evaluation; the result is a Net for reku.model.ptq."""
    quantized = False

    def __init__(self, net, ds, U, vocab, seed, cfg=None):
        super().__init__(net, ds, U, vocab, seed, cfg)
        net.set_float(True)


class FFRoute(QATRoute):
    """Forward-forward (reku.model.ff, docs/routes.md): per-layer objectives (block heads, goodness on
    positive/negative sequences), the readout by cross-entropy on the last block; gradients clipped per layer.
    Parallel (cfg.ff_parallel): this process trains the last layer, ff.Pipeline's workers the layers below."""
    quantized = True

    def __init__(self, net, ds, U, vocab, seed, cfg=None):
        from . import ff
        cfg = cfg if cfg is not None else TrainConfig(algo="ff")
        self.ff, self.net, self.U = ff, net, U
        self.objective, self.theta = cfg.ff_objective, cfg.ff_theta
        self.id_key = ["ff"] + ([] if self.objective == "goodness" else [self.objective])
        self.extra = dict({"algo": "ff"}, **({} if self.objective == "goodness" else {"ff": self.objective}))
        for k, v, default in (("ff_negatives", cfg.ff_negatives, "grammar"), ("layer_lr", cfg.layer_lr, None),
                              ("ff_theta", cfg.ff_theta, ff.THETA)):
            if v != default:                  # ids and metadata of the default runs stay as they were
                v = list(v) if isinstance(v, tuple) else v
                self.id_key.append([k, v])
                self.extra[k] = v
        self.data = ff.FFData(ds, net.n_in, vocab, cfg.ff_negatives)
        self.rng = random.Random(seed + 7)
        self.modules = [ff.BlockHead(net) for _ in range(net.L - 1)] if self.objective.endswith("heads") else []
        self.groups = ff.layer_groups(net, self.modules)
        self.scales = layer_scales(cfg.layer_lr or [1.0] * net.L, net.L, len(self.groups))
        self.negatives = self.objective != "heads"       # block heads alone score no negatives
        self.first, self.pipe = 0, None
        if cfg.ff_parallel:
            if len(self.groups) < 2 or not self.modules:
                raise ValueError("parallel forward-forward training needs block heads and at least 2 layers")
            self.first = len(self.groups) - 1
            self.pipe = ff.Pipeline(self, cfg, seed)

    def batch(self, idx):
        if self.pipe:
            return self.pipe.batch(idx)
        return self.data.batch(idx, self.rng, self.net, self.U, negatives=self.negatives)

    def own(self):
        """Indices of the layers this process trains."""
        return range(self.first, len(self.groups))

    def param_groups(self):
        return [{"params": self.groups[k], "scale": self.scales[k]} for k in self.own()]

    def tlinears(self):
        return self.ff.layer_tlinears(self.net, self.groups, self.own())

    def loss(self, b):
        total, loss, correct, n, stats, _ = self.ff.step_loss(self.net, self.U, b, self.theta, self.objective,
                                                              heads=self.modules, first=self.first)
        return total, loss, correct, n, "  goodness +/- " + " ".join("%.2f/%.2f" % s for s in stats)

    def clip(self):
        for k in self.own():              # per layer: no layer's step depends on another's gradients
            torch.nn.utils.clip_grad_norm_(self.groups[k], 1.0)

    def sync(self, step):
        if self.pipe:
            self.pipe.sync(step)

    def close(self):
        if self.pipe:
            self.pipe.close()


ROUTES = {"qat": QATRoute, "float": FloatRoute, "ff": FFRoute}


def choose_shape(cfg, schema, vocab, n_in):
    """(d, f, layers, explicit): the configured shape, or the largest that fits."""
    explicit = cfg.size is not None or cfg.d is not None
    if not explicit:
        fits = cfg.fits
        if fits is None:
            limit = cfg.budget_bytes or 128 * 1024
            fits = lambda blob: len(blob) <= limit          # noqa: E731
        shape = fit_shape(schema, vocab, n_in, fits)
        if shape is None:
            raise ValueError("not even the smallest model (d=%d f=%d layers=%d) fits; on a board without ROMFS the "
                             "model is read into RAM (see reku inspect)" % SIZES["tiny"])
        return shape + (False,)
    d, f, layers = cfg.d, cfg.f, cfg.layers
    if cfg.size is not None:
        if cfg.size not in SIZES:
            raise ValueError("unknown size %r (%s)" % (cfg.size, ", ".join(SIZES)))
        d0, f0, L0 = SIZES[cfg.size]
        d, f, layers = d or d0, f or f0, layers or L0
    if cfg.fits is not None and not cfg.fits(build_model_bytes(
            Net(n_in, len(vocab), d=d, f=f, layers=layers, dk=cfg.dk), schema, vocab, "size-probe")):
        raise ValueError("a d=%d f=%d layers=%d model does not fit; choose a smaller --size/--dims, or neither (the "
                         "largest shape that fits is picked)" % (d, f, layers))
    return d, f, layers, True


def train(skill, cfg=None, dev_data=None, log=print, out=None, png=None, init=None, examples=None, id_extra=(),
          penalty=None, **kw):
    """Train `skill` as `cfg` (a TrainConfig, or its fields as keywords) says; returns (rku bytes of the best
    checkpoint on dev_data, info). With dev_data, the model is evaluated every cfg.eval_every steps and at the end.
    init: a Net to start from (reku learn: Net.from_rku of a deployed model; its shape wins); examples: the
    training examples instead of cfg.n_train generated ones; id_extra: added to what the model id hashes;
    penalty: a function of the net added to each step's loss (reku federate: FedProx's proximal term).
    The float route returns (None, info) with the trained Net in info["net"] (and "schema", "vocab", "model_id").
    out: also write the .rku there; png: the training chart (loss, held-out exact match)."""
    from .evaluate import evaluate_model
    cfg = dataclasses.replace(cfg, **kw) if cfg is not None else TrainConfig(**kw)
    seed = cfg.seed
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    torch.use_deterministic_algorithms(True, warn_only=True)     # e.g. the embedding gradient: same bytes per seed
    schema, vocab = compile_schema(skill, refuse=cfg.refusals > 0)
    tok = infer.Tokenizer(ALPHABET)
    grammar = rkufile.grammar(schema, vocab)
    if init is not None:
        d, f, layers, explicit = init.d, init.f, init.L, True
    else:
        d, f, layers, explicit = choose_shape(cfg, schema, vocab, tok.n_in)
    torch.manual_seed(seed)                         # size probes do not change the initialisation
    log("network d=%d f=%d layers=%d (%s)" % (d, f, layers, "from the model given" if init is not None else
                                              "as asked" if explicit else "the largest that fits"))
    if examples is None:
        examples = datagen.generate(skill, cfg.n_train, seed=seed, schema=cfg.schema_lines, refusals=cfg.refusals,
                                    negatives=datagen.NEGATIVES if cfg.negatives is None else cfg.negatives)
    ds = Encoded(examples, tok, grammar, tok.n_in)
    if len(ds) == 0:
        raise ValueError("no trainable examples (all %d skipped: %s)" % (len(ds.skipped), ds.skipped[:1]))
    U = ds.mask_table()
    net = init if init is not None else Net(tok.n_in, len(vocab), d=d, f=f, layers=layers, dk=cfg.dk, acts=cfg.acts)
    route = ROUTES[cfg.algo](net, ds, U, vocab, seed, cfg)
    dampen, freeze_after = (cfg.dampen, cfg.freeze_after) if route.quantized else (0, 0)
    if not route.quantized:
        dev_data = None
    opt = torch.optim.AdamW(route.param_groups(), lr=cfg.lr, weight_decay=0.0)
    mon = FlipMonitor(route.tlinears())
    rng = random.Random(seed)
    t0 = time.time()
    hist, evals, flips = [], [], []
    key = [schema, d, f, layers, seed] + route.id_key + list(id_extra)
    model_id = "%s-%s" % (skill.name, hashlib.sha1(json.dumps(key).encode()).hexdigest()[:8])
    best = (-1.0, None, None)
    extra = dict({"skill": skill.name, "seed": seed, "d": d, "f": f, "layers": layers}, **route.extra)
    step = 0

    def progress():
        fr = step / cfg.steps
        if cfg.minutes:
            fr = max(fr, (time.time() - t0) / (cfg.minutes * 60.0))
        return min(1.0, fr)

    def do_eval():
        route.sync(step)
        blob = build_model_bytes(net, schema, vocab, model_id, extra)
        res = evaluate_model(rku.load(blob), dev_data)
        evals.append((step, res["exact_match"], res["no_call_accuracy"]))
        return blob, res

    try:
        while True:
            frac = progress()
            if frac >= 1.0:
                break
            idx = [rng.randrange(len(ds)) for _ in range(cfg.batch)]
            net.train()
            total, loss, correct, n, status = route.loss(route.batch(idx))
            if penalty is not None:
                total = total + penalty(net)
            flips.append(optimize(opt, total, route.clip, mon, cfg, step, frac, dampen, freeze_after))
            hist.append((step, loss.item(), correct / n))
            step += 1
            if dev_data and cfg.eval_every and step % cfg.eval_every == 0:
                blob, res = do_eval()
                if res["exact_match"] > best[0]:
                    best = (res["exact_match"], blob, res)
                log("%s %3d%% step %5d  loss %.4f  held-out exact %.3f  no-call %.3f  flips/step %.2e  %.0fs%s"
                    % (_bar(frac), 100 * frac, step, loss.item(), res["exact_match"], res["no_call_accuracy"],
                       sum(flips[-cfg.eval_every:]) / cfg.eval_every, time.time() - t0, status))
            elif step % 50 == 0:
                log("%s %3d%% step %5d  loss %.4f  step-acc %.3f  %.0fs%s"
                    % (_bar(frac), 100 * frac, step, loss.item(), correct / n, time.time() - t0, status))
        route.sync(step)
    finally:
        route.close()
    tern = net.tlinears()
    n_tern = sum(m.weight.numel() for m in tern)
    frozen = sum(int(m.frozen.sum()) for m in tern if m.frozen is not None)
    info = {"steps": step, "seconds": time.time() - t0, "history": hist, "evals": evals, "skipped": len(ds.skipped),
            "flip_rate": flips, "frozen": frozen / n_tern, "d": d, "f": f, "layers": layers, "n_ternary": n_tern}
    if not route.quantized:
        info.update(net=net, schema=schema, vocab=vocab, model_id=model_id)
        blob = None
    elif dev_data:
        blob, res = do_eval()
        if res["exact_match"] >= best[0]:
            best = (res["exact_match"], blob, res)
        blob, info["eval"] = best[1], best[2]
    else:
        blob = build_model_bytes(net, schema, vocab, model_id, extra)
    if out and blob is not None:
        with open(out, "wb") as fh:
            fh.write(blob)
    if png:
        from .chart import training_chart
        training_chart(hist, evals, png, title="%s: %s, d=%d f=%d layers=%d" % (skill.name, cfg.algo, d, f, layers))
    return blob, info
