"""What a product sends back in a federated round, made small (`reku federate --compress topk|sign`,
docs/learning.md), both with error feedback (Stich et al. 2018; Karimireddy et al. 2019):

- topk: top-k sparsification (Lin et al. 2018, "Deep Gradient Compression"), the kept values in FP4 E2M1 with one
  float16 scale per block of 32;
- sign: every entry's sign, one bit, times its block's mean magnitude (float16, blocks of 32): 0.1875 bytes per
  entry, 21x smaller than float32, for updates whose energy is spread over all entries (a few Adam steps).

A client's update is delta = its locally trained weights - the round's global weights, flattened in parameter
order. It adds what earlier rounds did not send (its residual), keeps the `density` share of entries with the
largest magnitude, and codes them as

    idx     uint32, ascending     positions of the kept entries in the flat vector
    codes   uint8                 two FP4 codes per byte (even entry in the low nibble): sign << 3 | m, the value
                                  sign * FP4MAG[m] / 2 * the block's scale (E2M1: 0, 0.5, 1, 1.5, 2, 3, 4, 6)
    scales  float16               per block of 32 kept entries: max |value| / 6

What was not sent (the entries left out and each kept entry's rounding error) becomes the next residual, so
nothing is lost, only delayed. The E2M1 magnitudes are the firmware's (rkfw.fp4.FP4MAG, doubled)."""

import numpy as np

from rkfw.fp4 import FP4MAG

BLOCK = 32
_MAG = np.array(FP4MAG, dtype=np.float32)       # doubled E2M1 magnitudes 0..12


def encode(v, density):
    """(idx, codes, scales) of flat float32 vector v keeping ceil(density * n) entries (at least 1)."""
    v = np.asarray(v, dtype=np.float32).ravel()
    if not 0 < density <= 1:
        raise ValueError("density must be in (0, 1], got %r" % density)
    k = max(1, min(v.size, int(np.ceil(density * v.size))))
    idx = np.argpartition(np.abs(v), v.size - k)[v.size - k:] if k < v.size else np.arange(v.size)
    idx = np.sort(idx).astype(np.uint32)
    vals = v[idx]
    nb = -(-k // BLOCK)
    padded = np.zeros(nb * BLOCK, dtype=np.float32)
    padded[:k] = vals
    blocks = padded.reshape(nb, BLOCK)
    scales = (np.abs(blocks).max(axis=1) / 6.0).astype(np.float16)
    s = scales.astype(np.float32)
    s[s == 0] = 1.0
    u = np.abs(blocks) / s[:, None] * 2.0                       # in doubled-magnitude units, 0..12
    m = np.abs(u[..., None] - _MAG).argmin(axis=-1).astype(np.uint8)
    c = (m | ((blocks < 0) & (m > 0)).astype(np.uint8) << 3).ravel()[:k]
    if k & 1:
        c = np.append(c, np.uint8(0))
    codes = (c[0::2] | (c[1::2] << 4)).astype(np.uint8)
    return idx, codes, scales


def decode(idx, codes, scales, n):
    """The dense float32 vector (length n) that encode()'s output stands for."""
    idx = np.asarray(idx, dtype=np.int64)
    k = idx.size
    if k and (idx.max() >= n or np.any(np.diff(idx) <= 0)):
        raise ValueError("compressed update: positions out of range or not ascending")
    if codes.size != (k + 1) // 2 or scales.size != -(-k // BLOCK):
        raise ValueError("compressed update: %d positions but %d code bytes and %d scales"
                         % (k, codes.size, scales.size))
    c = np.empty(2 * codes.size, dtype=np.uint8)
    c[0::2] = codes & 15
    c[1::2] = codes >> 4
    c = c[:k]
    mag = _MAG[c & 7] / 2.0
    sign = np.where(c & 8, -1.0, 1.0).astype(np.float32)
    vals = sign * mag * np.repeat(scales.astype(np.float32), BLOCK)[:k]
    out = np.zeros(n, dtype=np.float32)
    out[idx] = vals
    return out


def encode_sign(v):
    """(bits, scales) of flat float32 vector v: its signs (1 = negative), eight per byte, and per block of 32
    entries the mean magnitude."""
    v = np.asarray(v, dtype=np.float32).ravel()
    nb = -(-v.size // BLOCK)
    padded = np.zeros(nb * BLOCK, dtype=np.float32)
    padded[:v.size] = v
    scales = np.abs(padded).reshape(nb, BLOCK).mean(axis=1).astype(np.float16)
    return np.packbits(v < 0), scales


def decode_sign(bits, scales, n):
    if bits.size != -(-n // 8) or scales.size != -(-n // BLOCK):
        raise ValueError("compressed update: %d sign bytes and %d scales for %d entries" % (bits.size, scales.size, n))
    sign = 1.0 - 2.0 * np.unpackbits(bits, count=n).astype(np.float32)
    return sign * np.repeat(scales.astype(np.float32), BLOCK)[:n]


CODECS = {"topk": (lambda v, density: encode(v, density), decode),
          "sign": (lambda v, density: encode_sign(v), decode_sign)}


def compress(delta, residual, density, codec="topk"):
    """(arrays to send, new residual): error feedback around the codec's encoder."""
    enc, dec = CODECS[codec]
    v = np.asarray(delta, dtype=np.float32) + (residual if residual is not None else 0)
    arrays = enc(v, density)
    return arrays, v - dec(*arrays, v.size)


def expand(arrays, n, codec="topk"):
    """The dense update (length n) that a codec's arrays stand for."""
    return CODECS[codec][1](*arrays, n)


def wire_bytes(arrays):
    """Bytes of the arrays' data (what the message carries, before its framing)."""
    return int(sum(np.asarray(a).nbytes for a in arrays))
