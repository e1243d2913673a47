"""Fuzzing the firmware's frame decoder and request handler with mutated frames: no crash, no hang, and
a reply for every frame: an ERROR with the decoder's code for every invalid one, the request's own reply
or an ERROR (never E_INTERNAL, which would mean a handler failed on its input) for every valid one.

`make test` runs REKU_FUZZ_N frames (default 5,000) on CPython and 1,500 on MicroPython (whose replies must
have the same types, seqs and error codes); `make fuzz` runs 100,000 on CPython
(REKU_FUZZ_N=100000 pytest tests/test_fuzz.py -k cpython)."""
import binascii
import json
import os
import random
import signal
import struct


from rkfw import app as A
from rkfw import proto

from conftest import require_runtime
from proto_support import CpApp, make_workdir, run_mp

N = int(os.environ.get("REKU_FUZZ_N", "5000"))
N_MP = int(os.environ.get("REKU_FUZZ_N_MP", "1500"))

SEEDS = [
    (proto.HELLO, b""), (proto.PING, b"ping"), (proto.PING, bytes(range(256)) * 4),
    (proto.QUERY, b"dim the kitchen to 30%"), (proto.QUERY, b"x" * 300), (proto.STATS, b""),
    (proto.SCHEMA, struct.pack("<I", 0)),
    (proto.MODEL_BEGIN, struct.pack("<I", 3000) + bytes(range(32))),
    (proto.MODEL_CHUNK, struct.pack("<I", 0) + b"RKU1" + bytes(200)),
    (proto.MODEL_COMMIT, b""), (proto.MODEL_ABORT, b""),
    (proto.FEEDBACK, json.dumps({"text": "lights on", "outcome": "corrected", "calls": [],
                                 "corrected": [{"name": "set_light", "arguments": {"room": "hall"}}]}).encode()),
    (proto.RESET, b""), (proto.CONFIG, b'{"baud": 230400, "feedback_max": 4096}'), (proto.CONFIG, b""),
    (proto.FEEDBACK_READ, struct.pack("<I", 0)), (proto.FEEDBACK_READ, struct.pack("<I", 40)),
    (proto.FEEDBACK_CLEAR, struct.pack("<II", 0, 0)), (proto.FEEDBACK_CLEAR, struct.pack("<II", 60, 0x1234)),
    (proto.FEEDBACK, json.dumps({"text": "make it dark in the bathroom", "outcome": "corrected", "calls": [],
                                 "corrected": [{"name": "set_light", "arguments": {"room": "bathroom",
                                                                                   "state": "off"}}]}).encode()),
    (proto.MEMORY_LIST, struct.pack("<I", 0)), (proto.MEMORY_LIST, struct.pack("<I", 30)),
    (proto.MEMORY_FORGET, struct.pack("<I", 0)), (proto.MEMORY_FORGET, struct.pack("<I", 0xFFFFFFFF)),
    (0x7E, b"unknown"), (proto.ERROR, b"\x01from the host"),
]


def raw_frame(ver, ftype, seq, n, payload):
    """A frame with any header fields and a valid checksum."""
    body = struct.pack("<BBHH", ver & 0xFF, ftype & 0xFF, seq & 0xFFFF, n & 0xFFFF) + payload
    return proto.cobs_encode(body + struct.pack("<I", binascii.crc32(body) & 0xFFFFFFFF)) + b"\x00"


def mutate_payload(rng, p):
    p = bytearray(p)
    for _ in range(rng.randrange(1, 4)):
        k = rng.randrange(5)
        if k == 0 and p:
            p[rng.randrange(len(p))] = rng.randrange(256)
        elif k == 1:
            p[rng.randrange(len(p) + 1):0] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        elif k == 2 and p:
            del p[rng.randrange(len(p)):][:rng.randrange(1, 8)]
        elif k == 3:
            p = p[:rng.randrange(len(p) + 1)]
        else:
            p = bytearray(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
    return bytes(p[:proto.MAX_PAYLOAD])


def fuzz_chunks(seed, n):
    """n wire chunks, each ending with 0x00."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ftype, payload = rng.choice(SEEDS)
        seq = rng.randrange(0x10000) if rng.random() < 0.8 else 7       # some seq collisions
        k = rng.randrange(10)
        if k < 4:       # valid checksum, mutated content: reaches the handlers
            p = mutate_payload(rng, payload) if rng.random() < 0.8 else payload
            ver, t, n_hdr = 1, ftype, len(p)
            r = rng.random()
            if r < 0.05:
                ver = rng.randrange(256)
            elif r < 0.10:
                n_hdr = rng.randrange(0x10000)
            elif r < 0.2:
                t = rng.randrange(256)
            out.append(raw_frame(ver, t, seq, n_hdr, p))
            continue
        wire = bytearray(proto.encode(ftype, seq, payload)[:-1])
        if k < 7:       # bit flips
            for _ in range(rng.randrange(1, 4)):
                j = rng.randrange(len(wire))
                wire[j] ^= 1 << rng.randrange(8)
        elif k == 7:    # cut
            wire = wire[:rng.randrange(len(wire))]
        elif k == 8:    # random bytes, sometimes longer than any frame
            m = rng.choice((rng.randrange(1, 40), proto.MAX_WIRE + rng.randrange(1, 200)))
            wire = bytearray(rng.randrange(1, 256) for _ in range(m))
        else:           # bytes spliced in or out
            j = rng.randrange(len(wire))
            if rng.random() < 0.5:
                wire[j:j] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5)))
            else:
                del wire[j:j + rng.randrange(1, 5)]
        out.append(bytes(wire) + b"\x00")
    return out


def check_replies(events, replies):
    """The contract, per decoder event."""
    for ev, r in zip(events, replies):
        assert r is not None, ev
        t, seq, p = proto.decode(bytes(r[:-1]))
        if isinstance(ev, proto.ProtocolError):
            assert t == proto.ERROR and p[0] == ev.code and seq == ev.seq, (ev, t, p)
            continue
        ftype, eseq, _payload = ev
        assert seq == eseq
        if ftype not in A.App.HANDLERS and ftype not in A.ADMIN:
            assert t == proto.ERROR and p[0] == proto.E_TYPE
        elif t == proto.ERROR:
            assert p[0] != proto.E_INTERNAL, (ev, p)
        else:
            assert t == ftype | proto.REPLY


class Alarm:
    """A hang turns into a failure (the watchdog of a test, not a timing assertion)."""

    def __init__(self, seconds):
        self.seconds = seconds

    def __enter__(self):
        def fire(*a):
            raise AssertionError("fuzz run hung (no progress in %d s)" % self.seconds)
        self.old = signal.signal(signal.SIGALRM, fire)
        signal.alarm(self.seconds)

    def __exit__(self, *exc):
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.old)


def run_cpython(board, chunks):
    shapes = []
    for chunk in chunks:
        events = board._in_dir(board.decoder.feed, chunk)
        replies = [board._in_dir(board.app.handle, ev) for ev in events]
        assert board.decoder.n == 0 and not board.decoder.overflow
        check_replies(events, replies)
        shapes.append([shape(r) for r in replies])
    return shapes


def shape(r):
    t, seq, p = proto.decode(bytes(r[:-1]))
    return (t, seq, p[0] if t == proto.ERROR else None)


def test_fuzz_handler_cpython(tmp_path):
    chunks = fuzz_chunks(1, N)
    board = CpApp(tmp_path, model=None)
    with Alarm(max(600, N // 50)):
        run_cpython(board, chunks)
    st = board.app.stats
    assert st["frames"] >= N and st["errors"] > N // 2
    assert not (tmp_path / A.MODEL_PART).exists() or board.app.upload is not None


def test_fuzz_queries_with_a_model(tmp_path):
    """Valid frames with random text reach the inference engine: it answers or refuses, never fails."""
    rng = random.Random(3)
    board = CpApp(tmp_path)
    chunks = []
    for i in range(8):
        text = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(0, 80)))
        if i % 2:
            text = "".join(rng.choice("abcdefghij klmnopqrstuvwxyz%0123456789") for _ in range(60)).encode()
        chunks.append(proto.encode(proto.QUERY, i, text))
    with Alarm(600):
        run_cpython(board, chunks)
    assert board.app.stats["queries"] >= 4


def test_fuzz_handler_micropython_matches_cpython(tmp_path):
    require_runtime("micropython")
    chunks = fuzz_chunks(2, N_MP)
    cp = run_cpython(CpApp(tmp_path / "cp", model=None), chunks)
    out = run_mp(make_workdir(tmp_path / "mp", model=None), chunks)
    lenient = 0
    for i, (chunk, o) in enumerate(zip(chunks, out)):
        events = proto.Decoder().feed(chunk)
        check_replies(events, o["replies"])
        got = [shape(r) for r in o["replies"]]
        if got != cp[i]:
            # MicroPython's json.loads is lenient (control characters in strings, missing ':' or extra
            # ','): a JSON payload CPython refuses may be taken there. Nothing else may differ.
            (ev,) = events
            assert ev[0] in (proto.FEEDBACK, proto.CONFIG), (i, ev, got, cp[i])
            assert cp[i] == [(proto.ERROR, ev[1], proto.E_REQUEST)] and got == [(ev[0] | proto.REPLY, ev[1], None)]
            lenient += 1
    assert lenient < len(chunks) // 50
