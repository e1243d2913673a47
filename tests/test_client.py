"""The host client against the virtual board (real pty, the unchanged firmware on CPython and on
MicroPython): upload, interrupted upload, retries answered from the board's cache, HMAC, feedback,
reset; and the client's own rules against scripted links (stale replies, versions, damaged frames)."""
import hashlib
import json
import random
import struct
import time

import pytest
import serial

from reku.client import (AuthError, BoardError, BoardTimeout, Client, ClientError, SerialLink,
                         UploadError, VersionMismatch)
from reku.sim import VirtualBoard, populate
from rkfw import auth, proto

from proto_support import HOME_MODEL, upload_frames, variant_model

OLD_SHA = hashlib.sha256(HOME_MODEL.read_bytes()).hexdigest()
NEW = variant_model("home-variant-2")
NEW_SHA = hashlib.sha256(NEW).hexdigest()
KEY = bytes(range(100, 132))


def board_dir(tmp_path, key=None, config=None, model="home", board="pico"):
    d = tmp_path / "board"
    populate(d, board, model)
    if key is not None:
        (d / "reku_key.bin").write_bytes(key)
    if config is not None:
        (d / "reku.json").write_text(json.dumps(config))
    return d


def test_upload_with_progress_then_info_shows_the_new_model(runtime, tmp_path):
    d = board_dir(tmp_path)
    with VirtualBoard(runtime=runtime, state_dir=str(d)) as vb, Client.serial(vb.port, timeout=20) as c:
        assert c.info()["model"]["sha256"] == OLD_SHA
        seen = []
        r = c.upload_model(NEW, progress=lambda done, total: seen.append((done, total)))
        assert r["sha256"] == NEW_SHA and r["bytes"] == len(NEW)
        assert seen[0] == (0, len(NEW)) and seen[-1] == (len(NEW), len(NEW))
        assert [a for a, _ in seen] == sorted(a for a, _ in seen)
        info = c.info()
        assert info["model"]["sha256"] == NEW_SHA and info["model"]["id"] == "home-variant-2"
        assert c.call("turn on the kitchen light") is not None
        assert c.stats()["uploads"] == 1
        # RESET: the board restarts on its files and boots the uploaded model
        c.reset()
        assert c.info()["model"]["sha256"] == NEW_SHA
        assert c.stats()["uploads"] == 0
    assert (d / "model.rku").read_bytes() == NEW


def test_upload_interrupted_on_the_wire_leaves_the_old_model(runtime, tmp_path):
    """The wire is cut at random bytes of an upload (the host vanished); the board keeps answering with
    its old model, also after a restart; a complete upload then replaces it."""
    d = board_dir(tmp_path)
    wire = b"".join(upload_frames(NEW, seq0=1000))
    rng = random.Random(11)
    cuts = sorted(rng.randrange(1, len(wire) - 1) for _ in range(3))
    with VirtualBoard(runtime=runtime, state_dir=str(d)) as vb:
        for cut in cuts:
            with serial.Serial(vb.port, timeout=5) as s:
                s.write(wire[:cut])
                s.flush()
            with Client.serial(vb.port, timeout=20) as c:
                info = c.info()
                assert info["model"]["sha256"] == OLD_SHA, cut
                assert info["upload"] is None or info["upload"]["received"] <= cut
                c.call("lock the front door")
    # the board restarts (power cut mid-upload): old model, no partial file kept
    with VirtualBoard(runtime=runtime, state_dir=str(d)) as vb, Client.serial(vb.port, timeout=20) as c:
        info = c.info()
        assert info["model"]["sha256"] == OLD_SHA and info["upload"] is None
        assert c.upload_model(NEW)["sha256"] == NEW_SHA
        assert c.info()["model"]["sha256"] == NEW_SHA


class DropFirstReply:
    """A link that loses the board's first reply to every request (as a noisy wire would)."""

    def __init__(self, link):
        self.link = link
        self.name = link.name
        self.prefix = link.prefix
        self.dropped = 0
        self.fresh = False
        self.last = None

    def write(self, data):
        self.fresh = data != self.last          # a new request, not a resend
        self.last = data
        self.link.write(data)

    def read(self, timeout):
        data = self.link.read(timeout)
        if self.fresh and data:
            # swallow everything up to the end of the reply frame
            end = time.monotonic() + 2
            while not data.endswith(b"\x00") and time.monotonic() < end:
                data += self.link.read(0.2)
            self.dropped += 1
            self.fresh = False
            return b""
        return data

    def close(self):
        self.link.close()


def test_lost_replies_are_resent_by_the_board_from_its_cache(runtime, tmp_path):
    with VirtualBoard(runtime=runtime, state_dir=str(board_dir(tmp_path))) as vb:
        link = DropFirstReply(SerialLink(vb.port))
        # the timeout is how long the client waits for a reply before resending: longer than a query takes on
        # the WebAssembly build of a loaded machine (about 5 s seen), or the resend races the first reply
        c = Client(link, timeout=8, retries=2, handshake=False)
        fb = c.feedback("turn on the light", "success", calls=[{"name": "set_light", "arguments": {}}])
        assert fb["bytes"] > 0
        calls = c.call("turn on the kitchen light")
        assert link.dropped == 2
        c.close()
        with Client.serial(vb.port, timeout=20) as c2:
            st = c2.stats()
            assert st["feedback"] == 1 and st["queries"] == 1, st     # each ran once
            assert st["duplicates"] == 2
            assert c2.call("turn on the kitchen light") == calls


def test_hmac_on_the_board(runtime, tmp_path):
    d = board_dir(tmp_path, key=KEY)
    with VirtualBoard(runtime=runtime, state_dir=str(d)) as vb:
        with Client.serial(vb.port, timeout=20) as c:                     # no key
            assert c.info()["auth"]["required"]
            assert c.call("turn on the kitchen light") is not None       # queries stay open
            with pytest.raises(AuthError) as e:
                c.upload_model(NEW)
            assert "requires authentication for this request and no key was given (--key FILE" in str(e.value)
            with pytest.raises(AuthError):
                c.reset()
        with Client.serial(vb.port, timeout=20, key=b"x" * 32) as c:      # wrong key
            with pytest.raises(AuthError):
                c.config(baud=230400)
        with Client.serial(vb.port, timeout=20, key=KEY) as c:
            assert c.upload_model(NEW)["sha256"] == NEW_SHA
            assert c.config(baud=230400)["baud"] == 230400
            nonce = c.board["auth"]["nonce"]
            assert c.info()["auth"]["counter"] == 3                      # BEGIN, COMMIT, CONFIG
        # a captured signed frame replayed under a new seq is refused
        signed = auth.add_auth(KEY, bytes.fromhex(nonce), proto.CONFIG, 3, b'{"baud": 230400}')
        with Client.serial(vb.port, timeout=20) as c:
            with pytest.raises(AuthError) as e:
                c.request(proto.CONFIG, signed)
            assert "replayed" in str(e.value)
            with Client.serial(vb.port, timeout=20, key=KEY) as k:
                k.reset()
                assert k.info()["auth"]["nonce"] != nonce                 # new boot, new nonce
                assert k.config()["baud"] == 230400                       # signs with the new one


def test_a_board_with_auth_all_takes_a_new_model(runtime, tmp_path):
    """With "auth": "all" every chunk carries the 36-byte trailer: the client sizes chunks to leave it room (the
    board says so in INFO), so a locked-down board still uploads, commits and answers."""
    d = board_dir(tmp_path, key=KEY, config={"auth": "all"})
    with VirtualBoard(runtime=runtime, state_dir=str(d)) as vb, Client.serial(vb.port, timeout=20, key=KEY) as c:
        info = c.info()
        assert proto.MODEL_CHUNK in info["auth"]["types"] and proto.QUERY in info["auth"]["types"]
        assert info["limits"]["max_chunk"] == c.max_chunk() == proto.MAX_CHUNK - auth.AUTH_TRAILER
        sizes = []
        assert c.upload_model(NEW, progress=lambda done, total: sizes.append(done))["sha256"] == NEW_SHA
        assert sizes[1] == c.max_chunk() and sizes[-1] == len(NEW)
        assert c.info()["model"]["sha256"] == NEW_SHA and c.info()["upload"] is None
        assert c.call("turn on the kitchen light")


def test_feedback_and_config_round_trip(runtime, tmp_path):
    d = board_dir(tmp_path)
    with VirtualBoard(runtime=runtime, state_dir=str(d)) as vb, Client.serial(vb.port, timeout=20) as c:
        calls = c.call("dim the kitchen to 30%")
        c.feedback("dim the kitchen to 30%", "success", calls=calls)
        c.feedback("dim the kitchen to 30%", "corrected", calls=calls,
                   corrected=[{"name": "set_brightness", "arguments": {"room": "kitchen", "level": 30}}])
        with pytest.raises(BoardError) as e:
            c.request(proto.FEEDBACK, b'{"outcome": "maybe"}')
        assert e.value.code == proto.E_REQUEST
        assert c.config() == {}
        assert c.config(feedback_max=4096) == {"feedback_max": 4096}
        assert c.config(feedback_max=None) == {}
        c.reset()                                         # the sim writes the board's files back
        c.info()
    lines = (d / "feedback.jsonl").read_text().splitlines()
    assert [json.loads(x)["outcome"] for x in lines] == ["success", "corrected"]
    assert json.loads(lines[1])["corrected"][0]["arguments"]["level"] == 30


# ---- the client's own rules, against scripted links ----------------------------------------------------

class ScriptedLink:
    """Answers each write with what `respond(frame_bytes)` returns."""
    name = "scripted"
    prefix = b"\x00"

    def __init__(self, respond):
        self.respond = respond
        self.pending = b""
        self.writes = []

    def write(self, data):
        self.writes.append(data)
        self.pending += self.respond(data)

    def read(self, timeout):
        data, self.pending = self.pending, b""
        if not data:
            time.sleep(min(timeout, 0.01))
        return data

    def close(self):
        pass


def _req(data):
    (ev,) = [e for e in proto.Decoder().feed(data)]
    return ev


def test_stale_replies_and_damaged_frames_are_skipped():
    def respond(data):
        t, seq, p = _req(data)
        stale = proto.encode(t | proto.REPLY, (seq - 1) & 0xFFFF, b"old")
        damaged = bytearray(proto.encode(t | proto.REPLY, seq, b"bad"))
        damaged[3] ^= 0x40
        return stale + bytes(damaged) + b"\x17\x00" + proto.encode(t | proto.REPLY, seq, p)
    c = Client(ScriptedLink(respond), timeout=1, handshake=False)
    assert c.request(proto.PING, b"hello") == b"hello"


def test_silence_is_retried_with_the_same_seq_then_times_out():
    link = ScriptedLink(lambda d: b"")
    c = Client(link, timeout=0.05, retries=2, handshake=False)
    with pytest.raises(BoardTimeout) as e:
        c.ping()
    assert "3 tries" in str(e.value)
    assert len(link.writes) == 3 and len(set(link.writes)) == 1


def test_a_board_in_another_frame_version_is_reported_at_once():
    def respond(data):
        t, seq, p = _req(data)
        body = struct.pack("<BBHH", 2, t | proto.REPLY, seq, 0)
        return proto.cobs_encode(body + struct.pack("<I", __import__("binascii").crc32(body))) + b"\x00"
    link = ScriptedLink(respond)
    c = Client(link, timeout=1, retries=5)
    with pytest.raises(VersionMismatch):
        c.info()
    assert len(link.writes) == 1


def test_a_board_that_needs_a_newer_host_is_reported():
    def respond(data):
        t, seq, p = _req(data)
        return proto.encode(t | proto.REPLY, seq, json.dumps({"proto": 3, "proto_min": 2}).encode())
    with pytest.raises(VersionMismatch) as e:
        Client(ScriptedLink(respond), timeout=1).call("lights on")
    assert "update reku" in str(e.value)


def test_board_errors_are_typed():
    def respond(data):
        t, seq, p = _req(data)
        code = proto.E_AUTH if t == proto.RESET else proto.E_NO_MODEL
        return proto.encode(proto.ERROR, seq, proto.error_payload(code, "nope"))
    c = Client(ScriptedLink(respond), timeout=1, handshake=False)
    with pytest.raises(BoardError) as e:
        c.call("x")
    assert e.value.code == proto.E_NO_MODEL and not isinstance(e.value, AuthError)
    with pytest.raises(AuthError):
        c.reset()


def test_upload_gives_up_when_the_board_does_not_move_on():
    def respond(data):
        t, seq, p = _req(data)
        if t == proto.HELLO:
            return proto.encode(t | proto.REPLY, seq, b'{"proto": 1, "auth": {"required": false}}')
        return proto.encode(t | proto.REPLY, seq, struct.pack("<I", 0))
    with pytest.raises(UploadError):
        Client(ScriptedLink(respond), timeout=1).upload_model(NEW)


def test_feedback_arguments_are_checked_before_sending():
    c = Client(ScriptedLink(lambda d: b""), timeout=0.01, retries=0, handshake=False)
    with pytest.raises(ClientError):
        c.feedback("x", "great")
    with pytest.raises(ClientError):
        c.feedback("x", "corrected")
    assert c.link.writes == []


def test_missing_serial_port_is_a_link_error():
    from reku.client import LinkError
    with pytest.raises(LinkError) as e:
        Client.serial("/dev/does-not-exist-reku")
    assert "/dev/does-not-exist-reku" in str(e.value)
