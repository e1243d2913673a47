"""The integer-exact numpy reference of the recurrent step: the specification the firmware kernels
(rkfw.kernels: python/viper) and the C module (rkernel) are tested against. Every operation on int64
arrays; `>>` floors (arithmetic shift), `//` is only applied to non-negative numerators.

Pieces (names match rkfw.kernels):
  tmv(W, x)                     y = W @ x, W ternary {-1,0,1} (unpacked), x int8
  quant_i8(h) -> (x, amax)      x = sgn(h) * ((|h|*127 + (amax>>1)) // amax)
  quant_fp4(h) -> (x, amax)     kernel contract (docs/format.md, "Packed FP4 activations"): FP4 E2M1 with power-of-two block scales, 8 per block
  shift(x, prev, mu)            prev + (((x - prev) * mu + 128) >> 8),    mu in 0..255
  requant(y, M, S, lo, hi)      clip((y*M + (1 << (S-1))) >> S, lo, hi)
  wkv(r, k, v, s, w, u, sig)    kv = (k*v) >> 12                   (r, k, v, s, out in Q12; w, u, sig in Q8)
                                out = (sig[clip(r >> 9, -128, 127) + 128] * (s + ((u*kv) >> 8))) >> 8
                                s'  = clip(((s*w) >> 8) + kv, -S_LIM, S_LIM)
  square(k)                     (k*k) >> 12
  add(h, y)                     clip(h + y, -H_LIM, H_LIM)
  embed(E_row, M, S)            (E_row*M + (1 << (S-1))) >> S      (E int8, or ternary: embed_t)
  dot_rows(K, q)                K @ q (int8 rows)

One step (input id t), per layer i (act = int8 or fp4 quantizer of that layer):
  h = embed(E[t])
  x = act(h); xr, xk, xv = shift(x, prev_i, mu_r/k/v); prev_i = x
  r = requant(tmv(Wr, xr), -A, A); k = ...Wk...; v = ...Wv...        (Q12, A = 8*4096-1)
  o, s_i = wkv(r, k, v, s_i, w, u, sig); h = add(h, requant(tmv(Wo, act(o)), -H_LIM, H_LIM))
  x = act(h); xc = shift(x, prevc_i, cmu); prevc_i = x
  g = square(requant(tmv(Ck, xc), 0, A)); h = add(h, requant(tmv(Cv, act(g)), -H_LIM, H_LIM))
Low-rank correction (optional, per ternary tensor W of shape (R, C), tensor "W.lr" of dtype "lr": int8 factors
U (R, r) then V (r, C), and their (M, S)): every tmv(W, x) above is followed by
  z = V @ x; zq, a = quant_i8(z); if a: y = add(y, requant(U @ zq, m, s, -H_LIM, H_LIM)), (m, s) = lr_scale(a, M, S, out)
before whatever uses y (requant, quant_i8, argmax).
Head: logits = tmv(head, quant_i8(h)). Pointer: key_j = quant_i8(tmv(ptr_k, quant_i8(h_j))) for input positions
j = 0..n (n = SEP); at a pointer step scores = key @ quant_i8(tmv(ptr_q, quant_i8(h))).
Decoding: rkfw.infer.Grammar (shared), argmax over allowed tokens/positions, ties to the lowest index.
Memory of corrections (rkfw.memory, optional): a = sum of quant_i8(h_j) over the last character of each word and
SEP (w + 1 positions), c = quant_i8(h) after SEP from the reset state; p = quant_i8(a - (w + 1) * c); record r
(key k_r, norm n_r) scores cosine(k_r . p, n_r, isqrt(p . p)) = (((s << 4) // n_r) << 6) // isqrt(p . p); the first
best at or above THRESHOLD is recognised, and at its token decision numbers its tokens replace the argmax where
allowed (Memory.replay, shared).
"""

from array import array

import numpy as np

from rkfw import infer
from rkfw import lowrank as board_lowrank
from rkfw import memory as board_memory
from rkfw import rku
from rkfw.fp4 import FP4IDX, FP4MAG
from rkfw.kernels import A_LIM, H_LIM, QA, S_LIM  # noqa: F401  (the limits' one home; used here and by qat)

# doubled E2M1 magnitude of |value| u = 0..12 after rounding: the firmware's code table read through its index
FP4TAB = np.array([FP4MAG[i] for i in FP4IDX], dtype=np.int64)


def sig_lut():
    """The model's sigmoid table (tensor "sig", uint8): 256 * sigmoid((i - 128) / 8 + 1/16), i = 0..255."""
    i = np.arange(256)
    v = np.round(256.0 / (1.0 + np.exp(-((i - 128) / 8.0 + 1.0 / 16.0))))
    return np.clip(v, 0, 255).astype(np.uint8)


def unpack_ternary(data, R, C):
    b = np.frombuffer(bytes(data), dtype=np.uint8).astype(np.int64).reshape(R, C // 5)
    out = np.empty((R, C // 5, 5), dtype=np.int64)
    for k in range(5):
        out[:, :, k] = b % 3 - 1
        b = b // 3
    return out.reshape(R, C)


def pack_ternary(W):
    """W: (R, C) in {-1,0,1}, C multiple of 5 -> bytes (row-major, base-3 little-endian digits)."""
    W = np.asarray(W, dtype=np.int64)
    R, C = W.shape
    assert C % 5 == 0, "columns must be a multiple of 5"
    g = (W + 1).reshape(R, C // 5, 5)
    b = g[:, :, 0] + 3 * g[:, :, 1] + 9 * g[:, :, 2] + 27 * g[:, :, 3] + 81 * g[:, :, 4]
    return b.astype(np.uint8).tobytes()


def tmv(W, x):
    return W @ np.asarray(x, dtype=np.int64)


def ttmv(t, x):
    """tmv of a loaded ternary tensor (W, M, S, lr) followed by its low-rank correction, if any."""
    return lowrank(tmv(t[0], x), x, t[3])


def quant_i8(h):
    h = np.asarray(h, dtype=np.int64)
    a = np.abs(h)
    amax = int(a.max()) if a.size else 0
    if amax == 0:
        return np.zeros_like(h), 0
    return np.sign(h) * ((a * 127 + (amax >> 1)) // amax), amax


def quant_fp4(h):
    h = np.asarray(h, dtype=np.int64)
    a = np.abs(h)
    amax = int(a.max()) if a.size else 0
    if amax == 0:
        return np.zeros_like(h), 0
    t = (a * 96 + (amax >> 1)) // amax
    tb = t.reshape(-1, 8)
    bm = tb.max(axis=1)
    s = np.where(bm <= 12, 0, np.where(bm <= 24, 1, np.where(bm <= 48, 2, 3)))[:, None]
    u = np.minimum(12, (tb + ((1 << s) >> 1)) >> s)
    g = FP4TAB[u] << s
    return np.sign(h) * g.reshape(-1), amax


def shift(x, prev, mu):
    x = np.asarray(x, dtype=np.int64)
    prev = np.asarray(prev, dtype=np.int64)
    return prev + (((x - prev) * mu + 128) >> 8)


def requant(y, M, S, lo, hi):
    return np.clip((np.asarray(y, dtype=np.int64) * M + (1 << (S - 1))) >> S, lo, hi)


def wkv(r, k, v, s, w, u, sig):
    kv = (k * v) >> QA
    j = np.clip(r >> (QA - 3), -128, 127) + 128
    out = (sig[j] * (s + ((u * kv) >> 8))) >> 8
    s2 = np.clip(((s * w) >> 8) + kv, -S_LIM, S_LIM)
    return out, s2


def square(k):
    return (k * k) >> QA


def add(h, y):
    return np.clip(h + y, -H_LIM, H_LIM)


def lowrank(y, x, lr):
    """y + the low-rank correction (U, V, M, S) of the tensor applied to input x (see the docstring)."""
    if lr is None:
        return y
    U, V, M, S = lr
    zq, a = quant_i8(V @ np.asarray(x, dtype=np.int64))
    if a == 0:
        return y
    m, s = board_lowrank.lr_scale(a, M, S, [0, 0])
    return add(y, requant(U @ zq, m, s, -H_LIM, H_LIM))


def embed(row, M, S):
    return (np.asarray(row, dtype=np.int64) * M + (1 << (S - 1))) >> S


class Reference:
    """Numpy integer inference of a loaded rkfw.rku.Model. run(text) -> (calls, trace)."""

    def __init__(self, model):
        self.model = model
        a = model.arch
        self.d, self.f, self.L, self.dk, self.max_in = a["d"], a["f"], a["layers"], a["dk"], a["max_in"]
        self.acts = a["acts"]
        self.tok = infer.Tokenizer(model.alphabet)
        self.O = a["n_out"]
        self.grammar = infer.Grammar(model.tensor("grammar").data)

        def u8(name):
            return np.frombuffer(bytes(model.tensor(name).data), dtype=np.uint8).astype(np.int64)

        def tern(name):
            """(W, M, S, low-rank correction or None) of a ternary tensor."""
            t = model.tensor(name)
            lr = None
            if name + ".lr" in model.tensors:
                c = model.tensor(name + ".lr")
                U, V, r = rku.factors(c)
                lr = (np.frombuffer(bytes(U), dtype=np.int8).astype(np.int64).reshape(-1, r),
                      np.frombuffer(bytes(V), dtype=np.int8).astype(np.int64).reshape(r, -1), c.M, c.S)
            return unpack_ternary(t.data, *t.shape), t.M, t.S, lr

        e = model.tensor("emb")
        if e.dtype == "t":
            self.E = unpack_ternary(e.data, *e.shape)
        else:
            self.E = np.frombuffer(bytes(e.data), dtype=np.int8).astype(np.int64).reshape(e.shape)
        self.EM, self.ES = e.M, e.S
        self.sig = u8("sig")
        self.layers = []
        for i in range(self.L):
            p = "l%d." % i
            self.layers.append(dict(mu_r=u8(p + "mu_r"), mu_k=u8(p + "mu_k"), mu_v=u8(p + "mu_v"),
                                    w=u8(p + "w"), u=u8(p + "u"), Wr=tern(p + "Wr"), Wk=tern(p + "Wk"),
                                    Wv=tern(p + "Wv"), Wo=tern(p + "Wo"), cmu=u8(p + "cmu"),
                                    Ck=tern(p + "Ck"), Cv=tern(p + "Cv"),
                                    act=quant_fp4 if self.acts[i] == "fp4" else quant_i8))
        self.head = tern("head")
        self.pk = tern("ptr_k")
        self.pq = tern("ptr_q")

    def reset(self):
        z = np.zeros(self.d, dtype=np.int64)
        self.prev = [z.copy() for _ in range(self.L)]
        self.prevc = [z.copy() for _ in range(self.L)]
        self.state = [z.copy() for _ in range(self.L)]

    def step(self, tid):
        A = A_LIM
        h = embed(self.E[tid], self.EM, self.ES)
        for i, ly in enumerate(self.layers):
            act = ly["act"]
            x, _ = act(h)
            xr = shift(x, self.prev[i], ly["mu_r"])
            xk = shift(x, self.prev[i], ly["mu_k"])
            xv = shift(x, self.prev[i], ly["mu_v"])
            self.prev[i] = x
            r = requant(ttmv(ly["Wr"], xr), *ly["Wr"][1:3], -A, A)
            k = requant(ttmv(ly["Wk"], xk), *ly["Wk"][1:3], -A, A)
            v = requant(ttmv(ly["Wv"], xv), *ly["Wv"][1:3], -A, A)
            o, self.state[i] = wkv(r, k, v, self.state[i], ly["w"], ly["u"], self.sig)
            h = add(h, requant(ttmv(ly["Wo"], act(o)[0]), *ly["Wo"][1:3], -H_LIM, H_LIM))
            x, _ = act(h)
            xc = shift(x, self.prevc[i], ly["cmu"])
            self.prevc[i] = x
            g = square(requant(ttmv(ly["Ck"], xc), *ly["Ck"][1:3], 0, A))
            xg = act(g)[0]
            h = add(h, requant(ttmv(ly["Cv"], xg), *ly["Cv"][1:3], -H_LIM, H_LIM))
        self.h = h
        return h

    def key(self):
        return quant_i8(ttmv(self.pk, quant_i8(self.h)[0]))[0]

    def memory(self, path, tag=None, cap=board_memory.RECORDS):
        """The memory file at path (rkfw.memory's reader) for run(text, memory); None if it is not this model's."""
        ref = self

        class Kern:
            @staticmethod
            def quant_i8(h, out):
                out[:] = array("b", quant_i8(h)[0].tolist())

        class Adapter:          # what Memory() uses of an engine: the centre is this reference's own arithmetic
            d = self.d
            tok = self.tok
            kern = Kern
            _reset = self.reset

            @staticmethod
            def step(t):
                ref.step(t)

            @property
            def h(self):
                return ref.h

        return board_memory.load(Adapter(), path, tag or board_memory.tag_of(self.model), cap)

    def _recognise(self, m, a, n):
        """Set m.hit (and m.k = 0) for the summed streams a of n positions (the module docstring's rule)."""
        m.hit = -1
        m.k = 0
        c = np.array(m.c, dtype=np.int64)
        p, _ = quant_i8(a - n * c)
        nq = board_memory.isqrt(int(p @ p))
        if nq == 0 or m.records == 0:
            return
        best = board_memory.THRESHOLD - 1
        with open(m.path, "rb") as f:
            for r in range(m.records):
                f.seek(m.off[r])
                k = np.frombuffer(f.read(self.d), dtype=np.int8).astype(np.int64)
                cs = board_memory.cosine(int(k @ p), m.nk[r], nq)
                if cs > best:
                    m.hit, best = r, cs

    def run(self, text, memory=None):
        tok = self.tok
        ids = np.zeros(self.max_in, dtype=np.int64)
        n = tok.encode(text, ids)
        text = text[:n]
        self.reset()
        g = self.grammar
        g.reset(text, tok)
        keys = np.zeros((n + 1, self.dk), dtype=np.int64)
        a = np.zeros(self.d, dtype=np.int64)
        w = 0
        for j in range(n):
            self.step(int(ids[j]))
            keys[j] = self.key()
            if w < len(g.stops) and g.stops[w] == j + 1:
                a += quant_i8(self.h)[0]
                w += 1
        self.step(tok.sep)
        keys[n] = self.key()
        if memory is not None:
            self._recognise(memory, a + quant_i8(self.h)[0], w + 1)
        trace = []
        while True:
            kind = g.next()
            if kind == infer.K_DONE:
                break
            x, _ = quant_i8(self.h)
            if kind == infer.K_TOKEN:
                logits = ttmv(self.head, x)
                allow = list(g.allow[:g.n_allow])
                best = min(allow, key=lambda t: (-logits[t], t))
                if memory is not None and memory.hit >= 0:
                    t = memory.replay(allow, len(allow))
                    if t >= 0:
                        best = t
                trace.append(("tok", best, logits.copy()))
                g.feed(best)
                if g.done:
                    break
                fid = tok.n_in + best
            else:
                q, _ = quant_i8(ttmv(self.pq, x))
                scores = keys @ q
                pos = list(g.positions())
                best = min(pos, key=lambda p: (-scores[p], p))
                trace.append(("ptr", best, scores.copy()))
                g.feed(best)
                fid = int(infer.fed_id(kind, best, ids))
            self.step(fid)
        self.why = g.reason()               # None, or why there is no call (rkfw.infer.Grammar.reason)
        return g.calls(), trace
