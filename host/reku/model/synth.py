"""Models with random weights (numpy only) for tests and benchmarks of the integer path and the grammar."""

import math

import numpy as np

from . import rkufile
from .reference import pack_ternary, sig_lut
from .skill import compile_schema
from .tokenizer import ALPHABET



def random_model(tools, seed=0, d=40, f=80, layers=1, dk=40, acts=None, gain=1.0, max_in=rkufile.MAX_IN, alphabet=ALPHABET,
                 model_id=None, emb="i8", lowrank=0, refuse=False):
    """.rku bytes of a model with random ternary weights for `tools` (a tools.json list). lowrank=r adds random
    int8 low-rank corrections of rank r (docs/format.md) to every ternary tensor but the embedding. refuse: the
    grammar may refuse a value (rkfw.infer.Grammar)."""
    rng = np.random.default_rng(seed)
    schema, vocab = compile_schema(tools, refuse=refuse)
    n_in = len(alphabet) + 2
    O = len(vocab)
    acts = list(acts or ["i8"] * layers)
    T = []

    def tern(name, R, C, xs=127.0, qout=256.0):
        W = rng.integers(-1, 2, size=(R, C))
        alpha = 1.0 / math.sqrt(C)
        M, S = rkufile.requant_params(gain * alpha * qout / xs * float(rng.uniform(0.5, 2.0)))
        T.append((name, "t", (R, C), pack_ternary(W), M, S, alpha))
        if lowrank:
            r = lowrank
            U = rng.integers(-127, 128, size=(R, r)).astype(np.int8)
            V = rng.integers(-127, 128, size=(r, C)).astype(np.int8)
            # factor K = Mu/2**Su: U @ quant_i8(V @ x) * amax * K is a fraction of |W @ x| (~127 * sqrt(C))
            Mu, Su = rkufile.requant_params(0.5 / (127.0 ** 3 * math.sqrt(r)), mbits=10)
            T.append(rkufile.lowrank_entry(name, U, V, Mu, Su))

    def u8(name, n, lo=0, hi=256):
        T.append((name, "u8", (n,), rng.integers(lo, hi, size=n).astype(np.uint8).tobytes(), 0, 0, 0.0))

    if emb == "t":
        E = rng.integers(-1, 2, size=(n_in + O, d))
        M, S = rkufile.requant_params(256.0 * 0.7)
        T.append(("emb", "t", E.shape, pack_ternary(E), M, S, 0.7))
    else:
        E = rng.integers(-127, 128, size=(n_in + O, d)).astype(np.int8)
        M, S = rkufile.requant_params(256.0 / 127.0)
        T.append(("emb", "i8", E.shape, E.tobytes(), M, S, 1 / 127.0))
    T.append(("sig", "u8", (256,), sig_lut().tobytes(), 0, 0, 0.0))
    for i in range(layers):
        p = "l%d." % i
        xs = 96.0 if acts[i] == "fp4" else 127.0
        for nm in ("mu_r", "mu_k", "mu_v"):
            u8(p + nm, d)
        u8(p + "w", d, 1)
        u8(p + "u", d)
        for nm in ("Wr", "Wk", "Wv"):
            tern(p + nm, d, d, xs, 4096.0)
        tern(p + "Wo", d, d, xs)
        u8(p + "cmu", d)
        tern(p + "Ck", f, d, xs, 4096.0)
        tern(p + "Cv", d, f, xs)
    tern("head", O, d)
    tern("ptr_k", dk, d)
    tern("ptr_q", dk, d)
    meta = {"model_id": model_id or "random-%d" % seed,
            "arch": {"type": "rwkv-tm-cm-ptr", "d": d, "f": f, "layers": layers, "dk": dk, "max_in": max_in,
                     "acts": acts, "n_in": n_in, "n_out": O},
            "tokenizer": {"kind": "char", "alphabet": alphabet}, "vocab": vocab, "schema": schema}
    return rkufile.write(None, meta, T)
