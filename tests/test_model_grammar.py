"""Schema-constrained decoding: whatever the weights, every output is a valid list of calls."""
import json
from array import array

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reku import paths
from reku.model import data, rkufile
from rkfw import steps as targets
from reku.model.evaluate import validate_call
from reku.model.reference import Reference
from reku.model.skill import compile_schema, load_skill
from reku.model.synth import random_model
from reku.model.tokenizer import ALPHABET
from rkfw import infer, rku

HOME = json.loads((paths.SKILLS / "home" / "tools.json").read_text())


def fn(name, props, required):
    return {"type": "function", "function": {"name": name, "parameters": {
        "type": "object", "properties": props, "required": required}}}


# a second schema exercising every parameter kind: negative ranges, booleans, required strings
ODD = [
    fn("move", {"dx": {"type": "integer", "minimum": -250, "maximum": 37},
                "fast": {"type": "boolean"}}, ["dx"]),
    fn("say", {"text": {"type": "string", "maxLength": 6}, "loud": {"type": "boolean"}}, ["text", "loud"]),
    fn("tune", {"f": {"type": "integer", "minimum": 88, "maximum": 108},
                "band": {"type": "string", "enum": ["fm", "am"]}}, ["f"]),
    fn("noop", {}, []),
]


def check_calls(calls, tools, max_calls=2):
    assert isinstance(calls, list) and len(calls) <= max_calls
    for c in calls:
        assert set(c) == {"name", "arguments"}
        err = validate_call(c, tools)
        assert err is None, (c, err)


@pytest.mark.parametrize("tools", [HOME, ODD], ids=["home", "odd"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10 ** 6), gain=st.sampled_from([0.3, 1.0, 4.0]),
       text=st.text(alphabet=st.sampled_from(list(ALPHABET) + ["é", "\n", "☃"]), max_size=60))
def test_random_weights_always_give_valid_calls(tools, seed, gain, text):
    m = rku.load(random_model(tools, seed=seed, d=40, f=40, layers=1, gain=gain))
    calls, _ = Reference(m).run(text)
    check_calls(calls, tools)
    # copied strings are spans of the request
    for c in calls:
        for k, v in c["arguments"].items():
            if isinstance(v, str) and v not in [x for t in tools for p in t["function"]["parameters"]["properties"].values()
                                                for x in p.get("enum", [])]:
                assert v in text[:m.arch["max_in"]]


def test_integer_prefixes_exhaustive():
    """_completable agrees with brute force over all prefixes for several ranges."""
    for lo, hi in [(0, 100), (10, 30), (1, 720), (0, 23), (-250, 37), (-9, -3), (88, 108), (0, 0), (5, 5)]:
        vals = [str(v) for v in range(lo, hi + 1)]
        prefixes = {v[:i] for v in vals for i in range(1, len(v) + 1)}
        for neg in (False, True):
            for nd in range(1, 5):
                for val in range(10 ** nd):
                    s = ("-" if neg else "") + ("%0*d" % (nd, val))
                    assert infer._completable(neg, val, nd, lo, hi) == (s in prefixes), (lo, hi, s)


def test_integer_decoding_reaches_every_value_and_nothing_else():
    schema, vocab = compile_schema(ODD)
    g = rkufile.grammar(schema, vocab)
    tok = infer.Tokenizer(ALPHABET)
    seen = set()

    def walk(path):
        g.reset("x", tok)
        for t in path:
            g.next()
            g.feed(t)
        kind = g.next()
        if kind == infer.K_DONE:
            seen.add(g.calls()[0]["arguments"]["dx"])
            return
        for t in list(g.allow[:g.n_allow]):
            if t == infer.FN0 + 0 or path:
                if len(path) > 0 and t in (infer.FN0 + 1, infer.FN0 + 2, infer.FN0 + 3):
                    continue
                if t in (infer.PRESENT, infer.TRUE, infer.FALSE):
                    continue          # skip the optional boolean branch: only dx matters here
                walk(path + [t])

    walk([])
    assert seen == set(range(-250, 38))


def test_target_steps_round_trip_on_generated_data():
    sk = load_skill(paths.SKILLS / "home")
    schema, vocab = compile_schema(sk)
    g = rkufile.grammar(schema, vocab)
    tok = infer.Tokenizer(ALPHABET)
    exs = data.generate(sk, 400, seed=5)
    for ex in exs:
        steps = targets.target_steps(g, ex["calls"], ex["query"], tok)
        g.reset(ex["query"], tok)
        for kind, choice, allowed in steps:
            assert g.next() == kind and choice in allowed
            g.feed(choice)
        assert g.next() == infer.K_DONE
        got = g.calls()
        assert len(got) == len(ex["calls"])
        for a, b in zip(got, ex["calls"]):
            assert a["name"] == b["name"]
            assert {k: (v.lower() if isinstance(v, str) else v) for k, v in a["arguments"].items()} == \
                   {k: (v.lower() if isinstance(v, str) else v) for k, v in b["arguments"].items()}


def test_target_steps_rejects_impossible_calls():
    schema, vocab = compile_schema(HOME)
    g = rkufile.grammar(schema, vocab)
    tok = infer.Tokenizer(ALPHABET)
    bad = [
        [{"name": "set_brightness", "arguments": {"room": "kitchen", "level": 101}}],
        [{"name": "set_light", "arguments": {"room": "attic", "state": "on"}}],
        [{"name": "set_light", "arguments": {"room": "kitchen"}}],
        [{"name": "play_music", "arguments": {"query": "opera"}}],            # not in the text
        [{"name": "play_music", "arguments": {"query": "jaz"}}],              # not on word boundaries
        [{"name": "nope", "arguments": {}}],
        [{"name": "stop_music", "arguments": {}}] * 3,                        # more than max_calls
    ]
    for calls in bad:
        with pytest.raises(ValueError):
            targets.target_steps(g, calls, "play some jazz", tok)


def test_integers_can_be_copied_from_digit_runs_in_range():
    schema, vocab = compile_schema(ODD)
    g = rkufile.grammar(schema, vocab)
    tok = infer.Tokenizer(ALPHABET)
    text = "go -250 then 37 or 38 or 1234567890123"
    g.reset(text, tok)
    assert g.next() == infer.K_TOKEN
    g.feed(infer.FN0 + 0)                       # move(dx, fast?)
    assert g.next() == infer.K_TOKEN and infer.NUM_COPY in g.allow[:g.n_allow]
    g.feed(infer.NUM_COPY)
    assert g.next() == infer.K_NUM
    pos = g.positions()
    assert [text[p:p + 3] for p in pos] == ["250", "37 "]      # 38 and the 13-digit run are out of range
    g.feed(pos[0])
    assert g.next() == infer.K_TOKEN
    g.feed(infer.ABSENT)
    g.feed(infer.END) if g.next() == infer.K_TOKEN else None
    assert g.calls() == [{"name": "move", "arguments": {"dx": -250}}]
    # no digits in range: no copy token
    g.reset("go 99", tok)
    g.next()
    g.feed(infer.FN0 + 0)
    g.next()
    assert infer.NUM_COPY not in g.allow[:g.n_allow]


@pytest.mark.parametrize("text,values", [
    ("set it to twenty five percent", [25]),
    ("a hundred and five minutes", [105]),
    ("one hundred twenty", [120]),
    ("forty-two and 17 and seven", [42, 17, 7]),
    ("nine hundred and ninety nine", [999]),
    ("a dog and a cat", []),
    ("zero", [0]),
    ("wake me at 7:05", [7, 5]),
])
def test_numbers_in_the_request(text, values):
    from reku.model.data import number_words
    g = rkufile.grammar({"fns": []}, [])
    g.set_text(text, infer.Tokenizer(ALPHABET))
    assert [v for _, v in g.runs] == values
    for n in range(0, 1000, 7):       # the generator's number words are all read back
        g.set_text("x " + number_words(n) + " y", infer.Tokenizer(ALPHABET))
        assert [v for _, v in g.runs] == [n]


@pytest.mark.parametrize("text,runs", [
    ("alarm at 9 pm", [(9, 9), (11, 21)]),                   # the hour on the 24-hour clock, at the "pm"
    ("wake me at 9:30 pm", [(11, 9), (13, 30), (16, 21)]),
    ("nine thirty pm please", [(0, 9), (5, 30), (12, 21)]),
    ("alarm 9pm", [(6, 9), (7, 21)]),
    ("12 am alarm", [(0, 12), (3, 0)]),
    ("7:05 am", [(0, 7), (2, 5), (5, 7)]),
    ("set an alarm for noon", [(17, 12)]),
    ("at midnight", [(3, 0)]),
    ("at 13 pm", [(3, 13)]),                                 # no such time: nothing added
    ("wake me at 7 in the evening", [(11, 7), (20, 19)]),     # the hour at the word that says which half
    ("9:30 in the morning", [(0, 9), (2, 30), (12, 9)]),
    ("11 at night", [(0, 11), (6, 23)]),
    ("2 at night", [(0, 2), (5, 2)]),
    ("12 at night", [(0, 12), (6, 0)]),
    ("8 tonight", [(0, 8), (2, 20)]),
    ("seven o'clock in the evening", [(0, 7), (21, 19)]),
    ("3 in the afternoon", [(0, 3), (9, 15)]),
    ("good night, 7 apples in the box at night", [(12, 7)]),      # not said of the number
    ("the evening news at 6", [(20, 6)]),
    ("the pm said 5", [(12, 5)]),
])
def test_times_of_day_give_the_hour_to_copy(text, runs):
    g = rkufile.grammar({"fns": []}, [])
    g.set_text(text, infer.Tokenizer(ALPHABET))
    assert g.runs == runs


def test_every_spoken_time_with_am_pm_a_part_of_the_day_or_a_name_has_its_hour_to_copy():
    import random
    g = rkufile.grammar({"fns": []}, [])
    tok = infer.Tokenizer(ALPHABET)
    rng = random.Random(8)
    seen = 0
    for _ in range(2000):
        text, h, m = data.spoken_time(rng)
        if text.endswith((" am", " pm", "am", "pm", " evening", " afternoon", " morning", " night")) or \
                text in ("noon", "midday", "midnight", "12 noon"):
            g.set_text("wake me at " + text, tok)
            said = (h + 1) % 24 if text.startswith("quarter to") else h     # the hour said; 7:45 is written out
            assert said in [v for _, v in g.runs], text
            seen += 1
    assert seen > 500


class _StrOnly(infer.Tokenizer):
    """The tokenizer with its ASCII fast path switched off: every request read character by character."""

    def lower_ascii(self, text):
        return None


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
                 st.text(max_size=60),
                 st.sampled_from(["Set it to -5 AND 7", "wake me at 7:05 pm", "x -12-3 y", "KELVIN \u212a 3",
                                  "d\u00e9j\u00e0 vu 20%", "\u0130stanbul 4", "'quoted' it's 9"])))
def test_ascii_fast_path_reads_requests_like_the_character_path(text):
    """ASCII requests are read as bytes (no string per character on MicroPython): ids, word spans and number
    runs equal those of the character-by-character path, for any text (non-ASCII takes that path)."""
    fast, slow = infer.Tokenizer(ALPHABET), _StrOnly(ALPHABET)
    a, b = array("H", [0] * 96), array("H", [0] * 96)
    assert fast.encode(text, a) == slow.encode(text, b) and list(a) == list(b)
    g1, g2 = rkufile.grammar({"fns": []}, []), rkufile.grammar({"fns": []}, [])
    g1.set_text(text, fast)
    g2.set_text(text, slow)
    assert (g1.starts, g1.stops, g1.runs) == (g2.starts, g2.stops, g2.runs)
    if text.isascii():
        assert fast.lower_ascii(text) is not None


@pytest.mark.parametrize("text,hour,at", [
    ("wake me at 8 am", 8, "am"),                 # the same value at "8" and at "am": the marker's
    ("alarm at 9 pm", 21, "pm"),
    ("wake me at 7 in the morning", 7, "morning"),
    ("set the fan to 8 and wake me at 8 am", 8, "am"),
    ("alarm at 8", 8, "8"),                       # no marker: the number itself
    ("alarm at 12 noon", 12, "noon"),
])
def test_an_hour_with_its_half_of_the_day_is_copied_at_the_marker(text, hour, at):
    """Training targets (rkfw.steps): every time of day's hour is copied where set_text puts its 24-hour value, "am"
    as well as "pm"; before, "8 am" copied the "8" and "9 pm" the "pm", two rules for one thing to learn."""
    from rkfw import rku, steps
    from reku import paths
    e = infer.Engine(rku.load((paths.SKILLS / "home" / "model.rku").read_bytes()))
    st_ = steps.target_steps(e.grammar, [{"name": "set_alarm", "arguments": {"hour": hour, "minute": 0}}], text,
                             e.tok)
    pos = [c for k, c, _ in st_ if k == infer.K_NUM][0]
    assert text[pos:].startswith(at) and (pos == 0 or text[pos - 1] == " ")
