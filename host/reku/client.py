"""The host client: talk to a reku board over the framed protocol (docs/protocol.md).

    from reku.client import Client
    with Client.serial("/dev/ttyACM0") as board:          # or Client.i2c(1, 0x42) on a Raspberry Pi
        print(board.call("dim the kitchen to 30%"))
"""

import binascii
import hashlib
import json
import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from rkfw import auth, proto

from .errors import RekuError


# What the host prints for each error code of proto (the board sends its own message with the code).
ERROR_NAMES = {
    proto.E_FRAME: "bad frame", proto.E_CRC: "bad crc", proto.E_TOO_LONG: "frame too long",
    proto.E_VERSION: "unsupported version", proto.E_LENGTH: "bad length", proto.E_TYPE: "unknown type",
    proto.E_REQUEST: "bad request", proto.E_BUSY: "busy", proto.E_NO_MODEL: "no model", proto.E_MODEL: "model error",
    proto.E_AUTH: "not authorised", proto.E_INTERNAL: "internal error",
}


class ClientError(RekuError):
    """Base of the client's typed exceptions."""


class BoardTimeout(ClientError):
    """No valid reply within the timeout after all retries."""


class LinkError(ClientError):
    """The transport itself failed (port missing, unplugged)."""


class VersionMismatch(ClientError):
    """The board speaks a frame version this host does not (or the other way round)."""


class BoardError(ClientError):
    """The board answered with an ERROR frame."""

    def __init__(self, code, message):
        ClientError.__init__(self, "board error %d (%s): %s" % (code, ERROR_NAMES.get(code, "?"), message))
        self.code = code
        self.board_message = message


class AuthError(BoardError):
    """The board refused a state-changing command: no key, wrong key, or a replayed counter."""


class UploadError(ClientError):
    """A model upload could not be completed (the board keeps its old model)."""


def board_error(code, message):
    return (AuthError if code == proto.E_AUTH else BoardError)(code, message)


@dataclass
class Call:
    name: str
    arguments: dict = field(default_factory=dict)

    def to_dict(self):
        return {"name": self.name, "arguments": self.arguments}


@dataclass
class QueryResult:
    calls: list
    us: int
    tokens_in: int
    tokens_out: int
    reason: str = None          # with no call: "not understood", "out of range" or "unknown value"
    function: str = None        # the refused value's function and parameter (out of range, unknown value)
    param: str = None


class SerialLink:
    prefix = b"\x00"            # a leading delimiter ends whatever partial garbage the board holds

    def __init__(self, port, baud=115200):
        import serial
        try:
            self.ser = serial.Serial(port, baud, timeout=0)
        except (serial.SerialException, OSError) as e:
            raise LinkError("cannot open serial port %s: %s" % (port, e)) from None
        self.name = port
        self.bytes_out = 0
        self.bytes_in = 0

    def write(self, data):
        self.bytes_out += len(data)
        try:
            self.ser.write(data)
            self.ser.flush()
        except Exception as e:
            raise LinkError("write to %s failed: %s" % (self.name, e)) from None

    def read(self, timeout):
        """Whatever arrives within `timeout` seconds (returns as soon as something does)."""
        try:
            self.ser.timeout = timeout
            first = self.ser.read(1)
            if not first:
                return b""
            data = first + self.ser.read(self.ser.in_waiting)
        except Exception as e:
            raise LinkError("read from %s failed: %s" % (self.name, e)) from None
        self.bytes_in += len(data)
        return data

    def close(self):
        self.ser.close()


# Types a board with a key wants signed unless its INFO says otherwise.
AUTH_TYPES = (proto.MODEL_BEGIN, proto.MODEL_COMMIT, proto.MODEL_ABORT, proto.RESET, proto.CONFIG,
              proto.FEEDBACK_CLEAR)


class Client:
    """Requests and replies over a link (SerialLink, reku.i2c.I2CLink, or anything with write(bytes),
    read(timeout) -> bytes and close()).

    timeout: seconds to wait for each reply; retries: how often a request is sent again (same seq, so
    the board answers it from its cache instead of running it twice); key: the HMAC key (bytes) for
    state-changing commands; handshake: send HELLO before the first other request (the versioning rule)."""

    def __init__(self, link, timeout=5.0, retries=2, key=None, handshake=True):
        self.link = link
        self.timeout = timeout
        self.retries = retries
        self.key = key
        self.handshake = handshake
        self.decoder = proto.Decoder()
        self.seq = struct.unpack("<H", os.urandom(2))[0]
        self.board = None           # the INFO of the last HELLO
        self._counter = 0

    @classmethod
    def serial(cls, port, baud=115200, **kw):
        return cls(SerialLink(port, baud), **kw)

    @classmethod
    def i2c(cls, bus, address=0x42, ready_pin=None, **kw):
        """bus: N (/dev/i2c-N), a device path, "sim:PTY" (the virtual board's bus) or a bus object.
        ready_pin: None (poll STATUS), a GPIO number (sysfs; on the virtual board its pin), or a
        callable returning the pin's level."""
        from . import i2c
        b = i2c.open_bus(bus, address) if isinstance(bus, (int, str)) else bus
        ready = ready_pin
        if isinstance(ready_pin, int):
            if isinstance(b, i2c.SimBus):
                ready = lambda n=ready_pin: b.pin(n)        # noqa: E731
            else:
                ready = i2c.SysfsPin(ready_pin)
        try:
            link = i2c.I2CLink(b, ready)
        except Exception:
            b.close()
            raise
        return cls(link, **kw)

    # ---- framing ---------------------------------------------------------------------------------------
    def request(self, ftype, payload=b"", timeout=None):
        """Send one request; return the reply payload. Signs it when the board wants that (and a key is
        set). Resends (same seq) after silence or a damaged frame, at most `retries` times; an ERROR
        reply raises BoardError (AuthError for E_AUTH)."""
        if self.handshake and self.board is None and ftype not in (proto.HELLO, proto.PING):
            self.hello()
        if self.key is not None and ftype in self._auth_types():
            try:
                return self._request(ftype, self._sign(ftype, payload), timeout)
            except AuthError:
                self.hello()                # stale counter or a new boot (new nonce): once more
                return self._request(ftype, self._sign(ftype, payload), timeout)
        try:
            return self._request(ftype, payload, timeout)
        except AuthError as e:
            if self.key is None and ("HMAC" in e.board_message or "trailer" in e.board_message):
                # the board's words ("bad HMAC tag (wrong key ...)") assume a key was given: say what is missing
                raise AuthError(e.code, "the board requires authentication for this request and no key was given "
                                "(--key FILE: the key `reku deploy --key` put on the board)") from None
            raise

    def _auth_types(self):
        if self.board is None:
            self.hello()
        state = self.board.get("auth") or {}
        if not state.get("required"):
            return ()
        return state.get("types", AUTH_TYPES)

    def _sign(self, ftype, payload):
        state = self.board["auth"]
        self._counter = max(self._counter, state.get("counter", 0)) + 1
        return auth.add_auth(self.key, binascii.unhexlify(state["nonce"]), ftype, self._counter, payload)

    def _request(self, ftype, payload, timeout):
        if len(payload) > proto.MAX_PAYLOAD:
            raise ClientError("payload of %d bytes exceeds one frame (%d)" % (len(payload), proto.MAX_PAYLOAD))
        timeout = self.timeout if timeout is None else timeout
        self.seq = (self.seq + 1) & 0xFFFF
        frame = getattr(self.link, "prefix", b"\x00") + proto.encode(ftype, self.seq, payload)
        problem = "silence"
        for _attempt in range(self.retries + 1):
            self.link.write(frame)
            reply = self._await(ftype, time.monotonic() + timeout)
            if isinstance(reply, str):
                problem = reply
                continue
            return reply
        raise BoardTimeout("no reply from %s after %d tries of %.1f s (last: %s)"
                           % (getattr(self.link, "name", "board"), self.retries + 1, timeout, problem))

    def _await(self, ftype, deadline):
        """The reply payload for the current seq, or a string saying why the request should be resent."""
        problem = "silence"
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return problem
            for ev in self.decoder.feed(self.link.read(left)):
                if isinstance(ev, proto.ProtocolError):
                    if ev.code == proto.E_VERSION:      # intact frame (its CRC held) in another version
                        raise VersionMismatch("the board answered in a frame version this host does not "
                                              "speak (%s): update the host's reku" % ev)
                    problem = "damaged reply: %s" % ev
                    continue
                rtype, rseq, rpayload = ev
                if rseq != self.seq:
                    continue                # a stale reply to an earlier request
                if rtype == proto.ERROR:
                    code, msg = proto.parse_error(rpayload)
                    if code in (proto.E_CRC, proto.E_FRAME, proto.E_TOO_LONG):
                        return "request damaged on the wire: %s" % msg
                    if code == proto.E_BUSY:
                        # This seq reached the board while it was inferring: a resend of a request it is
                        # still serving (its reply follows), or a request it dropped (resent at the deadline).
                        problem = "board busy: %s" % msg
                        continue
                    if code == proto.E_VERSION:
                        raise VersionMismatch("the board does not speak this host's frame version: %s" % msg)
                    raise board_error(code, msg)
                if rtype != ftype | proto.REPLY:
                    raise ClientError("reply type 0x%02x to request 0x%02x" % (rtype, ftype))
                return rpayload

    # ---- messages --------------------------------------------------------------------------------------
    def hello(self):
        """HELLO: the board's INFO (also refreshes what the client knows: versions, auth nonce)."""
        info = json.loads(self._request(proto.HELLO, b"", None))
        if info.get("proto_min", 1) > proto.VERSION:
            raise VersionMismatch("the board needs frame version >= %d, this host speaks %d..%d: update reku"
                                  % (info["proto_min"], proto.MIN_VERSION, proto.VERSION))
        self.board = info
        return info

    def ping(self, data=b"ping"):
        """Round-trip time in seconds."""
        t0 = time.perf_counter()
        echo = self.request(proto.PING, data)
        if echo != data:
            raise ClientError("PING echo differs from what was sent")
        return time.perf_counter() - t0

    def info(self):
        """The board's INFO; a tool schema too large for one frame is fetched with SCHEMA."""
        info = self.hello()
        model = info.get("model")
        if model and model.get("schema_truncated"):
            model["schema"] = self.schema()
            del model["schema_truncated"]
        return info

    def _paged(self, ftype):
        """The bytes of a reply handed out in pieces (SCHEMA, FEEDBACK_READ, MEMORY_LIST): offset u32 requests, each
        answered with total u32 | bytes from that offset, until total bytes are in."""
        data = b""
        while True:
            r = self.request(ftype, struct.pack("<I", len(data)))
            total = struct.unpack_from("<I", r)[0]
            data += r[4:]
            if len(data) >= total or len(r) == 4:
                return data[:total]

    def schema(self):
        """The model's schema summary {function: [parameter, ...]}, read in pieces."""
        return json.loads(self._paged(proto.SCHEMA))

    def stats(self):
        return json.loads(self.request(proto.STATS))

    def query(self, text):
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as e:       # e.g. bytes a terminal could not decode (surrogate escapes)
            raise ClientError("the request cannot be sent as UTF-8 (%s at character %d)" % (e.reason, e.start))
        if self.handshake and self.board is None:
            self.hello()
        limit = (self.board or {}).get("limits", {}).get("max_query")
        if limit is not None and len(data) > limit:
            raise ClientError("request of %d bytes exceeds the board's limit of %d" % (len(data), limit))
        r = json.loads(self.request(proto.QUERY, data))
        calls = [Call(c["name"], c.get("arguments", {})) for c in r["calls"]]
        return QueryResult(calls, r.get("us", 0), r.get("tokens_in", 0), r.get("tokens_out", 0), r.get("reason"),
                           r.get("function"), r.get("param"))

    def call(self, text):
        """The calls the board makes of `text` ([] when the request matches no function)."""
        return self.query(text).calls

    def feedback(self, text, outcome, calls=None, corrected=None):
        """Tell the board how its answer to `text` went: outcome "success", "failure" or "corrected"
        (then `corrected` holds the right calls). Stored on the board (feedback.jsonl) for later learning."""
        if outcome not in ("success", "failure", "corrected"):
            raise ClientError("outcome must be success, failure or corrected, not %r" % outcome)
        if outcome == "corrected" and corrected is None:
            raise ClientError("outcome corrected needs the corrected calls")
        body = {"text": text, "outcome": outcome, "calls": [_call_dict(c) for c in calls or []]}
        if corrected is not None:
            body["corrected"] = [_call_dict(c) for c in corrected]
        data = json.dumps(body, separators=(",", ":")).encode()
        if len(data) > proto.MAX_PAYLOAD:
            raise ClientError("feedback of %d bytes exceeds one frame (%d)" % (len(data), proto.MAX_PAYLOAD))
        return json.loads(self.request(proto.FEEDBACK, data))

    def feedback_read(self):
        """The feedback the board has stored (JSON lines, bytes), read in pieces with FEEDBACK_READ."""
        return self._paged(proto.FEEDBACK_READ)

    def feedback_clear(self, data):
        """Remove from the board the feedback `data` that feedback_read() returned (lines stored since stay). The
        board checks the bytes' CRC-32 first: if its log changed meanwhile, BoardError and nothing is removed.
        Returns {"cleared": bytes removed, "bytes": bytes left}."""
        payload = struct.pack("<II", len(data), binascii.crc32(data) & 0xFFFFFFFF)
        return json.loads(self.request(proto.FEEDBACK_CLEAR, payload))

    def correct(self, text, calls, got=None):
        """Teach the board the right calls for `text` (FEEDBACK, outcome corrected): stored for `reku learn`, and
        learnt at once by the board's memory of corrections. `got`: what the board answered (asked when None).
        Returns the board's reply; its "learnt" says {"decisions", "entries", "cap", "evicted"} or {"error"}."""
        if got is None:
            got = self.query(text).calls
        return self.feedback(text, "corrected", calls=got, corrected=calls)

    def memory_list(self):
        """What the board learnt from corrections: {"model", "cap", "entries": [{"text", "calls", "decisions"}]},
        oldest use first (MEMORY_LIST, read in pieces)."""
        return json.loads(self._paged(proto.MEMORY_LIST))

    def memory_forget(self, index=None):
        """Forget entry `index` (as memory_list() numbers them), or everything (None). Returns {"entries": left}."""
        i = 0xFFFFFFFF if index is None else index
        if not 0 <= i <= 0xFFFFFFFF:
            raise ClientError("entry must be 0..4294967294, not %r" % index)
        return json.loads(self.request(proto.MEMORY_FORGET, struct.pack("<I", i)))

    def upload_model(self, path, progress=None, chunk=proto.MAX_CHUNK, commit_timeout=60.0):
        """Send a .rku file (path or bytes) in chunks, then commit it: the board verifies its SHA-256,
        loads it and only then replaces its model. progress(done, total) is called after every chunk.
        Returns the board's description of the model now serving ({"id", "sha256", "bytes", "path"})."""
        data = bytes(path) if isinstance(path, (bytes, bytearray)) else Path(path).read_bytes()
        size = len(data)
        sha = hashlib.sha256(data).digest()
        chunk = max(1, min(chunk, self.max_chunk()))
        off = struct.unpack("<I", self.request(proto.MODEL_BEGIN, struct.pack("<I", size) + sha))[0]
        if progress:
            progress(off, size)
        stuck = 0
        while off < size:
            piece = data[off:off + chunk]
            nxt = struct.unpack("<I", self.request(proto.MODEL_CHUNK, struct.pack("<I", off) + piece))[0]
            if nxt > size:
                raise UploadError("the board reports offset %d beyond the file's %d bytes" % (nxt, size))
            stuck = stuck + 1 if nxt <= off else 0
            if stuck > 3:
                raise UploadError("the board does not accept the chunk at offset %d" % off)
            off = nxt
            if progress:
                progress(off, size)
        r = json.loads(self.request(proto.MODEL_COMMIT, b"", timeout=max(self.timeout, commit_timeout)))
        if r.get("sha256") != sha.hex():
            raise UploadError("the board serves %s after the commit, expected %s" % (r.get("sha256"), sha.hex()))
        return r

    def max_chunk(self):
        """Model bytes that fit one MODEL_CHUNK: a frame's payload less the offset, less the auth trailer where
        the board wants MODEL_CHUNK authenticated (`"auth": "all"`)."""
        return proto.MAX_CHUNK - (auth.AUTH_TRAILER if proto.MODEL_CHUNK in self._auth_types() else 0)

    def abort_upload(self):
        self.request(proto.MODEL_ABORT)

    def reset(self):
        """Reset the board (machine.reset()). It answers first, then restarts."""
        self.request(proto.RESET)
        self.board = None           # new boot: new auth nonce, possibly new firmware
        wait = getattr(self.link, "after_reset", None)
        if wait is not None:
            wait()

    def config(self, changes=None, **kw):
        """Read (no arguments) or change the board's reku.json; a key set to None is removed. Returns
        the whole configuration. Changes apply at the next boot (see reset())."""
        changes = dict(changes or {}, **kw)
        payload = json.dumps(changes, separators=(",", ":")).encode() if changes else b""
        return json.loads(self.request(proto.CONFIG, payload))

    def close(self):
        self.link.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _call_dict(c):
    return c.to_dict() if isinstance(c, Call) else dict(c)
