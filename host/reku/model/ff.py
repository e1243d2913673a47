"""Forward-forward training (`reku train --algo ff`, issue 8; Hinton 2022) of the same network as QAT.

Layers: layer 0 = the embedding + block 0, layer k = block k, and the readout (head + pointer). Each has its
own objective and no gradient crosses a layer boundary:

- block k receives the previous layer's residual stream *detached*; its goodness is the mean square of its own
  update `delta_k = block_k(h) - h` (the residual part that is the previous layer's activity is excluded, so
  block k cannot pass a previous layer's goodness on), averaged over the positions from the first corrupted
  token to the end of the sequence; loss `softplus(theta - g_pos) + softplus(g_neg - theta)`. Normalisation
  between layers: the block's input quantiser (absmax per position) hands it only the direction of the stream.
  The recurrence inside a block is unrolled in its matrix form (within the layer).
- the readout is trained by the QAT cross-entropy (`objective.readout_loss`) on the detached final stream, so the
  board's greedy grammar decoding (head argmax, pointer argmax) runs the file unchanged.

Positive sequences: request + SEP + the fed-back decode tokens of the correct calls, the last one (END/NOCALL)
included. Negatives: the same request with one token decision of the decode replaced by another token the
grammar allows at that step: the first decision (half of the negatives) turns a call into another function or
into NOCALL, or a no-call request into a call; the others replace an enum value by another value of the same
parameter, TRUE/FALSE, PRESENT/ABSENT, a digit, END by a second call. After an enum or boolean swap the rest of
the call is kept (still grammatical); after any other swap the negative ends at the corrupted token."""

import torch
import torch.nn.functional as F
from torch import nn

from rkfw.infer import FALSE, TRUE

from .objective import readout_loss
from .qat import Net, TLinear

THETA = 1.0          # goodness threshold (mean square of a block's update, real units)
FIRST_SHARE = 0.5    # share of negatives that corrupt the first decision (function / no call)


class FFData:
    """Positive and negative sequences for FF, built on an `Encoded` data set (same examples, same steps)."""

    def __init__(self, ds, n_in, vocab):
        self.ds, self.n_in = ds, n_in
        inv = {mid: allowed for allowed, mid in ds.masks.items()}
        self.full = [seq + [n_in + ts[-1][1]] for seq, ts in zip(ds.seqs, ds.tok_steps)]
        self.cands = [[(pos, choice, inv[mid]) for pos, choice, mid in ts if len(inv[mid]) > 1]
                      for ts in ds.tok_steps]
        self.keep_tail = {i for i, v in enumerate(vocab) if str(v).startswith("v:")} | {TRUE, FALSE}

    def negative(self, i, rng):
        """(negative sequence, first corrupted position) for example i."""
        c = self.cands[i]
        pos, choice, allowed = c[0] if (len(c) == 1 or rng.random() < FIRST_SHARE) else rng.choice(c[1:])
        alt = rng.choice([a for a in allowed if a != choice])
        full = self.full[i]
        neg = full[:pos + 1] + [self.n_in + alt]
        if choice in self.keep_tail and alt in self.keep_tail:
            neg += full[pos + 2:]
        return neg, pos + 1

    def batch(self, idx, rng):
        """Encoded.batch for the readout (rows 0..B-1, the positives) plus 'ids' of 2B rows (positives, then
        their negatives) and 'gm', the (2B, T) mask of the positions whose goodness is scored."""
        b = self.ds.batch(idx)
        negs = [self.negative(i, rng) for i in idx]
        rows = [self.full[i] for i in idx] + [n for n, _ in negs]
        starts = [c for _, c in negs] * 2
        T = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), T, dtype=torch.long)
        gm = torch.zeros(len(rows), T)
        for r, (s, c) in enumerate(zip(rows, starts)):
            ids[r, :len(s)] = torch.tensor(s)
            gm[r, c:len(s)] = 1.0
        if "pm" in b:
            b["pm"] = F.pad(b["pm"], (0, T - b["pm"].shape[1]), value=False)
        b["ids"], b["gm"] = ids, gm
        return b


OBJECTIVES = ("goodness", "goodness+heads", "heads")


class BlockHead(nn.Module):
    """A block's own readout, trained with the block and never exported: a head and a pointer of the board's
    shape on the block's output stream (per-block local supervision: the signal stays inside the block)."""

    logits, keys, query = Net.logits, Net.keys, Net.query

    def __init__(self, net):
        super().__init__()
        self.dk = net.dk
        self.head = TLinear(net.n_out, net.d)
        self.ptr_k = TLinear(net.dk, net.d)
        self.ptr_q = TLinear(net.dk, net.d)
        self.log_temp = nn.Parameter(net.log_temp.detach().clone())
        self.__dict__["fq"] = net.fq          # the network's quantiser, not a submodule (no shared parameters)


def goodness(delta, gm):
    """Per sequence: mean over the scored positions of the mean square over channels of a block's update."""
    g = (delta ** 2).mean(-1)
    return (g * gm).sum(1) / gm.sum(1).clamp_min(1.0)


def ff_losses(net, b, theta=THETA, objective="goodness", U=None, heads=None):
    """([loss of layer k for each block], [(mean g_pos, mean g_neg) per block], final stream h (2B, T, d)).
    Block k's input is detached (block 0's is the embedding, which layer 0 trains). objective: "goodness" (the
    block's goodness on positives vs negatives), "heads" (the cross-entropy of the block's own BlockHead on the
    positives; the last block's head is the board's readout, see step_loss) or both."""
    B = b["ids"].shape[0] // 2
    h = net.embed_q()[b["ids"]]
    losses, stats = [], []
    for i in range(net.L):
        hin = h if i == 0 else h.detach()
        hout = net.block(i, hin)
        g = goodness(hout - hin, b["gm"])
        loss = 0.0
        if objective != "heads":
            loss = F.softplus(theta - g[:B]).mean() + F.softplus(g[B:] - theta).mean()
        if objective != "goodness" and i < net.L - 1:
            loss = loss + readout_loss(heads[i], U, b, hout[:B])[0]
        losses.append(loss)
        stats.append((float(g[:B].mean().detach()), float(g[B:].mean().detach())))
        h = hout
    return losses, stats, h


def layer_groups(net, heads=None):
    """The parameters of each FF layer: [embedding + block 0, block 1, ..., readout]; with block heads, each block's
    head joins its block and the readout joins the last block. Gradient clipping is done per group so that no
    layer's update depends on another layer's gradients."""
    readout = (list(net.head.parameters()) + list(net.ptr_k.parameters()) + list(net.ptr_q.parameters())
               + [net.log_temp])
    groups = [[net.emb] + list(net.blocks[0].parameters())]
    groups += [list(b.parameters()) for b in net.blocks[1:]]
    if heads:
        for g, hd in zip(groups, heads):
            g += list(hd.parameters())
        groups[-1] += readout
    else:
        groups.append(readout)
    assert sum(len(g) for g in groups) == len(list(net.parameters())) + sum(
        len(list(hd.parameters())) for hd in heads or [])
    return groups


def step_loss(net, U, b, theta=THETA, objective="goodness", heads=None):
    """One FF step's losses: (sum of the per-layer losses + readout loss, readout loss, correct, n, per-block
    (mean g_pos, mean g_neg), [loss of each block]). Backpropagating the sum trains each layer by its own
    objective only (detached inputs). With block heads the readout is the last block's head: it is trained on
    that block's output without detaching, so the last block learns from it (its signal stays in that layer)."""
    losses, stats, h = ff_losses(net, b, theta, objective, U, heads)
    B = b["ids"].shape[0] // 2
    last = h[:B] if objective != "goodness" else h[:B].detach()
    ro, correct, n = readout_loss(net, U, b, last)
    return sum(losses) + ro, ro, correct, n, stats, losses
