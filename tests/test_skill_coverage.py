"""What `reku train` says before it trains, when the examples leave a function or a parameter out: each gap with
a line to add, and the line it suggests is a valid example that closes the gap."""
import json
import subprocess
import sys

from reku import paths
from reku.model.skill import coverage, load_skill

TOOLS = [
    {"type": "function", "function": {"name": "set_volume", "description": "Set the volume.", "parameters": {
        "type": "object", "required": ["level"], "properties": {
            "level": {"type": "integer", "minimum": 0, "maximum": 100},
            "room": {"type": "string", "enum": ["kitchen", "office"]}}}}},
    {"type": "function", "function": {"name": "mute", "description": "Mute a room.", "parameters": {
        "type": "object", "properties": {"room": {"type": "string", "enum": ["kitchen", "office"]}}}}},
]


def skill_dir(tmp_path, lines):
    d = tmp_path / "radio"
    d.mkdir(exist_ok=True)
    (d / "tools.json").write_text(json.dumps(TOOLS))
    (d / "examples.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return d


def test_gaps_are_named_with_a_line_that_closes_each(tmp_path):
    lines = [{"query": "volume {level}", "calls": [{"name": "set_volume", "arguments": {"level": "{level}"}}]},
             {"query": "turn it to {level}", "calls": [{"name": "set_volume", "arguments": {"level": "{level}"}}]},
             {"query": "volume at {level} percent", "calls": [{"name": "set_volume", "arguments": {"level": "{level}"}}]},
             {"query": "silence in the {room}", "calls": [{"name": "mute", "arguments": {"room": "{room}"}}]}]
    gaps = coverage(load_skill(skill_dir(tmp_path, lines)))
    assert [g[0] for g in gaps] == [
        "parameter room of set_volume is set by no example line, so the model never learns to fill it",
        "function mute has 1 example line (3 or more, in different words, teach it the ways people ask)",
        "parameter room of mute is optional but every example line sets it, so the model learns to fill it even "
        "when a request does not say it"]
    assert json.loads(gaps[0][1]) == {"query": "set volume {level} {room}", "calls": [
        {"name": "set_volume", "arguments": {"level": "{level}", "room": "{room}"}}]}
    # each suggested line is a valid example, and with it (and two more mute lines) nothing is left to say
    more = [json.loads(g[1]) for g in gaps] + [
        {"query": "mute the {room}", "calls": [{"name": "mute", "arguments": {"room": "{room}"}}]},
        {"query": "quiet", "calls": [{"name": "mute", "arguments": {}}]}]
    assert coverage(load_skill(skill_dir(tmp_path, lines + more))) == []


def test_bundled_skills_have_no_gaps():
    for s in ("home", "car"):
        assert coverage(load_skill(paths.SKILLS / s)) == []


def test_reku_train_prints_them_before_training(tmp_path):
    lines = [{"query": "volume {level}", "calls": [{"name": "set_volume", "arguments": {"level": "{level}"}}]}]
    d = skill_dir(tmp_path, lines)
    r = subprocess.run([sys.executable, "-m", "reku.cli", "train", "--skill", str(d), "--out", str(tmp_path / "m.rku"),
                        "--size", "tiny", "--steps", "2", "--examples", "200", "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    err = r.stderr.splitlines()
    assert "%s: function set_volume has 1 example line (3 or more" % (d / "examples.jsonl") in err[0]
    assert err[1].strip().startswith('{"query": "set volume {level}"')
    assert any("function mute has 0 example lines" in e for e in err)


def test_an_optional_parameter_every_line_sets_is_named(tmp_path):
    """The 30-line home sample's one timer line names a label, and its model gave every timer a label ("timer for 630
    minutes please" -> label "please"): an optional parameter that every line of its function sets is a gap, closed
    by a line without it."""
    lines = [{"query": q, "calls": [{"name": "set_volume", "arguments": {"level": "{level}", "room": "{room}"}}]}
             for q in ("volume {level} in the {room}", "{room} volume {level}", "set the {room} to {level}")]
    lines += [{"query": q, "calls": [{"name": "mute", "arguments": {}}]} for q in ("mute", "quiet", "silence")]
    lines += [{"query": "mute the {room}", "calls": [{"name": "mute", "arguments": {"room": "{room}"}}]}]
    gaps = coverage(load_skill(skill_dir(tmp_path, lines)))
    assert [g[0] for g in gaps] == ["parameter room of set_volume is optional but every example line sets it, so the "
                                    "model learns to fill it even when a request does not say it"]
    fix = json.loads(gaps[0][1])
    assert fix["calls"] == [{"name": "set_volume", "arguments": {"level": "{level}"}}]
    assert coverage(load_skill(skill_dir(tmp_path, lines + [fix]))) == []
