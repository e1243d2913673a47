# The one reader of .rku model files (docs/format.md), used on the board and by the host.
# Layout: magic "RKU1" | u16 version | u16 flags | u32 file length | u32 meta length | meta JSON |
#         padding | tensors (4-byte aligned, offsets absolute) | u32 CRC-32 of all preceding bytes.
# Tensors stay zero-copy slices of the buffer (flash-mapped when the file lives in ROMFS). The header's JSON holds
# only what the board needs as objects (arch, tokenizer, the tensor table); the decoding grammar is the binary
# tensor "grammar" (read in place by rkfw.infer.Grammar) and the rest (how it was trained) the JSON tensor
# "meta", which only the host parses (Model.info()).
import binascii
import hashlib
from collections import namedtuple
import json
import struct

MAGIC = b"RKU1"
VERSION = 3        # the newest version this reader knows; it reads OLDEST..VERSION
OLDEST = 2         # 3 is 2 whose grammar may carry the refuse flag (docs/format.md), which a version 2 reader misreads
HEADER = 16


class RkuError(Exception):
    pass


# A slice of the file: dtype "t" (ternary, 5 trits/byte, rows of C//5 bytes), "i8", "u8", or "lr" (a low-rank
# correction of shape (R, r, C): int8 U (R x r) then V (r x C)); M, S: static requantisation
# q = (y*M + 2**(S-1)) >> S; alpha: the float scale it came from. A named tuple: one allocation per tensor
# (an instance with seven attributes took about twice the heap on MicroPython).
Tensor = namedtuple("Tensor", ("name", "dtype", "shape", "data", "M", "S", "alpha"))


def factors(t):
    """(U, V, r) of a low-rank tensor (dtype "lr", shape (R, r, C)): views of U (R x r) and V (r x C)."""
    R, r, C = t.shape
    return t.data[:R * r], t.data[R * r:], r


class Model:
    def __init__(self, buf, meta, sha):
        self.buf = buf
        self.meta = meta
        self.sha256 = sha
        self.model_id = meta.get("model_id", "")
        self.arch = meta["arch"]
        self.alphabet = meta["tokenizer"]["alphabet"]
        self.tensors = {}
        for name, t in meta.pop("tensors").items():      # the table is dropped once the views exist
            dtype, shape, off, nbytes, M, S, alpha = t
            self.tensors[name] = Tensor(name, dtype, tuple(shape), buf[off:off + nbytes], M, S, alpha)

    def tensor(self, name):
        try:
            return self.tensors[name]
        except KeyError:
            raise RkuError("model has no tensor %s" % name)

    def info(self):
        """The rest of the metadata (the JSON tensor "meta": how the model was trained), parsed when asked for;
        the board never asks. Schema and vocabulary: the "grammar" tensor (reku.model.rkufile.schema_vocab)."""
        return json.loads(bytes(self.tensor("meta").data))


def _hex(b):
    return binascii.hexlify(b).decode()


def load(buf):
    """Parse and verify a .rku image (bytes, bytearray or memoryview); tensors are views into buf."""
    if not isinstance(buf, memoryview):
        buf = memoryview(buf)
    n = len(buf)
    if n < 4 or bytes(buf[0:4]) != MAGIC:
        raise RkuError("bad magic %r (not a .rku file)" % bytes(buf[0:4]))
    if n < HEADER + 4:
        raise RkuError("truncated at byte %d (header needs %d)" % (n, HEADER + 4))
    version, flags, total, meta_len = struct.unpack("<HHII", bytes(buf[4:HEADER]))
    if not OLDEST <= version <= VERSION:
        raise RkuError("unknown version %d (this reader knows %d..%d%s)" % (
            version, OLDEST, VERSION, ": `reku repack` converts a version 1 file" if version == 1 else ""))
    if n < total:
        raise RkuError("truncated at byte %d (header says %d bytes)" % (n, total))
    if n > total:
        raise RkuError("%d bytes of trailing data after byte %d" % (n - total, total))
    if HEADER + meta_len > total - 4:
        raise RkuError("metadata length %d overruns the file (%d bytes)" % (meta_len, total))
    (crc,) = struct.unpack("<I", bytes(buf[total - 4:total]))
    got = binascii.crc32(buf[0:total - 4]) & 0xFFFFFFFF
    if got != crc:
        raise RkuError("checksum mismatch (stored %08x, computed %08x)" % (crc, got))
    try:
        meta = json.loads(bytes(buf[HEADER:HEADER + meta_len]))
    except (ValueError, UnicodeError) as e:
        raise RkuError("metadata is not valid JSON: %s" % e)
    for key in ("arch", "tokenizer", "tensors"):
        if key not in meta:
            raise RkuError("metadata lacks %s" % key)
    for key in ("meta", "grammar"):
        if key not in meta["tensors"]:
            raise RkuError("model has no tensor %s" % key)
    for name, t in meta["tensors"].items():
        off, nbytes = t[2], t[3]
        if off < HEADER + meta_len or off + nbytes > total - 4 or off & 3:
            raise RkuError("tensor %s at %d+%d lies outside the data area or is unaligned" % (name, off, nbytes))
        if name.endswith(".lr") and (t[0] != "lr" or len(t[1]) != 3 or nbytes != t[1][1] * (t[1][0] + t[1][2])):
            raise RkuError("low-rank tensor %s: %s %s does not match its %d bytes" % (name, t[0], t[1], nbytes))
    h = hashlib.sha256(buf)
    return Model(buf, meta, _hex(h.digest()))
