"""Bad input, as a careless or hostile user gives it, against `reku train`: every case is refused with one line on
stderr that names the file (and the function, parameter or line), a non-zero exit and no traceback; nothing is
silently dropped or trained wrong. A table of cases, each a change to the toy skill of test_model_train."""
import copy
import json

import pytest

from test_model_train import EXAMPLES, TOOLS, reku


def _skill(d, tools=TOOLS, examples=EXAMPLES, raw_examples=None):
    d.mkdir(parents=True, exist_ok=True)
    (d / "tools.json").write_text(json.dumps(tools))
    if raw_examples is not None:
        (d / "examples.jsonl").write_bytes(raw_examples)
    else:
        (d / "examples.jsonl").write_text("\n".join(json.dumps(e) for e in examples) + "\n")
    return d


def _param(tools, fn, name):
    for t in tools:
        if t["function"]["name"] == fn:
            return t["function"]["parameters"]["properties"][name]


def _tools_with(fn, name, **changes):
    tools = copy.deepcopy(TOOLS)
    _param(tools, fn, name).update(changes)
    return tools


TOOLS_CASES = [
    ("enum as a string", _tools_with("lamp", "state", enum="kitchen"), "lamp.state: enum must be a non-empty list"),
    ("enum as an object", _tools_with("lamp", "state", enum={"on": 1}), "lamp.state: enum must be a non-empty list"),
    ("empty enum", _tools_with("lamp", "state", enum=[]), "lamp.state: enum must be a non-empty list"),
    ("enum of integers", _tools_with("lamp", "state", enum=[1, 2]), "lamp.state: enum must be a non-empty list"),
    ("enum on an integer", _tools_with("wait", "minutes", enum=["1"]), "wait.minutes: enum is supported on strings"),
    ("minimum above maximum", _tools_with("wait", "minutes", minimum=60, maximum=1),
     "wait.minutes: minimum 60 is above maximum 1"),
    ("fractional bound", _tools_with("wait", "minutes", maximum=2.5), "must be whole numbers"),
    ("no maximum", _tools_with("wait", "minutes", maximum=None), "wait.minutes needs minimum and maximum"),
    ("unknown type", _tools_with("say", "text", type="array"), "say.text has unsupported type 'array'"),
    ("bad maxLength", _tools_with("say", "text", maxLength=0), "say.text: maxLength must be a positive integer"),
    ("not a list", {"lamp": 1}, "expected a non-empty JSON array of tools"),
]

LAMP = {"name": "lamp", "arguments": {"state": "on"}}
EXAMPLE_CASES = [
    ("value outside the enum", {"query": "lamp purple", "calls": [{"name": "lamp", "arguments": {"state": "purple"}}]},
     "lamp.state: \"purple\" is not one of on, off"),
    ("number outside its range", {"query": "wait 99", "calls": [{"name": "wait", "arguments": {"minutes": 99}}]},
     "wait.minutes: 99 is not a whole number in 1..60"),
    ("unknown argument", {"query": "lamp on", "calls": [{"name": "lamp", "arguments": {"state": "on", "x": 1}}]},
     "lamp: unknown argument x"),
    ("missing argument", {"query": "lamp", "calls": [{"name": "lamp", "arguments": {}}]},
     "lamp: required argument state missing"),
    ("unknown placeholder", {"query": "lamp {colour}", "calls": [LAMP]},
     "placeholder {colour} in the query is no argument's value"),
    ("placeholder not in the query", {"query": "lamp", "calls": [{"name": "lamp", "arguments": {"state": "{state}"}}]},
     "lamp.state: placeholder {state} is not in the query"),
    ("unknown function", {"query": "fly", "calls": [{"name": "fly", "arguments": {}}]}, "unknown function 'fly'"),
    ("three calls", {"query": "lamp on", "calls": [LAMP, LAMP, LAMP]}, "3 calls (at most 2)"),
]


@pytest.mark.parametrize("what,tools,message", TOOLS_CASES, ids=[c[0] for c in TOOLS_CASES])
def test_a_bad_schema_is_one_line(tmp_path, what, tools, message):
    d = _skill(tmp_path / "s", tools=tools)
    r = reku("train", "--skill", str(d), "--out", str(tmp_path / "m.rku"), "--size", "tiny", "--steps", "1")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert str(d / "tools.json") in r.stderr and message in r.stderr, r.stderr
    assert not (tmp_path / "m.rku").exists()


@pytest.mark.parametrize("what,bad,message", EXAMPLE_CASES, ids=[c[0] for c in EXAMPLE_CASES])
def test_an_example_that_breaks_the_schema_is_one_line(tmp_path, what, bad, message):
    d = _skill(tmp_path / "s", examples=EXAMPLES + [bad])
    r = reku("train", "--skill", str(d), "--out", str(tmp_path / "m.rku"), "--size", "tiny", "--steps", "1")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    line = len(EXAMPLES) + 1
    assert "%s line %d: %s" % (d / "examples.jsonl", line, message) in r.stderr, r.stderr
    assert "--lenient" in r.stderr


def test_lenient_drops_and_counts(tmp_path):
    d = _skill(tmp_path / "s", examples=EXAMPLES + [c[1] for c in EXAMPLE_CASES[:3]])
    r = reku("train", "--skill", str(d), "--out", str(tmp_path / "m.rku"), "--size", "tiny", "--steps", "2",
             "--examples", "200", "--eval-every", "0", "--lenient", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "3 example lines break the schema and were dropped (--lenient), the first: line %d" % (len(EXAMPLES) + 1) \
        in r.stderr
    assert (tmp_path / "m.rku").exists()


@pytest.mark.parametrize("raw,message", [
    (b"", "no usable examples"),
    (b"\n  \n// only a comment\n", "no usable examples"),
    (b'{"query": "what is love", "calls": []}\n', "no example makes a call"),
    (b'{"query": "lamp \xff", "calls": []}\n', "line 1: not UTF-8 text"),
    (b'{"query": "lamp on", "calls": [1]}\n', "line 1: expected {\"query\""),
    (b'[1, 2]\n', "line 1: expected {\"query\""),
    (b'{"query": "lamp on",\n', "line 1: not JSON"),
])
def test_unreadable_examples_are_one_line(tmp_path, raw, message):
    d = _skill(tmp_path / "s", raw_examples=raw)
    r = reku("train", "--skill", str(d), "--out", str(tmp_path / "m.rku"), "--size", "tiny", "--steps", "1")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert message in r.stderr, r.stderr


def test_eval_data_that_is_not_text_or_a_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"query": "\xfe", "calls": []}\n')
    for data, message in ((bad, "line 1: not UTF-8 text"), (tmp_path, "is a directory, not a JSONL file")):
        r = reku("eval", "--model", "home", "--data", str(data))
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
