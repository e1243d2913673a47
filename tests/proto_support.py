"""Shared pieces of the protocol tests: the firmware's App on CPython (in a scratch directory) and on
MicroPython (tests/helpers/mp_app.mjs), a second valid model, frame helpers."""
import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

from reku import paths, sim
from rkfw import auth, proto

HOME_MODEL = paths.SKILLS / "home" / "model.rku"
MP_APP = Path(__file__).parent / "helpers" / "mp_app.mjs"


def variant_model(model_id, src=HOME_MODEL):
    """The bundled model with another model_id: a valid .rku with a different SHA-256."""
    data = bytearray(Path(src).read_bytes())
    meta_len = struct.unpack_from("<I", data, 12)[0]
    meta = json.loads(bytes(data[16:16 + meta_len]))
    meta["model_id"] = model_id
    m = json.dumps(meta, separators=(",", ":")).encode()
    assert len(m) <= meta_len, "new model_id does not fit the metadata area"
    data[16:16 + meta_len] = m + b" " * (meta_len - len(m))
    struct.pack_into("<I", data, len(data) - 4, zlib.crc32(bytes(data[:-4])) & 0xFFFFFFFF)
    return bytes(data)


def frame(ftype, seq, payload=b""):
    return proto.encode(ftype, seq, payload)


def decode(reply):
    """A reply frame (with its delimiter) -> (type, seq, payload)."""
    assert reply is not None and reply.endswith(b"\x00")
    return proto.decode(reply[:-1])


def error_code(reply):
    t, _s, p = decode(reply)
    assert t == proto.ERROR, "expected an ERROR frame, got type 0x%02x" % t
    return p[0]


def upload_frames(data, seq0=100, chunk=proto.MAX_CHUNK, key=None, nonce=None, counter=0):
    """The request frames of one complete upload of `data`: BEGIN, CHUNK..., COMMIT."""
    import hashlib
    begin = struct.pack("<I", len(data)) + hashlib.sha256(data).digest()
    commit = b""
    if key is not None:
        begin = auth.add_auth(key, nonce, proto.MODEL_BEGIN, counter + 1, begin)
        commit = auth.add_auth(key, nonce, proto.MODEL_COMMIT, counter + 2, b"")
    out = [frame(proto.MODEL_BEGIN, seq0, begin)]
    seq = seq0
    for off in range(0, len(data), chunk):
        seq += 1
        out.append(frame(proto.MODEL_CHUNK, seq, struct.pack("<I", off) + data[off:off + chunk]))
    out.append(frame(proto.MODEL_COMMIT, seq + 1, commit))
    return out


class CpApp:
    """The firmware's App on CPython, working in its own directory (the board's filesystem)."""

    def __init__(self, workdir, model=HOME_MODEL, key=None, config=None, profile="pico"):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        if model is not None:
            (self.dir / "model.rku").write_bytes(Path(model).read_bytes() if not isinstance(model, bytes) else model)
        if key is not None:
            (self.dir / "reku_key.bin").write_bytes(key)
        if config is not None:
            (self.dir / "reku.json").write_text(json.dumps(config))
        shutil.copyfile(paths.BOARDS / (profile + ".json"), self.dir / "board.json")
        self.boot()

    def _in_dir(self, fn, *a):
        old = os.getcwd()
        os.chdir(self.dir)
        try:
            return fn(*a)
        finally:
            os.chdir(old)

    def boot(self):
        """A new App on the same files: what the board does after a reset or a power cut."""
        from rkfw import app as A

        def make():
            a = A.App(A._read_json("board.json"), A._read_json("reku.json"))
            a.load_model()
            return a
        self.app = self._in_dir(make)
        self.decoder = proto.Decoder()
        return self.app

    def feed(self, data):
        """Wire bytes in -> the reply frames (one per decoder event; None where there is none)."""
        def run():
            return [self.app.handle(ev) for ev in self.decoder.feed(data)]
        return self._in_dir(run)

    def ask(self, ftype, seq, payload=b""):
        """The reply to one request. The leading 0x00 ends any cut frame fed before, which gets its
        own reply first (an ERROR, or a real reply when only its delimiter was missing)."""
        rs = self.feed(b"\x00" + frame(ftype, seq, payload))
        assert rs and all(r is not None for r in rs), rs
        return rs[-1]

    def info(self):
        t, _s, p = decode(self.ask(proto.HELLO, 1))
        return json.loads(p)


def mp_available():
    return "micropython" in sim.available_runtimes()


def run_mp(workdir, steps, timeout=600):
    """Feed steps (bytes, or "#reboot"/"#nomodel"/"#ls") to the firmware's App on MicroPython.
    Returns one dict per step ({"replies": [bytes or None]}, or {"files": ...})."""
    workdir = Path(workdir)
    inp = workdir.parent / (workdir.name + ".steps")
    inp.write_text("\n".join(s if isinstance(s, str) else s.hex() for s in steps) + "\n")
    r = subprocess.run(["node", str(MP_APP), str(sim.micropython_mjs()), str(paths.FIRMWARE), str(workdir), str(inp)],
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    out = []
    for line in r.stdout.splitlines():
        if not line.startswith("{"):
            continue
        d = json.loads(line)
        if "replies" in d:
            d["replies"] = [bytes.fromhex(x) if x else None for x in d["replies"]]
        out.append(d)
    assert len(out) == len(steps), (len(out), len(steps), r.stdout[-2000:], r.stderr[-2000:])
    return out


def make_workdir(path, model=HOME_MODEL, key=None, config=None, profile="pico"):
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if model is not None:
        (path / "model.rku").write_bytes(Path(model).read_bytes() if not isinstance(model, bytes) else model)
    if key is not None:
        (path / "reku_key.bin").write_bytes(key)
    if config is not None:
        (path / "reku.json").write_text(json.dumps(config))
    shutil.copyfile(paths.BOARDS / (profile + ".json"), path / "board.json")
    return path
