"""The frame codec (firmware/rkfw/proto.py), shared by board and host."""
import binascii
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from rkfw import proto

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
