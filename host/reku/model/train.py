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
                steps = infer.target_steps(grammar, ex["calls"], text, tok)
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
                    fed = ids[choice] if kind == infer.K_START else ids[choice - 1]
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
    h = net(b["ids"])
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


def train(skill, out=None, d=40, f=80, layers=1, dk=40, acts=None, steps=300, batch=64, lr=3e-3, n_train=4000,
          seed=0, minutes=None, log=print, eval_data=None, eval_every=0):
    """Train and return (rku bytes, info dict). eval_data: list of examples scored with the integer
    reference after export at the end (and every eval_every steps when > 0)."""
    from .evaluate import evaluate_model
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    schema, vocab = compile_schema(skill)
    tok = infer.Tokenizer(ALPHABET)
    grammar = infer.Grammar(schema, vocab)
    exs = datagen.generate(skill, n_train, seed=seed)
    ds = Encoded(exs, tok, grammar, tok.n_in)
    if len(ds) == 0:
        raise ValueError("no trainable examples (all %d skipped: %s)" % (len(ds.skipped), ds.skipped[:1]))
    U = ds.mask_table()
    net = Net(tok.n_in, len(vocab), d=d, f=f, layers=layers, dk=dk, acts=acts)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 30) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, steps)))))
    rng = random.Random(seed)
    t0 = time.time()
    hist = []
    model_id = "%s-%s" % (skill.name, hashlib.sha1(json.dumps([schema, d, f, layers, seed]).encode()).hexdigest()[:8])
    for step in range(steps):
        if minutes is not None and time.time() - t0 > minutes * 60:
            log("time cap reached at step %d" % step)
            break
        idx = [rng.randrange(len(ds)) for _ in range(batch)]
        b = ds.batch(idx)
        net.train()
        loss, correct, n = loss_fn(net, U, b)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        hist.append((step, loss.item(), correct / n))
        if step % 25 == 0 or step == steps - 1:
            log("step %4d  loss %.4f  step-acc %.3f  %.0fs" % (step, loss.item(), correct / n, time.time() - t0))
    blob = build_model_bytes(net, schema, vocab, model_id)
    info = {"steps": len(hist), "seconds": time.time() - t0, "history": hist, "skipped": len(ds.skipped)}
    if eval_data:
        info["eval"] = evaluate_model(rku.load(blob), eval_data)
    if out:
        with open(out, "wb") as fh:
            fh.write(blob)
    return blob, info
