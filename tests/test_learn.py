"""`reku learn`: a deployed model fine-tuned on its board's feedback. The model's network comes back from its .rku
exactly (Net.from_rku), the feedback files are read as the board writes them, a short run learns a household's own
phrasing, the new model is integer-exact on every engine, and a model that got worse on the check set is refused
(nothing written)."""
import json
import subprocess
import sys

import pytest

from reku import paths
from reku.model import learn as L
from reku.model.evaluate import predict
from reku.model.qat import Net          # needs torch: the train extra, which `make test` installs
from rkfw import rku

CAR = paths.SKILLS / "car" / "model.rku"


@pytest.mark.parametrize("skill", ["home", "car"])
def test_a_model_comes_back_as_the_network_that_exports_it(skill):
    m = rku.load((paths.SKILLS / skill / "model.rku").read_bytes())
    net = Net.from_rku(m)
    out = {t[0]: t for t in net.export_tensors()}
    for name, t in m.tensors.items():
        if name in ("grammar", "meta"):
            continue
        assert bytes(out[name][3]) == bytes(t.data) and out[name][4:6] == (t.M, t.S), name
    # the latent weights sit on both sides of the ternarisation threshold, not at its extremes
    w = net.blocks[0].Wr.weight.detach().abs()
    a = w.mean()
    assert ((w > 0.4 * a) & (w < 0.6 * a)).float().mean() > 0.02


def write_feedback(path, lines):
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines))


def corrected(text, calls):
    return {"t": 1, "text": text, "outcome": "corrected", "calls": [], "corrected": calls}


def test_feedback_lines_become_examples(tmp_path):
    f = tmp_path / "fb.jsonl"
    call = [{"name": "set_temperature", "arguments": {"temperature": 21}}]
    write_feedback(f, [corrected("make it cosy", call),
                       {"t": 2, "text": "defog the windscreen", "outcome": "success",
                        "calls": [{"name": "set_defrost", "arguments": {"on": True}}]},
                       {"t": 3, "text": "what's the weather", "outcome": "failure", "calls": []},
                       '{"t": 4, "text": "cut by a power lo',
                       corrected("make it cosy", [{"name": "set_temperature", "arguments": {"temperature": 23}}])])
    ex, counts = L.read_feedback([f])
    assert counts == {"lines": 5, "corrected": 2, "success": 1, "failure": 1, "unreadable": 1}
    assert ex == [{"query": "make it cosy", "calls": [{"name": "set_temperature", "arguments": {"temperature": 23}}]},
                  {"query": "defog the windscreen", "calls": [{"name": "set_defrost", "arguments": {"on": True}}]}]
    many = [{"query": "request %d" % i, "calls": []} for i in range(200)]
    train, held = L.split(many)
    assert 70 < len(train) < 130 and len(train) + len(held) == 200
    assert L.split(many) == (train, held) and not {e["query"] for e in train} & {e["query"] for e in held}


def household(tmp_path):
    """A car whose owners say "toasty" for 24 degrees and "chilly" for 17, in phrasings the model does not know."""
    lines = []
    for word, t in (("toasty", 24), ("chilly", 17), ("balmy", 26), ("crisp", 18)):
        for form in ("make it %s in here", "i want it %s", "%s please", "set it to %s", "go %s"):
            lines.append(corrected(form % word, [{"name": "set_temperature", "arguments": {"temperature": t}}]))
    f = tmp_path / "household.jsonl"
    write_feedback(f, lines)
    check = tmp_path / "check.jsonl"
    from reku.model import data
    from reku.model.skill import load_skill
    skill = load_skill(paths.SKILLS / "car")
    write_feedback(check, data.generate(skill, 120, seed=L.DEV_SEED))
    return f, check


def reku(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "reku.cli"] + list(args), capture_output=True, text=True,
                          timeout=timeout)


def test_learn_writes_a_model_that_knows_the_household_and_refuses_one_that_got_worse(tmp_path):
    fb, check = household(tmp_path)
    out = tmp_path / "car2.rku"
    common = ["--model", "car", "--feedback", str(fb), "--steps", "150", "--check", str(check), "--json"]
    r = reku("learn", *common, "--out", str(out), "--tolerance", "1")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["feedback"]["counts"]["corrected"] == 20 and rep["feedback"]["train"] + rep["feedback"]["held_out"] == 20
    assert rep["after"]["feedback_train"]["exact_match"] > rep["before"]["feedback_train"]["exact_match"]
    new = rku.load(out.read_bytes())
    assert new.arch == rku.load(CAR.read_bytes()).arch and new.model_id != rku.load(CAR.read_bytes()).model_id
    # integer-exact on the host's engines, like every model
    qs = ["make it toasty in here", "chilly please", "set the temp to 21"]
    assert predict(new, qs, "firmware") == predict(new, qs, "reference")
    # a check set that must improve by half (a negative tolerance): refused, nothing written, one line
    out2 = tmp_path / "refused.rku"
    r = reku("learn", *common[:-1], "--out", str(out2), "--tolerance", "-0.5")
    assert r.returncode == 1 and not out2.exists()
    assert r.stderr.strip().splitlines()[-1].startswith("reku learn: error: not written: the new model lost")


def test_learn_says_what_is_wrong_in_one_line(tmp_path):
    fb = tmp_path / "fb.jsonl"
    write_feedback(fb, [{"t": 1, "text": "nope", "outcome": "failure", "calls": []}])
    r = reku("learn", "--model", "car", "--feedback", str(fb), "--out", str(tmp_path / "x.rku"))
    assert r.returncode == 1 and "no feedback to learn from" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = reku("learn", "--model", "car", "--feedback", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "x"))
    assert r.returncode == 1 and "cannot read feedback file" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    write_feedback(fb, [corrected("x", [])])
    r = reku("learn", "--model", "car", "--skill", str(paths.SKILLS / "home"), "--feedback", str(fb),
             "--out", str(tmp_path / "x"))
    assert r.returncode == 1 and "functions differ" in r.stderr and len(r.stderr.strip().splitlines()) == 1
