"""A tiny end-to-end run in seconds: reku train -> reku eval -> reku inspect on a toy skill."""
import json
import subprocess
import sys

import pytest

from reku.model import data
from reku.model.skill import load_skill
from reku.model.tokenizer import ALPHABET

TOOLS = [
    {"type": "function", "function": {"name": "lamp", "description": "lamp on/off", "parameters": {
        "type": "object", "properties": {"state": {"type": "string", "enum": ["on", "off"]}}, "required": ["state"]}}},
    {"type": "function", "function": {"name": "wait", "description": "wait", "parameters": {
        "type": "object", "properties": {"minutes": {"type": "integer", "minimum": 1, "maximum": 60}},
        "required": ["minutes"]}}},
    {"type": "function", "function": {"name": "say", "description": "say text", "parameters": {
        "type": "object", "properties": {"text": {"type": "string", "examples": ["hello", "good night", "welcome home"]}},
        "required": ["text"]}}},
]
EXAMPLES = [
    {"query": "turn the lamp {state}", "calls": [{"name": "lamp", "arguments": {"state": "{state}"}}]},
    {"query": "lamp {state}", "calls": [{"name": "lamp", "arguments": {"state": "{state}"}}]},
    {"query": "wait {minutes} minutes", "calls": [{"name": "wait", "arguments": {"minutes": "{minutes}"}}]},
    {"query": "pause for {minutes} min", "calls": [{"name": "wait", "arguments": {"minutes": "{minutes}"}}]},
    {"query": "say {text}", "calls": [{"name": "say", "arguments": {"text": "{text}"}}]},
    {"query": "announce {text}", "calls": [{"name": "say", "arguments": {"text": "{text}"}}]},
    {"query": "what is love", "calls": []},
]


def reku(*args):
    return subprocess.run([sys.executable, "-m", "reku.cli"] + list(args), capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    d = tmp_path_factory.mktemp("toy")
    (d / "tools.json").write_text(json.dumps(TOOLS))
    (d / "examples.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EXAMPLES))
    test = data.generate(load_skill(d), 150, seed=4242)
    (d / "test.jsonl").write_text("".join(json.dumps(e) + "\n" for e in test))
    return d


def test_board_fit_counts_heap_and_the_largest_block():
    """`reku inspect`'s fit on a profile: the estimated peak within 78% of heap_kb, and a model read into RAM
    within block_kb (one allocation); with ROMFS the file stays in flash and neither its bytes nor the block count."""
    import copy

    from reku.model.cli import HEAP_TARGET_SHARE, board_fit, inspect_model, load_model
    from rkfw import boards
    model, path = load_model("home")
    res = inspect_model(model, path.stat().st_size)
    pico = boards.load("pico")
    assert board_fit(pico, res)["fits"] and res["boards"]["pico"] == board_fit(pico, res)
    p = copy.deepcopy(pico)
    p["block_kb"] = res["file_bytes"] // 1024            # one KiB short of the file
    assert not board_fit(p, res)["fits"]
    p["block_kb"] += 1
    assert board_fit(p, res)["fits"]
    p["heap_kb"] = int(res["peak_heap_model_in_ram"] / HEAP_TARGET_SHARE / 1024)      # just under the peak's share
    assert not board_fit(p, res)["fits"]
    p["romfs"], p["block_kb"] = True, 1
    assert board_fit(p, res)["fits"] == (res["peak_heap_model_in_flash"] <= p["heap_kb"] * 1024 * HEAP_TARGET_SHARE)
    assert board_fit(p, res)["fits"]


def test_training_chart(tmp_path):
    """The chart `reku train` writes: a PNG with the loss and, when there were held-out evaluations, the held-out
    exact match and no-call accuracy on a second axis, each axis labelled."""
    import struct

    from reku.model.chart import training_chart
    hist = [(i, 2.0 / (1 + i / 50), 0.5) for i in range(600)]
    evals = [(200, 0.4, 0.7), (400, 0.6, 0.8), (600, 0.7, 0.9)]
    got = training_chart(hist, evals, tmp_path / "a.png", title="toy")
    assert got["axes"] == ["loss", "held-out accuracy (generated dev set)", "step"]
    assert got["curves"] == ["training loss (mean of 3 steps)", "held-out exact match", "held-out no-call accuracy"]
    png = (tmp_path / "a.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (750, 420)
    got = training_chart(hist, [], tmp_path / "b.png")
    assert got["curves"] == ["training loss (mean of 3 steps)"] and len(got["axes"]) == 2


def test_train_eval_inspect(toy):
    out = toy / "m.rku"
    r = reku("train", "--skill", str(toy), "--out", str(out), "--size", "tiny", "--steps", "200",
             "--examples", "1000", "--batch", "32", "--seed", "1", "--eval-every", "100")
    assert r.returncode == 0, r.stderr
    assert "loss" in r.stdout and "held-out" in r.stdout
    assert r.stdout.count("held-out exact") == 2          # progress lines at steps 100 and 200
    assert out.exists() and out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = reku("eval", "--model", str(out), "--data", str(toy / "test.jsonl"), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert {"exact_match", "name_accuracy", "no_call_accuracy", "valid", "n"} <= set(res)
    assert res["n"] == 150 and res["valid"] == 1.0
    # 200 steps of a 40-wide model learn the toy well beyond the always-no-call baseline (~15%)
    assert res["exact_match"] > 0.3 and res["name_accuracy"] > 0.6
    r = reku("inspect", str(out), "--json")
    assert r.returncode == 0, r.stderr
    ins = json.loads(r.stdout)
    assert ins["file_bytes"] == out.stat().st_size
    assert 1.6 <= ins["bits_per_ternary_weight"] <= 1.65      # tiny: 9 per-tensor scales over 17K weights
    assert ins["boards"]["pico"]["fits"]


def test_bundled_model_bits_per_weight():
    r = reku("inspect", "home", "--json")
    assert r.returncode == 0, r.stderr
    assert 1.6 <= json.loads(r.stdout)["bits_per_ternary_weight"] <= 1.62


def test_the_largest_shape_that_fits_is_picked(toy):
    """Sizing is exact: the untrained file of a shape has the trained file's size. For a byte budget the picked
    shape fits and the next larger does not; for a board, its estimated peak heap decides (reku inspect)."""
    from reku.model.cli import _board_fits, inspect_model
    from reku.model.skill import compile_schema
    from reku.model.objective import build_model_bytes
    from reku.model.train import fit_shape, shapes
    from reku.model.qat import Net
    from rkfw import infer, rku
    schema, vocab = compile_schema(load_skill(toy))
    n_in = infer.Tokenizer(ALPHABET).n_in

    def size(shape):
        return len(build_model_bytes(Net(n_in, len(vocab), d=shape[0], f=shape[1], layers=shape[2]), schema, vocab, "x"))

    order = shapes()
    for kb in (12, 40, 100):
        got = fit_shape(schema, vocab, n_in, lambda b: len(b) <= kb * 1024)
        assert size(got) <= kb * 1024 < size(order[order.index(got) + 1])
    assert fit_shape(schema, vocab, n_in, lambda b: len(b) <= 1000) is None
    got = fit_shape(schema, vocab, n_in, _board_fits("pico"))
    nxt = order[order.index(got) + 1]
    blob = build_model_bytes(Net(n_in, len(vocab), d=nxt[0], f=nxt[1], layers=nxt[2]), schema, vocab, "x")
    assert not inspect_model(rku.load(blob), len(blob))["boards"]["pico"]["fits"]


def test_errors_are_one_line(toy, tmp_path):
    r = reku("eval", "--model", str(tmp_path / "none.rku"), "--data", str(toy / "test.jsonl"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "not found" in r.stderr
    bad = tmp_path / "bad.rku"
    bad.write_bytes(b"RKU1" + b"\0" * 30)
    r = reku("inspect", str(bad))
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    r = reku("train", "--skill", str(tmp_path), "--out", str(tmp_path / "x.rku"))
    assert r.returncode == 1 and "no tools.json" in r.stderr
    r = reku("train", "--skill", str(toy), "--out", str(tmp_path / "x.rku"), "--algo", "ff", "--float")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "--float" in r.stderr
    for dims, why in (("42,80,2", "multiples of 5"), ("40,80", "three integers")):
        r = reku("train", "--skill", str(toy), "--out", str(tmp_path / "x.rku"), "--dims", dims)
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and why in r.stderr
    r = reku("train", "--skill", str(toy), "--out", str(tmp_path / "x.rku"), "--budget-kb", "1")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "not even the smallest" in r.stderr
    r = reku("train", "--skill", str(toy), "--out", str(tmp_path / "x.rku"), "--board", "nosuch")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "unknown board" in r.stderr
    r = reku("train", "--skill", str(toy), "--out", str(tmp_path / "x.rku"), "--size", "large", "--board", "pico")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "does not fit" in r.stderr


def test_dims_sets_the_network_shape(toy, tmp_path):
    out = tmp_path / "d.rku"
    r = reku("train", "--skill", str(toy), "--out", str(out), "--dims", "20,30,2", "--steps", "2",
             "--examples", "50", "--batch", "4", "--eval-every", "0", "--quiet")
    assert r.returncode == 0, r.stderr
    a = json.loads(reku("inspect", str(out), "--json").stdout)["arch"]
    assert (a["d"], a["f"], a["layers"]) == (20, 30, 2)


def test_hold_out_chooses_on_example_lines_it_does_not_train_on(toy, tmp_path):
    """--hold-out SHARE: that share of examples.jsonl (the same lines for every seed) is kept out of the training
    data and, filled once, is the dev set the checkpoint is chosen on; a share that leaves nothing is one line."""
    skill = load_skill(toy)
    train, dev = data.hold_out(skill, 0.3)
    assert len(dev) == 2 and len(train) == len(EXAMPLES) - 2
    assert data.hold_out(load_skill(toy), 0.3) == (train, dev)
    kept = {json.dumps(e["calls"]) for e in train}
    held = [e for e in skill.examples if e not in train]
    assert len(held) == 2 and all(e not in train for e in held)
    for e, r in zip(held, dev):                 # each held line, its placeholders filled, is a dev request
        assert r["query"].split()[0] == e["query"].split()[0] and len(r["calls"]) == len(e["calls"])
    assert dev == data.requests(held, skill)    # the few-example benchmark's dev lines are filled the same way
    assert kept                                 # the rest still teaches calls
    out = tmp_path / "h.rku"
    r = reku("train", "--skill", str(toy), "--out", str(out), "--size", "tiny", "--steps", "20", "--examples", "200",
             "--batch", "8", "--eval-every", "10", "--hold-out", "0.3", "--prior", "none")
    assert r.returncode == 0, r.stderr
    assert "held-out (2 example lines kept out)" in r.stdout.splitlines()[-1]
    r = reku("train", "--skill", str(toy), "--out", str(out), "--hold-out", "0.99")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "leaves none to train on" in r.stderr
    r = reku("train", "--skill", str(toy), "--out", str(out), "--hold-out", "-0.2")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "a share between 0 and 1" in r.stderr
