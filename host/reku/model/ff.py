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
the call is kept (still grammatical); after any other swap the negative ends at the corrupted token.
Hard negatives (`negatives="hard"`, issue 21): where the model's own readout (teacher-forced on the positive) gets
a decision wrong, the negative takes the model's wrong choice there (a token, or a pointer position: the wrong
span or digit fed back); where it gets none wrong, a grammar negative as above, pointer decisions included.

Objectives per block (OBJECTIVES): Hinton's goodness loss, SymBa's symmetric pair loss
`softplus(-ALPHA * (g_pos - g_neg))` (Lee & Song 2023: one term per positive/negative pair, no threshold), either
with or without a readout of the block's own (block heads), or block heads alone."""

import dataclasses
import pickle
import queue

import torch
import torch.nn.functional as F
from torch import nn

from rkfw.infer import FALSE, TRUE, fed_id

from .objective import readout_loss
from .optim import FlipMonitor, optimize
from .qat import Net, TLinear

THETA = 1.0          # goodness threshold (mean square of a block's update, real units)
FIRST_SHARE = 0.5    # share of negatives that corrupt the first decision (function / no call)
ALPHA = 4.0          # SymBa's scale of the goodness difference (the paper's value)
NEGATIVES = ("grammar", "hard")


class FFData:
    """Positive and negative sequences for FF, built on an `Encoded` data set (same examples, same steps)."""

    def __init__(self, ds, n_in, vocab, negatives="grammar"):
        if negatives not in NEGATIVES:
            raise ValueError("unknown forward-forward negatives %r (%s)" % (negatives, ", ".join(NEGATIVES)))
        self.ds, self.n_in, self.hard = ds, n_in, negatives == "hard"
        inv = {mid: allowed for allowed, mid in ds.masks.items()}
        self.full = [seq + [n_in + ts[-1][1]] for seq, ts in zip(ds.seqs, ds.tok_steps)]
        # token decisions with a choice: (position, choice, allowed tokens, None); hard negatives add the pointer
        # decisions (position, choice, allowed positions, pointer kind), the first decision stays first
        self.cands = []
        for i, ts in enumerate(ds.tok_steps):
            c = [(pos, choice, inv[mid], None) for pos, choice, mid in ts if len(inv[mid]) > 1]
            if self.hard:
                c[1:] = sorted(c[1:] + [(pos, choice, allowed, kind) for (pos, choice, allowed), kind
                                        in zip(ds.ptr_steps[i], ds.ptr_kinds[i]) if len(allowed) > 1])
            self.cands.append(c)
        self.keep_tail = {i for i, v in enumerate(vocab) if str(v).startswith("v:")} | {TRUE, FALSE}

    def fed(self, i, kind, alt):
        """The id fed back after choosing `alt` at a decision of example i (kind None: a token)."""
        return self.n_in + alt if kind is None else fed_id(kind, alt, self.full[i][:self.ds.n[i]])

    def corrupt(self, i, pos, choice, alt, kind=None):
        """(negative sequence, first corrupted position): example i with `alt` instead of `choice` at the decision
        made at `pos`; the tail is kept after an enum value or boolean swap only."""
        full = self.full[i]
        neg = full[:pos + 1] + [self.fed(i, kind, alt)]
        if kind is None and choice in self.keep_tail and alt in self.keep_tail:
            neg += full[pos + 2:]
        return neg, pos + 1

    def negative(self, i, rng, wrong=()):
        """(negative sequence, first corrupted position) for example i: one of the model's own wrong decisions
        `wrong` [(position, choice, alt, kind)] where there are any, else a grammar negative."""
        if wrong:
            return self.corrupt(i, *rng.choice(wrong))
        c = self.cands[i]
        pos, choice, allowed, kind = c[0] if (len(c) == 1 or rng.random() < FIRST_SHARE) else rng.choice(c[1:])
        alts = [a for a in allowed if a != choice and self.fed(i, kind, a) != self.fed(i, kind, choice)]
        if not alts:                              # a pointer whose every other position feeds the same character
            pos, choice, allowed, kind = c[0]
            alts = [a for a in allowed if a != choice]
        return self.corrupt(i, pos, choice, rng.choice(alts), kind)

    def batch(self, idx, rng, net=None, U=None, negatives=True):
        """Encoded.batch for the readout (rows 0..B-1, the positives) plus 'ids' of 2B rows (positives, then
        their negatives; B rows without negatives, for block heads alone), 'npos' = B and 'gm', the mask of the
        positions whose goodness is scored (from the corrupted token; without negatives from after SEP). Hard
        negatives need the network and mask table (the model's own decisions on the positives)."""
        b = self.ds.batch(idx)
        rows = [self.full[i] for i in idx]
        if negatives:
            wrong = model_errors(net, U, b, self, idx) if self.hard else [()] * len(idx)
            negs = [self.negative(i, rng, w) for i, w in zip(idx, wrong)]
            rows += [n for n, _ in negs]
            starts = [c for _, c in negs] * 2
        else:
            starts = [self.ds.n[i] + 1 for i in idx]
        T = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), T, dtype=torch.long)
        gm = torch.zeros(len(rows), T)
        for r, (s, c) in enumerate(zip(rows, starts)):
            ids[r, :len(s)] = torch.tensor(s)
            gm[r, c:len(s)] = 1.0
        if "pm" in b:
            b["pm"] = F.pad(b["pm"], (0, T - b["pm"].shape[1]), value=False)
        b["ids"], b["gm"], b["npos"] = ids, gm, len(idx)
        return b


@torch.no_grad()
def model_errors(net, U, b, data, idx):
    """Per positive of the batch, the decisions the network's readout gets wrong when teacher-forced:
    [(position, right choice, the model's choice, pointer kind or None)]; the first decision only where it is
    wrong (what follows a wrong first decision is another call's)."""
    h = net(b["ids"])
    out = [[] for _ in idx]
    logits = net.logits(h[b["tb"], b["tp"]]).masked_fill(~U[b["tm"]], -1e9)
    for bi, pos, right, got in zip(b["tb"].tolist(), b["tp"].tolist(), b["tt"].tolist(), logits.argmax(-1).tolist()):
        if got != right:
            out[bi].append((pos, right, got, None))
    if "pb" in b:
        K = net.keys(h)
        scores = torch.einsum("nd,ntd->nt", net.query(h[b["pb"], b["pp"]]), K[b["pb"]]).masked_fill(~b["pm"], -1e9)
        kinds = {}
        for bi, i in enumerate(idx):
            for (pos, _, _), kind in zip(data.ds.ptr_steps[i], data.ds.ptr_kinds[i]):
                kinds[bi, pos] = kind
        for bi, pos, right, got in zip(b["pb"].tolist(), b["pp"].tolist(), b["pt"].tolist(),
                                       scores.argmax(-1).tolist()):
            kind = kinds[bi, pos]
            if got != right and data.fed(idx[bi], kind, got) != data.fed(idx[bi], kind, right):
                out[bi].append((pos, right, got, kind))
    for bi, i in enumerate(idx):
        first = data.ds.n[i]                      # the decision made at SEP
        if any(w[0] == first for w in out[bi]):
            out[bi] = [w for w in out[bi] if w[0] == first]
    return out


OBJECTIVES = ("goodness", "goodness+heads", "heads", "symba", "symba+heads")


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


def layer_loss(net, i, hin, hout, b, theta=THETA, objective="goodness", U=None, heads=None):
    """(loss, (mean g_pos, mean g_neg)) of block i, from its input hin and output hout on the batch's rows:
    its goodness loss (Hinton's or SymBa's) and/or the cross-entropy of its own BlockHead on the positives (the
    last block's head is the board's readout, see step_loss)."""
    B = b["npos"]
    g = goodness(hout - hin, b["gm"])
    loss = 0.0
    if objective.startswith("goodness"):
        loss = F.softplus(theta - g[:B]).mean() + F.softplus(g[B:] - theta).mean()
    elif objective.startswith("symba"):
        loss = F.softplus(-ALPHA * (g[:B] - g[B:])).mean()
    if objective.endswith("heads") and i < net.L - 1:
        loss = loss + readout_loss(heads[i], U, b, hout[:B])[0]
    return loss, (float(g[:B].mean().detach()), float(g[B:].mean().detach()) if len(g) > B else float("nan"))


def ff_losses(net, b, theta=THETA, objective="goodness", U=None, heads=None, first=0):
    """([loss of layer k for each block], [(mean g_pos, mean g_neg) per block], final stream h (2B or B, T, d)).
    Block k's input is detached (block 0's is the embedding, which layer 0 trains). objective: "goodness" (the
    block's goodness on positives vs negatives), "symba" (SymBa's pair loss on the same goodness), "heads" (the
    cross-entropy of the block's own BlockHead on the positives) or a goodness with heads. first > 0: only blocks
    from `first` on, from the stream b["h_in"] that the pipeline's worker of the block below sent."""
    h = net.embed_q()[b["ids"]] if first == 0 else b["h_in"]
    losses, stats = [], []
    for i in range(first, net.L):
        hin = h if i == 0 else h.detach()
        hout = net.block(i, hin)
        loss, stat = layer_loss(net, i, hin, hout, b, theta, objective, U, heads)
        losses.append(loss)
        stats.append(stat)
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


def layer_tlinears(net, groups, layers):
    """The network's ternary layers (as train() dampens, monitors and freezes them) whose weights are in the
    given FF layers' groups."""
    ids = {id(p) for k in layers for p in groups[k]}
    return [m for m in net.tlinears() if id(m.weight) in ids]


def step_loss(net, U, b, theta=THETA, objective="goodness", heads=None, first=0):
    """One FF step's losses: (sum of the per-layer losses + readout loss, readout loss, correct, n, per-block
    (mean g_pos, mean g_neg), [loss of each block]). Backpropagating the sum trains each layer by its own
    objective only (detached inputs). With block heads the readout is the last block's head: it is trained on
    that block's output without detaching, so the last block learns from it (its signal stays in that layer)."""
    losses, stats, h = ff_losses(net, b, theta, objective, U, heads, first)
    B = b["npos"]
    last = h[:B] if objective.endswith("heads") else h[:B].detach()
    ro, correct, n = readout_loss(net, U, b, last)
    return sum(losses) + ro, ro, correct, n, stats, losses


class Pipeline:
    """Parallel forward-forward (`reku train --algo ff --parallel`): layer k < L-1 trains in a process of its own
    (`layer_worker`, one torch thread each), the caller's process trains the last layer and the readout. Worker
    0 draws the same batches as train() (random.Random(seed)) and the same negatives (seed + 7), runs the
    embedding and block 0, takes its own step and sends the batch and its detached output stream on; worker k
    takes block k's step on what k-1 sent. Since no gradient crosses a layer and block k's output is computed with
    its weights before its step, this is the sequential computation spread over processes: the same updates, in
    a pipeline (worker k runs up to DEPTH steps ahead of the layer above). At an evaluation and at the end the
    workers' layers (weights and frozen masks) are copied into the caller's network (`sync`)."""
    DEPTH = 4

    def __init__(self, route, cfg, seed):
        import torch.multiprocessing as mp
        ctx = mp.get_context("spawn")
        n = len(route.groups) - 1
        self.route, self.threads = route, torch.get_num_threads()
        self.acts = [ctx.Queue(self.DEPTH) for _ in range(n)]
        self.states = [ctx.Queue() for _ in range(n)]
        self.have = [(-1, None)] * n
        cfg = dataclasses.replace(cfg, fits=None)          # a board's size predicate does not pickle
        # the network goes by value: through torch's own pickler its tensors would be shared memory, and sync()
        # would overwrite a worker's newer weights
        self.procs = [ctx.Process(target=layer_worker, daemon=True, args=(
            k, pickle.dumps((route.net, route.modules, route.data if k == 0 else None, route.U)), cfg, seed,
            route.scales[k], route.negatives, self.acts[k - 1] if k else None, self.acts[k], self.states[k]))
            for k in range(n)]
        for p in self.procs:
            p.start()
        torch.set_num_threads(1)

    def _get(self, q):
        while True:
            try:
                return pickle.loads(q.get(timeout=1.0))
            except queue.Empty:
                dead = [k for k, p in enumerate(self.procs) if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError("parallel forward-forward: the worker of layer %d stopped (exit code %s)"
                                       % (dead[0], self.procs[dead[0]].exitcode))

    def batch(self, idx):
        got, b, h = self._get(self.acts[-1])
        assert got == idx, "parallel forward-forward: the pipeline's batch is not train()'s"
        b["h_in"] = h
        return b

    @torch.no_grad()
    def sync(self, step):
        for k, q in enumerate(self.states):
            while self.have[k][0] < step:
                self.have[k] = self._get(q)
            if self.have[k][0] != step:
                raise RuntimeError("parallel forward-forward: layer %d sent step %d, not %d"
                                   % (k, self.have[k][0], step))
            load_layer(self.route, k, self.have[k][1])

    def close(self):
        for p in self.procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
        torch.set_num_threads(self.threads)


def layer_state(route, k):
    """Layer k's weights and its ternary layers' frozen masks, to copy into another process's network."""
    mods = layer_tlinears(route.net, route.groups, [k])
    return ([p.detach().clone() for p in route.groups[k]],
            [None if m.frozen is None else (m.frozen.clone(), m.frozen_val.clone()) for m in mods])


def load_layer(route, k, state):
    params, frozen = state
    for p, v in zip(route.groups[k], params):
        p.copy_(v)
    for m, fz in zip(layer_tlinears(route.net, route.groups, [k]), frozen):
        if fz is not None:
            m.frozen, m.frozen_val = fz


def layer_worker(k, init, cfg, seed, scale, negatives, q_in, q_out, q_state):
    """Process of layer k (Pipeline): cfg.steps steps of block k by its own objective; sends (batch indices,
    batch, detached output stream) on after each, and its state after every cfg.eval_every steps and the last."""
    import random

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True, warn_only=True)
    net, heads, data, U = pickle.loads(init)
    route = type("LayerRoute", (), {})()
    route.net, route.groups = net, layer_groups(net, heads)
    opt = torch.optim.AdamW([{"params": route.groups[k], "scale": scale}], lr=cfg.lr, weight_decay=0.0)
    mon = FlipMonitor(layer_tlinears(net, route.groups, [k]))
    rng, nrng = random.Random(seed), random.Random(seed + 7)
    for step in range(cfg.steps):
        frac = step / cfg.steps
        net.train()
        if k == 0:
            idx = [rng.randrange(len(data.ds)) for _ in range(cfg.batch)]
            b = data.batch(idx, nrng, negatives=negatives)
            hin = net.embed_q()[b["ids"]]
        else:
            idx, b, hin = pickle.loads(q_in.get())
        hout = net.block(k, hin)
        loss, _ = layer_loss(net, k, hin, hout, b, cfg.ff_theta, cfg.ff_objective, U, heads)
        sent = hout.detach()
        optimize(opt, loss, lambda: torch.nn.utils.clip_grad_norm_(route.groups[k], 1.0), mon, cfg, step, frac,
                 cfg.dampen, cfg.freeze_after)
        q_out.put(pickle.dumps((idx, b, sent)))       # by value (torch's shared-memory handles die with a worker)
        if (cfg.eval_every and (step + 1) % cfg.eval_every == 0) or step + 1 == cfg.steps:
            q_state.put(pickle.dumps((step + 1, layer_state(route, k))))
