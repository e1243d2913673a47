"""The frame codec (firmware/rkfw/proto.py), shared by board and host."""
import binascii
import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rkfw import auth, i2c_target, proto

payloads = st.binary(min_size=0, max_size=proto.MAX_PAYLOAD)


@given(st.binary(max_size=2000))
def test_cobs_round_trip_and_no_zero_bytes(data):
    enc = proto.cobs_encode(data)
    assert 0 not in enc
    assert bytes(proto.cobs_decode(enc)) == data
    assert len(enc) <= len(data) + len(data) // 254 + 1


@given(st.integers(0, 255), st.integers(0, 0xFFFF), payloads)
def test_frame_round_trip(ftype, seq, payload):
    wire = proto.encode(ftype, seq, payload)
    assert wire.endswith(b"\x00") and wire.count(0) == 1
    assert proto.decode(wire[:-1]) == (ftype, seq, payload)


@given(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 0xFFFF), payloads), max_size=5),
       st.integers(1, 64))
def test_stream_decoder_any_chunking(frames, chunk):
    wire = b"".join(proto.encode(*f) for f in frames)
    dec = proto.Decoder()
    got = []
    for i in range(0, len(wire), chunk):
        got.extend(dec.feed(wire[i:i + chunk]))
    assert got == list(frames)


def test_resynchronises_after_garbage_and_cut_frame():
    good = proto.encode(proto.PING, 7, b"hello")
    cut = proto.encode(proto.QUERY, 8, b"turn on the light")[:10]
    dec = proto.Decoder()
    events = dec.feed(b"\x13\x37garbage" + b"\x00" + cut + b"\x00" + good)
    assert events[-1] == (proto.PING, 7, b"hello")
    errors = events[:-1]
    assert errors and all(isinstance(e, proto.ProtocolError) for e in errors)


def test_every_single_bit_flip_is_detected():
    wire = proto.encode(proto.QUERY, 300, b"dim the kitchen to 30%")
    body = wire[:-1]
    for i in range(len(body)):
        for bit in range(8):
            bad = bytearray(body)
            bad[i] ^= 1 << bit
            if 0 in bad:
                continue            # a flip to 0x00 splits the frame: the decoder sees two short frames
            ev = proto.Decoder().feed(bytes(bad) + b"\x00")
            assert len(ev) == 1 and isinstance(ev[0], proto.ProtocolError), (i, bit)


def test_crc_error_code():
    body = bytearray(proto.cobs_decode(proto.encode(proto.PING, 1, b"abc")[:-1]))
    body[-1] ^= 0xFF
    (ev,) = proto.Decoder().feed(proto.cobs_encode(bytes(body)) + b"\x00")
    assert ev.code == proto.E_CRC


def _raw_frame(ver, ftype, seq, n_header, payload):
    body = struct.pack("<BBHH", ver, ftype, seq, n_header) + payload
    return proto.cobs_encode(body + struct.pack("<I", binascii.crc32(body) & 0xFFFFFFFF)) + b"\x00"


def test_wrong_version_is_reported_with_seq():
    (ev,) = proto.Decoder().feed(_raw_frame(2, proto.PING, 99, 3, b"abc"))
    assert ev.code == proto.E_VERSION and ev.seq == 99
    assert "version 2" in str(ev)


def test_length_mismatch():
    (ev,) = proto.Decoder().feed(_raw_frame(1, proto.PING, 5, 10, b"abc"))
    assert ev.code == proto.E_LENGTH


def test_oversized_frame_dropped_then_recovers():
    dec = proto.Decoder()
    events = dec.feed(b"\x01" * (proto.MAX_WIRE + 50) + b"\x00" + proto.encode(proto.PING, 3, b"x"))
    assert events[0].code == proto.E_TOO_LONG
    assert events[1] == (proto.PING, 3, b"x")


def test_encode_refuses_oversized_payload():
    try:
        proto.encode(proto.QUERY, 1, b"x" * (proto.MAX_PAYLOAD + 1))
    except ValueError as e:
        assert "exceeds" in str(e)
    else:
        raise AssertionError("oversized payload accepted")


def test_empty_frames_are_ignored():
    assert proto.Decoder().feed(b"\x00\x00\x00") == []


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_decoder_never_raises_on_garbage(data):
    events = proto.Decoder().feed(data + b"\x00")
    for ev in events:
        assert isinstance(ev, (proto.ProtocolError, tuple))


# ---- test vectors of docs/protocol.md ---------------------------------------------------------------------

def test_documented_test_vectors():
    assert binascii.crc32(b"123456789") == 0xCBF43926
    assert proto.encode(proto.PING, 0x0102, b"hi").hex(" ") == "06 01 02 02 01 02 07 68 69 bd b6 fc 7d 00"
    assert proto.encode(proto.QUERY, 7, b"lock the front door").hex(" ") == (
        "04 01 03 07 02 13 18 6c 6f 63 6b 20 74 68 65 20 66 72 6f 6e 74 20 64 6f 6f 72 ce 1d ab b8 00")
    assert proto.encode(proto.ERROR, 0x0102, proto.error_payload(proto.E_NO_MODEL, "no model")).hex(" ") == (
        "06 01 ff 02 01 09 0e 09 6e 6f 20 6d 6f 64 65 6c d3 4f 33 d3 00")


def test_i2c_register_map_is_consistent():
    assert i2c_target.I2C_REPLY >= i2c_target.I2C_MAGIC + 4
    assert i2c_target.I2C_REQUEST == i2c_target.I2C_REPLY + proto.MAX_WIRE
    assert i2c_target.I2C_MEM == i2c_target.I2C_REQUEST + proto.MAX_WIRE
    assert i2c_target.I2C_MEM <= 0x10000                       # 16-bit register addresses
    assert (i2c_target.I2C_REPLY, i2c_target.I2C_REQUEST, i2c_target.I2C_MEM) == (0x0010, 0x0420, 0x0830)  # i2c.md


@given(st.binary(max_size=100), st.binary(max_size=300), st.integers(0, 255), st.integers(0, 2**32 - 1))
def test_auth_trailer(key, payload, ftype, counter):
    import hmac
    nonce = bytes(range(8))
    signed = auth.add_auth(key, nonce, ftype, counter, payload)
    assert signed[:len(payload)] == payload and len(signed) == len(payload) + auth.AUTH_TRAILER
    assert struct.unpack_from("<I", signed, len(payload))[0] == counter
    msg = auth.AUTH_LABEL + nonce + struct.pack("<BI", ftype, counter) + payload
    assert signed[-32:] == hmac.new(key, msg, "sha256").digest()
    flipped = signed[:-1] + bytes([signed[-1] ^ 1])
    assert auth.same_bytes(signed, bytes(signed)) and not auth.same_bytes(signed, flipped)
    assert not auth.same_bytes(signed, signed[:-1])


def test_every_frame_of_version_1_starts_with_a_code_byte_then_0x01():
    """What UsbStdio relies on to tell a Ctrl-C from a frame: a frame's second byte is the version."""
    for seq in (0, 1, 0x100, 0x0D0D, 0x0303, 0xFFFF):
        for t in (proto.QUERY, proto.PING, 3, 13):
            w = proto.encode(t, seq, b"\x03\x03")
            assert w[1] == 0x01


class _FakeStdin:
    def __init__(self, data):
        import os
        self.r, w = os.pipe()
        os.write(w, data)
        os.close(w)

    def fileno(self):
        return self.r

    def readinto(self, buf):
        import os
        d = os.read(self.r, len(buf))
        buf[:len(d)] = d
        return len(d)


def _usb_events(data):
    import io
    from rkfw import transport
    t = transport.UsbStdio(stdin=_FakeStdin(data), stdout=io.BytesIO())
    events = []
    for _ in range(len(data)):
        b = t.read()
        if b:
            events += t.decoder.feed(b)
    return events


def test_usb_link_passes_0x03_inside_frames_and_breaks_on_ctrl_c_between_frames():
    import pytest
    frames = b"\x00" + proto.encode(proto.QUERY, 0x0303, b"\x03\x03 lights") + proto.encode(proto.PING, 0x100, b"\x03")
    assert _usb_events(frames) == [(proto.QUERY, 0x0303, b"\x03\x03 lights"), (proto.PING, 0x100, b"\x03")]
    for brk in (b"\r\x03", b"\x03\x03"):
        with pytest.raises(KeyboardInterrupt):
            _usb_events(proto.encode(proto.PING, 1, b"x") + brk)


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=12) | st.text(max_size=6).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_utf8_rule_is_cpythons_strict_decoder(b):
    """proto.utf8_ok, the request-text rule the board applies on every runtime, is CPython's strict UTF-8."""
    try:
        b.decode("utf-8")
        strict = True
    except UnicodeDecodeError:
        strict = False
    assert proto.utf8_ok(b) == strict



# ---- golden frames, shared with the JavaScript codec (tests/js/codec.test.mjs) -----------------------------

GOLDEN = json.loads((Path(__file__).parent / "data" / "golden_frames.json").read_text())


@pytest.mark.parametrize("g", GOLDEN["frames"], ids=lambda g: g["name"])
def test_golden_frames(g):
    payload = bytes.fromhex(g["payload"])
    wire = proto.encode(g["type"], g["seq"], payload)
    assert wire.hex() == g["wire"]
    assert proto.decode(wire[:-1]) == (g["type"], g["seq"], payload)


@pytest.mark.parametrize("g", GOLDEN["streams"], ids=lambda g: g["name"])
def test_golden_streams(g):
    got = []
    for ev in proto.Decoder().feed(bytes.fromhex(g["bytes"])):
        if isinstance(ev, proto.ProtocolError):
            got.append({"error": ev.code, "seq": ev.seq, "message": str(ev)})
        else:
            got.append({"type": ev[0], "seq": ev[1], "payload": ev[2].hex()})
    assert got == g["events"]
