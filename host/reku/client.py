"""The host client: talk to a reku board over the framed protocol (docs/protocol.md).

    from reku.client import Client
    with Client.serial("/dev/ttyACM0") as board:
        print(board.call("dim the kitchen to 30%"))
"""

import json
import time
from dataclasses import dataclass, field

from rkfw import proto

from .errors import RekuError


class ClientError(RekuError):
    """Base of the client's typed exceptions."""


class BoardTimeout(ClientError):
    """No valid reply within the timeout after all retries."""


class BoardError(ClientError):
    """The board answered with an ERROR frame."""

    def __init__(self, code, message):
        ClientError.__init__(self, "board error %d (%s): %s" % (code, proto.ERROR_NAMES.get(code, "?"), message))
        self.code = code
        self.board_message = message


class LinkError(ClientError):
    """The transport itself failed (port missing, unplugged)."""


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


class SerialLink:
    def __init__(self, port, baud=115200):
        import serial
        try:
            self.ser = serial.Serial(port, baud, timeout=0)
        except (serial.SerialException, OSError) as e:
            raise LinkError("cannot open serial port %s: %s" % (port, e)) from None
        self.name = port

    def write(self, data):
        self.ser.write(data)
        self.ser.flush()

    def read(self, timeout):
        """Whatever arrives within `timeout` seconds (returns as soon as something does)."""
        self.ser.timeout = timeout
        first = self.ser.read(1)
        if not first:
            return b""
        return first + self.ser.read(self.ser.in_waiting)

    def close(self):
        self.ser.close()


class Client:
    def __init__(self, link, timeout=5.0, retries=2):
        self.link = link
        self.timeout = timeout
        self.retries = retries
        self.decoder = proto.Decoder()
        self.seq = int(time.monotonic() * 1000) & 0xFFFF

    @classmethod
    def serial(cls, port, baud=115200, **kw):
        return cls(SerialLink(port, baud), **kw)

    # ---- framing ---------------------------------------------------------------------------------------
    def request(self, ftype, payload=b"", timeout=None):
        """Send one request; return the reply payload. Resends (same seq) after silence or a damaged
        frame, at most `retries` times; an ERROR reply to the request raises BoardError."""
        timeout = self.timeout if timeout is None else timeout
        self.seq = (self.seq + 1) & 0xFFFF
        frame = b"\x00" + proto.encode(ftype, self.seq, payload)   # leading 0x00 ends any partial garbage
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
                    problem = "damaged reply: %s" % ev
                    continue
                rtype, rseq, rpayload = ev
                if rseq != self.seq:
                    continue                # a stale reply to an earlier request
                if rtype == proto.ERROR:
                    code, msg = proto.parse_error(rpayload)
                    if code in (proto.E_CRC, proto.E_FRAME, proto.E_TOO_LONG):
                        return "request damaged on the wire: %s" % msg
                    raise BoardError(code, msg)
                if rtype != ftype | proto.REPLY:
                    raise ClientError("reply type 0x%02x to request 0x%02x" % (rtype, ftype))
                return rpayload

    # ---- messages --------------------------------------------------------------------------------------
    def ping(self, data=b"ping"):
        """Round-trip time in seconds."""
        t0 = time.perf_counter()
        echo = self.request(proto.PING, data)
        if echo != data:
            raise ClientError("PING echo differs from what was sent")
        return time.perf_counter() - t0

    def info(self):
        return json.loads(self.request(proto.HELLO))

    def stats(self):
        return json.loads(self.request(proto.STATS))

    def query(self, text):
        data = text.encode()
        r = json.loads(self.request(proto.QUERY, data))
        calls = [Call(c["name"], c.get("arguments", {})) for c in r["calls"]]
        return QueryResult(calls, r.get("us", 0), r.get("tokens_in", 0), r.get("tokens_out", 0))

    def call(self, text):
        """The calls the board makes of `text` ([] when the request matches no function)."""
        return self.query(text).calls

    def close(self):
        self.link.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

