"""Data generation from a skill: deterministic, placeholders expanded consistently, noise that keeps
copied strings intact, negatives and compounds present; skill loading errors are clear."""
import json

import pytest

from reku import paths
from reku.errors import RekuError
from reku.model import data
from reku.model.evaluate import validate_call
from reku.model.skill import load_skill

HOME = paths.SKILLS / "home"


@pytest.fixture(scope="module")
def skill():
    return load_skill(HOME)


def test_deterministic_for_a_seed(skill):
    a = data.generate(skill, 300, seed=7)
    b = data.generate(skill, 300, seed=7)
    c = data.generate(skill, 300, seed=8)
    assert a == b
    assert a != c


def test_placeholders_expanded_and_calls_valid(skill):
    exs = data.generate(skill, 1500, seed=1)
    n_neg = n_compound = n_words = 0
    for ex in exs:
        assert "{" not in ex["query"] and "}" not in ex["query"]
        for c in ex["calls"]:
            assert validate_call(c, skill.tools) is None, ex
            for v in c["arguments"].values():
                assert not (isinstance(v, str) and v.startswith("{"))
        n_neg += not ex["calls"]
        n_compound += len(ex["calls"]) == 2
        n_words += any(w in ex["query"].lower().split() for w in ("twenty", "thirty", "forty", "fifty", "sixty"))
    assert 0.08 < n_neg / len(exs) < 0.25
    assert n_compound > 50
    assert n_words > 10


def test_integer_surface_matches_value(skill):
    """A number placeholder appears in the query as the digits or the words of the argument."""
    for ex in data.generate(skill, 800, seed=3, noise_level=0.0, compounds=0.0):
        for c in ex["calls"]:
            if c["name"] == "set_brightness":
                lv = c["arguments"]["level"]
                forms = [str(lv), data.number_words(lv)] + (["a hundred"] if lv == 100 else [])
                # 0, 50 and 100 also come from conventions ("all the way down", "half", "full")
                assert any(f in ex["query"] for f in forms) or lv in (0, 50, 100), ex


def test_copied_strings_survive_noise(skill):
    for ex in data.generate(skill, 3000, seed=11, noise_level=3.0):
        for c in ex["calls"]:
            for k in ("query", "label"):
                if k in c["arguments"]:
                    assert c["arguments"][k].lower() in ex["query"].lower(), ex


def test_number_words():
    assert data.number_words(0) == "zero"
    assert data.number_words(21) == "twenty one"
    assert data.number_words(100) == "one hundred"
    assert data.number_words(345) == "three hundred forty five"


def test_skill_errors_are_clear(tmp_path):
    with pytest.raises(RekuError, match="no tools.json"):
        load_skill(tmp_path)
    (tmp_path / "tools.json").write_text(json.dumps([{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}}]))
    with pytest.raises(RekuError, match="minimum and maximum"):
        load_skill(tmp_path)
    (tmp_path / "tools.json").write_text(json.dumps([{"type": "function", "function": {"name": "f"}}]))
    (tmp_path / "examples.jsonl").write_text('{"query": "go", "calls": [{"name": "g", "arguments": {}}]}\n')
    with pytest.raises(RekuError, match="line 1: unknown function 'g'"):
        load_skill(tmp_path)


def test_generic_negatives_the_skill_claims_are_not_negatives():
    """"call mom" is a generic negative, but a car skill with `call {name}` must learn it as a call: the
    generator drops generic negatives that one of the skill's own templates would produce (placeholders
    matched by type: enums by their surface forms, integers by digits or number words, strings by any words)."""
    car = load_skill(paths.SKILLS / "car")
    claimed = data.claims(car)
    assert claimed("call mom") and claimed("Navigate to the nearest gas station.")
    assert not claimed("what's the capital of france") and not claimed("open youtube")
    exs = data.generate(car, 4000, seed=3)
    assert not [e for e in exs if e["query"].lower().strip(" .,!?") == "call mom" and not e["calls"]]
    assert [e for e in exs if not e["calls"]]           # negatives are still there
    home = load_skill(HOME)
    hc = data.claims(home)
    assert hc("turn on the kitchen lights") or hc("turn the kitchen lights on")
    assert not hc("turn on the toaster lights")   # an enum placeholder only matches its surface forms
    assert not hc("call mom") and not hc("order a pizza")


def test_entity_negatives_name_shared_things_but_make_no_call(skill):
    """Near misses like "order sushi in the bedroom": rooms and doors (enums several functions share) alone do not
    make a call. Only for enums of 3+ values shared by 2+ functions (never on/off)."""
    forms = data.shared_forms(skill)
    assert "kitchen" in forms and "lounge" in forms and "front" in forms
    assert "on" not in forms and "blue" not in forms and "humidity" not in forms
    claimed = data.claims(skill)
    exs = data.generate(skill, 3000, seed=11)
    negs = [e["query"].lower() for e in exs if not e["calls"]]
    named = [q for q in negs if any((" the " + f) in q or q.startswith("the " + f) for f in forms)]
    assert len(named) > 0.15 * len(negs)
    own = [e["query"].lower() for e in skill.examples if not e["calls"]]     # the skill's own word wins
    assert not [q for q in negs if claimed(q) and not any(o in q for o in own)]
    car = load_skill(paths.SKILLS / "car")
    assert not [f for f in data.shared_forms(car) if f in ("on", "off")]


def test_mention_negatives_say_a_known_value_without_asking(skill):
    """Near misses like "translate good morning to german" or "my favourite color is blue": a value of any enum
    (colours and scenes too, which only one function takes) mentioned in a frame that asks for nothing."""
    values = data.value_forms(skill)
    assert ("color", "blue") in values and ("scene", "good morning") in values and ("room", "lounge") in values
    assert not [v for k, v in values if v in ("on", "off") and k == "state"]      # two-valued enums stay out
    claimed = data.claims(skill)
    exs = data.generate(skill, 3000, seed=11, noise_level=0.0)
    negs = [e["query"].lower() for e in exs if not e["calls"]]
    frames = [f.split("%(v)s")[0] for f in data.MENTION_NEG if not f.startswith("%")]
    mentioned = [q for q in negs if any(q.startswith(f) and f for f in frames) and any(v in q for k, v in values)]
    assert len(mentioned) > 0.06 * len(negs)
    assert [q for q in mentioned if any(v in q for k, v in values if k in ("color", "scene"))]
    assert not [q for q in negs if claimed(q) and not any(o["query"].lower() in q for o in skill.examples
                                                         if not o["calls"])]
    assert data.generate(skill, 500, seed=4) == data.generate(skill, 500, seed=4)


def test_device_negatives_command_what_the_skill_does_not_have():
    """Near misses like "turn on the wipers" to a car skill without wipers: a command verb and a device that shares
    no word with the schema ("massage seat" never for the car: it has seats; "fog lights" never for home)."""
    car = load_skill(paths.SKILLS / "car")
    words = data.schema_words(car)
    assert "seat" in words and "window" in words and "wiper" not in words
    exs = data.generate(car, 3000, seed=11, noise_level=0.0, schema=0.3)
    negs = [e["query"].lower() for e in exs if not e["calls"]]
    said = [q for q in negs if any(q.endswith(" " + d) or q.startswith(d + " ") for d in data.DEVICES)]
    assert len(said) > 0.06 * len(negs)
    assert [q for q in said if "wipers" in q]
    import random
    rng, claimed = random.Random(2), data.claims(car)
    drawn = [data.device_negative(rng, words, claimed) for _ in range(300)]
    assert not [q for q in drawn if "massage seat" in q or "high beams" in q] and not [q for q in drawn if claimed(q)]
    home = load_skill(HOME)
    assert not [q for q in data.generate(home, 3000, seed=11, noise_level=0.0)
                if not q["calls"] and ("fog lights" in q["query"] or "alarm system" in q["query"])]
    everything = data.claims(car, [{"query": "{x}", "calls": [{"name": "lock_doors", "arguments": {}}]}])
    assert data.device_negative(random.Random(1), words, everything) is None     # all claimed: none drawn


def test_compounds_that_share_a_place_or_say_another(skill):
    import random
    rng = random.Random(4)
    lights = {"query": "turn on the {room} lights", "calls": [{"name": "set_light",
                                                                "arguments": {"room": "{room}", "state": "on"}}]}
    dim = {"query": "set the {room} lights to {level} percent",
           "calls": [{"name": "set_brightness", "arguments": {"room": "{room}", "level": "{level}"}}]}
    music = {"query": "stop the music in the {room}", "calls": [{"name": "stop_music", "arguments": {"room": "{room}"}}]}
    forms = {v: [v.replace("_", " ")] + skill.params("set_light")["room"].get("x-synonyms", {}).get(v, [])
             for v in skill.params("set_light")["room"]["enum"]}
    for _ in range(50):
        text, calls, _ = data.also_place(lights, skill, rng)       # "... and the bedroom too": another place
        assert [c["name"] for c in calls] == ["set_light", "set_light"]
        assert calls[0]["arguments"]["room"] != calls[1]["arguments"]["room"]
        assert calls[0]["arguments"]["state"] == calls[1]["arguments"]["state"] == "on"
        text, calls, _ = data.shared_place(lights, dim, skill, rng)  # "... and set the lights to 30": the same one
        room = calls[0]["arguments"]["room"]
        assert calls[1] == {"name": "set_brightness", "arguments": {"room": room, "level": calls[1]["arguments"]["level"]}}
        second = text.split(" lights", 1)[1]
        assert not any(f in second.split() for f in forms[room] if " " not in f), text   # not named again
        text, calls, _ = data.shared_place(lights, music, skill, rng)  # an optional place is kept: "there"
        assert text.endswith(" there") and calls[1]["arguments"]["room"] == calls[0]["arguments"]["room"]
    out = data.generate(skill, 3000, seed=2)
    pairs = [e["calls"] for e in out if len(e["calls"]) == 2 and e["calls"][0]["name"] != e["calls"][1]["name"]
             and e["calls"][0]["arguments"].get("room") and
             e["calls"][0]["arguments"].get("room") == e["calls"][1]["arguments"].get("room")]
    assert len(pairs) > 20


def test_the_same_data_in_every_process():
    """No set or hash order reaches the generated data: two processes with different string hashing generate the
    same requests for every bundled skill (a float run is compared bit for bit across runs, tests/test_model_routes)."""
    import subprocess
    import sys
    code = ("import hashlib, json\nfrom reku import paths\nfrom reku.model import data\n"
            "from reku.model.skill import load_skill\n"
            "for s in ('home', 'car', 'greenhouse'):\n"
            "    g = data.generate(load_skill(paths.SKILLS / s), 800, seed=3, schema=0.5)\n"
            "    print(hashlib.sha1(json.dumps(g).encode()).hexdigest())\n")
    outs = []
    for h in ("1", "2"):
        import os
        env = dict(os.environ, PYTHONHASHSEED=h)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout)
    assert outs[0] == outs[1] and len(outs[0].split()) == 3


def test_unsaid_drops_an_argument_with_the_words_that_say_it():
    assert data.unsaid("set a {label} timer for {minutes} minutes", "label") == "set a timer for {minutes} minutes"
    assert data.unsaid("start the music in the {room}", "room") == "start the music"
    assert data.unsaid("timer for {minutes} minutes called {label}", "label") == "timer for {minutes} minutes"
    assert data.unsaid("stop the {room} speaker", "room") == "stop the speaker"
    assert data.unsaid("put on some {query}", "query") is None          # the verb's object: nothing left to ask
    assert data.unsaid("{query} please", "query") is None
    assert data.unsaid("play {query} in the {room}, {room}", "room") is None


def test_an_optional_argument_every_line_sets_is_also_left_out(tmp_path):
    """A user whose only timer line names the timer: the generated requests also have timers without a label (the
    few-example home sample had such a line, and its model labelled every timer "please" or "timer")."""
    (tmp_path / "tools.json").write_text((HOME / "tools.json").read_text())
    lines = [{"query": "set a {label} timer for {minutes} minutes",
              "calls": [{"name": "start_timer", "arguments": {"minutes": "{minutes}", "label": "{label}"}}]},
             {"query": "turn {state} the {room} lights",
              "calls": [{"name": "set_light", "arguments": {"room": "{room}", "state": "{state}"}}]},
             {"query": "what is the {sensor} level in the {room}",
              "calls": [{"name": "get_sensor", "arguments": {"sensor": "{sensor}", "room": "{room}"}}]},
             {"query": "how warm is it", "calls": [{"name": "get_sensor", "arguments": {"sensor": "temperature"}}]}]
    (tmp_path / "examples.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    sk = load_skill(tmp_path)
    got = data.unsaid_lines(sk)
    assert [x["query"] for x in got["start_timer"]] == ["set a timer for {minutes} minutes"]
    assert got["start_timer"][0]["calls"] == [{"name": "start_timer", "arguments": {"minutes": "{minutes}"}}]
    assert "get_sensor" not in got          # one of its lines already leaves the room out
    timers = [c for e in data.generate(sk, 1500, seed=1, negatives=0, compounds=0) for c in e["calls"]
              if c["name"] == "start_timer"]
    unlabelled = [c for c in timers if "label" not in c["arguments"]]
    assert 0.3 * len(timers) < len(unlabelled) < 0.7 * len(timers)
    for c in timers:
        assert validate_call(c, sk.tools) is None
    # the bundled skills' lines leave every optional parameter out somewhere: their data is unchanged
    for name in ("home", "car", "greenhouse"):
        assert data.unsaid_lines(load_skill(paths.SKILLS / name)) == {}
