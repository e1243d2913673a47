"""Quantization-aware training of a skill's model and export to .rku."""

import hashlib
import json
import math
import random
import time

import numpy as np
import torch
import torch.nn.functional as F

from rkfw import infer, rku

from . import data as datagen
from . import rkufile
from . import steps as targets
from .qat import Net
from .skill import compile_schema
from .tokenizer import ALPHABET

MAX_IN = 96


class Encoded:
    """Training sequences: input ids + SEP + fed-back outputs, and the decode steps to predict."""

    def __init__(self, examples, tok, grammar, n_in, max_in=MAX_IN):
        self.seqs, self.n, self.tok_steps, self.ptr_steps = [], [], [], []
        self.masks = {}
        self.skipped = []
        for ex in examples:
            text = ex["query"][:max_in]
            ids = [0] * len(text)
            n = tok.encode(text, ids)
            try:
                steps = targets.target_steps(grammar, ex["calls"], text, tok)
            except ValueError as e:
                self.skipped.append((ex["query"], str(e)))
                continue
            seq = ids + [tok.sep]
            ts, ps = [], []
            for i, (kind, choice, allowed) in enumerate(steps):
                pos = n + i
                if kind == infer.K_TOKEN:
                    mid = self.masks.setdefault(allowed, len(self.masks))
                    ts.append((pos, choice, mid))
                    fed = n_in + choice
                else:
                    ps.append((pos, choice, allowed))
                    fed = infer.fed_id(kind, choice, ids)
                if i + 1 < len(steps):
                    seq.append(fed)
            self.seqs.append(seq)
            self.n.append(n)
            self.tok_steps.append(ts)
            self.ptr_steps.append(ps)
        self.n_out = len(grammar.vocab)

    def __len__(self):
        return len(self.seqs)

    def mask_table(self):
        U = torch.zeros(len(self.masks), self.n_out, dtype=torch.bool)
        for allowed, i in self.masks.items():
            U[i, list(allowed)] = True
        return U

    def batch(self, idx):
        T = max(len(self.seqs[i]) for i in idx)
        ids = torch.zeros(len(idx), T, dtype=torch.long)
        tb, tp, tt, tm = [], [], [], []
        pb, pp, pt, pmask = [], [], [], []
        for bi, i in enumerate(idx):
            s = self.seqs[i]
            ids[bi, :len(s)] = torch.tensor(s)
            for pos, tgt, mid in self.tok_steps[i]:
                tb.append(bi)
                tp.append(pos)
                tt.append(tgt)
                tm.append(mid)
            for pos, tgt, allowed in self.ptr_steps[i]:
                pb.append(bi)
                pp.append(pos)
                pt.append(tgt)
                m = torch.zeros(T, dtype=torch.bool)
                m[list(allowed)] = True
                pmask.append(m)
        out = {"ids": ids, "tb": torch.tensor(tb), "tp": torch.tensor(tp), "tt": torch.tensor(tt),
               "tm": torch.tensor(tm)}
        if pb:
            out.update(pb=torch.tensor(pb), pp=torch.tensor(pp), pt=torch.tensor(pt), pm=torch.stack(pmask))
        return out


def loss_fn(net, U, b):
    return readout_loss(net, U, b, net(b["ids"]))


def readout_loss(net, U, b, h):
    """Masked cross-entropy of the head (token steps) and the pointer (pointer steps) on the residual stream h."""
    logits = net.logits(h[b["tb"], b["tp"]])
    logits = logits.masked_fill(~U[b["tm"]], -1e9)
    loss_t = F.cross_entropy(logits, b["tt"], reduction="sum")
    correct = int((logits.argmax(-1) == b["tt"]).sum())
    n = len(b["tt"])
    loss = loss_t
    if "pb" in b:
        K = net.keys(h)                                           # (B, T, dk)
        q = net.query(h[b["pb"], b["pp"]])                        # (Np, dk)
        scores = torch.einsum("nd,ntd->nt", q, K[b["pb"]])
        scores = scores.masked_fill(~b["pm"], -1e9)
        loss = loss + F.cross_entropy(scores, b["pt"], reduction="sum")
        correct += int((scores.argmax(-1) == b["pt"]).sum())
        n += len(b["pt"])
    return loss / n, correct, n


def build_model_bytes(net, schema, vocab, model_id, extra=None):
    meta = {"model_id": model_id, "arch": net.arch(MAX_IN), "tokenizer": {"kind": "char", "alphabet": ALPHABET},
            "vocab": vocab, "schema": schema}
    if extra:
        meta["train"] = extra
    return rkufile.write(None, meta, net.export_tensors())


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


class FlipMonitor:
    """Counts ternary flips between checks (rate = flips per weight per step) and, when asked, freezes
    weights whose flip frequency stays high (iterative freezing, Nagel et al. 2022)."""

    def __init__(self, net):
        self.mods = net.tlinears()
        self.prev = [m.ternary()[0].detach().clone() for m in self.mods]
        self.ema = [torch.zeros_like(p) for p in self.prev]
        self.n = sum(p.numel() for p in self.prev)
        self.frozen = 0

    @torch.no_grad()
    def update(self):
        flips = 0
        for i, m in enumerate(self.mods):
            t = m.ternary()[0]
            if m.frozen is not None:
                t = torch.where(m.frozen, m.frozen_val, t)
            ch = (t != self.prev[i]).float()
            flips += int(ch.sum())
            self.ema[i].mul_(0.99).add_(ch, alpha=0.01)
            self.prev[i] = t.clone()
        return flips / self.n

    @torch.no_grad()
    def freeze(self, threshold):
        self.frozen = 0
        for i, m in enumerate(self.mods):
            f = self.ema[i] > threshold
            if m.frozen is None:
                m.frozen = f
                m.frozen_val = self.prev[i].clone()
            else:
                newly = f & ~m.frozen
                m.frozen_val = torch.where(newly, self.prev[i], m.frozen_val)
                m.frozen = m.frozen | f
            self.frozen += int(m.frozen.sum())
        return self.frozen / self.n


def dampening_loss(net):
    """sum (w/alpha - clip(round(w/alpha)))^2 over ternary weights: pulls latent weights to their grid point."""
    tot = 0.0
    for m in net.tlinears():
        a = m.alpha().detach()
        z = m.weight / a
        tot = tot + ((z - torch.clamp(torch.round(z), -1, 1).detach()) ** 2).mean()
    return tot


def _bar(frac, width=24):
    n = int(frac * width)
    return "[" + "=" * n + " " * (width - n) + "]"


def train(skill, out=None, size=None, d=None, f=None, layers=None, dk=40, acts=None, steps=2000, batch=64, lr=3e-3,
          n_train=20000, seed=0, minutes=None, log=print, dev_data=None, eval_every=250, dampen=1e-3,
          freeze_after=0.6, freeze_threshold=0.02, budget_bytes=None, png=None, float_mode=False, algo="qat",
          fits=None):
    """Quantization-aware training; returns (rku bytes of the best checkpoint on dev_data, info).
    float_mode: the float route (`reku train --float`): no ternarisation, no activation rounding, no dampening or
    freezing, no held-out evaluation; returns (None, info) with the trained Net in info["net"] (and "schema",
    "vocab", "model_id") for reku.model.ptq.
    algo "ff": forward-forward training of the same network (reku.model.ff, docs/routes.md): per-layer goodness
    objectives on positive/negative sequences, the readout by cross-entropy on the detached final stream.
    Ends after `steps` steps or `minutes` of wall time, whichever is first (the learning-rate schedule
    follows the earlier of the two)."""
    from .evaluate import evaluate_model
    if algo not in ("qat", "ff"):
        raise ValueError("unknown training algorithm %r (qat or ff)" % algo)
    if algo == "ff" and float_mode:
        raise ValueError("forward-forward training is ternary QAT only; --float is not supported with --algo ff")
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    torch.use_deterministic_algorithms(True, warn_only=True)     # e.g. the embedding gradient: same bytes per seed
    schema, vocab = compile_schema(skill)
    tok = infer.Tokenizer(ALPHABET)
    grammar = infer.Grammar(schema, vocab)
    explicit = size is not None or d is not None
    if not explicit:
        if fits is None:
            limit = budget_bytes or 128 * 1024
            fits = lambda blob: len(blob) <= limit          # noqa: E731
        shape = fit_shape(schema, vocab, tok.n_in, fits)
        if shape is None:
            raise ValueError("not even the smallest model (d=%d f=%d layers=%d) fits; on a board without ROMFS the "
                             "model is read into RAM (see reku inspect)" % SIZES["tiny"])
        d, f, layers = shape
    elif size is not None:
        d0, f0, L0 = SIZES[size]
        d, f, layers = d or d0, f or f0, layers or L0
    if explicit and fits is not None and not fits(build_model_bytes(
            Net(tok.n_in, len(vocab), d=d, f=f, layers=layers, dk=dk), schema, vocab, "size-probe")):
        raise ValueError("a d=%d f=%d layers=%d model does not fit; choose a smaller --size/--dims, or neither (the "
                         "largest shape that fits is picked)" % (d, f, layers))
    torch.manual_seed(seed)                         # size probes do not change the initialisation
    log("network d=%d f=%d layers=%d (%s)" % (d, f, layers, "as asked" if explicit else "the largest that fits"))
    exs = datagen.generate(skill, n_train, seed=seed)
    ds = Encoded(exs, tok, grammar, tok.n_in)
    if len(ds) == 0:
        raise ValueError("no trainable examples (all %d skipped: %s)" % (len(ds.skipped), ds.skipped[:1]))
    U = ds.mask_table()
    if algo == "ff":
        from . import ff
        ffd = ff.FFData(ds, tok.n_in, vocab)
        ff_rng = random.Random(seed + 7)
    net = Net(tok.n_in, len(vocab), d=d, f=f, layers=layers, dk=dk, acts=acts)
    if float_mode:
        net.set_float(True)
        dampen, freeze_after, dev_data = 0, 0, None
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    mon = FlipMonitor(net)
    rng = random.Random(seed)
    t0 = time.time()
    hist, evals, flips = [], [], []
    key = [schema, d, f, layers, seed] + (["ff"] if algo == "ff" else [])     # QAT ids unchanged
    model_id = "%s-%s" % (skill.name, hashlib.sha1(json.dumps(key).encode()).hexdigest()[:8])
    best = (-1.0, None, None)
    extra = {"skill": skill.name, "seed": seed, "d": d, "f": f, "layers": layers}
    if algo == "ff":
        extra["algo"] = "ff"
        groups = ff.layer_groups(net)
    ffs = ""
    step = 0

    def progress():
        el = time.time() - t0
        fr = step / steps
        if minutes:
            fr = max(fr, el / (minutes * 60.0))
        return min(1.0, fr)

    def do_eval():
        blob = build_model_bytes(net, schema, vocab, model_id, extra)
        res = evaluate_model(rku.load(blob), dev_data)
        evals.append((step, res["exact_match"], res["no_call_accuracy"]))
        return blob, res

    while True:
        frac = progress()
        if frac >= 1.0:
            break
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * frac))
        idx = [rng.randrange(len(ds)) for _ in range(batch)]
        net.train()
        if algo == "ff":
            b = ffd.batch(idx, ff_rng)
            total, loss, correct, n, stats, _ = ff.step_loss(net, U, b)
            ffs = "  goodness +/- " + " ".join("%.2f/%.2f" % s for s in stats)
        else:
            b = ds.batch(idx)
            loss, correct, n = loss_fn(net, U, b)
            total = loss
        if dampen:
            total = total + dampen * frac * dampening_loss(net)
        opt.zero_grad()
        total.backward()
        if algo == "ff":
            for g in groups:                  # per layer: no layer's step depends on another's gradients
                torch.nn.utils.clip_grad_norm_(g, 1.0)
        else:
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        fr = mon.update()
        flips.append(fr)
        if freeze_after and frac >= freeze_after and step % 50 == 0:
            mon.freeze(freeze_threshold)
        hist.append((step, loss.item(), correct / n))
        step += 1
        if dev_data and eval_every and step % eval_every == 0:
            blob, res = do_eval()
            if res["exact_match"] > best[0]:
                best = (res["exact_match"], blob, res)
            log("%s %3d%% step %5d  loss %.4f  held-out exact %.3f  no-call %.3f  flips/step %.2e  %.0fs%s"
                % (_bar(frac), 100 * frac, step, loss.item(), res["exact_match"], res["no_call_accuracy"],
                   sum(flips[-eval_every:]) / eval_every, time.time() - t0, ffs))
        elif step % 50 == 0:
            log("%s %3d%% step %5d  loss %.4f  step-acc %.3f  %.0fs%s"
                % (_bar(frac), 100 * frac, step, loss.item(), correct / n, time.time() - t0, ffs))
    info = {"steps": step, "seconds": time.time() - t0, "history": hist, "evals": evals, "skipped": len(ds.skipped),
            "flip_rate": flips, "frozen": mon.frozen / mon.n, "d": d, "f": f, "layers": layers,
            "n_ternary": mon.n}
    if float_mode:
        info.update(net=net, schema=schema, vocab=vocab, model_id=model_id)
        return None, info
    if dev_data:
        blob, res = do_eval()
        if res["exact_match"] >= best[0]:
            best = (res["exact_match"], blob, res)
        blob, info["eval"] = best[1], best[2]
    else:
        blob = build_model_bytes(net, schema, vocab, model_id, extra)
    if out:
        with open(out, "wb") as fh:
            fh.write(blob)
    if png:
        from .png import chart
        w = max(1, len(hist) // 200)
        sm = [(hist[i][0], sum(h[1] for h in hist[i:i + w]) / len(hist[i:i + w])) for i in range(0, len(hist), w)]
        series = [(sm, (200, 40, 40))]
        if evals:
            series.append(([(s, 1.0 - e) for s, e, _ in evals], (40, 90, 200)))
        chart(series, png)
    return blob, info
