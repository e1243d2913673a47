"""Never invent a value (issue 19): a refusing model answers a request for a value the schema does not allow with
no call and the reason, on the board (rkfw.infer, the QUERY reply) and in the host reference; generated refusals
teach it."""
import json

import pytest

from reku import paths
from reku.model import data, rkufile
from reku.model.objective import Encoded
from reku.model.reference import Reference
from reku.model.skill import compile_schema, load_skill
from reku.model.synth import random_model
from rkfw import infer, kernels, rku
from rkfw.steps import target_steps

SKILLS = ["home", "car", "greenhouse"]


def bounded(skill):
    """(function, parameter, schema) of every integer and every enum parameter."""
    return [(fn, k, p) for fn in skill.fns for k, p in skill.params(fn).items()
            if p["type"] == "integer" or "enum" in p]


def _value(p):
    if "enum" in p:
        return p["enum"][0]
    if p["type"] == "integer":
        return p["minimum"]
    if p["type"] == "boolean":
        return True
    return "x"


@pytest.mark.parametrize("name", SKILLS)
def test_every_bounded_parameter_can_be_refused_with_its_reason(name):
    """For every integer and enum parameter: the steps that refuse it end the answer with no call, and the
    grammar says why and which parameter; a model that does not refuse (every bundled one so far) never can."""
    skill = load_skill(paths.SKILLS / name)
    from reku.model.tokenizer import ALPHABET
    tok = infer.Tokenizer(ALPHABET)
    g = rkufile.grammar(*compile_schema(skill, refuse=True))
    plain = rkufile.grammar(*compile_schema(skill))
    assert g.refuse and not plain.refuse
    for fn, k, p in bounded(skill):
        args = {}
        for k2, p2 in skill.params(fn).items():           # the parameters before it, in schema order
            if k2 == k:
                break
            args[k2] = _value(p2)
        args[k] = None
        text = "x x x"
        steps = target_steps(g, [{"name": fn, "arguments": args}], text, tok)
        assert steps[-1][0] == infer.K_TOKEN and steps[-1][1] == infer.NOCALL
        assert g.calls() == [] and g.done
        assert g.reason() == ("out of range" if p["type"] == "integer" else "unknown value", fn, k)
        with pytest.raises(ValueError):                   # not a step the plain grammar offers
            target_steps(plain, [{"name": fn, "arguments": args}], text, tok)
    g.reset("hello", tok)
    g.feed(infer.NOCALL)
    assert g.calls() == [] and g.reason() == ("not understood", None, None)
    home = rku.load(paths.model_path("home").read_bytes())
    assert not infer.Grammar(home.tensor("grammar").data).refuse


@pytest.mark.parametrize("name", SKILLS)
def test_generated_refusals_cover_every_bounded_parameter(name):
    skill = load_skill(paths.SKILLS / name)
    gen = data.generate(skill, 6000, seed=4, schema=0.5, refusals=0.2)
    assert gen == data.generate(skill, 6000, seed=4, schema=0.5, refusals=0.2)
    assert data.generate(skill, 300, seed=4) == data.generate(skill, 300, seed=4, refusals=0.0)
    refs = [ex for ex in gen if "refuse" in ex]
    assert 0.15 < len(refs) / len(gen) < 0.25
    seen = set()
    for ex in refs:
        assert ex["calls"] == []
        c = ex["refuse"][-1]
        (k, p), = [(k, skill.params(c["name"])[k]) for k, v in c["arguments"].items() if v is None]
        seen.add((c["name"], k))
        if ex["reason"] == "out of range":
            assert p["type"] == "integer"
            runs = [int(m) for m in __import__("re").findall(r"-?\d+", ex["query"])]
            assert any(not p["minimum"] <= v <= p["maximum"] for v in runs), ex
        else:
            assert ex["reason"] == "unknown value" and "enum" in p
    want = {(fn, k) for fn, k, p in bounded(skill) if p["type"] == "integer" or len(p["enum"]) >= 3}
    assert want <= seen, want - seen
    # every refusal is a training sequence of a refusing grammar, and none of a plain one
    from reku.model.tokenizer import ALPHABET
    tok = infer.Tokenizer(ALPHABET)
    ds = Encoded(refs[:300], tok, rkufile.grammar(*compile_schema(skill, refuse=True)), tok.n_in)
    assert len(ds) == 300 and not ds.skipped
    assert len(Encoded(refs[:50], tok, rkufile.grammar(*compile_schema(skill)), tok.n_in).skipped) == 50


TOOLS = json.loads((paths.SKILLS / "home" / "tools.json").read_text())
REQUESTS = ["set the thermostat to -40", "dim the kitchen to 250%", "set an alarm for 25:99", "turn on the kitchen light",
            "play jazz", "set brightness -5 and 999", "open the blinds in the attic", "what's the capital of france"]


def test_reasons_match_between_engine_and_reference():
    whys = set()
    for seed in (8, 9, 10, 12):
        m = rku.load(random_model(TOOLS, seed=seed, d=40, f=80, layers=2, refuse=True))
        r = Reference(m)
        tiers = [kernels.PYTHON] + ([kernels.best()] if kernels.best().TIER != "python" else [])
        for q in REQUESTS:
            want = r.run(q)[0]
            for k in tiers:
                calls, st = infer.Engine(m, k).run(q)
                assert calls == want and st.get("why") == r.why, (seed, q, k.TIER)
            whys.add(r.why[0] if r.why else None)
    assert {"out of range", "unknown value", "not understood", None} <= whys      # every path taken


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_query_reply_says_why(runtime, tmp_path):
    """The board's QUERY reply (virtual board on both runtimes) carries the reason and the refused parameter."""
    from conftest import require_runtime
    from reku.client import Client
    from reku.sim import VirtualBoard
    require_runtime(runtime)
    blob = random_model(TOOLS, seed=9, d=40, f=80, layers=2, refuse=True)
    (tmp_path / "m.rku").write_bytes(blob)
    r = Reference(rku.load(blob))
    with VirtualBoard(runtime=runtime, model=str(tmp_path / "m.rku")) as vb, Client.serial(vb.port, timeout=30) as c:
        for q in REQUESTS:
            res = c.query(q)
            want = r.run(q)[0]
            assert [x.to_dict() for x in res.calls] == want, q
            if want:
                assert res.reason is None
            else:
                assert (res.reason, res.function, res.param) == tuple(r.why), q
    if runtime == "cpython":                        # `reku query` prints them
        import io
        import contextlib
        from reku.cli import main
        refused = [q for q in REQUESTS if r.run(q)[0] == [] and r.why[1]][0]
        with VirtualBoard(runtime=runtime, model=str(tmp_path / "m.rku")) as vb:
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                assert main(["query", "--port", vb.port, refused]) == 0
        r.run(refused)
        assert json.loads(buf.getvalue()) == {"calls": [], "reason": r.why[0], "function": r.why[1], "param": r.why[2]}


def test_eval_reports_reason_accuracy(tmp_path):
    """reku eval scores the reason where the data says one (skills/*/refuse.jsonl)."""
    from reku.model.evaluate import evaluate_model
    m = rku.load(random_model(TOOLS, seed=9, d=40, f=80, layers=2, refuse=True))
    r = Reference(m)
    lines = []
    for q in REQUESTS:
        calls = r.run(q)[0]
        if not calls and r.why[1]:
            lines.append({"query": q, "calls": [], "reason": r.why[0], "param": r.why[2]})
            lines.append({"query": q, "calls": [], "reason": "out of range" if r.why[0] != "out of range"
                          else "unknown value"})
    res = evaluate_model(m, lines)
    assert res["reasons"] == len(lines) >= 4 and res["reason_accuracy"] == 0.5


def test_a_refusing_model_is_format_version_3_which_a_version_2_reader_refuses(monkeypatch):
    """A version 2 reader (firmware before the refuse flag) would read max_calls 32770 and never refuse: a refusing
    model says version 3, so such a board answers its upload with the reader's error instead."""
    import struct
    plain = random_model(TOOLS, seed=9, d=40, f=80, layers=2)
    refusing = random_model(TOOLS, seed=9, d=40, f=80, layers=2, refuse=True)
    assert struct.unpack_from("<H", plain, 4)[0] == 2            # a model that does not refuse stays version 2
    assert struct.unpack_from("<H", (paths.SKILLS / "home" / "model.rku").read_bytes(), 4)[0] == 2
    assert struct.unpack_from("<H", refusing, 4)[0] == 3
    assert infer.Grammar(rku.load(refusing).tensor("grammar").data).refuse
    monkeypatch.setattr(rku, "VERSION", 2)                        # the reader as it was before version 3
    rku.load(plain)
    with pytest.raises(rku.RkuError, match=r"unknown version 3 \(this reader knows 2..2\)"):
        rku.load(refusing)


def test_repack_marks_a_refusing_version_2_file_as_version_3():
    import struct
    import zlib
    blob = bytearray(random_model(TOOLS, seed=9, d=40, f=80, layers=2, refuse=True))
    struct.pack_into("<H", blob, 4, 2)                            # as written before version 3
    struct.pack_into("<I", blob, len(blob) - 4, zlib.crc32(bytes(blob[:-4])) & 0xFFFFFFFF)
    out = rkufile.repack(bytes(blob))
    assert struct.unpack_from("<H", out, 4)[0] == 3 and out[8:-4] == bytes(blob[8:-4])
    plain = random_model(TOOLS, seed=9, d=40, f=80, layers=2)
    assert rkufile.repack(plain) == plain
