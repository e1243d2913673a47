"""Integer parity: the numpy reference, the firmware engine on CPython (Python tier) and the firmware on
MicroPython (official WebAssembly build under Node) give identical residual streams, tokens and calls."""
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from reku import paths, sim
from reku.model import rkufile
from reku.model.reference import Reference
from reku.model.synth import random_model
from rkfw import infer, kernels, rku

TOOLS = json.loads((paths.SKILLS / "home" / "tools.json").read_text())
QUERIES = [
    "turn on the kitchen light", "dim the bedroom to 30%", "play some jazz in the kitchen",
    "set a timer for 10 minutes for pasta", "what's the capital of france", "set an alarm for 7:30",
    "", "   ", "Ünïcödé ünknown chârs ☃ in the lounge", "LOCK THE FRONT DOOR!!!",
    "x" * 300, "play " + "very long song title " * 6, "set the volume to 100 and stop the music in the garage",
    "12345678901234567890", "a", "'", "set brightness -5 and 999",
]
MODELS = {
    "i8-1layer": dict(seed=1, d=40, f=80, layers=1),
    "fp4-i8-2layer": dict(seed=2, d=40, f=80, layers=2, acts=["fp4", "i8"]),
    "fp4-all": dict(seed=7, d=40, f=80, layers=2, acts=["fp4", "fp4"]),
    "wide-hot": dict(seed=3, d=80, f=120, layers=1, gain=4.0),
    "ternary-emb": dict(seed=4, d=40, f=80, layers=2, emb="t"),
    "lowrank": dict(seed=5, d=40, f=80, layers=2, acts=["i8", "fp4"], lowrank=3),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def model_blob(request):
    return random_model(TOOLS, **MODELS[request.param])


def test_residual_stream_matches_reference_step_by_step(model_blob):
    m = rku.load(model_blob)
    eng = infer.Engine(m, kernels.PYTHON)
    r = Reference(m)
    r.reset()
    eng._reset()
    rng = np.random.default_rng(0)
    n_ids = m.arch["n_in"] + m.arch["n_out"]
    for t in rng.integers(0, n_ids, size=60):
        eng.step(int(t))
        want = r.step(int(t))
        assert list(eng.h) == list(want)
    # the stream reaches non-trivial magnitudes (the test would be weak on all-zero activations)
    assert max(abs(v) for v in eng.h) > 256


def test_calls_match_reference(model_blob):
    m = rku.load(model_blob)
    eng = infer.Engine(m, kernels.PYTHON)
    r = Reference(m)
    for q in QUERIES:
        calls, st = eng.run(q)
        want, trace = r.run(q)
        assert calls == want, q
        assert st["tokens_out"] == len(trace)
        assert st["tokens_in"] == min(len(q), m.arch["max_in"]) + 1


BUNDLED = sorted(p.name for p in paths.SKILLS.iterdir() if (p / "model.rku").exists())


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_model_matches_reference_and_its_skill(name):
    """Every bundled model decodes its own skill's schema, and the firmware engine equals the numpy reference on
    its held-out requests."""
    from reku.model.skill import compile_schema, load_skill
    skill = load_skill(paths.SKILLS / name)
    m = rku.load(paths.model_path(name).read_bytes())
    schema, vocab = compile_schema(skill, refuse=bool(infer.Grammar(m.tensor("grammar").data).refuse))  # car refuses
    assert rkufile.schema_vocab(m) == (json.loads(json.dumps(schema)), vocab)
    eng = infer.Engine(m)
    r = Reference(m)
    for q in QUERIES[:4] + [ex["query"] for ex in skill.test[:8]]:
        assert eng.run(q)[0] == r.run(q)[0], q


def test_both_skills_are_bundled():
    assert {"home", "car"} <= set(BUNDLED)


def run_micropython(blob, queries, tmp_path):
    mjs = sim.micropython_mjs()
    if mjs is None or not sim.shutil.which("node"):
        pytest.skip("MicroPython WebAssembly build not installed (node_modules missing: `make test` installs it)")
    model = tmp_path / "m.rku"
    model.write_bytes(blob)
    qf = tmp_path / "q.json"
    qf.write_text(json.dumps(queries))
    helper = Path(__file__).parent / "helpers" / "mp_infer.mjs"
    p = subprocess.run(["node", str(helper), str(mjs), str(paths.FIRMWARE), str(model), str(qf)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]


def test_micropython_matches_reference(tmp_path):
    blob = random_model(TOOLS, **MODELS["fp4-i8-2layer"])
    blob_t = random_model(TOOLS, **MODELS["ternary-emb"])
    m = rku.load(blob)
    r = Reference(m)
    got = run_micropython(blob, QUERIES, tmp_path)
    assert len(got) == len(QUERIES)
    for q, g in zip(QUERIES, got):
        assert "error" not in g, g
        assert g["tier"] == "python"
        assert g["sha"] == m.sha256
        assert g["calls"] == r.run(q)[0], q
    rt = Reference(rku.load(blob_t))
    for q, g in zip(QUERIES, run_micropython(blob_t, QUERIES, tmp_path)):
        assert g["calls"] == rt.run(q)[0], q


def test_micropython_bundled_model(tmp_path):
    blob = paths.model_path("home").read_bytes()
    m = rku.load(blob)
    r = Reference(m)
    qs = QUERIES[:6]
    got = run_micropython(blob, qs, tmp_path)
    for q, g in zip(qs, got):
        assert g["calls"] == r.run(q)[0], q
    assert got[0]["calls"], "no call for a plain light request"
    assert got[0]["step_alloc_20"] == 0, "a step of the bundled model allocates on MicroPython"


def test_lowrank_correction_changes_the_stream_and_matches_on_every_tier():
    """A model with low-rank corrections (docs/format.md) differs from the same model without them, and the
    reference, the Python tier and (when built) the native tier agree on it step by step."""
    cfg = dict(seed=6, d=40, f=80, layers=2, acts=["fp4", "i8"])
    m0 = rku.load(random_model(TOOLS, **cfg))
    m1 = rku.load(random_model(TOOLS, lowrank=2, **cfg))
    assert m1.tensor("l0.Wr.lr").shape == (40, 2, 40) and m1.tensor("head.lr").dtype == "lr"
    from reku import native
    tiers = native.tiers()
    r0, r1 = Reference(m0), Reference(m1)
    engines = [infer.Engine(m1, t) for t in tiers]
    r0.reset()
    r1.reset()
    for e in engines:
        e._reset()
    differ = 0
    for t in np.random.default_rng(1).integers(0, m1.arch["n_in"] + m1.arch["n_out"], size=40):
        want = r1.step(int(t))
        differ += int((want != r0.step(int(t))).sum())
        for e in engines:
            e.step(int(t))
            assert list(e.h) == list(want), e.tier
    assert differ > 0
    for q in QUERIES[:6]:
        want = r1.run(q)[0]
        for e in engines:
            assert e.run(q)[0] == want, (e.tier, q)


@pytest.mark.parametrize("name", ["lowrank", "fp4-all"])
def test_micropython_matches_reference_allocation_free(name, tmp_path):
    """Low-rank corrections, and every layer FP4 (x, xf, prev, prevc packed): on MicroPython the calls are the
    reference's and a step allocates nothing."""
    blob = random_model(TOOLS, **MODELS[name])
    r = Reference(rku.load(blob))
    qs = QUERIES[:8]
    got = run_micropython(blob, qs, tmp_path)
    assert len(got) == len(qs)
    for q, g in zip(qs, got):
        assert "error" not in g, g
        assert g["calls"] == r.run(q)[0], q
        assert g["step_alloc_20"] == 0, "a step of %s allocates on MicroPython" % name
