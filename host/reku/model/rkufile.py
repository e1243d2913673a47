"""Writing .rku files (the reader is rkfw.rku, shared with the board). Layout in docs/format.md."""

import json
import struct
import zlib

import numpy as np

from rkfw import infer, rku

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


BOARD_KEYS = ("model_id", "arch", "tokenizer")    # the header's JSON: what the board parses into objects
HOST_ONLY = ("vocab", "schema")                  # carried by the grammar tensor alone (schema_vocab reads them)
INT_RANGE = (0, 999999)                          # an integer parameter's range where the schema gives no bound
REC = "<HBBHHii"                                 # a parameter record: name, kind, required, a, n, lo, hi


def grammar_table(schema, vocab):
    """The "grammar" tensor of a compact schema and its output vocabulary: the bytes rkfw.infer.Grammar reads in
    place (layout in its docstring and docs/format.md)."""
    fns = schema["fns"]
    strings = list(vocab)
    extra = {}

    def sid(text):
        if text not in extra:
            extra[text] = len(strings)
            strings.append(text)
        return extra[text]

    names, first, recs, enum = [], [0], [], []
    for name, params in fns:
        names.append(sid(name))
        for pname, kind, req, a, b in params:
            lo = hi = n = e = 0
            if kind == "e":
                e, n = len(enum), len(a)
                enum.extend(a)
            elif kind == "s":
                e = a
            elif kind == "i":
                lo = INT_RANGE[0] if a is None else a
                hi = INT_RANGE[1] if b is None else b
            elif kind != "b":
                raise ValueError("parameter %s of %s: unknown kind %r" % (pname, name, kind))
            recs.append(struct.pack(REC, sid(pname), ord(kind), 1 if req else 0, e, n, lo, hi))
        first.append(len(recs))
    area = b""
    offs = [0]
    for text in strings:
        area += text.encode()
        offs.append(len(area))
    head = (len(fns), schema.get("max_calls", 2) | (0x8000 if schema.get("refuse") else 0), len(vocab), len(strings),
            len(enum))
    if max(head + tuple(offs) + tuple(enum)) > 0xFFFF:
        raise ValueError("schema too large for the grammar table (more than 65,535 strings, tokens or bytes)")
    u16 = lambda xs: struct.pack("<%dH" % len(xs), *xs)
    return u16(head) + u16(names) + u16(first) + u16(offs) + b"".join(recs) + u16(enum) + area


def refusals(model):
    """The share of refusal requests to train a loaded model on when it is trained further (reku learn, reku
    federate): data.REFUSALS for a model that may refuse a value (its grammar's flag), else 0."""
    from . import data
    return data.REFUSALS if infer.Grammar(model.tensor("grammar").data).refuse else 0.0


def grammar(schema, vocab):
    """A host Grammar for a schema and vocabulary (training targets, masks): the board's Grammar on the table
    the model file will carry, with the schema and vocabulary as lists beside it for the host's own lookups."""
    g = infer.Grammar(grammar_table(schema, vocab))
    g.fns, g.vocab = schema["fns"], vocab
    return g


def schema_vocab(model):
    """(compact schema, vocabulary) of a loaded model, read back from its grammar tensor (integer bounds the
    schema left open come back as INT_RANGE, which is what the grammar enforces)."""
    g = infer.Grammar(model.tensor("grammar").data)
    T = g.T
    vocab = [g.string(i) for i in range(len(g.allow))]
    fns = []
    for i in range(g.n_fns):
        a, b = g._recs(i)
        params = []
        for r in range(a, b, 16):
            name, kind, req, e, n, lo, hi = struct.unpack_from(REC, T, r)
            kind = chr(kind)
            if kind == "e":
                a_, b_ = [struct.unpack_from("<H", T, g._enum + 2 * (e + j))[0] for j in range(n)], None
            elif kind == "s":
                a_, b_ = e, None
            elif kind == "i":
                a_, b_ = lo, hi
            else:
                a_ = b_ = None
            params.append([g.string(name), kind, req, a_, b_])
        fns.append([g.fn_name(i), params])
    schema = {"max_calls": g.max_calls, "fns": fns}
    if g.refuse:
        schema["refuse"] = True
    return schema, vocab


def write(path_or_none, meta, tensors):
    """tensors: list of (name, dtype, shape, data bytes, M, S, alpha). Returns the file bytes (and writes
    them when a path is given). The metadata's BOARD_KEYS go in the header's JSON; its schema and vocabulary
    become the "grammar" tensor, and the rest (training record) the JSON tensor "meta" (docs/format.md)."""
    g = grammar_table(meta["schema"], meta["vocab"])
    rest = json.dumps({k: v for k, v in meta.items() if k not in BOARD_KEYS + HOST_ONLY},
                      separators=(",", ":")).encode()
    tensors = list(tensors) + [("grammar", "u8", (len(g),), g, 0, 0, 0.0),
                               ("meta", "u8", (len(rest),), rest, 0, 0, 0.0)]
    meta = {k: meta[k] for k in BOARD_KEYS if k in meta}
    meta_len = 64
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
    # the oldest version that holds the file: a refusing grammar needs 3 (a version 2 reader would misread it)
    version = rku.VERSION if infer.Grammar(g).refuse else rku.OLDEST
    out[4:rku.HEADER] = struct.pack("<HHII", version, 0, total, meta_len)
    out[rku.HEADER:rku.HEADER + meta_len] = mbytes
    for name, dtype, shape, data, M, S, alpha in tensors:
        o = table[name][2]
        out[o:o + len(data)] = data
    struct.pack_into("<I", out, total - 4, zlib.crc32(bytes(out[:total - 4])) & 0xFFFFFFFF)
    if path_or_none is not None:
        with open(path_or_none, "wb") as f:
            f.write(out)
    return bytes(out)


def repack(blob):
    """A version 1 file (vocab and schema in the header's JSON, no grammar tensor) as a version 2 file with the
    same tensors; a version 2 file whose grammar refuses (written before version 3) as version 3; others unchanged."""
    (version,) = struct.unpack_from("<H", blob, 4)
    if rku.OLDEST <= version <= rku.VERSION:
        m = rku.load(blob)
        if version == 2 and infer.Grammar(m.tensor("grammar").data).refuse:
            out = bytearray(blob)
            struct.pack_into("<H", out, 4, 3)
            struct.pack_into("<I", out, len(out) - 4, zlib.crc32(bytes(out[:-4])) & 0xFFFFFFFF)
            return bytes(out)
        return bytes(blob)
    if bytes(blob[:4]) != rku.MAGIC or version != 1:
        raise rku.RkuError("not a version 1 .rku file")
    total, meta_len = struct.unpack_from("<II", blob, 8)
    if len(blob) != total or zlib.crc32(bytes(blob[:total - 4])) & 0xFFFFFFFF != struct.unpack_from("<I", blob, total - 4)[0]:
        raise rku.RkuError("version 1 file damaged (length or checksum)")
    meta = json.loads(bytes(blob[rku.HEADER:rku.HEADER + meta_len]))
    tensors = [(name, dtype, shape, bytes(blob[off:off + n]), M, S, alpha)
               for name, (dtype, shape, off, n, M, S, alpha) in meta.pop("tensors").items()]
    return write(None, meta, tensors)
