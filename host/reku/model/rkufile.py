"""Writing .rku files (the reader is rkfw.rku, shared with the board). Layout in docs/format.md."""

import json
import struct
import zlib

import numpy as np

from rkfw import rku

MAX_IN = 96          # arch.max_in of the models reku writes: the longest request, in characters, a model reads


def requant_params(factor, mbits=14, smax=30):
    """(M, S) with M/2**S ~= factor, 2**(mbits-1) <= M < 2**mbits where S allows (S in 1..smax)."""
    if factor <= 0:
        return 0, 1
    S = 1
    while S < smax and factor * (1 << S) < (1 << (mbits - 1)):
        S += 1
    M = int(round(factor * (1 << S)))
    while M >= (1 << mbits) and S > 1:
        S -= 1
        M = int(round(factor * (1 << S)))
    return M, S


def lowrank_entry(name, U, V, M, S):
    """The one table entry of a low-rank correction U (R x r) @ V (r x C), int8 factors (docs/format.md)."""
    U, V = np.asarray(U, dtype=np.int8), np.asarray(V, dtype=np.int8)
    return (name + ".lr", "lr", (U.shape[0], U.shape[1], V.shape[1]), U.tobytes() + V.tobytes(), M, S, 0.0)


def write(path_or_none, meta, tensors):
    """tensors: list of (name, dtype, shape, data bytes, M, S, alpha). Returns the file bytes (and writes
    them when a path is given)."""
    meta = dict(meta)
    meta_len = 256
    while True:
        off = (rku.HEADER + meta_len + 3) & ~3
        table = {}
        for name, dtype, shape, data, M, S, alpha in tensors:
            table[name] = [dtype, list(shape), off, len(data), int(M), int(S), float("%.6g" % alpha)]
            off = (off + len(data) + 3) & ~3
        meta["tensors"] = table
        mbytes = json.dumps(meta, separators=(",", ":")).encode()
        if len(mbytes) <= meta_len:
            mbytes = mbytes + b" " * (meta_len - len(mbytes))     # JSON allows trailing whitespace
            break
        meta_len = len(mbytes) + 16
    total = off + 4
    out = bytearray(total)
    out[0:4] = rku.MAGIC
    out[4:rku.HEADER] = struct.pack("<HHII", rku.VERSION, 0, total, meta_len)
    out[rku.HEADER:rku.HEADER + meta_len] = mbytes
    for name, dtype, shape, data, M, S, alpha in tensors:
        o = table[name][2]
        out[o:o + len(data)] = data
    struct.pack_into("<I", out, total - 4, zlib.crc32(bytes(out[:total - 4])) & 0xFFFFFFFF)
    if path_or_none is not None:
        with open(path_or_none, "wb") as f:
            f.write(out)
    return bytes(out)
