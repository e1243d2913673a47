"""The firmware's request handler (rkfw.app.App) on the message level: seq rules, model upload and its
atomicity, authentication, feedback, config. On CPython in-process; the same scripts run on MicroPython
(tests/helpers/mp_app.mjs) at the end of this file."""
import binascii
import hashlib
import json
import os
import random
import struct

import pytest

from rkfw import admin
from rkfw import app as A
from rkfw import auth, proto

from proto_support import (HOME_MODEL, CpApp, decode, error_code, frame, make_workdir, run_mp,
                           upload_frames, variant_model)
from conftest import require_runtime

OLD = HOME_MODEL.read_bytes()
OLD_SHA = hashlib.sha256(OLD).hexdigest()
NEW = variant_model("home-variant-1")
NEW_SHA = hashlib.sha256(NEW).hexdigest()
KEY = bytes(range(32))


def test_variant_model_differs_and_loads(tmp_path):
    assert NEW_SHA != OLD_SHA
    b = CpApp(tmp_path, model=NEW)
    assert b.info()["model"]["sha256"] == NEW_SHA
    assert b.info()["model"]["id"] == "home-variant-1"


def test_rare_requests_leave_no_admin_code_behind_except_during_an_upload(tmp_path):
    """rkfw.admin (INFO, SCHEMA, STATS, upload, FEEDBACK, CONFIG) is imported for a rare request and dropped after
    its reply, so that the board's heap between requests holds only the serve loop; an upload keeps it."""
    import sys
    b = CpApp(tmp_path)
    for ftype, payload in ((proto.HELLO, b""), (proto.STATS, b""), (proto.SCHEMA, struct.pack("<I", 0)),
                           (proto.CONFIG, b"")):
        assert decode(b.ask(ftype, 1 + ftype, payload))[0] == ftype | proto.REPLY
        assert "rkfw.admin" not in sys.modules, ftype
    frames = upload_frames(NEW)
    for i, f in enumerate(frames[:-1]):
        b.feed(b"\x00" + f)
        assert "rkfw.admin" in sys.modules, i         # BEGIN and every CHUNK: the upload is in progress
    assert decode(b.feed(b"\x00" + frames[-1])[-1])[0] == proto.MODEL_COMMIT | proto.REPLY
    assert "rkfw.admin" not in sys.modules and b.info()["model"]["sha256"] == NEW_SHA
    assert "rkfw.admin" not in sys.modules


# ---- seq rules -------------------------------------------------------------------------------------------

def test_resent_request_is_answered_from_the_cache_not_run_twice(tmp_path):
    b = CpApp(tmp_path, model=None)
    fb = json.dumps({"text": "lights on", "outcome": "success", "calls": []}).encode()
    r1 = b.ask(proto.FEEDBACK, 5, fb)
    r2 = b.ask(proto.FEEDBACK, 5, fb)
    assert r1 == r2 and decode(r1)[0] == proto.FEEDBACK | proto.REPLY
    assert (tmp_path / admin.FEEDBACK_FILE).read_text().count("\n") == 1
    assert b.app.stats["duplicates"] == 1
    # same seq, other payload: a new request (e.g. a host that restarted), executed
    b.ask(proto.FEEDBACK, 5, fb.replace(b"lights on", b"lights off"))
    assert (tmp_path / admin.FEEDBACK_FILE).read_text().count("\n") == 2
    # same seq and payload but another type: executed too
    assert decode(b.ask(proto.PING, 5, fb))[0] == proto.PING | proto.REPLY
    assert b.app.stats["duplicates"] == 1


def test_out_of_order_seqs_are_served_in_arrival_order(tmp_path):
    b = CpApp(tmp_path, model=None)
    got = [decode(b.ask(proto.PING, s, b"%d" % s)) for s in (10, 5, 7, 65535, 0)]
    assert got == [(proto.PING | proto.REPLY, s, b"%d" % s) for s in (10, 5, 7, 65535, 0)]
    # only the most recent request is cached: an older seq is run again
    b.ask(proto.STATS, 9)
    b.ask(proto.STATS, 8)
    b.ask(proto.STATS, 9)
    assert b.app.stats["duplicates"] == 0
    b.ask(proto.STATS, 9)
    assert b.app.stats["duplicates"] == 1


def test_duplicate_cache_is_per_link(tmp_path):
    b = CpApp(tmp_path, model=None)

    class Link:
        last = None
    l1, l2 = Link(), Link()
    ev = (proto.STATS, 3, b"")
    b._in_dir(b.app.handle, ev, l1)
    b._in_dir(b.app.handle, ev, l2)
    assert b.app.stats["duplicates"] == 0
    b._in_dir(b.app.handle, ev, l2)
    assert b.app.stats["duplicates"] == 1


def test_protocol_errors_get_error_replies_with_their_codes(tmp_path):
    b = CpApp(tmp_path, model=None)
    body = struct.pack("<BBHH", 2, proto.PING, 77, 1) + b"x"
    v2 = proto.cobs_encode(body + struct.pack("<I", __import__("binascii").crc32(body) & 0xFFFFFFFF)) + b"\x00"
    (r,) = b.feed(v2)
    t, seq, p = decode(r)
    assert (t, seq, p[0]) == (proto.ERROR, 77, proto.E_VERSION)
    assert b"speaks 1..1" in p
    assert error_code(b.ask(0x7E, 1)) == proto.E_TYPE
    assert error_code(b.ask(proto.PING | proto.REPLY, 1)) == proto.E_TYPE    # a reply sent to the board
    (r,) = b.feed(b"\x05garbage\x00")
    assert error_code(r) in (proto.E_FRAME, proto.E_CRC)


def test_query_without_model_and_oversized_query(tmp_path):
    b = CpApp(tmp_path, model=None)
    assert error_code(b.ask(proto.QUERY, 1, b"lights on")) == proto.E_NO_MODEL
    b = CpApp(tmp_path / "m")
    assert error_code(b.ask(proto.QUERY, 1, b"x" * (A.MAX_QUERY + 1))) == proto.E_REQUEST
    assert error_code(b.ask(proto.QUERY, 2, b"\xff\xfe")) == proto.E_REQUEST


def test_boot_uses_the_model_main_py_read_first(tmp_path):
    """main.py reads model.rku before importing the firmware (one block, while the heap is empty) and hands the
    bytes to App.load_model, which uses them for model.rku instead of reading the file again; a model in ROMFS is
    not affected."""
    first = variant_model("read-first")
    b = CpApp(tmp_path)
    b._in_dir(b.app.load_model, A.MODEL_PATHS, first)
    info = b.info()
    assert info["model"]["sha256"] == hashlib.sha256(first).hexdigest() != OLD_SHA
    assert info["model"]["path"] == A.MODEL_FILE
    b._in_dir(b.app.load_model, ("/rom/model.rku",), first)          # not MODEL_FILE: the bytes are not used
    info = json.loads(decode(b.ask(proto.HELLO, 2))[2])        # seq 2: not the cached reply of seq 1
    assert info["model"] is None and "no model file" in info["model_error"]


# well-formed UTF-8 and its near misses: surrogates (ED A0..BF), overlong forms (C0, E0 80, F0 80), beyond U+10FFFF
# (F4 90), stray continuation bytes, cut sequences
UTF8_CASES = [("caf\u00e9 lights on".encode(), True), ("\U0001F600 lamp".encode(), True), (b"\xed\xa0\x80", False),
              (b"lamp \xed\xbf\xbf", False), (b"\xc0\x80", False), (b"\xe0\x80\x80", False), (b"\xf0\x80\x80\x80", False),
              (b"\xf4\x90\x80\x80", False), (b"\x80 lamp", False), (b"lamp \xe2\x82", False), (b"\xff", False)]


def test_invalid_utf8_is_refused_alike_on_both_runtimes(tmp_path):
    """One rule for request text (proto.utf8_ok), on both runtimes: a malformed request is refused with
    E_REQUEST, a well-formed one answered, by the CPython App and the MicroPython App alike."""
    require_runtime("micropython")
    steps = [b"\x00" + frame(proto.QUERY, i + 1, q) for i, (q, _ok) in enumerate(UTF8_CASES)]
    steps.append(b"\x00" + frame(proto.QUERY, 99, b"turn on the kitchen light"))      # still answering after them
    mp_out = run_mp(make_workdir(tmp_path / "mp"), steps)
    cp = CpApp(tmp_path / "cp")
    for (q, ok), st, mp in zip(UTF8_CASES + [(b"turn on the kitchen light", True)], steps, mp_out):
        (r_cp,) = cp.feed(st)
        (r_mp,) = mp["replies"]
        assert proto.utf8_ok(q) == ok, q
        assert decode(r_cp)[0] == decode(r_mp)[0] == (proto.QUERY | proto.REPLY if ok else proto.ERROR), q
        if not ok:
            assert error_code(r_cp) == error_code(r_mp) == proto.E_REQUEST


def test_info_describes_versions_types_limits_and_auth(tmp_path):
    info = CpApp(tmp_path).info()
    assert info["proto"] == proto.VERSION and info["proto_min"] == proto.MIN_VERSION
    assert set(info["types"]) == set(A.App.HANDLERS) | set(admin.HANDLERS) == set(A.App.HANDLERS) | set(A.ADMIN)
    assert info["limits"]["max_chunk"] == proto.MAX_PAYLOAD - 4
    assert info["auth"] == {"required": False}
    assert info["model"]["sha256"] == OLD_SHA


# ---- model upload ----------------------------------------------------------------------------------------

def test_clean_upload_replaces_the_model_and_survives_a_reboot(tmp_path):
    b = CpApp(tmp_path)
    replies = [b.feed(f)[0] for f in upload_frames(NEW)]
    assert all(decode(r)[0] & proto.REPLY and decode(r)[0] != proto.ERROR for r in replies), \
        [decode(r) for r in replies if decode(r)[0] == proto.ERROR]
    done = json.loads(decode(replies[-1])[2])
    assert done["sha256"] == NEW_SHA and done["bytes"] == len(NEW)
    assert b.info()["model"]["sha256"] == NEW_SHA
    assert (tmp_path / "model.rku").read_bytes() == NEW
    assert not (tmp_path / A.MODEL_PART).exists()
    b.boot()
    assert b.info()["model"]["sha256"] == NEW_SHA
    assert b.app.stats["uploads"] == 0


def test_chunk_replies_carry_the_next_offset(tmp_path):
    b = CpApp(tmp_path)
    data = NEW
    r = b.ask(proto.MODEL_BEGIN, 1, struct.pack("<I", len(data)) + hashlib.sha256(data).digest())
    assert struct.unpack("<I", decode(r)[2])[0] == 0
    r = b.ask(proto.MODEL_CHUNK, 2, struct.pack("<I", 0) + data[:500])
    assert struct.unpack("<I", decode(r)[2])[0] == 500
    # a chunk at the wrong place is not written; the reply says where to go on
    r = b.ask(proto.MODEL_CHUNK, 3, struct.pack("<I", 1000) + data[1000:1500])
    assert struct.unpack("<I", decode(r)[2])[0] == 500
    r = b.ask(proto.MODEL_CHUNK, 4, struct.pack("<I", 0) + data[:500])       # an old chunk again
    assert struct.unpack("<I", decode(r)[2])[0] == 500
    # BEGIN of the same file again resumes where it was
    r = b.ask(proto.MODEL_BEGIN, 5, struct.pack("<I", len(data)) + hashlib.sha256(data).digest())
    assert struct.unpack("<I", decode(r)[2])[0] == 500
    assert b.info()["upload"] == {"bytes": len(data), "received": 500}
    # commit before the end is refused and the upload stays open
    assert error_code(b.ask(proto.MODEL_COMMIT, 6)) == proto.E_MODEL
    assert b.info()["upload"]["received"] == 500
    assert decode(b.ask(proto.MODEL_ABORT, 8))[0] == proto.MODEL_ABORT | proto.REPLY
    assert not (tmp_path / A.MODEL_PART).exists() and b.info()["upload"] is None
    assert error_code(b.ask(proto.MODEL_CHUNK, 9, struct.pack("<I", 0) + b"x")) == proto.E_MODEL
    assert error_code(b.ask(proto.MODEL_COMMIT, 10)) == proto.E_MODEL
    # a chunk past the announced size is refused
    b.ask(proto.MODEL_BEGIN, 11, struct.pack("<I", 600) + bytes(32))
    assert error_code(b.ask(proto.MODEL_CHUNK, 12, struct.pack("<I", 0) + b"x" * 700)) == proto.E_MODEL


@pytest.mark.parametrize("bad", [b"", b"\x00" * 35, b"\x00" * 37])
def test_begin_needs_size_and_hash(tmp_path, bad):
    assert error_code(CpApp(tmp_path, model=None).ask(proto.MODEL_BEGIN, 1, bad)) == proto.E_REQUEST


def test_begin_refuses_sizes_out_of_range(tmp_path):
    b = CpApp(tmp_path, model=None)
    for size in (0, A.MAX_MODEL + 1):
        assert error_code(b.ask(proto.MODEL_BEGIN, size & 0xFFFF, struct.pack("<I", size) + bytes(32))) == proto.E_MODEL


def test_wrong_hash_is_refused_and_the_old_model_stays(tmp_path):
    b = CpApp(tmp_path)
    frames = upload_frames(NEW)
    # announce the hash of another file
    frames[0] = frame(proto.MODEL_BEGIN, 100, struct.pack("<I", len(NEW)) + hashlib.sha256(OLD).digest())
    replies = [b.feed(f)[0] for f in frames]
    assert error_code(replies[-1]) == proto.E_MODEL
    assert b"SHA-256 mismatch" in decode(replies[-1])[2]
    assert b.info()["model"]["sha256"] == OLD_SHA
    assert not (tmp_path / A.MODEL_PART).exists()
    assert (tmp_path / "model.rku").read_bytes() == OLD


def test_a_verified_file_that_is_no_model_is_rejected_and_the_old_model_stays(tmp_path):
    b = CpApp(tmp_path)
    junk = b"RKU1" + os.urandom(3000)
    replies = [b.feed(f)[0] for f in upload_frames(junk)]
    assert error_code(replies[-1]) == proto.E_MODEL
    assert b"rejected" in decode(replies[-1])[2] and b"old model is still serving" in decode(replies[-1])[2]
    assert b.info()["model"]["sha256"] == OLD_SHA
    assert (tmp_path / "model.rku").read_bytes() == OLD
    b.boot()
    assert b.info()["model"]["sha256"] == OLD_SHA


def test_upload_cut_at_random_bytes_leaves_the_old_model_working(tmp_path):
    """The upload's wire bytes are cut at random places (every phase: BEGIN, chunks, COMMIT). After the
    cut the board answers with the old model, and after a power cut it boots the old model; then a
    complete upload installs the new one."""
    wire = b"".join(upload_frames(NEW))
    commit_start = len(wire) - len(upload_frames(NEW)[-1])
    rng = random.Random(5)
    cuts = sorted(set([1, 20, 45, commit_start - 1, commit_start + 3, len(wire) - 2]
                      + [rng.randrange(1, len(wire) - 1) for _ in range(30)]))
    b = CpApp(tmp_path)
    for i, cut in enumerate(cuts):
        b.feed(wire[:cut])
        info = b.info()                         # the leading 0x00 of ask() ends the cut frame
        assert info["model"]["sha256"] == OLD_SHA, cut
        if i % 2:
            b.boot()                            # power cut right there
            assert b.info()["model"]["sha256"] == OLD_SHA, cut
            assert not (tmp_path / A.MODEL_PART).exists()
        else:
            b.ask(proto.MODEL_ABORT, 9)
    assert b.feed(wire)[-1] is not None
    assert b.info()["model"]["sha256"] == NEW_SHA


def test_old_model_answers_queries_during_an_upload(tmp_path):
    b = CpApp(tmp_path)
    frames = upload_frames(NEW)
    before = decode(b.ask(proto.QUERY, 1, b"turn on the kitchen light"))
    for f in frames[:3]:
        b.feed(f)
    during = decode(b.ask(proto.QUERY, 2, b"turn on the kitchen light"))
    assert during[0] == proto.QUERY | proto.REPLY
    assert json.loads(during[2])["calls"] == json.loads(before[2])["calls"]


def test_power_cut_during_commit_keeps_one_whole_model(tmp_path, monkeypatch):
    b = CpApp(tmp_path)
    frames = upload_frames(NEW)
    for f in frames[:-1]:
        b.feed(f)

    class PowerCut(BaseException):
        pass

    def cut(*a):
        raise PowerCut()
    monkeypatch.setattr(A.os, "rename", cut)
    with pytest.raises(PowerCut):
        b.feed(frames[-1])
    monkeypatch.undo()
    b.boot()
    assert b.info()["model"]["sha256"] == OLD_SHA
    assert (tmp_path / "model.rku").read_bytes() == OLD


# ---- authentication ------------------------------------------------------------------------------------

def _signed(b, ftype, seq, payload=b"", key=KEY, counter=None):
    info = b.info()
    nonce = bytes.fromhex(info["auth"]["nonce"])
    counter = info["auth"]["counter"] + 1 if counter is None else counter
    return b.ask(ftype, seq, auth.add_auth(key, nonce, ftype, counter, payload))


def test_hmac_accepted_refused_and_replay_refused(tmp_path):
    b = CpApp(tmp_path, key=KEY)
    info = b.info()
    assert info["auth"]["required"] and len(info["auth"]["nonce"]) == 16
    assert set(info["auth"]["types"]) == set(A.AUTH_STATE)
    cfg = b'{"baud": 230400}'
    assert error_code(b.ask(proto.CONFIG, 1, cfg)) == proto.E_AUTH                       # no trailer
    assert error_code(_signed(b, proto.CONFIG, 2, cfg, key=b"k" * 32)) == proto.E_AUTH    # wrong key
    assert not (tmp_path / "reku.json").exists()
    ok = _signed(b, proto.CONFIG, 3, cfg)
    assert json.loads(decode(ok)[2]) == {"baud": 230400}
    assert b.info()["auth"]["counter"] == 1
    # the same signed payload again under a new seq: a replay, refused
    nonce = bytes.fromhex(b.info()["auth"]["nonce"])
    signed = auth.add_auth(KEY, nonce, proto.CONFIG, 1, cfg)
    r = b.ask(proto.CONFIG, 4, signed)
    assert error_code(r) == proto.E_AUTH and b"replayed" in decode(r)[2]
    # resent with the same seq (the reply got lost): answered from the cache, not run again
    assert b.ask(proto.CONFIG, 4, signed) == r
    # a tag made for one type does not pass for another
    tag_for_config = auth.add_auth(KEY, nonce, proto.CONFIG, 5, b"")
    assert error_code(b.ask(proto.RESET, 5, tag_for_config)) == proto.E_AUTH
    assert not b.app.reset_pending
    assert decode(_signed(b, proto.RESET, 6))[0] == proto.RESET | proto.REPLY
    assert b.app.reset_pending
    # queries, pings and feedback stay open
    assert decode(b.ask(proto.PING, 7, b"hi"))[0] == proto.PING | proto.REPLY
    assert decode(b.ask(proto.STATS, 8))[0] == proto.STATS | proto.REPLY
    assert b.app.stats["auth_refused"] == 4


def test_a_new_boot_has_a_new_nonce_so_old_tags_fail(tmp_path):
    b = CpApp(tmp_path, key=KEY)
    nonce = bytes.fromhex(b.info()["auth"]["nonce"])
    signed = auth.add_auth(KEY, nonce, proto.CONFIG, 1, b"")
    assert decode(b.ask(proto.CONFIG, 1, signed))[0] == proto.CONFIG | proto.REPLY
    b.boot()
    assert b.info()["auth"]["nonce"] != nonce.hex() and b.info()["auth"]["counter"] == 0
    assert error_code(b.ask(proto.CONFIG, 2, signed)) == proto.E_AUTH


def test_signed_upload_and_unsigned_chunks(tmp_path):
    b = CpApp(tmp_path, key=KEY)
    info = b.info()
    frames = upload_frames(NEW, key=KEY, nonce=bytes.fromhex(info["auth"]["nonce"]), counter=0)
    replies = [b.feed(f)[0] for f in frames]
    assert json.loads(decode(replies[-1])[2])["sha256"] == NEW_SHA
    unsigned = upload_frames(OLD, seq0=900)
    assert error_code(b.feed(unsigned[0])[0]) == proto.E_AUTH
    assert b.info()["model"]["sha256"] == NEW_SHA


def test_auth_all_closes_queries_too(tmp_path):
    b = CpApp(tmp_path, model=None, key=KEY, config={"auth": "all"})
    assert error_code(b.ask(proto.QUERY, 1, b"lights on")) == proto.E_AUTH
    assert error_code(_signed(b, proto.QUERY, 2, b"lights on")) == proto.E_NO_MODEL   # auth passed
    assert decode(b.ask(proto.PING, 3))[0] == proto.PING | proto.REPLY


def test_short_key_file_locks_state_changes(tmp_path):
    b = CpApp(tmp_path, model=None, key=b"short")
    assert "error" in b.info()["auth"]
    r = _signed(b, proto.RESET, 1, key=b"short")
    assert error_code(r) == proto.E_AUTH and b"at least 16" in decode(r)[2]


def test_hmac_matches_the_standard_library():
    import hmac
    rng = random.Random(1)
    for n in (0, 1, 16, 63, 64, 65, 200):
        key = bytes(rng.randrange(256) for _ in range(n))
        msg = bytes(rng.randrange(256) for _ in range(rng.randrange(300)))
        assert auth.hmac_sha256(key, msg) == hmac.new(key, msg, "sha256").digest()


# ---- feedback and config ----------------------------------------------------------------------------------

def test_feedback_is_stored_and_bounded(tmp_path):
    b = CpApp(tmp_path, model=None, config={"feedback_max": 600})
    for i in range(40):
        fb = {"text": "dim the kitchen %d" % i, "outcome": ("success", "failure", "corrected")[i % 3],
              "calls": [{"name": "set_brightness", "arguments": {"room": "kitchen", "level": i}}]}
        if fb["outcome"] == "corrected":
            fb["corrected"] = [{"name": "set_brightness", "arguments": {"room": "kitchen", "level": 30}}]
        r = decode(b.ask(proto.FEEDBACK, i, json.dumps(fb).encode()))
        assert r[0] == proto.FEEDBACK | proto.REPLY
        assert json.loads(r[2])["bytes"] <= 1200
    cur = (tmp_path / admin.FEEDBACK_FILE).read_text().splitlines()
    old = (tmp_path / admin.FEEDBACK_OLD).read_text().splitlines()
    assert cur and old
    last = json.loads(cur[-1])
    assert last["text"] == "dim the kitchen 39" and last["outcome"] == "success"
    assert all(json.loads(x)["outcome"] in admin.OUTCOMES for x in cur + old)
    assert sum(len(x) + 1 for x in cur) <= 600 and sum(len(x) + 1 for x in old) <= 600


@pytest.mark.parametrize("bad", [b"not json", b"[]", b'{"outcome": "maybe"}', b'{"outcome": "corrected"}',
                                 b'{"outcome": "success", "text": 5}'])
def test_bad_feedback_is_refused(tmp_path, bad):
    assert error_code(CpApp(tmp_path, model=None).ask(proto.FEEDBACK, 1, bad)) == proto.E_REQUEST


def _pull(b, seq0=100):
    """FEEDBACK_READ from offset 0 to the end, as reku.client.Client.feedback_read does: (total, bytes)."""
    data, seq = b"", seq0
    while True:
        r = decode(b.ask(proto.FEEDBACK_READ, seq, struct.pack("<I", len(data))))
        assert r[0] == proto.FEEDBACK_READ | proto.REPLY, r
        total = struct.unpack_from("<I", r[2])[0]
        data += r[2][4:]
        seq += 1
        if len(data) >= total or len(r[2]) == 4:
            return total, data


def _store(b, n, seq0=1, size=80):
    for i in range(n):
        fb = {"text": ("dim the kitchen %d " % i).ljust(size, "."), "outcome": "success", "calls": []}
        assert decode(b.ask(proto.FEEDBACK, seq0 + i, json.dumps(fb).encode()))[0] == proto.FEEDBACK | proto.REPLY


def _clear_payload(data):
    return struct.pack("<II", len(data), binascii.crc32(data) & 0xFFFFFFFF)


def test_feedback_read_in_pages_across_both_files_then_cleared(tmp_path):
    b = CpApp(tmp_path, model=None, config={"feedback_max": 3000})
    _store(b, 40)                                    # ~4.4 KB: a rotated file and the current one
    old, cur = (tmp_path / admin.FEEDBACK_OLD).read_bytes(), (tmp_path / admin.FEEDBACK_FILE).read_bytes()
    total, data = _pull(b)
    assert old and cur and total == len(old) + len(cur) > 2 * proto.MAX_PAYLOAD and data == old + cur
    assert all(json.loads(x)["outcome"] == "success" for x in data.splitlines())
    # an offset past the end gives the total alone
    r = decode(b.ask(proto.FEEDBACK_READ, 90, struct.pack("<I", total + 5)))
    assert r[2] == struct.pack("<I", total)
    # a line stored after the read stays when what was read is cleared
    _store(b, 1, seq0=200)
    r = json.loads(decode(b.ask(proto.FEEDBACK_CLEAR, 201, _clear_payload(data)))[2])
    assert r["cleared"] == total
    left = (tmp_path / admin.FEEDBACK_FILE).read_bytes()
    assert not (tmp_path / admin.FEEDBACK_OLD).exists() and r["bytes"] == len(left)
    assert [json.loads(x)["text"].startswith("dim the kitchen 0 ") for x in left.splitlines()] == [True]
    assert _pull(b, 300) == (len(left), left)


def test_feedback_clear_refuses_what_it_was_not_shown(tmp_path):
    b = CpApp(tmp_path, model=None, config={"feedback_max": 3000})
    _store(b, 5)
    total, data = _pull(b)
    before = (tmp_path / admin.FEEDBACK_FILE).read_bytes()
    for bad in (_clear_payload(data[:-1] + b"x"), struct.pack("<II", total + 1, 0), b"\x01\x02"):
        assert error_code(b.ask(proto.FEEDBACK_CLEAR, 10 + len(bad), bad)) == proto.E_REQUEST
    assert (tmp_path / admin.FEEDBACK_FILE).read_bytes() == before
    assert error_code(b.ask(proto.FEEDBACK_READ, 20, b"")) == proto.E_REQUEST
    # a rotation between read and clear: the current file becomes the old one (no old one before): the front of
    # the log is still exactly what was read, so clearing it removes that file and keeps the new line
    b.app.config["feedback_max"] = len(before) + 10
    _store(b, 1, seq0=30)
    assert (tmp_path / admin.FEEDBACK_OLD).read_bytes() == before
    r = json.loads(decode(b.ask(proto.FEEDBACK_CLEAR, 40, _clear_payload(data)))[2])
    assert r["cleared"] == total and not (tmp_path / admin.FEEDBACK_OLD).exists()
    assert len((tmp_path / admin.FEEDBACK_FILE).read_text().splitlines()) == 1
    # with an old file at read time, a rotation drops it: the front differs from what was read, nothing is removed
    _store(b, 6, seq0=50)
    assert (tmp_path / admin.FEEDBACK_OLD).exists()
    total, data = _pull(b, 60)
    _store(b, 6, seq0=70)
    now = _pull(b, 80)[1]
    assert now[:len(data)] != data
    assert error_code(b.ask(proto.FEEDBACK_CLEAR, 90, _clear_payload(data))) == proto.E_REQUEST
    assert _pull(b, 91)[1] == now
    # empty log: reads as nothing, clears nothing
    e = CpApp(tmp_path / "empty", model=None)
    assert _pull(e) == (0, b"")
    assert json.loads(decode(e.ask(proto.FEEDBACK_CLEAR, 1, _clear_payload(b"")))[2]) == {"cleared": 0, "bytes": 0}


def test_config_merges_removes_and_persists(tmp_path):
    b = CpApp(tmp_path, model=None, config={"transports": ["uart"], "baud": 115200})
    r = json.loads(decode(b.ask(proto.CONFIG, 1, b'{"baud": 921600, "transports": null, "x": [1]}'))[2])
    assert r == {"baud": 921600, "x": [1]}
    assert json.loads((tmp_path / "reku.json").read_text()) == r
    assert json.loads(decode(b.ask(proto.CONFIG, 2))[2]) == r
    assert error_code(b.ask(proto.CONFIG, 3, b"[1]")) == proto.E_REQUEST


# ---- the same on MicroPython -------------------------------------------------------------------------------

def test_same_rules_on_micropython(tmp_path):
    require_runtime("micropython")
    work = make_workdir(tmp_path / "board", key=KEY)
    cp = CpApp(tmp_path / "cp", key=KEY)
    fb = json.dumps({"text": "lights on", "outcome": "success", "calls": []}).encode()
    hello = b"\x00" + frame(proto.HELLO, 1)
    nonce = bytes(range(1, 9))
    cfg = b'{"baud": 230400}'
    signed_cfg = auth.add_auth(KEY, nonce, proto.CONFIG, 1, cfg)
    steps = [
        b"\x00" + frame(proto.FEEDBACK, 5, fb), b"\x00" + frame(proto.FEEDBACK, 5, fb),    # 0, 1: duplicate
        b"".join(b"\x00" + frame(proto.PING, s, b"%d" % s) for s in (10, 5, 7)),            # 2: out of order
        b"\x00" + frame(proto.CONFIG, 8, cfg),                                              # 3: unsigned
        "#nonce " + nonce.hex(),
        b"\x00" + frame(proto.CONFIG, 9, signed_cfg),                                       # 5: accepted
        b"\x00" + frame(proto.CONFIG, 10, signed_cfg),                                      # 6: replay
        b"\x00" + frame(proto.CONFIG, 11, auth.add_auth(b"k" * 32, nonce, proto.CONFIG, 2, cfg)),  # 7: bad key
        b"\x00" + frame(proto.STATS, 12),                                                   # 8
        hello,                                                                               # 9
        "#reboot", hello,                                                                    # 10, 11
    ]
    out = run_mp(work, steps)
    assert out[0]["replies"] == out[1]["replies"]
    assert decode(out[0]["replies"][0])[0] == proto.FEEDBACK | proto.REPLY
    assert [decode(r)[1] for r in out[2]["replies"]] == [10, 5, 7]
    assert error_code(out[3]["replies"][0]) == proto.E_AUTH
    assert json.loads(decode(out[5]["replies"][0])[2]) == {"baud": 230400}
    assert error_code(out[6]["replies"][0]) == proto.E_AUTH
    assert error_code(out[7]["replies"][0]) == proto.E_AUTH
    st = json.loads(decode(out[8]["replies"][0])[2])
    assert st["duplicates"] == 1 and st["auth_refused"] == 3 and st["feedback"] == 1
    info = json.loads(decode(out[9]["replies"][0])[2])
    assert info["model"]["sha256"] == OLD_SHA and info["runtime"].startswith("micropython")
    assert info["auth"]["counter"] == 1
    assert json.loads(decode(out[11]["replies"][0])[2])["auth"]["nonce"] != nonce.hex()
    # the CPython App answers the same steps with the same reply types, seqs and error codes
    cp_out = []
    for s in steps:
        if s == "#reboot":
            cp.boot()
        elif s.startswith(b"#") if isinstance(s, bytes) else s.startswith("#nonce"):
            cp.app.nonce = nonce
        else:
            cp_out.append(cp.feed(s))
    mp_out = [o["replies"] for o, s in zip(out, steps) if not isinstance(s, str)]
    shape = lambda rs: [(decode(r)[0], decode(r)[1], decode(r)[2][:1] if decode(r)[0] == proto.ERROR else b"")
                        for r in rs]                                                    # noqa: E731
    assert [shape(r) for r in mp_out] == [shape(r) for r in cp_out]

    # signed upload cut at random places, each followed by a power cut; then a complete one
    wire = b"".join(upload_frames(NEW, seq0=300, key=KEY, nonce=nonce))
    rng = random.Random(7)
    cuts = sorted(rng.randrange(1, len(wire) - 1) for _ in range(6))
    steps = []
    for c in cuts:
        steps += ["#nonce " + nonce.hex(), wire[:c], hello, "#reboot", hello]
    steps += ["#nonce " + nonce.hex(), b"\x00" + wire, hello, "#reboot", hello, "#ls"]
    out = run_mp(work, steps)
    for i in range(len(cuts)):
        for j in (2, 4):
            assert json.loads(decode(out[5 * i + j]["replies"][-1])[2])["model"]["sha256"] == OLD_SHA, cuts[i]
    k = 5 * len(cuts)
    commit = decode(out[k + 1]["replies"][-1])
    assert commit[0] == proto.MODEL_COMMIT | proto.REPLY, commit
    assert json.loads(decode(out[k + 2]["replies"][-1])[2])["model"]["sha256"] == NEW_SHA
    assert json.loads(decode(out[k + 4]["replies"][0])[2])["model"]["sha256"] == NEW_SHA
    assert A.MODEL_PART not in out[k + 5]["files"] and out[k + 5]["files"]["model.rku"] == len(NEW)


def test_a_schema_too_big_for_info_is_read_with_schema_in_pieces(tmp_path):
    b = CpApp(tmp_path)
    small = b.app.engine.grammar.summary()
    big = dict(("function_number_%03d" % i, ["parameter_a", "parameter_b", "parameter_c"]) for i in range(80))
    b.app.engine.grammar.summary = lambda: big
    info = b.info()
    assert info["model"]["schema"] is None and info["model"]["schema_truncated"] is True
    data, total = b"", None
    while total is None or len(data) < total:
        t, _s, p = decode(b.ask(proto.SCHEMA, 1 + len(data) % 60000, struct.pack("<I", len(data))))
        assert t == proto.SCHEMA | proto.REPLY and len(p) <= proto.MAX_PAYLOAD
        total = struct.unpack_from("<I", p)[0]
        data += p[4:]
    assert total > 2 * proto.MAX_PAYLOAD and json.loads(data) == big
    assert struct.unpack("<I", decode(b.ask(proto.SCHEMA, 2, struct.pack("<I", total + 5)))[2]) == (total,)
    assert error_code(b.ask(proto.SCHEMA, 3, b"")) == proto.E_REQUEST
    b.app.engine.grammar.summary = lambda: small
    assert b.info()["model"]["schema"] == small


# ---- garbage collection after the reply ------------------------------------------------------------------

class _OneQueryLink:
    """A link that delivers one QUERY frame, records what happens in order, then stops the serve loop."""
    name = "test"

    def __init__(self, log):
        self.log = log
        self.decoder = proto.Decoder()
        self.frames = [frame(proto.QUERY, 3, b"turn on the kitchen light")]
        self.reads = 0

    def read(self):
        self.reads += 1
        if self.frames:
            return self.frames.pop()
        if (self.log and self.log[-1][0] == "collect") or self.reads > 5000:
            raise KeyboardInterrupt         # ends serve() (it catches Exception, not this)
        return b""                          # polled mid-inference and after the reply: quiet link

    def write(self, data):
        self.log.append(("write", decode(data)[0]))

    def served(self):
        pass

    def flush(self):
        pass


def test_serve_collects_garbage_after_the_query_reply_not_before(tmp_path, monkeypatch):
    """The query's latency holds no garbage collection: serve() collects once the reply is written."""
    b = CpApp(tmp_path)
    log = []
    monkeypatch.setattr(A.gc, "collect", lambda: log.append(("collect",)))
    with pytest.raises(KeyboardInterrupt):
        A.serve(b.app, [_OneQueryLink(log)])
    assert log == [("write", proto.QUERY | proto.REPLY), ("collect",)]
    assert b.app.collect_due is False
    # requests other than QUERY leave nothing to collect
    b.ask(proto.PING, 4, b"x")
    assert b.app.collect_due is False
