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
from rkfw import infer, rku

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
    assert m.model_id == "t" and m.alphabet == "ab"
    assert rkufile.schema_vocab(m) == ({"max_calls": 2, "fns": [["f", [["x", "i", 1, 0, 9]]]]}, ["<nocall>"])
    w = m.tensor("W")
    assert (w.shape, w.M, w.S, w.alpha, w.dtype) == ((7, 15), 9000, 20, 0.25, "t")
    assert (unpack_ternary(w.data, 7, 15) == W).all()
    assert bytes(m.tensor("E").data) == E.tobytes()
    assert bytes(m.tensor("b").data) == b"\x01\x02\x03"
    assert infer.Grammar(m.tensor("grammar").data).summary() == {"f": ["x"]}
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
    names = set(infer.Grammar(m.tensor("grammar").data).summary())
    tools = {t["function"]["name"] for t in TOOLS}
    assert names == tools


def _as_version1(blob):
    """The same model laid out as format version 1 wrote it: vocab and schema in the header's JSON with the
    tensor table, no grammar or meta tensor."""
    m = rku.load(blob)
    schema, vocab = rkufile.schema_vocab(m)
    meta = dict(m.meta, vocab=vocab, schema=schema, **m.info())
    named = [(n, t) for n, t in m.tensors.items() if n not in ("grammar", "meta")]
    meta_len = 8192
    off, table = (rku.HEADER + meta_len + 3) & ~3, {}
    for n, t in named:
        table[n] = [t.dtype, list(t.shape), off, len(t.data), t.M, t.S, t.alpha]
        off = (off + len(t.data) + 3) & ~3
    meta["tensors"] = table
    mb = json.dumps(meta).encode()
    out = bytearray(off + 4)
    out[0:16] = b"RKU1" + struct.pack("<HHII", 1, 0, len(out), meta_len)
    out[16:16 + len(mb)] = mb
    out[16 + len(mb):16 + meta_len] = b" " * (meta_len - len(mb))
    for n, t in named:
        out[table[n][2]:table[n][2] + len(t.data)] = bytes(t.data)
    struct.pack_into("<I", out, len(out) - 4, zlib.crc32(bytes(out[:-4])) & 0xFFFFFFFF)
    return bytes(out)


def test_version1_files_are_refused_with_the_way_out_and_repack_keeps_the_model(blob, tmp_path):
    old = _as_version1(blob)
    with pytest.raises(rku.RkuError, match=r"unknown version 1 \(this reader knows 2..3: `reku repack` converts"):
        rku.load(old)
    new = rkufile.repack(old)
    assert rkufile.repack(new) == new
    a, b = rku.load(new), rku.load(blob)
    assert rkufile.schema_vocab(a) == rkufile.schema_vocab(b) and a.meta == b.meta
    assert {n: bytes(t.data) for n, t in a.tensors.items()} == {n: bytes(t.data) for n, t in b.tensors.items()}
    ea, eb = infer.Engine(a), infer.Engine(b)
    for q in ("turn on the kitchen light", "dim the bedroom to 30%", "set a timer for ten minutes"):
        assert ea.run(q) == eb.run(q)
    # the command: in place, and one line for a file it cannot convert
    import subprocess
    import sys
    f = tmp_path / "old.rku"
    f.write_bytes(old)
    r = subprocess.run([sys.executable, "-m", "reku.cli", "repack", str(f)], capture_output=True, text=True)
    assert r.returncode == 0 and "format version 2" in r.stdout, r.stderr
    assert rku.load(f.read_bytes()).sha256 == a.sha256
    f.write_bytes(old[:-9] + b"xxxxxxxxx")
    r = subprocess.run([sys.executable, "-m", "reku.cli", "repack", str(f)], capture_output=True, text=True)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "damaged" in r.stderr


def test_grammar_table_keeps_open_integer_bounds_as_the_range_the_grammar_enforces():
    schema = {"max_calls": 1, "fns": [["f", [["n", "i", 1, None, None], ["m", "i", 0, -5, None],
                                            ["s", "s", 1, 12, None], ["b", "b", 0, None, None]]]]}
    vocab = list(infer.FIXED) + ["f:f"]
    m = rku.load(rkufile.write(None, {"model_id": "x", "arch": {}, "tokenizer": {"alphabet": "a"},
                                      "vocab": vocab, "schema": schema}, []))
    back, v = rkufile.schema_vocab(m)
    assert v == vocab and back["max_calls"] == 1
    assert back["fns"][0][1] == [["n", "i", 1, 0, 999999], ["m", "i", 0, -5, 999999], ["s", "s", 1, 12, None],
                                 ["b", "b", 0, None, None]]
    with pytest.raises(ValueError, match="unknown kind"):
        rkufile.grammar_table({"fns": [["f", [["x", "q", 1, None, None]]]]}, vocab)
