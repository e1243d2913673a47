"""The float route (issue 8): a float checkpoint (`reku train --float`) quantized after training
(`reku quantize`): absmean ternarisation of every TLinear with its gain refit on calibration data, an int8
low-rank (SVD) correction of the quantization error per tensor under a byte budget (docs/format.md), and
per-layer activation precision chosen by measured sensitivity under an activation-RAM budget. docs/routes.md."""

import math

import numpy as np
import torch

from rkfw import infer, rku
from rkfw.fp4 import act_bytes

from . import data as datagen
from . import rkufile
from .qat import Net
from .tokenizer import ALPHABET
from .objective import Encoded, build_model_bytes, loss_fn

CKPT_KIND = "reku-float-1"
MAX_RANK = 64
LR_OVERHEAD = 50           # estimated metadata + alignment bytes of one correction's table entry


# ---- checkpoints -------------------------------------------------------------------------------------------
def save_checkpoint(path, net, skill_path, schema, vocab, model_id, seed, extra=None):
    arch = {"n_in": net.n_in, "n_out": net.n_out, "d": net.d, "f": net.f, "layers": net.L, "dk": net.dk,
            "acts": list(net.acts), "emb": net.emb_kind}
    torch.save({"kind": CKPT_KIND, "state": net.state_dict(), "arch": arch, "skill": str(skill_path),
                "schema": schema, "vocab": vocab, "model_id": model_id, "seed": seed, "extra": extra or {}}, path)


def load_checkpoint(path):
    """(Net in float mode, checkpoint dict). ValueError with one line when the file is not a float checkpoint."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:      # torch raises several kinds for a non-checkpoint file
        raise ValueError("%s is not a float checkpoint (%s)" % (path, str(e).splitlines()[0][:80]))
    if not isinstance(ck, dict) or ck.get("kind") != CKPT_KIND:
        raise ValueError("%s is not a float checkpoint of `reku train --float`" % path)
    a = ck["arch"]
    net = Net(a["n_in"], a["n_out"], d=a["d"], f=a["f"], layers=a["layers"], dk=a["dk"], acts=a["acts"],
              emb=a["emb"])
    net.load_state_dict(ck["state"])
    net.set_float(True)
    return net, ck


# ---- quantization ------------------------------------------------------------------------------------------
def _calibration(skill, n, seed, schema, vocab):
    tok = infer.Tokenizer(ALPHABET)
    grammar = rkufile.grammar(schema, vocab)
    ds = Encoded(datagen.generate(skill, n, seed=seed), tok, grammar, tok.n_in)
    if len(ds) == 0:
        raise ValueError("no calibration examples could be encoded")
    return ds, ds.mask_table()


def capture_inputs(net, ds, U, limit=4096):
    """{TLinear: (N, C) float inputs seen on the calibration set}, rows subsampled to `limit`."""
    mods = net.tlinears()
    got = {m: [] for m in mods}
    hooks = [m.register_forward_pre_hook(lambda mod, inp: got[mod].append(inp[0].detach().reshape(-1, inp[0].shape[-1])))
             for m in mods]
    try:
        with torch.no_grad():
            for i in range(0, len(ds), 64):
                loss_fn(net, U, ds.batch(list(range(i, min(len(ds), i + 64)))))
    finally:
        for h in hooks:
            h.remove()
    g = torch.Generator().manual_seed(0)
    out = {}
    for m, xs in got.items():
        X = torch.cat(xs) if xs else torch.zeros(0, m.weight.shape[1])
        X = X[X.abs().sum(1) > 0]
        if len(X) > limit:
            X = X[torch.randperm(len(X), generator=g)[:limit]]
        out[m] = X
    return out


def refit_gain(m, X):
    """Absmean ternarisation T of m.weight (the float layer's gain folded in first) and the gain refit by least
    squares so that gain*alpha*T@x matches the float output W@x on the calibration inputs X."""
    with torch.no_grad():
        m.weight.mul_(torch.exp(m.log_gain))
        m.log_gain.zero_()
        W = m.weight
        t, a = m.ternary()
        if len(X):
            Y, P = X @ W.T, X @ t.T
            den = float((P * P).sum())
            c = float((Y * P).sum()) / den if den > 0 else float(a)
        else:
            c = float((W * t).sum()) / max(1.0, float((t * t).sum()))
        if not c > 0:
            c = float(a)
        m.log_gain.fill_(math.log(c / float(a)))
    return c


def residual_svd(m, X=None, eps=1e-2):
    """Truncatable decomposition E ~ U diag(s) Vt of the pre-gain residual E = W/gain - alpha*T that a
    correction U V has to supply, and the squared norm the gains of its ranks are relative to.

    With calibration inputs X (N, C), activation-aware: the rank-r truncation minimises the error of the layer's
    outputs on those inputs, ||(E - U_r V_r) X^T||, not of its weights. With Cov = X^T X / N + eps*mean(diag)*I
    (regularised) = R R^T (symmetric square root), the SVD of E R gives U, s, Vt' and Vt = Vt' R^-1; the gain of
    rank r is s_r^2 / ||W/gain R||^2, the fraction of the layer's output energy on the calibration set it
    restores. Without X: the plain SVD of E (weight space)."""
    with torch.no_grad():
        t, a = m.ternary()
        Wn = (m.weight / torch.exp(m.log_gain)).double().numpy()
        E = Wn - (t * a).double().numpy()
    if X is None or len(X) < 2:
        U, s, Vt = np.linalg.svd(E, full_matrices=False)
        return U, s, Vt, max(1e-12, float((Wn ** 2).sum()))
    Xd = X.double().numpy()
    cov = Xd.T @ Xd / len(Xd)
    cov += eps * max(1e-12, float(np.trace(cov)) / len(cov)) * np.eye(len(cov))
    lam, Q = np.linalg.eigh(cov)
    lam = np.maximum(lam, 1e-12)
    Rm = (Q * np.sqrt(lam)) @ Q.T
    Rinv = (Q / np.sqrt(lam)) @ Q.T
    U, s, Vt = np.linalg.svd(E @ Rm, full_matrices=False)
    return U, s, Vt @ Rinv, max(1e-12, float(((Wn @ Rm) ** 2).sum()))


def int8_factors(Uf, Vf, alpha):
    """Float factors (R, r), (r, C) -> int8 factors with one absmax scale each and the float correction they
    represent: (U_q*su, V_q*sv, U_q, V_q, M, S), (M, S) = su*sv/(127*alpha) (docs/format.md). TLinear.lr."""
    su = max(float(np.abs(Uf).max()), 1e-12) / 127.0
    sv = max(float(np.abs(Vf).max()), 1e-12) / 127.0
    Uq = np.clip(np.round(Uf / su), -127, 127).astype(np.int64)
    Vq = np.clip(np.round(Vf / sv), -127, 127).astype(np.int64)
    M, S = rkufile.requant_params(su * sv / (127.0 * alpha), mbits=10)
    return (torch.tensor(Uq * su, dtype=torch.float32), torch.tensor(Vq * sv, dtype=torch.float32), Uq, Vq, M, S)


def set_rank(m, r, svd):
    """m's correction: the rank-r truncation of its SVD, split sqrt(s) to each side, as int8 factors."""
    if r <= 0:
        m.lr = None
        return
    U, s, Vt = svd[:3]
    sq = np.sqrt(s[:r])
    with torch.no_grad():
        a = float(m.alpha())
    m.lr = int8_factors(U[:, :r] * sq[None, :], sq[:, None] * Vt[:r], a)


def _fake_i8(t):
    """t on the int8 grid of its own absmax scale (as int8_factors exports it), gradient passed straight through."""
    s = t.detach().abs().max().clamp_min(1e-12) / 127.0
    return t + (torch.clamp(torch.round(t / s), -127, 127) * s - t).detach()


def refine(net, ds, U, steps, lr=1e-2, batch=32, seed=0):
    """SVD-based refinement: the factors of every correction, started from the SVD, trained on the loss of the
    calibration data with the int8 rounding of the export in the loop (straight-through). Only the factors move:
    the ternary weights, their scales and every other parameter stay as post-training quantization made them."""
    mods = [m for m in net.tlinears() if m.lr is not None]
    if not mods or steps <= 0:
        return
    req = [(p, p.requires_grad) for p in net.parameters()]
    for p, _ in req:
        p.requires_grad_(False)
    facs = [(m, torch.nn.Parameter(m.lr[0].clone()), torch.nn.Parameter(m.lr[1].clone())) for m in mods]
    opt = torch.optim.Adam([p for _, u, v in facs for p in (u, v)], lr=lr)
    g = torch.Generator().manual_seed(seed)
    try:
        for step in range(steps):
            for m, u, v in facs:
                m.lr = (_fake_i8(u), _fake_i8(v)) + m.lr[2:]
            idx = torch.randint(0, len(ds), (min(batch, len(ds)),), generator=g).tolist()
            loss, _, _ = loss_fn(net, U, ds.batch(idx))
            opt.zero_grad()
            loss.backward()
            for grp in opt.param_groups:             # cosine decay to 0
                grp["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / steps))
            opt.step()
    finally:
        with torch.no_grad():
            for m, u, v in facs:
                m.lr = int8_factors(u.detach().numpy().astype(np.float64), v.detach().numpy().astype(np.float64),
                                    float(m.alpha()))
        for p, r in req:
            p.requires_grad_(r)


def recon_errors(m, X=None):
    """(||(W - gain*alpha*T) X^T||, ||(W - gain*(alpha*T + U V)) X^T||) in Frobenius norm: the layer's output
    error on the calibration inputs X (the float layer's W, gain folded; X = identity without inputs, i.e. the
    weight error)."""
    with torch.no_grad():
        g = torch.exp(m.log_gain)
        t, a = m.ternary()
        W = m.weight
        Xt = X.T if X is not None and len(X) else torch.eye(W.shape[1])
        e0 = float(torch.linalg.norm((W - g * a * t) @ Xt))
        if m.lr is None:
            return e0, e0
        e1 = float(torch.linalg.norm((W - g * (a * t + m.lr[0] @ m.lr[1])) @ Xt))
    return e0, e1


def choose_ranks(mods, svds, rank=None, budget=None):
    """Rank per TLinear: `rank` everywhere (capped), or greedily by relative error reduction per byte until the
    estimated bytes reach `budget`. Returns (ranks list, picks in greedy order as module indices)."""
    ranks = [0] * len(mods)
    if rank is not None:
        for i, m in enumerate(mods):
            R, C = m.weight.shape
            ranks[i] = max(0, min(rank, MAX_RANK, R, C))
        return ranks, []
    picks, spent = [], 0
    norms = [svd[3] for svd in svds]
    while True:
        best, bi, bcost = 0.0, -1, 0
        for i, m in enumerate(mods):
            R, C = m.weight.shape
            r = ranks[i]
            if r >= min(MAX_RANK, R, C):
                continue
            cost = R + C + (LR_OVERHEAD if r == 0 else 0)
            gain = float(svds[i][1][r]) ** 2 / norms[i]
            if spent + cost <= budget and gain / cost > best:
                best, bi, bcost = gain / cost, i, cost
        if bi < 0:
            return ranks, picks
        ranks[bi] += 1
        spent += bcost
        picks.append(bi)


def calib_loss(net, ds, U, n=256):
    with torch.no_grad():
        idx = list(range(min(n, len(ds))))
        tot, cnt = 0.0, 0
        for i in range(0, len(idx), 64):
            loss, _, k = loss_fn(net, U, ds.batch(idx[i:i + 64]))
            tot += float(loss) * k
            cnt += k
    return tot / max(1, cnt)


def quantize(ck_path, svd_rank=None, svd_budget_bytes=None, act_budget_bytes=None, n_calib=400, seed=0,
             refine_steps=0, n_refine=4000, log=print):
    """(rku bytes, info) of the post-training quantized checkpoint. With corrections and refine_steps > 0 their
    factors are refined (`refine`) on n_refine generated examples (the calibration set's seed)."""
    from .evaluate import evaluate_model
    from .skill import load_skill
    if svd_rank is not None and svd_rank < 0:
        raise ValueError("--svd-rank must be >= 0")
    if svd_budget_bytes is not None and svd_budget_bytes < 0:
        raise ValueError("--svd-budget-kb must be >= 0")
    if act_budget_bytes is not None and act_budget_bytes <= 0:
        raise ValueError("--act-budget-kb must be > 0")
    torch.manual_seed(seed)
    net, ck = load_checkpoint(ck_path)
    try:
        skill = load_skill(ck["skill"])
    except Exception as e:
        raise ValueError("skill %s of the checkpoint cannot be loaded: %s" % (ck["skill"], e))
    ds, U = _calibration(skill, n_calib, seed + 2000, ck["schema"], ck["vocab"])
    net.set_float(False)
    mods = net.tlinears()
    X = capture_inputs(net, ds, U)
    for m in mods:
        refit_gain(m, X[m])
    loss_plain = calib_loss(net, ds, U)
    svds = [residual_svd(m, X[m]) for m in mods]
    names = {id(m): n for n, m in net.named_modules()}
    meta_schema, vocab = ck["schema"], ck["vocab"]
    extra = {"route": "ptq", "skill": skill.name, "seed": ck.get("seed", 0)}
    base = build_model_bytes(net, meta_schema, vocab, ck["model_id"], extra)
    ranks, picks = ([0] * len(mods), [])
    if svd_rank is not None or svd_budget_bytes is not None:
        ranks, picks = choose_ranks(mods, svds, rank=svd_rank, budget=svd_budget_bytes)
    while True:
        for m, r, svd in zip(mods, ranks, svds):
            set_rank(m, r, svd)
        blob = build_model_bytes(net, meta_schema, vocab, ck["model_id"], extra)
        if svd_budget_bytes is None or len(blob) - len(base) <= svd_budget_bytes or not picks:
            break
        ranks[picks.pop()] -= 1          # the estimate was short: drop the least useful rank
    svd_bytes = len(blob) - len(base)
    loss_svd = calib_loss(net, ds, U)
    loss_refined = None
    if refine_steps and any(ranks):
        rds, rU = (ds, U) if n_refine <= n_calib else _calibration(skill, n_refine, seed + 2000, ck["schema"],
                                                                   ck["vocab"])
        refine(net, rds, rU, refine_steps, seed=seed)
        loss_refined = calib_loss(net, ds, U)
        blob = build_model_bytes(net, meta_schema, vocab, ck["model_id"], extra)
    # activation precision
    L = net.L
    sens = None
    acts = list(net.acts)
    if act_budget_bytes is not None:
        for i in range(L):
            net.set_act(i, "i8")
        ref_loss = calib_loss(net, ds, U)
        sens = []
        for i in range(L):
            net.set_act(i, "fp4")
            sens.append(calib_loss(net, ds, U) - ref_loss)
            net.set_act(i, "i8")
        acts = ["i8"] * L
        for i in sorted(range(L), key=lambda j: (sens[j], j)):
            if act_bytes(net.d, net.f, acts) <= act_budget_bytes:
                break
            acts[i] = "fp4"
        if act_bytes(net.d, net.f, acts) > act_budget_bytes:
            raise ValueError("activation buffers need %d bytes even with every layer FP4, over --act-budget-kb (%d bytes)"
                             % (act_bytes(net.d, net.f, acts), act_budget_bytes))
        for i, a in enumerate(acts):
            net.set_act(i, a)
        blob = build_model_bytes(net, meta_schema, vocab, ck["model_id"], extra)
    model = rku.load(blob)
    dev = datagen.generate(skill, 150, seed=seed + 1000)
    res = evaluate_model(model, dev)
    errs = {names[id(m)]: recon_errors(m, X[m]) for m in mods}
    info = {"bytes": len(blob), "bytes_plain": len(base), "svd_bytes": svd_bytes, "ranks": {names[id(m)]: r for m, r in zip(mods, ranks)}, "recon": errs, "acts": acts,
            "sensitivity": sens, "act_ram": act_bytes(net.d, net.f, acts), "calib_loss_plain": loss_plain,
            "calib_loss_svd": loss_svd, "calib_loss_refined": loss_refined, "refine_steps": refine_steps if loss_refined is not None else 0,
            "exact_match": res["exact_match"], "n_eval": res["n"], "net": net}
    return blob, info
