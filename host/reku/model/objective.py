"""The training objective shared by every route (reku.model.train: QAT, float; reku.model.ff: forward-forward's
readout; reku.model.ptq: calibration): the encoded data set of decode steps, the readout's masked cross-entropy,
and the export of a trained Net to .rku bytes."""

import torch
import torch.nn.functional as F

from rkfw import infer

from . import rkufile
from rkfw import steps as targets
from .rkufile import MAX_IN
from .tokenizer import ALPHABET


class Encoded:
    """Training sequences: input ids + SEP + fed-back outputs, and the decode steps to predict."""

    def __init__(self, examples, tok, grammar, n_in, max_in=MAX_IN):
        self.seqs, self.n, self.tok_steps, self.ptr_steps, self.ptr_kinds = [], [], [], [], []
        self.masks = {}
        self.skipped = []
        for ex in examples:
            text = ex["query"][:max_in]
            ids = [0] * len(text)
            n = tok.encode(text, ids)
            try:
                steps = targets.target_steps(grammar, ex.get("refuse") or ex["calls"], text, tok)
            except ValueError as e:
                self.skipped.append((ex["query"], str(e)))
                continue
            seq = ids + [tok.sep]
            ts, ps, pk = [], [], []
            for i, (kind, choice, allowed) in enumerate(steps):
                pos = n + i
                if kind == infer.K_TOKEN:
                    mid = self.masks.setdefault(allowed, len(self.masks))
                    ts.append((pos, choice, mid))
                    fed = n_in + choice
                else:
                    ps.append((pos, choice, allowed))
                    pk.append(kind)
                    fed = infer.fed_id(kind, choice, ids)
                if i + 1 < len(steps):
                    seq.append(fed)
            self.seqs.append(seq)
            self.n.append(n)
            self.tok_steps.append(ts)
            self.ptr_steps.append(ps)
            self.ptr_kinds.append(pk)
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
