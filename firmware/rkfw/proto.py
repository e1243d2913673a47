# reku wire protocol: the one frame codec, used by the board (MicroPython) and the host (CPython).
# Specification: docs/protocol.md (frames, messages, errors, seq rules, versioning, auth); the I2C register map
# (docs/i2c.md) is in rkfw.i2c_target. Keep this file valid MicroPython: no f-strings, no CPython-only modules.
#
# Wire:  COBS( header | payload | crc32 ) 0x00
# header: version u8, type u8, seq u16 LE, length u16 LE (= len(payload))
# crc32:  u32 LE, binascii.crc32 (IEEE 802.3) over header|payload

import struct
import binascii

VERSION = 1                 # highest frame version this codec speaks
MIN_VERSION = 1             # lowest; HELLO in version 1 is answered (in version 1) by every board, forever
HEADER = 6
MAX_PAYLOAD = 1024          # payload bytes in one frame, both directions
MAX_FRAME = HEADER + MAX_PAYLOAD + 4
MAX_WIRE = MAX_FRAME + MAX_FRAME // 254 + 2   # COBS-encoded frame plus its delimiter

# Request types (host -> board). A reply has the request's type | 0x80 and the request's seq.
HELLO = 0x01        # reply: INFO (JSON)
PING = 0x02         # reply: PONG, payload echoed
QUERY = 0x03        # payload: UTF-8 request text; reply: JSON {"calls": [...], "us": .., "tokens_in": .., "tokens_out": ..}
#                     and with no call "reason" ("not understood", "out of range", "unknown value"; the last two
#                     with "function" and "param": the refused value's)
STATS = 0x04        # reply: JSON counters
SCHEMA = 0x05       # payload: offset u32; reply: total u32 | the model's schema summary (JSON) from offset
MODEL_BEGIN = 0x10  # payload: size u32 | sha256[32] [| auth]; reply: offset u32 (where to continue)
MODEL_CHUNK = 0x11  # payload: offset u32 | data; reply: next offset u32
MODEL_COMMIT = 0x12 # payload: [auth]; reply: JSON {"id", "sha256", "bytes"} of the model now serving
MODEL_ABORT = 0x13  # payload: [auth]; reply: empty
FEEDBACK = 0x20     # payload: JSON {"text", "outcome", "calls", "corrected"}; reply: JSON {"bytes", "limit"[, "learnt"]}
RESET = 0x21        # payload: [auth]; reply: empty, then the board resets
CONFIG = 0x22       # payload: JSON object merged into reku.json [| auth]; reply: JSON of the whole config
FEEDBACK_READ = 0x23   # payload: offset u32; reply: total u32 | the stored feedback lines (JSONL) from offset
FEEDBACK_CLEAR = 0x24  # payload: n u32 | crc32 u32 of the first n bytes read [| auth]; reply: JSON {"cleared", "bytes"}
MEMORY_LIST = 0x25     # payload: offset u32; reply: total u32 | JSON of what the board learnt from corrections, from offset
MEMORY_FORGET = 0x26   # payload: entry u32 (0xFFFFFFFF: all) [| auth]; reply: JSON {"entries": left}
REPLY = 0x80
ERROR = 0xFF        # reply to anything: payload = code u8 | UTF-8 message

# Error codes carried by ERROR frames.
E_FRAME = 1         # not a valid COBS frame / too short
E_CRC = 2           # checksum mismatch
E_TOO_LONG = 3      # frame longer than MAX_WIRE, discarded up to the next delimiter
E_VERSION = 4       # unsupported protocol version (message names the board's version)
E_LENGTH = 5        # header length disagrees with the frame
E_TYPE = 6          # unknown message type
E_REQUEST = 7       # well-formed frame, bad payload for its type
E_BUSY = 8          # a request arrived while another is being served
E_NO_MODEL = 9      # no usable model loaded
E_MODEL = 10        # model upload/verification failure
E_AUTH = 11         # missing or wrong authentication
E_INTERNAL = 12     # unexpected failure on the board (the board keeps running)


# Sizes derived from MAX_PAYLOAD.
MAX_CHUNK = MAX_PAYLOAD - 4         # model bytes in one MODEL_CHUNK (after its offset)


class ProtocolError(Exception):
    """A frame that cannot be accepted. `code` is one of the E_* codes, `seq` the frame's seq if known."""

    def __init__(self, code, message, seq=0):
        super().__init__(message)   # Exception.__init__(self, ..) does not exist on MicroPython
        self.code = code
        self.seq = seq


def cobs_encode(data):
    out = bytearray(len(data) + len(data) // 254 + 2)
    ci = 0          # where the current block's code byte goes
    oi = 1
    code = 1
    for b in data:
        if b == 0:
            out[ci] = code
            ci = oi
            oi += 1
            code = 1
        else:
            out[oi] = b
            oi += 1
            code += 1
            if code == 0xFF:
                out[ci] = code
                ci = oi
                oi += 1
                code = 1
    out[ci] = code
    return bytes(out[:oi])


def cobs_decode(data):
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise ProtocolError(E_FRAME, "zero byte inside a frame")
        i += 1
        end = i + code - 1
        if end > n:
            raise ProtocolError(E_FRAME, "COBS block runs past the end of the frame")
        out.extend(data[i:end])
        i = end
        if code < 0xFF and i < n:
            out.append(0)
    return out


def encode(ftype, seq, payload=b""):
    """One frame ready for the wire, delimiter included."""
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ValueError("payload of %d bytes exceeds %d" % (n, MAX_PAYLOAD))
    body = bytearray(HEADER + n + 4)
    struct.pack_into("<BBHH", body, 0, VERSION, ftype, seq & 0xFFFF, n)
    body[HEADER:HEADER + n] = payload
    struct.pack_into("<I", body, HEADER + n, binascii.crc32(memoryview(body)[:HEADER + n]) & 0xFFFFFFFF)
    return cobs_encode(body) + b"\x00"


def decode(wire):
    """Decode one frame's bytes (without the 0x00 delimiter) -> (type, seq, payload). Raises ProtocolError."""
    body = cobs_decode(wire)
    if len(body) < HEADER + 4:
        raise ProtocolError(E_FRAME, "frame of %d bytes is shorter than header and checksum" % len(body))
    ver, ftype, seq, n = struct.unpack_from("<BBHH", body, 0)
    crc = struct.unpack_from("<I", body, len(body) - 4)[0]
    if binascii.crc32(memoryview(body)[:len(body) - 4]) & 0xFFFFFFFF != crc:
        raise ProtocolError(E_CRC, "checksum mismatch", seq)
    if ver < MIN_VERSION or ver > VERSION:
        raise ProtocolError(E_VERSION, "frame version %d not supported (this side speaks %d..%d)"
                            % (ver, MIN_VERSION, VERSION), seq)
    if HEADER + n + 4 != len(body):
        raise ProtocolError(E_LENGTH, "header says %d payload bytes, frame has %d" % (n, len(body) - HEADER - 4), seq)
    return ftype, seq, bytes(body[HEADER:HEADER + n])


def utf8_ok(b):
    """Is b well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF)? The one rule
    for request text on every runtime: MicroPython's decode() accepts some of these, CPython's refuses them."""
    i = 0
    n = len(b)
    while i < n:
        c = b[i]
        if c < 0x80:
            i += 1
            continue
        if 0xC2 <= c <= 0xDF:
            k, lo, hi = 1, 0x80, 0xBF
        elif 0xE0 <= c <= 0xEF:
            k = 2
            lo = 0xA0 if c == 0xE0 else 0x80        # E0: no overlong forms
            hi = 0x9F if c == 0xED else 0xBF        # ED: no surrogates
        elif 0xF0 <= c <= 0xF4:
            k = 3
            lo = 0x90 if c == 0xF0 else 0x80
            hi = 0x8F if c == 0xF4 else 0xBF        # F4: nothing above U+10FFFF
        else:
            return False
        if i + k >= n:                              # cut short
            return False
        if not lo <= b[i + 1] <= hi:
            return False
        for j in range(i + 2, i + k + 1):
            if not 0x80 <= b[j] <= 0xBF:
                return False
        i += k + 1
    return True


def error_payload(code, message):
    return bytes([code]) + message.encode()[:MAX_PAYLOAD - 1]


def parse_error(payload):
    if not payload:
        return E_INTERNAL, "empty error frame"
    return payload[0], bytes(payload[1:]).decode()


class Decoder:
    """Streaming deframer: feed() bytes as they arrive; it returns complete frames and errors in order.
    Garbage and cut frames are dropped at the next 0x00, so the stream resynchronises by itself.
    Each event is (type, seq, payload) or a ProtocolError instance."""

    def __init__(self, max_wire=MAX_WIRE):
        self.max_wire = max_wire
        self.buf = bytearray(max_wire)
        self.n = 0
        self.overflow = False

    def reset(self):
        self.n = 0
        self.overflow = False

    def feed(self, data):
        events = []
        buf = self.buf
        for b in data:
            if b == 0:
                if self.overflow:
                    events.append(ProtocolError(E_TOO_LONG, "frame longer than %d bytes dropped" % self.max_wire))
                elif self.n:
                    try:
                        events.append(decode(memoryview(buf)[:self.n]))
                    except ProtocolError as e:
                        events.append(e)
                self.n = 0
                self.overflow = False
            elif not self.overflow:
                if self.n < self.max_wire:
                    buf[self.n] = b
                    self.n += 1
                else:
                    self.overflow = True
        return events
