"""Example lines from the schema alone (reku.model.phrase, issue 19) and their use by the generator."""

import pytest

from reku import paths
from reku.model import data
from reku.model.phrase import bool_words, schema_lines, value_words
from reku.model.skill import Skill, example_problem, load_skill

SKILLS = ["home", "car", "greenhouse"]


@pytest.fixture(scope="module", params=SKILLS)
def skill(request):
    return load_skill(paths.SKILLS / request.param)


def test_every_schema_line_is_a_valid_example_line(skill):
    lines = schema_lines(skill)
    assert set(lines) == set(skill.fns)
    import random
    rng = random.Random(0)
    for fn, ls in lines.items():
        assert len(ls) >= 3, (fn, ls)
        for ln in ls:
            assert example_problem(ln, skill) is None, ln
            text, calls, strings = data.expand(ln, skill, rng)
            assert "{" not in text and calls[0]["name"] == fn
            for k, v in calls[0]["arguments"].items():
                p = skill.params(fn)[k]
                if p["type"] == "integer":
                    assert p["minimum"] <= v <= p["maximum"]
                elif "enum" in p:
                    assert v in p["enum"]
                elif p["type"] == "string":
                    assert v.lower() in text.lower()          # a copied string is a span of the request


def test_every_parameter_is_set_by_some_schema_line(skill):
    for fn, ls in schema_lines(skill).items():
        said = {k for ln in ls for k in ln["calls"][0]["arguments"]}
        assert said == set(skill.params(fn)), fn


def test_verb_families_and_questions():
    gh = load_skill(paths.SKILLS / "greenhouse")
    lines = schema_lines(gh)
    stops = [ln["query"] for ln in lines["stop_watering"]]
    for verb in ("halt", "kill", "shut off", "enough"):
        assert any(q.startswith(verb) for q in stops), (verb, stops)
    asks = [ln["query"] for ln in lines["get_reading"]]
    assert any(q.startswith("what's the {sensor}") for q in asks)
    assert all(not q.startswith("get ") for q in asks)
    # a preposition in the name stays before the copied value: navigate_to -> "take me to {destination}"
    car = load_skill(paths.SKILLS / "car")
    nav = [ln["query"] for ln in schema_lines(car)["navigate_to"]]
    assert "take me to {destination}" in nav and "navigate to {destination}" in nav


def test_values_named_in_descriptions():
    car = load_skill(paths.SKILLS / "car")
    window = dict(value_words(car.params("set_window")["position"], car.fns["set_window"]["description"]))
    assert window["halfway"] == 50 and window["roll up"] == 0 and window["a crack"] == 10
    assert window["roll down"] == 100 and window["fully open"] == 100
    heater = dict(value_words(car.params("set_seat_heater")["level"]))
    assert (heater["off"], heater["low"], heater["medium"], heater["high"]) == (0, 1, 2, 3)
    temp = dict(value_words(car.params("set_temperature")["temperature"],
                            car.fns["set_temperature"]["description"]))
    assert temp == {"max heat": 28, "as cold as possible": 16}
    # words for durations, only those within the parameter's range
    gh = load_skill(paths.SKILLS / "greenhouse")
    mins = dict(value_words(gh.params("start_watering")["minutes"]))
    assert mins["an hour"] == 60 and mins["half an hour"] == 30 and mins["two hours"] == 120
    assert "three hours" not in mins                        # 180 > maximum 120
    assert bool_words(car.params("lock_doors")["locked"]) == [("lock", True), ("unlock", False)]


def test_lines_with_literal_values_say_them():
    gh = load_skill(paths.SKILLS / "greenhouse")
    by_query = {ln["query"]: ln["calls"][0]["arguments"] for ln in schema_lines(gh)["set_vents"]}
    assert {"position": 50} in [a for q, a in by_query.items() if "halfway" in q]
    assert all(a["position"] == 0 for q, a in by_query.items() if q.endswith("closed"))


def _tools(name, params, required, desc=""):
    return {"type": "function", "function": {"name": name, "description": desc, "parameters": {
        "type": "object", "properties": params, "required": required}}}


def test_a_function_without_example_lines_is_learnt_from_its_schema():
    tools = [_tools("start_pump", {"minutes": {"type": "integer", "minimum": 1, "maximum": 90,
                                               "description": "Duration in minutes."}}, ["minutes"]),
             _tools("stop_pump", {}, [])]
    sk = Skill("/tmp/pump", tools, [{"query": "run the pump for {minutes} minutes",
                                      "calls": [{"name": "start_pump", "arguments": {"minutes": "{minutes}"}}]}])
    plain = data.generate(sk, 400, seed=3)
    assert not any(c["name"] == "stop_pump" for ex in plain for c in ex["calls"])
    mixed = data.generate(sk, 400, seed=3, schema=0.3)
    assert mixed == data.generate(sk, 400, seed=3, schema=0.3)          # deterministic
    stops = [ex["query"] for ex in mixed if [c["name"] for c in ex["calls"]] == ["stop_pump"]]
    assert len(stops) > 50 and any("halt" in q or "kill" in q for q in stops)
    hours = [ex for ex in mixed if ex["query"].lower().rstrip("?.! ").endswith("for an hour")
             and len(ex["calls"]) == 1]
    assert hours and all(ex["calls"][0]["arguments"] == {"minutes": 60} for ex in hours)
    # the user's own line is still drawn most of the time for the function that has one
    own = sum(1 for ex in mixed if "run the pump for" in ex["query"].lower())
    starts = sum(1 for ex in mixed if [c["name"] for c in ex["calls"]] == ["start_pump"])
    assert own > 0.5 * starts


def test_schema_lines_share_is_checked(tmp_path, capsys):
    from reku.cli import main
    rc = main(["train", "--skill", str(paths.SKILLS / "greenhouse"), "--out", str(tmp_path / "m.rku"),
               "--schema-lines", "1.5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "--schema-lines" in err[0] and "1.5" in err[0]
    assert not (tmp_path / "m.rku").exists()


def test_times_of_day_in_words():
    home = load_skill(paths.SKILLS / "home")
    said = {ln["query"]: ln["calls"][0]["arguments"] for ln in schema_lines(home)["set_alarm"]}
    assert said["set an alarm for 6 pm"] == {"hour": 18, "minute": 0}
    assert [a for q, a in said.items() if "quarter to 10" in q] == [{"hour": 9, "minute": 45}]
    assert [a for q, a in said.items() if q.endswith("midnight")] == [{"hour": 0, "minute": 0}]
