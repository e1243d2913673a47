"""The PyTorch model used for quantization-aware training. Its forward pass is the float image of the
integer path of reference.py: ternary weights with absmean scales (BitNet b1.58) and a straight-through
estimator, activations fake-quantised exactly as quant_i8/quant_fp4 (absmax per vector, which doubles as
the normalisation), the same sigmoid LUT, clamps and Q8 grids for mu/w/u. Net.export_tensors() gives the
tensor entries that reku.model.objective.build_model_bytes writes into a .rku."""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import reference as ref
from . import rkufile

QA_SCALE = float(1 << ref.QA)
A_REAL = ref.A_LIM / QA_SCALE
S_REAL = ref.S_LIM / QA_SCALE


def ste(x, q):
    """Forward q, backward identity to x."""
    return x + (q - x).detach()


def fq_i8(h):
    amax = h.abs().amax(-1, keepdim=True).clamp_min(1e-6)
    y = h / amax
    return ste(y, torch.round(y * 127.0) / 127.0)


_FP4 = torch.tensor(ref.FP4TAB, dtype=torch.float32)


def fq_fp4(h):
    amax = h.abs().amax(-1, keepdim=True).clamp_min(1e-6)
    y = h / amax
    with torch.no_grad():
        t = torch.floor(y.abs() * 96.0 + 0.5)
        shp = t.shape
        tb = t.reshape(*shp[:-1], shp[-1] // 8, 8)
        bm = tb.amax(-1, keepdim=True)
        s = (bm > 12).float() + (bm > 24).float() + (bm > 48).float()
        p = torch.pow(2.0, s)
        u = torch.clamp(torch.floor((tb + torch.floor(p / 2)) / p), max=12).long()
        g = _FP4.to(h.device)[u] * p
        q = (g.reshape(shp) * torch.sign(y)) / 96.0
    return ste(y, q)


def fn_norm(h):
    """The float route's activation: the absmax normalisation of fq_i8/fq_fp4 without rounding."""
    return h / h.abs().amax(-1, keepdim=True).clamp_min(1e-6)


def q8(p):
    """A parameter through sigmoid onto the grid k/256, k = 0..255 (mu, decay, bonus)."""
    s = torch.sigmoid(p)
    return ste(s, torch.clamp(torch.round(s * 256.0), 0, 255) / 256.0)


def latent_weights(T, a, name):
    """Latent float weights for trits T (numpy, -1/0/1) that ternarise back to T with mean |w| = a, spread as a
    trained layer's are, so that fine-tuning can flip trits both ways: zeros uniform in +-0.45 a, non-zeros with
    their sign and magnitudes uniform from 0.55 a up to what makes the mean a (the threshold is 0.5 mean|w|).
    Deterministic per tensor name."""
    rng = np.random.default_rng(int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "little"))
    T = np.asarray(T, dtype=np.float64)
    nz = T != 0
    p = float(nz.mean())
    W = rng.uniform(-0.45, 0.45, T.shape)
    if p > 0:
        top = max(0.56, 2 * (1 - 0.225 * (1 - p)) / p - 0.55)     # mean of the non-zeros' magnitudes: (1 - ...)/p
        W[nz] = T[nz] * rng.uniform(0.55, top, int(nz.sum()))
    W *= a / max(np.abs(W).mean(), 1e-12)
    return torch.from_numpy(W.astype(np.float32))


class TLinear(nn.Module):
    """Ternary linear layer: y = gain * alpha * RoundClip(W/alpha) @ x_n, alpha = mean|W|."""

    def __init__(self, out_f, in_f, xs=127.0, qout=256.0):
        super().__init__()
        self.qout = qout            # fixed-point scale of the requantised output (Q8 or Q12)
        self.weight = nn.Parameter(torch.randn(out_f, in_f) / math.sqrt(in_f))
        self.log_gain = nn.Parameter(torch.tensor(0.0))
        self.xs = xs
        self.frozen = None          # mask of weights frozen at their current ternary value
        self.frozen_val = None
        self.float_mode = False     # float route (`reku train --float`): the weight itself, no ternarisation
        self.lr = None              # post-training low-rank correction: (U, V, U_q, V_q, M, S), U @ V float

    def alpha(self):
        return self.weight.abs().mean().clamp_min(1e-8)

    def ternary(self):
        a = self.alpha()
        return torch.clamp(torch.round(self.weight / a), -1, 1), a

    def qweight(self):
        if self.float_mode:
            return self.weight
        t, a = self.ternary()
        if self.frozen is not None:
            t = torch.where(self.frozen, self.frozen_val, t)
        q = ste(self.weight, t * a)
        if self.lr is not None:             # the correction's own factors take its gradient (ptq.refine)
            q = q + self.lr[0] @ self.lr[1]
        return q

    def forward(self, x):
        return F.linear(x, self.qweight()) * torch.exp(self.log_gain)

    def export(self, name):
        with torch.no_grad():
            t, a = self.ternary()
            if self.frozen is not None:
                t = torch.where(self.frozen, self.frozen_val, t)
            a = float(a)
            factor = math.exp(float(self.log_gain)) * a * self.qout / self.xs
            M, S = rkufile.requant_params(factor)
            W = t.cpu().numpy().astype(np.int64)
        return (name, "t", W.shape, ref.pack_ternary(W), M, S, a)

    def load(self, t):
        """The inverse of export(): weights and gain from a .rku ternary tensor, so that export() gives back the
        same trits, M and S (latent_weights() says where the weights start)."""
        if t.dtype != "t":
            raise ValueError("%s is %s, not a ternary tensor" % (t.name, t.dtype))
        R, C = t.shape
        with torch.no_grad():
            self.weight.copy_(latent_weights(ref.unpack_ternary(t.data, R, C), float(t.alpha), t.name))
            self.log_gain.fill_(math.log(t.M / float(1 << t.S) * self.xs / (float(t.alpha) * self.qout)))

    def export_all(self, name):
        """export() and, when the layer has a low-rank correction, its int8 factors (docs/format.md)."""
        out = [self.export(name)]
        if self.lr is not None:
            _, _, Uq, Vq, M, S = self.lr
            out.append(rkufile.lowrank_entry(name, Uq, Vq, M, S))
        return out


class Net(nn.Module):
    def __init__(self, n_in, n_out, d=40, f=80, layers=1, dk=40, acts=None, emb="t"):
        super().__init__()
        self.emb_kind = emb          # "t": ternary embedding table (1.6 bits), "i8": int8
        self.n_in, self.n_out, self.d, self.f, self.L, self.dk = n_in, n_out, d, f, layers, dk
        self.acts = list(acts or ["i8"] * layers)
        self.emb = nn.Parameter(torch.randn(n_in + n_out, d) * 0.5)
        self.blocks = nn.ModuleList()
        for i in range(layers):
            xs = 96.0 if self.acts[i] == "fp4" else 127.0
            b = nn.Module()
            b.mu_r = nn.Parameter(torch.randn(d) * 0.5)
            b.mu_k = nn.Parameter(torch.randn(d) * 0.5)
            b.mu_v = nn.Parameter(torch.randn(d) * 0.5)
            b.cmu = nn.Parameter(torch.randn(d) * 0.5)
            # decays spread over time scales from ~1 to ~100 tokens
            b.w = nn.Parameter(torch.logit(torch.linspace(0.3, 0.99, d)))
            b.u = nn.Parameter(torch.zeros(d))
            b.Wr, b.Wk, b.Wv = (TLinear(d, d, xs, QA_SCALE) for _ in range(3))
            b.Wo = TLinear(d, d, xs)
            b.Ck = TLinear(f, d, xs, QA_SCALE)
            b.Cv = TLinear(d, f, xs)
            self.blocks.append(b)
        self.head = TLinear(n_out, d)
        self.ptr_k = TLinear(dk, d)
        self.ptr_q = TLinear(dk, d)
        self.log_temp = nn.Parameter(torch.tensor(math.log(0.5)))
        self.register_buffer("lut", torch.tensor(ref.sig_lut(), dtype=torch.float32) / 256.0)
        self.float_mode = False

    def set_float(self, on=True):
        """Float route: float weights, embedding and activations (absmax normalisation kept, no rounding)."""
        self.float_mode = bool(on)
        for m in self.tlinears():
            m.float_mode = self.float_mode

    def act_fn(self, i):
        if self.float_mode:
            return fn_norm
        return fq_fp4 if self.acts[i] == "fp4" else fq_i8

    def fq(self, h):
        return fn_norm(h) if self.float_mode else fq_i8(h)

    def set_act(self, i, kind):
        """Layer i's activation quantizer ("i8" or "fp4"); its layers' export scales follow."""
        self.acts[i] = kind
        xs = 96.0 if kind == "fp4" else 127.0
        b = self.blocks[i]
        for nm in ("Wr", "Wk", "Wv", "Wo", "Ck", "Cv"):
            getattr(b, nm).xs = xs

    def tlinears(self):
        return [m for m in self.modules() if isinstance(m, TLinear)]

    def embed_q(self):
        if self.float_mode:
            return self.emb
        if self.emb_kind == "t":
            a = self.emb.abs().mean().clamp_min(1e-8)
            return ste(self.emb, torch.clamp(torch.round(self.emb / a), -1, 1) * a)
        amax = self.emb.abs().max().clamp_min(1e-6)
        s = amax / 127.0
        return ste(self.emb, torch.round(self.emb / s) * s)

    def sig(self, r):
        idx = torch.clamp(torch.floor(r * 8.0), -128, 127).long() + 128
        return ste(torch.sigmoid(r), self.lut[idx])

    def forward(self, ids):
        """ids (B, T) -> residual stream (B, T, d)."""
        h = self.embed_q()[ids]
        for i in range(self.L):
            h = self.block(i, h)
        return h

    def block(self, i, h):
        """Layer i (time mixing + channel mixing) on the residual stream h (B, T, d) -> h + its two updates."""
        b = self.blocks[i]
        T = h.shape[1]
        act = self.act_fn(i)
        x = act(h)
        prev = F.pad(x, (0, 0, 1, 0))[:, :T]
        dx = x - prev
        r = torch.clamp(b.Wr(prev + dx * q8(b.mu_r)), -A_REAL, A_REAL)
        k = torch.clamp(b.Wk(prev + dx * q8(b.mu_k)), -A_REAL, A_REAL)
        v = torch.clamp(b.Wv(prev + dx * q8(b.mu_v)), -A_REAL, A_REAL)
        kv = k * v
        w = torch.clamp(q8(b.w), min=1.0 / 256.0)
        # S_{t-1} = sum_{j<t} w^(t-1-j) kv_j  (matrix form of the recurrence, exact without clipping)
        tt = torch.arange(T, dtype=torch.float32)
        lag = (tt[:, None] - 1 - tt[None, :])                   # (T, T): t-1-j
        mask = (lag >= 0).float()
        D = torch.exp(lag.clamp_min(0)[:, :, None] * torch.log(w)[None, None, :]) * mask[:, :, None]
        Sprev = torch.einsum("tjd,bjd->btd", D, kv)
        Sprev = torch.clamp(Sprev, -S_REAL, S_REAL)
        o = self.sig(r) * (Sprev + q8(b.u) * kv)
        h = h + b.Wo(act(o))
        x = act(h)
        prev = F.pad(x, (0, 0, 1, 0))[:, :T]
        xc = prev + (x - prev) * q8(b.cmu)
        g = torch.clamp(F.relu(b.Ck(xc)), max=A_REAL) ** 2
        h = h + b.Cv(act(g))
        return h

    def logits(self, h):
        return self.head(self.fq(h))

    def keys(self, h):
        return self.fq(self.ptr_k(self.fq(h)))

    def query(self, h):
        return self.fq(self.ptr_q(self.fq(h))) * torch.exp(self.log_temp) * self.dk ** 0.5

    # ---- export ---------------------------------------------------------------------------------------
    def export_tensors(self):
        out = []
        with torch.no_grad():
            if self.emb_kind == "t":
                a = float(self.emb.abs().mean())
                E = np.clip(np.round(self.emb.numpy() / a), -1, 1).astype(np.int64)
                M, S = rkufile.requant_params(a * 256.0)
                out.append(("emb", "t", E.shape, ref.pack_ternary(E), M, S, a))
            else:
                amax = float(self.emb.abs().max())
                s = amax / 127.0
                E = np.clip(np.round(self.emb.numpy() / s), -127, 127).astype(np.int8)
                M, S = rkufile.requant_params(s * 256.0)
                out.append(("emb", "i8", E.shape, E.tobytes(), M, S, s))
            out.append(("sig", "u8", (256,), ref.sig_lut().tobytes(), 0, 0, 0.0))

            def grid(p):
                return np.clip(np.round(torch.sigmoid(p).numpy() * 256.0), 0, 255).astype(np.uint8)

            for i, b in enumerate(self.blocks):
                p = "l%d." % i
                for nm in ("mu_r", "mu_k", "mu_v", "w", "u", "cmu"):
                    g = grid(getattr(b, nm))
                    if nm == "w":
                        g = np.maximum(g, 1).astype(np.uint8)
                    out.append((p + nm, "u8", g.shape, g.tobytes(), 0, 0, 0.0))
                for nm in ("Wr", "Wk", "Wv", "Wo", "Ck", "Cv"):
                    out.extend(getattr(b, nm).export_all(p + nm))
            out.extend(self.head.export_all("head"))
            out.extend(self.ptr_k.export_all("ptr_k"))
            out.extend(self.ptr_q.export_all("ptr_q"))
        return out

    @classmethod
    def from_rku(cls, model):
        """A network whose export_tensors() is the integer model of `model` (a rkfw.rku.Model), to fine-tune it
        (reku learn). Float-only parameters (the pointer temperature) start at their defaults. Models with low-rank
        corrections (reku quantize --svd-rank) are refused."""
        a = model.arch
        if any(t.dtype == "lr" for t in model.tensors.values()):
            raise ValueError("a model with low-rank corrections (reku quantize --svd-rank) cannot be fine-tuned")
        net = cls(a["n_in"], a["n_out"], d=a["d"], f=a["f"], layers=a["layers"], dk=a["dk"], acts=a["acts"],
                  emb=a.get("emb", "t"))
        T = model.tensor
        e = T("emb")
        with torch.no_grad():
            if e.dtype == "t":
                net.emb.copy_(latent_weights(ref.unpack_ternary(e.data, *e.shape), float(e.alpha), "emb"))
            else:
                E = np.frombuffer(bytes(e.data), dtype=np.int8).reshape(e.shape).astype(np.float32)
                net.emb.copy_(torch.from_numpy(E * float(e.alpha)))

            def ungrid(t):        # the u8 grid round(sigmoid(p) * 256) back to a p that gives it again
                g = np.frombuffer(bytes(t.data), dtype=np.uint8).astype(np.float64)
                x = np.clip(g / 256.0, 0.25 / 256.0, 255.25 / 256.0)
                return torch.from_numpy(np.log(x / (1.0 - x)).astype(np.float32))

            for i, b in enumerate(net.blocks):
                p = "l%d." % i
                for nm in ("mu_r", "mu_k", "mu_v", "w", "u", "cmu"):
                    getattr(b, nm).copy_(ungrid(T(p + nm)))
                for nm in ("Wr", "Wk", "Wv", "Wo", "Ck", "Cv"):
                    getattr(b, nm).load(T(p + nm))
            for nm in ("head", "ptr_k", "ptr_q"):
                getattr(net, nm).load(T(nm))
        return net

    def arch(self, max_in):
        return {"type": "rwkv-tm-cm-ptr", "emb": self.emb_kind, "d": self.d, "f": self.f, "layers": self.L, "dk": self.dk,
                "max_in": max_in, "acts": self.acts, "n_in": self.n_in, "n_out": self.n_out}
