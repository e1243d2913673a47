"""Skills: a directory with tools.json (OpenAI function-calling format) and examples.jsonl.
compile_schema() turns the tools into the compact schema and the output vocabulary the board decodes with."""

import json
from pathlib import Path

from rkfw import infer

from ..errors import RekuError

STR_MAX = 32          # longest copied string, in characters
MAX_CALLS = 2


class Skill:
    def __init__(self, path, tools, examples, test=None):
        self.path = Path(path)
        self.tools = tools
        self.examples = examples
        self.test = test or []
        self.fns = {t["function"]["name"]: t["function"] for t in tools}

    @property
    def name(self):
        return self.path.name

    def params(self, fn):
        return self.fns[fn].get("parameters", {}).get("properties", {})

    def required(self, fn):
        return set(self.fns[fn].get("parameters", {}).get("required", []))


def _read_jsonl(path):
    out = []
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("//"):
            continue
        try:
            ex = json.loads(line)
        except ValueError as e:
            raise RekuError("%s line %d: not JSON (%s)" % (path, i, e))
        if not isinstance(ex, dict) or "query" not in ex or not isinstance(ex.get("calls"), list):
            raise RekuError("%s line %d: expected {\"query\": ..., \"calls\": [...]}" % (path, i))
        ex["_line"] = i
        out.append(ex)
    return out


def check_tools(tools, where="tools.json"):
    if not isinstance(tools, list) or not tools:
        raise RekuError("%s: expected a non-empty JSON array of tools" % where)
    seen = set()
    for i, t in enumerate(tools):
        f = t.get("function") if isinstance(t, dict) else None
        if t.get("type") != "function" or not isinstance(f, dict) or not f.get("name"):
            raise RekuError("%s: tool %d is not {\"type\": \"function\", \"function\": {\"name\": ...}}" % (where, i))
        if f["name"] in seen:
            raise RekuError("%s: function %s defined twice" % (where, f["name"]))
        seen.add(f["name"])
        params = f.get("parameters", {"type": "object", "properties": {}})
        for pname, p in params.get("properties", {}).items():
            ty = p.get("type")
            if ty not in ("string", "integer", "number", "boolean"):
                raise RekuError("%s: %s.%s has unsupported type %r" % (where, f["name"], pname, ty))
            if ty in ("integer", "number") and ("minimum" not in p or "maximum" not in p):
                raise RekuError("%s: %s.%s needs minimum and maximum" % (where, f["name"], pname))
        for r in params.get("required", []):
            if r not in params.get("properties", {}):
                raise RekuError("%s: %s requires unknown parameter %s" % (where, f["name"], r))


def load_skill(path):
    path = Path(path)
    tf = path / "tools.json"
    if not tf.exists():
        raise RekuError("%s: no tools.json (a skill is a directory with tools.json and examples.jsonl)" % path)
    try:
        tools = json.loads(tf.read_text())
    except ValueError as e:
        raise RekuError("%s: not JSON (%s)" % (tf, e))
    check_tools(tools, str(tf))
    ef = path / "examples.jsonl"
    if not ef.exists():
        raise RekuError("%s: no examples.jsonl" % path)
    examples = _read_jsonl(ef)
    test = _read_jsonl(path / "test.jsonl") if (path / "test.jsonl").exists() else []
    sk = Skill(path, tools, examples, test)
    for ex in examples:
        for c in ex["calls"]:
            if c.get("name") not in sk.fns:
                raise RekuError("%s line %d: unknown function %r" % (ef, ex["_line"], c.get("name")))
    return sk


def compile_schema(skill_or_tools, str_max=STR_MAX, max_calls=MAX_CALLS):
    """(schema, vocab): the compact schema stored in the .rku and the output token strings.
    schema = {"max_calls": N, "fns": [[name, [[param, kind, required, a, b], ...]], ...]} with kind
    "e" (a = allowed value token ids), "i" (a, b = minimum, maximum), "b", "s" (a = max length)."""
    tools = skill_or_tools.tools if isinstance(skill_or_tools, Skill) else skill_or_tools
    vocab = list(infer.FIXED)
    for t in tools:
        vocab.append("f:" + t["function"]["name"])
    vidx = {}
    fns = []
    for t in tools:
        f = t["function"]
        props = f.get("parameters", {}).get("properties", {})
        req = set(f.get("parameters", {}).get("required", []))
        params = []
        for pname, p in props.items():
            r = 1 if pname in req else 0
            if p["type"] == "string" and "enum" in p:
                ids = []
                for v in p["enum"]:
                    key = "v:" + str(v)
                    if key not in vidx:
                        vidx[key] = len(vocab)
                        vocab.append(key)
                    ids.append(vidx[key])
                params.append([pname, "e", r, ids, None])
            elif p["type"] in ("integer", "number"):
                params.append([pname, "i", r, int(p["minimum"]), int(p["maximum"])])
            elif p["type"] == "boolean":
                params.append([pname, "b", r, None, None])
            else:
                params.append([pname, "s", r, int(p.get("maxLength", str_max)), None])
        fns.append([f["name"], params])
    return {"max_calls": max_calls, "fns": fns}, vocab
