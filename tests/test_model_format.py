"""The .rku format: round trip through the writer and the one reader, and rejection of damaged files."""
import json
import struct
import zlib

import numpy as np
import pytest

from reku import paths
from reku.model import rkufile
from reku.model.reference import pack_ternary, unpack_ternary
from reku.model.synth import random_model
from rkfw import rku

TOOLS = json.loads((paths.SKILLS / "home" / "tools.json").read_text())


@pytest.fixture(scope="module")
def blob():
    return random_model(TOOLS, seed=3, d=40, f=80, layers=2, acts=["i8", "fp4"])


def test_round_trip_tensors_and_meta():
    rng = np.random.default_rng(1)
    W = rng.integers(-1, 2, size=(7, 15))
    E = rng.integers(-127, 128, size=(3, 5)).astype(np.int8)
    meta = {"model_id": "t", "arch": {"d": 5}, "tokenizer": {"alphabet": "ab"}, "vocab": ["<nocall>"],
            "schema": {"fns": [["f", [["x", "i", 1, 0, 9]]]]}}
    data = rkufile.write(None, meta, [("W", "t", W.shape, pack_ternary(W), 9000, 20, 0.25),
                                      ("E", "i8", E.shape, E.tobytes(), 0, 0, 0.0),
                                      ("b", "u8", (3,), b"\x01\x02\x03", 0, 0, 0.0)])
    m = rku.load(data)
    assert m.model_id == "t" and m.alphabet == "ab" and m.vocab == ["<nocall>"]
    w = m.tensor("W")
    assert (w.shape, w.M, w.S, w.alpha, w.dtype) == ((7, 15), 9000, 20, 0.25, "t")
    assert (unpack_ternary(w.data, 7, 15) == W).all()
    assert bytes(m.tensor("E").data) == E.tobytes()
    assert bytes(m.tensor("b").data) == b"\x01\x02\x03"
    assert m.schema_summary() == {"f": ["x"]}
    assert len(m.sha256) == 64


def test_tensors_are_aligned_zero_copy_views(blob):
    m = rku.load(memoryview(blob))
    base = memoryview(blob)
    (meta_len,) = struct.unpack_from("<I", blob, 12)
    for name, (_, _, off, n, *_r) in json.loads(blob[16:16 + meta_len])["tensors"].items():
        assert off % 4 == 0, name
        assert bytes(m.tensor(name).data) == bytes(base[off:off + n])
        assert isinstance(m.tensor(name).data, memoryview)


def test_ternary_packing_is_five_trits_per_byte():
    W = np.array([[-1, 0, 1, 1, -1, 0, 0, 0, 0, 1]])
    b = pack_ternary(W)
    assert len(b) == 2
    assert b[0] == 0 + 1 * 3 + 2 * 9 + 2 * 27 + 0 * 81
    assert max(pack_ternary(np.ones((1, 5), dtype=int))) == 242


def test_rejects_bad_magic(blob):
    with pytest.raises(rku.RkuError, match="bad magic"):
        rku.load(b"RKU0" + blob[4:])
    with pytest.raises(rku.RkuError, match="bad magic"):
        rku.load(b"")


def test_rejects_unknown_version(blob):
    b = bytearray(blob)
    struct.pack_into("<H", b, 4, 7)
    with pytest.raises(rku.RkuError, match="unknown version 7"):
        rku.load(bytes(b))


@pytest.mark.parametrize("cut", [5, 17, 100, -1, -4])
def test_rejects_truncation(blob, cut):
    n = cut if cut > 0 else len(blob) + cut
    with pytest.raises(rku.RkuError, match="truncated at byte %d" % n):
        rku.load(blob[:n])


def test_rejects_trailing_bytes(blob):
    with pytest.raises(rku.RkuError, match="trailing"):
        rku.load(blob + b"\0")


@pytest.mark.parametrize("pos", [20, 200, 1000, -10, -2])
def test_rejects_checksum_mismatch(blob, pos):
    b = bytearray(blob)
    b[pos] ^= 0x10
    with pytest.raises(rku.RkuError, match="checksum mismatch"):
        rku.load(bytes(b))


def test_rejects_tensor_outside_file(blob):
    (meta_len,) = struct.unpack_from("<I", blob, 12)
    meta = json.loads(blob[16:16 + meta_len])
    name = list(meta["tensors"])[-1]
    off = meta["tensors"][name][2]
    meta["tensors"][name][2] = int("9" * len(str(off))) // 4 * 4    # same length, beyond the file
    assert meta["tensors"][name][2] > len(blob)
    mb = json.dumps(meta, separators=(",", ":")).encode()
    mb = mb + b" " * (meta_len - len(mb))
    assert len(mb) == meta_len
    b = bytearray(blob)
    b[16:16 + meta_len] = mb
    struct.pack_into("<I", b, len(b) - 4, zlib.crc32(bytes(b[:-4])))
    with pytest.raises(rku.RkuError, match="outside the data area"):
        rku.load(bytes(b))


def test_lowrank_tensor_is_one_entry_and_its_shape_must_match_its_bytes():
    """A correction is one table entry "W.lr", dtype "lr", shape (R, r, C), U (R x r) then V (r x C); a shape that
    does not match the byte count, or another dtype under that name, is rejected with the tensor's name."""
    U = np.arange(-6, 6, dtype=np.int8).reshape(4, 3)
    V = np.arange(15, dtype=np.int8).reshape(3, 5)
    meta = {"model_id": "t", "arch": {}, "tokenizer": {"alphabet": "a"}, "vocab": [], "schema": {"fns": []}}

    def build(shape, dtype="lr"):
        return rkufile.write(None, meta, [("W.lr", dtype, shape, U.tobytes() + V.tobytes(), 700, 20, 0.0)])
    t = rku.load(build((4, 3, 5))).tensor("W.lr")
    assert (t.dtype, t.shape, t.M, t.S) == ("lr", (4, 3, 5), 700, 20)
    assert bytes(t.data) == U.tobytes() + V.tobytes()
    for bad in [(4, 3, 6), (4, 2, 5), (12, 5)]:
        with pytest.raises(rku.RkuError, match=r"low-rank tensor W.lr: lr \[.*\] does not match its 27 bytes"):
            rku.load(build(bad))
    with pytest.raises(rku.RkuError, match="low-rank tensor W.lr: i8"):
        rku.load(build((27,), "i8"))


def test_bundled_home_model_loads():
    m = rku.load(paths.model_path("home").read_bytes())
    names = set(m.schema_summary())
    tools = {t["function"]["name"] for t in TOOLS}
    assert names == tools
