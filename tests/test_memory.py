"""A board that learns from a correction (rkfw.memory, rkfw.teach; docs/learning.md): FEEDBACK with the corrected
calls changes the answer to that request and its near paraphrases, survives a reset, is bounded (LRU), listed and
forgotten over the protocol; the host reference and every kernel tier give the same tokens with it; the same
script on MicroPython (WebAssembly) gives the same replies as on CPython."""
import json
import math
import struct

import pytest

from rkfw import app as A
from rkfw import auth, infer, kernels, proto
from rkfw import memory as M
from rkfw import steps as S

from proto_support import HOME_MODEL, CpApp, decode, error_code, frame, make_workdir, run_mp, variant_model
from conftest import require_runtime

DARK = "make it dark in the bathroom"
DARK_CALL = [{"name": "set_light", "arguments": {"room": "bathroom", "state": "off"}}]
TIDY = "tidy up the hallway"
TIDY_CALL = [{"name": "vacuum", "arguments": {"action": "start", "room": "hallway"}}]
CRANK = "crank the bedroom fan"
CRANK_CALL = [{"name": "set_fan", "arguments": {"room": "bedroom", "speed": "high"}}]
FAR = ["set the thermostat to 21", "lock the front door", "play some jazz in the kitchen", "what's the weather"]


def fb(text, corrected, calls=()):
    return json.dumps({"text": text, "outcome": "corrected", "calls": list(calls), "corrected": corrected}).encode()


def correct(b, text, corrected, seq=1):
    t, s, p = decode(b.ask(proto.FEEDBACK, seq, fb(text, corrected)))
    assert t == proto.FEEDBACK | proto.REPLY
    return json.loads(p)


def query(b, text, seq=2):
    return json.loads(decode(b.ask(proto.QUERY, seq, text.encode()))[2])["calls"]


def listing(b, seq=3):
    data = b""
    while True:
        p = decode(b.ask(proto.MEMORY_LIST, seq, struct.pack("<I", len(data))))[2]
        total = struct.unpack_from("<I", p)[0]
        data += p[4:]
        if len(data) >= total:
            return json.loads(data)


def test_integer_helpers_are_exact_and_stay_small():
    for n in list(range(2000)) + [10 ** 9, 4096 * 127 * 127, 2 ** 30 - 1]:
        assert M.isqrt(n) == math.isqrt(n)
    # the largest intermediate of cosine() for d = 4096 stays a MicroPython small integer (< 2**30)
    nk = nq = M.isqrt(4096 * 127 * 127)
    s = nk * nq
    assert (s << 4) < 2 ** 30 and ((s << 4) // nk << 6) < 2 ** 30
    assert M.cosine(s, nk, nq) == 1024 and M.cosine(-s, nk, nq) == -1024
    assert M.cap({}) == M.RECORDS and M.cap({"memory_records": 0}) == 1


def test_a_correction_changes_that_request_and_its_paraphrases_only(tmp_path):
    b = CpApp(tmp_path)
    before = {t: query(b, t) for t in [DARK, "make it dark in the kitchen"] + FAR}
    assert before[DARK] != DARK_CALL
    r = correct(b, DARK, DARK_CALL)
    assert r["learnt"]["decisions"] >= 1 and r["learnt"]["entries"] == 1 and r["learnt"]["evicted"] == 0
    assert (tmp_path / A.MEMORY_FILE).exists()
    assert query(b, DARK) == DARK_CALL
    # a near paraphrase with another room: the corrected function and state, the room read from the request
    assert query(b, "make it dark in the kitchen") == [
        {"name": "set_light", "arguments": {"room": "kitchen", "state": "off"}}]
    for t in FAR:
        assert query(b, t) == before[t], t
    # the feedback line is stored as before, for `reku learn`
    line = json.loads((tmp_path / "feedback.jsonl").read_text().splitlines()[-1])
    assert line["corrected"] == DARK_CALL and line["outcome"] == "corrected"
    # after a reset (a new App on the same files) the board still answers so
    b.boot()
    assert b.app.engine.memory.records == 1
    assert query(b, DARK) == DARK_CALL


def test_nothing_is_stored_when_the_board_already_answers_so(tmp_path):
    b = CpApp(tmp_path)
    right = query(b, FAR[0])
    r = correct(b, FAR[0], right)
    assert r["learnt"] == {"decisions": 0, "entries": 0, "cap": M.RECORDS, "evicted": 0}
    assert not (tmp_path / A.MEMORY_FILE).exists() and b.app.engine.memory is None


@pytest.mark.parametrize("calls, why", [
    ([{"name": "set_light", "arguments": {"room": "attic", "state": "off"}}], "not in enum"),
    ([{"name": "fly_to_mars", "arguments": {}}], "unknown function"),
    ([{"name": "set_light", "arguments": {"room": "kitchen"}}], "missing required state"),
    ([{"name": "play_music", "arguments": {"query": "opera"}}], "is not a span"),
    (["set_light"], "unknown function"),
    ([{"name": "set_light", "arguments": []}], "arguments must be an object"),
])
def test_calls_the_schema_cannot_produce_are_stored_but_not_learnt(tmp_path, calls, why):
    b = CpApp(tmp_path)
    correct(b, TIDY, TIDY_CALL)
    r = correct(b, DARK, calls, seq=5)
    assert why in r["learnt"]["error"] and "learnt" in r
    assert json.loads((tmp_path / "feedback.jsonl").read_text().splitlines()[-1])["corrected"] == calls
    assert [e["text"] for e in listing(b)["entries"]] == [TIDY]
    assert query(b, TIDY) == TIDY_CALL


def test_relearning_a_request_replaces_its_entry(tmp_path):
    b = CpApp(tmp_path)
    correct(b, DARK, DARK_CALL)
    other = [{"name": "set_light_color", "arguments": {"room": "bathroom", "color": "blue"}}]
    r = correct(b, DARK, other, seq=4)
    assert r["learnt"]["entries"] == 1
    assert query(b, DARK) == other
    assert listing(b)["entries"] == [{"text": DARK, "calls": other, "decisions": r["learnt"]["decisions"]}]


def test_the_memory_is_bounded_and_forgets_the_least_recently_used(tmp_path):
    b = CpApp(tmp_path, config={"memory_records": 2})
    correct(b, DARK, DARK_CALL)
    correct(b, TIDY, TIDY_CALL, seq=4)
    assert query(b, DARK) == DARK_CALL          # DARK is used after TIDY was learnt: TIDY is the oldest use
    r = correct(b, CRANK, CRANK_CALL, seq=6)
    assert r["learnt"]["evicted"] == 1 and r["learnt"]["entries"] == 2 and r["learnt"]["cap"] == 2
    assert [e["text"] for e in listing(b)["entries"]] == [DARK, CRANK]
    assert query(b, TIDY) != TIDY_CALL and query(b, CRANK) == CRANK_CALL
    # the file keeps what RAM keeps, in the order of use: after a reset the same two, the same order
    b.boot()
    assert [e["text"] for e in listing(b)["entries"]] == [DARK, CRANK]


def test_list_in_pages_and_forget_one_or_all(tmp_path):
    b = CpApp(tmp_path)
    texts = ["%s %s" % (DARK, "please " * k) for k in range(12)]      # long texts: the listing spans frames
    colours = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "white", "warm_white"]
    calls = [[{"name": "set_light_color", "arguments": {"room": "bathroom", "color": c}}] for c in colours]
    calls += [DARK_CALL, [{"name": "set_light", "arguments": {"room": "bathroom", "state": "on"}}], []]
    for i, t in enumerate(texts):         # each a paraphrase of the one before, each with another answer
        assert correct(b, t, calls[i], seq=10 + i)["learnt"]["entries"] == i + 1
    m = listing(b)
    assert len(json.dumps(m)) > proto.MAX_PAYLOAD and [e["text"] for e in m["entries"]] == texts
    assert m["model"] == b.app.model.sha256[:16] and m["cap"] == M.RECORDS
    r = json.loads(decode(b.ask(proto.MEMORY_FORGET, 40, struct.pack("<I", 0)))[2])
    assert r == {"entries": 11} and [e["text"] for e in listing(b)["entries"]] == texts[1:]
    assert error_code(b.ask(proto.MEMORY_FORGET, 41, struct.pack("<I", 11))) == proto.E_REQUEST
    assert error_code(b.ask(proto.MEMORY_FORGET, 42, b"\x00")) == proto.E_REQUEST
    assert error_code(b.ask(proto.MEMORY_LIST, 43, b"")) == proto.E_REQUEST
    r = json.loads(decode(b.ask(proto.MEMORY_FORGET, 44, struct.pack("<I", 0xFFFFFFFF)))[2])
    assert r == {"entries": 0} and not (tmp_path / A.MEMORY_FILE).exists()
    assert b.app.engine.memory is None and query(b, DARK) != DARK_CALL


def test_a_memory_made_for_another_model_is_not_used(tmp_path):
    b = CpApp(tmp_path)
    correct(b, DARK, DARK_CALL)
    (tmp_path / "model.rku").write_bytes(variant_model("home-variant-mem"))
    b.boot()
    assert b.app.engine.memory is None and query(b, DARK) != DARK_CALL
    m = listing(b)
    assert m["entries"] == [] and m["stale"] == (tmp_path / A.MEMORY_FILE).stat().st_size
    # learning for the new model replaces the stale file
    correct(b, TIDY, TIDY_CALL, seq=7)
    assert [e["text"] for e in listing(b)["entries"]] == [TIDY] and "stale" not in listing(b)


def test_a_damaged_memory_file_leaves_the_model_serving(tmp_path, capsys):
    b = CpApp(tmp_path)
    correct(b, DARK, DARK_CALL)
    correct(b, TIDY, TIDY_CALL, seq=4)
    data = (tmp_path / A.MEMORY_FILE).read_bytes()
    (tmp_path / A.MEMORY_FILE).write_bytes(data[:40])
    b.boot()
    assert b.app.engine is not None and b.app.engine.memory is None
    assert "memory.rkm" in capsys.readouterr().out
    assert query(b, FAR[0])


def test_learning_can_be_switched_off_and_forgetting_needs_the_key(tmp_path):
    b = CpApp(tmp_path / "off", config={"learn": False})
    assert "learnt" not in correct(b, DARK, DARK_CALL)
    assert not (tmp_path / "off" / A.MEMORY_FILE).exists()
    key = bytes(range(32))
    k = CpApp(tmp_path / "key", key=key)
    correct(k, DARK, DARK_CALL)
    payload = struct.pack("<I", 0xFFFFFFFF)
    assert error_code(k.ask(proto.MEMORY_FORGET, 5, payload)) == proto.E_AUTH
    signed = auth.add_auth(key, k.app.nonce, proto.MEMORY_FORGET, 1, payload)
    assert json.loads(decode(k.ask(proto.MEMORY_FORGET, 6, signed))[2]) == {"entries": 0}


def test_teaching_uses_the_training_targets(tmp_path):
    """The decisions a record stores are token steps of rkfw.steps.target_steps for the corrected calls."""
    b = CpApp(tmp_path)
    correct(b, CRANK, CRANK_CALL)
    e = b.app.engine
    m = e.memory
    n = e.tok.encode(CRANK, e.ids)
    tokens = [c for kind, c, _ in S.target_steps(infer.Grammar(e.model.tensor("grammar").data), CRANK_CALL,
                                                  CRANK[:n], e.tok) if kind == infer.K_TOKEN]
    dec = [(m.dec[2 * j], m.dec[2 * j + 1]) for j in range(m.first[0], m.first[1])]
    assert dec and all(tokens[k] == t for k, t in dec)


def _taught_memory(tmp_path):
    b = CpApp(tmp_path)
    for i, (t, c) in enumerate([(DARK, DARK_CALL), (TIDY, TIDY_CALL), (CRANK, CRANK_CALL)]):
        correct(b, t, c, seq=i + 1)
    return b


PARITY_TEXTS = [DARK, TIDY, CRANK, "make the bathroom dark", "make it dark in the kitchen", "tidy up the kitchen",
                "crank up the office fan", "please tidy up the hallway"] + FAR


def test_reference_and_every_tier_agree_with_a_memory(tmp_path):
    from reku import native
    from reku.model.reference import Reference
    b = _taught_memory(tmp_path)
    model = b.app.model
    path = str(tmp_path / A.MEMORY_FILE)
    tiers = [kernels.PYTHON] if hasattr(kernels, "PYTHON") else [kernels.best()]
    if native.available():
        tiers.append(native.tier())
    ref = Reference(model)
    mem = ref.memory(path)
    assert mem.records == 3
    engines = []
    for tier in tiers:
        e = infer.Engine(model, tier)
        e.memory = M.load(e, path, M.tag_of(model), M.RECORDS)
        engines.append(e)
    changed = 0
    for t in PARITY_TEXTS:
        want = ref.run(t, mem)[0]
        changed += want != ref.run(t)[0]
        for e in engines:
            assert e.run(t)[0] == want, (e.tier, t)
    assert changed >= 5                  # the memory decided several of them
    assert len(engines) == 2 or not native.available()


def _mp_steps():
    q = lambda s, t: b"\x00" + frame(proto.QUERY, s, t.encode())               # noqa: E731
    return [
        q(1, DARK),                                                               # 0
        b"\x00" + frame(proto.FEEDBACK, 2, fb(DARK, DARK_CALL)),                  # 1
        q(3, DARK), q(4, "make it dark in the kitchen"), q(5, FAR[0]),            # 2, 3, 4
        b"\x00" + frame(proto.FEEDBACK, 6, fb(TIDY, TIDY_CALL)),                  # 5
        "#reboot",                                                                # 6
        q(7, DARK), q(8, TIDY),                                                   # 7, 8
        b"\x00" + frame(proto.MEMORY_LIST, 9, struct.pack("<I", 0)),             # 9
        b"\x00" + frame(proto.MEMORY_FORGET, 10, struct.pack("<I", 0)),          # 10
        q(11, DARK), q(12, TIDY),                                                 # 11, 12
        b"\x00" + frame(proto.MEMORY_FORGET, 13, struct.pack("<I", 0xFFFFFFFF)), # 13
        q(14, TIDY), "#ls",                                                       # 14, 15
    ]


def test_the_same_script_on_micropython_gives_the_same_replies(tmp_path):
    require_runtime("micropython")
    steps = _mp_steps()
    out = run_mp(make_workdir(tmp_path / "mp"), steps)
    cp = CpApp(tmp_path / "cp")
    cp_out = []
    for s in steps:
        if s == "#reboot":
            cp.boot()
        elif isinstance(s, bytes):
            cp_out.append(cp.feed(s))
    mp_out = [o["replies"] for o, s in zip(out, steps) if not isinstance(s, str)]

    def body(r):        # times differ between runtimes (QUERY's us, the feedback line's t): nothing else may
        t, seq, p = decode(r)
        d = json.loads(p[4:] if t == proto.MEMORY_LIST | proto.REPLY else p)
        d.pop("us", None)
        d.pop("bytes", None)
        return t, seq, d
    assert [[body(r) for r in rs] for rs in mp_out] == [[body(r) for r in rs] for rs in cp_out]
    calls = [json.loads(decode(o["replies"][0])[2])["calls"] if isinstance(s, bytes) and s[3] == proto.QUERY else None
             for o, s in zip(out, steps)]
    assert calls[0] != DARK_CALL and calls[2] == DARK_CALL and calls[7] == DARK_CALL and calls[8] == TIDY_CALL
    assert calls[11] != DARK_CALL and calls[12] == TIDY_CALL and calls[14] != TIDY_CALL
    assert json.loads(decode(out[1]["replies"][0])[2])["learnt"]["entries"] == 1
    assert [e["text"] for e in json.loads(decode(out[9]["replies"][0])[2][4:])["entries"]] == [DARK, TIDY]
    assert "memory.rkm" not in out[15]["files"]


def test_a_failed_write_keeps_what_the_board_had_learnt(tmp_path):
    """Nothing is lost: when the new memory file cannot be written (here its temporary name is taken by a folder,
    as a full filesystem would refuse it), the reply says why and the board goes on with what it had learnt."""
    b = CpApp(tmp_path)
    correct(b, DARK, DARK_CALL)
    before = (tmp_path / A.MEMORY_FILE).read_bytes()
    (tmp_path / (A.MEMORY_FILE + ".tmp")).mkdir()
    r = correct(b, TIDY, TIDY_CALL, seq=5)
    assert "error" in r["learnt"] and "learnt" in r
    assert (tmp_path / A.MEMORY_FILE).read_bytes() == before
    assert b.app.engine.memory is not None and b.app.engine.memory.records == 1
    assert query(b, DARK) == DARK_CALL and query(b, TIDY) != TIDY_CALL
