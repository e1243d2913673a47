"""Example lines from the schema alone (reku.model.phrase, issue 19) and their use by the generator."""

import random
import re

import pytest

from reku import paths
from reku.model import data
from reku.model.data import expand, generate, spoken_time
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


@pytest.mark.parametrize("option", ["--schema-lines", "--negatives"])
def test_shares_are_checked(tmp_path, capsys, option):
    from reku.cli import main
    rc = main(["train", "--skill", str(paths.SKILLS / "greenhouse"), "--out", str(tmp_path / "m.rku"),
               option, "1.5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and option in err[0] and "1.5" in err[0]
    assert not (tmp_path / "m.rku").exists()


def _said_time(text):
    """An independent reading of a spoken time (the test's oracle): (hour, minute)."""
    from reku.model.data import ONES, TENS
    words = {w: i for i, w in enumerate(ONES)}
    words.update({w: 10 * i for i, w in enumerate(TENS) if w})
    t = text
    fixed = {"noon": (12, 0), "midday": (12, 0), "12 noon": (12, 0), "midnight": (0, 0), "quarter to midnight": (23, 45)}
    if t in fixed:
        return fixed[t]
    pm = None
    for suffix, p in ((" in the morning", False), (" in the afternoon", True), (" in the evening", True),
                      ("am", False), ("pm", True), (" at night", None)):
        if t.endswith(suffix):
            t, pm = t[:-len(suffix)].strip(), p if p is not None else "night"
            break
    def num(w):
        return int(w) if w.isdigit() else sum(words[x] for x in w.split())
    m = re.fullmatch(r"(\d+):(\d\d)", t)
    if m:
        h, mi = int(m.group(1)), int(m.group(2))
    elif t.startswith("half past "):
        h, mi = num(t[10:]), 30
    elif t.startswith(("quarter past ", "a quarter past ")):
        h, mi = num(t.split("past ")[1]), 15
    elif t.startswith("quarter to "):
        h, mi = num(t[11:]) - 1, 45
    elif t.endswith(" o'clock"):
        h, mi = num(t[:-8]), 0
    else:
        parts = t.split()
        h, mi = words[parts[0]] if parts[0] in words else int(parts[0]), 0
        if len(parts) > 1:
            mi = num(" ".join(parts[1:]))
    if pm == "night":                     # "1 at night" is 1:00, "12 at night" 0:00, "10 at night" 22:00
        pm = not (h == 12 or h < 5)
        h = 0 if h == 12 else h
    if pm is True and h < 12:
        h += 12
    if pm is False and h == 12:
        h = 0
    return h, mi


def test_spoken_times_mean_what_they_say():
    rng = random.Random(5)
    hours = set()
    for _ in range(3000):
        text, h, m = spoken_time(rng)
        assert _said_time(text) == (h, m), text
        hours.add(h)
    assert hours == set(range(24))
    assert all(7 <= h <= 9 for h in (spoken_time(rng, 7, 9)[1] for _ in range(200)))


def test_times_of_day_are_drawn_anew_for_every_request():
    home = load_skill(paths.SKILLS / "home")
    lines = [ln for ln in schema_lines(home)["set_alarm"] if "{time}" in ln["query"]]
    assert lines and all(example_problem(ln, home) is None for ln in lines)
    rng = random.Random(3)
    got = {}
    for _ in range(400):
        text, calls, _ = expand(lines[0], home, rng)
        said = text[text.index(" for ") + 5:] if " for " in text else text[text.index(" at ") + 4:]
        assert (calls[0]["arguments"]["hour"], calls[0]["arguments"]["minute"]) == _said_time(said), text
        got[said] = calls[0]["arguments"]["hour"]
    # every evening hour, not only the one a fixed line would teach ("6 pm" -> 18, so "9 pm" -> 18)
    assert {got[k] for k in got if k.endswith(" pm") and ":" not in k} >= {13, 14, 15, 16, 17, 18, 19, 20, 21, 22}


def test_time_placeholder_needs_hour_and_minute():
    home = load_skill(paths.SKILLS / "home")
    bad = {"query": "wake me at {time}", "calls": [{"name": "set_alarm", "arguments": {"hour": "{hour}", "minute": 0}}]}
    assert "{time}" in example_problem(bad, home)
    good = {"query": "wake me at {time}", "calls": [{"name": "set_alarm",
                                                     "arguments": {"hour": "{hour}", "minute": "{minute}"}}]}
    assert example_problem(good, home) is None
    out = generate(home, 300, seed=1, schema=1.0, refusals=0.05)
    assert not [e for e in out if "{" in e["query"]]


def _said(skill_name, fn):
    sk = load_skill(paths.SKILLS / skill_name)
    return {ln["query"]: ln["calls"][0]["arguments"] for ln in schema_lines(sk)[fn]}


def test_a_switch_has_its_own_verbs():
    said = _said("home", "set_light")
    assert said["kill the lights in the {room}"] == {"room": "{room}", "state": "off"}
    assert said["lights out in the {room}"] == {"room": "{room}", "state": "off"}
    assert said["turn on the {room} light"] == {"room": "{room}", "state": "on"}
    # "out" is said of lights only
    assert not [q for q in _said("car", "set_cruise_control") if q.endswith(" out")]


def test_a_position_that_opens_is_opened_and_closed():
    assert _said("home", "set_blinds")["open the {room} blinds"] == {"room": "{room}", "position": 100}
    assert _said("home", "set_blinds")["close the blinds in the {room}"] == {"room": "{room}", "position": 0}
    car = _said("car", "set_window")
    assert car["crack the {window} window"]["position"] == 10        # the description's own word, as a verb
    assert car["roll down the {window} window"]["position"] == 100


def test_short_forms_modes_and_verbs_that_move_a_value():
    home = _said("home", "set_thermostat")
    assert home["thermostat {temperature} degrees"] == {"temperature": "{temperature}"}
    assert home["{mode} to {temperature} degrees"] == {"temperature": "{temperature}", "mode": "{mode}"}
    bright = _said("home", "set_brightness")
    # "lights": the object the description names ("the brightness of a room's lights")
    assert bright["dim the {room} lights to {level} percent"] == {"room": "{room}", "level": "{level}"}
    assert [q for q in bright if q.startswith("lights at {level}")]
    assert _said("home", "set_volume")["turn the volume down to {level} percent"] == {"level": "{level}"}
    assert _said("greenhouse", "set_humidity")["target humidity {level} percent"] == {"level": "{level}"}


def test_a_copied_string_right_after_its_verb():
    assert _said("home", "play_music")["play {query} in the {room}"] == {"query": "{query}", "room": "{room}"}
    assert _said("car", "navigate_to")["take me to {destination}"] == {"destination": "{destination}"}
    assert not [q for q in _said("greenhouse", "add_note") if q == "add {text}"]     # "add" takes its object


def test_durations_levels_with_off_and_choices():
    timer = _said("home", "start_timer")
    assert timer["an hour timer"] == {"minutes": 60} and timer["three hour timer"] == {"minutes": 180}
    assert timer["a {minutes} minute timer"] == {"minutes": "{minutes}"}
    assert _said("home", "set_fan")["turn off the {room} fan"] == {"room": "{room}", "speed": "off"}
    assert _said("home", "stop_music")["music off"] == {}
    assert _said("home", "activate_scene")["switch to {scene}"] == {"scene": "{scene}"}


def test_on_and_off_of_a_number_and_a_switch_with_a_number():
    heater = _said("car", "set_seat_heater")          # "0 off, 1 low ... 'On' without a level is 3"
    assert heater["turn off the {seat} seat heater"] == {"seat": "{seat}", "level": 0}
    assert heater["turn on the {seat} seat heater"] == {"seat": "{seat}", "level": 3}
    assert _said("car", "set_fan_speed")["fan off"] == {"level": 0}
    cruise = _said("car", "set_cruise_control")
    assert cruise["cruise control on at {speed} km/h"] == {"state": "on", "speed": "{speed}"}


def test_readings_asked_for_by_what_they_measure_and_verbs_named_by_the_function():
    sensor = _said("home", "get_sensor")
    assert sensor["how warm is it in the {room}"] == {"sensor": "temperature", "room": "{room}"}
    assert sensor["is anyone in the {room}"] == {"sensor": "motion", "room": "{room}"}
    assert _said("greenhouse", "get_reading")["is the soil dry"] == {"sensor": "soil_moisture"}
    assert _said("home", "vacuum")["vacuum the {room}"] == {"action": "start", "room": "{room}"}
    assert _said("home", "set_volume")["mute the music"] == {"level": 0}          # "Mute is 0"


def test_playing_without_saying_what_copies_nothing():
    assert _said("home", "play_music")["play something in the {room}"] == {"room": "{room}"}
    assert _said("car", "play_media")["put on some tunes"] == {}


def test_actions_blinds_and_optional_strings():
    vac = _said("home", "vacuum")
    assert vac["stop vacuuming"] == {"action": "stop"}
    # "dock (go back to the base)": the description's gloss of a value says it
    assert vac["send the vacuum back to the base"] == {"action": "dock"}
    assert vac["robot vacuum {action}"] == {"action": "{action}"}          # "Control the robot vacuum ..."
    assert not [q for q in vac if "mode" in q or q.startswith(("switch to", "go to"))]    # an action is no mode
    blinds = _said("home", "set_blinds")
    assert blinds["lower the blinds in the {room}"]["position"] == 0
    assert blinds["blinds up in the {room}"]["position"] == 100
    # blinds are raised to open; a window that is rolled down to open is lowered to open
    assert _said("car", "set_window")["roll down the {window} window"]["position"] == 100
    assert _said("car", "set_window")["lower the {window} window"]["position"] == 100   # ('roll down': open)
    # an optional string is never said bare after the value ("a timer for 30 minutes please" has no label)
    timer = _said("home", "start_timer")
    assert [q for q in timer if "{label}" in q]
    assert not [q for q in timer if re.search(r"(minutes|min) \{label\}", q)]
    assert _said("greenhouse", "add_note")     # a required string may be (the note's text)


def test_the_description_names_values_and_whole_requests():
    car = load_skill(paths.SKILLS / "car")
    assert "my seat" in data.forms_of(car.params("set_seat_heater")["seat"], "driver")    # ('my seat' is driver)
    assert "the windows" in data.forms_of(car.params("set_window")["window"], "all")
    rng = random.Random(0)
    said = [expand({"query": q, "calls": [{"name": "set_seat_heater", "arguments": {"seat": "{seat}", "level": 3}}]},
                   car, rng, fixed={"seat": "driver"})[0] for q in ["turn on the {seat} seat heater"] * 60]
    assert "turn on my seat heater" in said                          # not "the my seat seat heater"
    assert not [t for t in said if "seat seat" in t or "the my" in t]
    temp = _said("car", "set_temperature")
    assert temp["max heat"] == {"temperature": 28} and temp["make it as cold as possible"] == {"temperature": 16}
    assert _said("car", "set_fan_speed")["full blast"] == {"level": 7}
    assert _said("car", "set_volume")["mute"] == {"level": 0}


def test_where_it_plays_from_calls_and_routes():
    media = _said("car", "play_media")
    assert media["play {query} on the {source}"] == {"query": "{query}", "source": "{source}"}
    assert media["switch to {source}"] == {"source": "{source}"}
    assert _said("car", "call_contact")["give {name} a call"] == {"name": "{name}"}
    assert _said("car", "navigate_to")["how do i get to {destination}"] == {"destination": "{destination}"}
    assert not [q for q in _said("home", "play_music") if "{room}" in q and "switch to" in q]   # a room is no source


def test_a_choice_set_for_a_place():
    colour = _said("home", "set_light_color")       # "the colour of a room's lights": lights, either spelling
    assert colour["make the {room} lights {color}"] == {"room": "{room}", "color": "{color}"}
    assert colour["turn the {room} {color}"] == {"room": "{room}", "color": "{color}"}
    assert _said("home", "set_fan")["make the {room} fan {speed}"] == {"room": "{room}", "speed": "{speed}"}
    assert not [q for q in _said("home", "lock_door") if q.startswith("make the")]     # lock is no "set"


def test_warming_and_cooling_say_the_mode_where_there_is_one():
    """home's thermostat has an optional mode (heat, cool, ...) and its own lines say "cool it down to 20" is cool:
    the schema's lines agree; car's climate has no mode, so there the same words set only the temperature."""
    home = _said("home", "set_thermostat")
    assert home["cool it down to {temperature} degrees"] == {"temperature": "{temperature}", "mode": "cool"}
    assert home["warm it up to {temperature} degrees"] == {"temperature": "{temperature}", "mode": "heat"}
    assert home["heat it to {temperature} degrees"] == {"temperature": "{temperature}", "mode": "heat"}
    assert home["make it {temperature} degrees"] == {"temperature": "{temperature}"}
    assert _said("car", "set_temperature")["warm it up to {temperature} degrees"] == {"temperature": "{temperature}"}


def test_stop_playing_where_the_skill_plays():
    stop = _said("home", "stop_music")
    assert stop["stop playing"] == {} and stop["stop playing in the {room}"] == {"room": "{room}"}
    assert not [q for fn in ("set_fan_speed", "set_volume") for q in _said("car", fn) if "playing" in q]


def test_a_system_and_a_device_have_their_own_verbs():
    """Cruise control is engaged and cancelled, a seat heater heats the seat, and a defrost whose description also
    calls it a "defroster/demister" defrosts and demists the screen; lights get none of these."""
    cruise = _said("car", "set_cruise_control")
    assert cruise["engage the cruise"] == {"state": "on"}
    assert cruise["cancel the cruise control"] == {"state": "off"}
    heater = _said("car", "set_seat_heater")
    assert heater["heat the {seat} seat"] == {"seat": "{seat}", "level": 3}
    assert heater["warm up the {seat} seat"] == {"seat": "{seat}", "level": 3}
    assert heater["stop heating the {seat} seat"] == {"seat": "{seat}", "level": 0}
    defrost = _said("car", "set_defrost")
    assert defrost["defrost the {screen}"] == {"screen": "{screen}", "state": "on"}
    assert defrost["demist the {screen}"] == {"screen": "{screen}", "state": "on"}
    assert defrost["turn off the {screen} demister"] == {"screen": "{screen}", "state": "off"}
    assert not [q for q in _said("home", "set_light") if q.startswith(("cancel", "engage", "heat"))]
    assert not [q for q in _said("greenhouse", "set_grow_lights") if q.startswith(("cancel", "engage"))]


def test_other_names_of_the_object():
    """"cruise control" is also "cruise"; "the climate fan (blower) speed" names the fan a blower."""
    cruise = _said("car", "set_cruise_control")
    assert cruise["cruise at {speed} km/h"] == {"state": "on", "speed": "{speed}"}
    assert [q for q, a in cruise.items() if q.endswith("the cruise") and a == {"state": "{state}"}]
    fan = _said("car", "set_fan_speed")
    assert fan["blower speed {level}"] == {"level": "{level}"}
    assert fan["switch off the blower"] == {"level": 0}
    assert not [q for fn in ("set_light", "set_fan") for q in _said("home", fn) if "blower" in q]


def test_a_zone_of_one_function_the_ends_of_a_range_and_what_is_played():
    """Car's climate zone belongs to set_temperature alone, so "set the passenger side to 27" sets its temperature;
    home's room belongs to every function and gets no such line. "All the way up" is a number's maximum, "all the way
    down" its minimum; "play something by adele" plays adele."""
    temp = _said("car", "set_temperature")
    assert temp["set the {zone} to {temperature} degrees"] == {"temperature": "{temperature}", "zone": "{zone}"}
    assert temp["{zone} {temperature} degrees"] == {"temperature": "{temperature}", "zone": "{zone}"}
    assert not [q for fn in ("set_brightness", "set_volume", "set_thermostat") for q in _said("home", fn)
                if q.startswith("set the {room} to {")]
    assert _said("car", "set_fan_speed")["turn the fan all the way up"] == {"level": 7}
    assert _said("car", "set_temperature")["temperature all the way down"] == {"temperature": 16}
    assert _said("home", "set_brightness")["turn the {room} lights all the way down"] == {"room": "{room}", "level": 0}
    assert _said("home", "set_volume")["volume all the way up"] == {"level": 100}
    assert _said("car", "play_media")["play something by {query}"] == {"query": "{query}"}
    assert not [q for q in _said("car", "call_contact") if "something by" in q]
