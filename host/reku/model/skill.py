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


def read_jsonl(path):
    """The {query, calls} lines of a JSONL file ("_line" added); blank and // lines skipped. RekuError (one line,
    file and line number) for anything else."""
    path = Path(path)
    if path.is_dir():
        raise RekuError("%s is a directory, not a JSONL file" % path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RekuError("%s: cannot read (%s)" % (path, e.strerror or e))
    out = []
    for i, bline in enumerate(raw.splitlines(), 1):
        try:
            line = bline.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise RekuError("%s line %d: not UTF-8 text" % (path, i))
        if not line or line.startswith("//"):
            continue
        try:
            ex = json.loads(line)
        except ValueError as e:
            raise RekuError("%s line %d: not JSON (%s)" % (path, i, e))
        if (not isinstance(ex, dict) or not isinstance(ex.get("query"), str) or not isinstance(ex.get("calls"), list)
                or not all(isinstance(c, dict) for c in ex["calls"])):
            raise RekuError("%s line %d: expected {\"query\": \"...\", \"calls\": [{...}, ...]}" % (path, i))
        ex["_line"] = i
        out.append(ex)
    return out


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool) or isinstance(v, float) and v.is_integer()


def check_tools(tools, where="tools.json"):
    """The whole schema, once, with JSON-Schema meaning: RekuError naming the file, the function and the
    parameter of the first thing reku cannot compile."""
    if not isinstance(tools, list) or not tools:
        raise RekuError("%s: expected a non-empty JSON array of tools" % where)
    seen = set()
    for i, t in enumerate(tools):
        f = t.get("function") if isinstance(t, dict) else None
        if not isinstance(t, dict) or t.get("type") != "function" or not isinstance(f, dict) \
                or not isinstance(f.get("name"), str) or not f["name"]:
            raise RekuError("%s: tool %d is not {\"type\": \"function\", \"function\": {\"name\": ...}}" % (where, i))
        name = f["name"]
        if name in seen:
            raise RekuError("%s: function %s defined twice" % (where, name))
        seen.add(name)
        params = f.get("parameters", {"type": "object", "properties": {}})
        props = params.get("properties", {}) if isinstance(params, dict) else None
        if not isinstance(props, dict):
            raise RekuError("%s: %s: parameters.properties must be an object" % (where, name))
        for pname, p in props.items():
            at = "%s: %s.%s" % (where, name, pname)
            if not isinstance(p, dict):
                raise RekuError("%s must be an object" % at)
            ty = p.get("type")
            if ty not in ("string", "integer", "number", "boolean"):
                raise RekuError("%s has unsupported type %r (string, integer, number or boolean)" % (at, ty))
            if "enum" in p:
                e = p["enum"]
                if ty != "string":
                    raise RekuError("%s: enum is supported on strings only" % at)
                if not isinstance(e, list) or not e or not all(isinstance(v, str) and v for v in e):
                    raise RekuError("%s: enum must be a non-empty list of strings, got %s" % (at, json.dumps(e)))
                if len(set(e)) != len(e):
                    raise RekuError("%s: enum lists a value twice" % at)
            if ty in ("integer", "number"):
                lo, hi = p.get("minimum"), p.get("maximum")
                if lo is None or hi is None:
                    raise RekuError("%s needs minimum and maximum" % at)
                if not _is_int(lo) or not _is_int(hi):
                    raise RekuError("%s: minimum and maximum must be whole numbers, got %s and %s"
                                    % (at, json.dumps(lo), json.dumps(hi)))
                if lo > hi:
                    raise RekuError("%s: minimum %s is above maximum %s" % (at, lo, hi))
            if "maxLength" in p and (not _is_int(p["maxLength"]) or p["maxLength"] < 1):
                raise RekuError("%s: maxLength must be a positive integer" % at)
        req = params.get("required", [])
        if not isinstance(req, list) or not all(isinstance(r, str) for r in req):
            raise RekuError("%s: %s: required must be a list of parameter names" % (where, name))
        for r in req:
            if r not in props:
                raise RekuError("%s: %s requires unknown parameter %s" % (where, name, r))


def example_problem(ex, skill):
    """Why an example line breaks the schema (a string), or None. Arguments are literal values or a placeholder
    "{name}" that the query contains; every placeholder of the query is such an argument (in a no-call example,
    a parameter name of some function). {time} in the query stands for the arguments "{hour}" and "{minute}"."""
    from .data import PH, TIME
    query_ph = set(PH.findall(ex["query"]))
    timed = TIME in query_ph and all(v != "{%s}" % TIME for c in ex["calls"] if isinstance(c.get("arguments"), dict)
                                     for v in c["arguments"].values())
    if timed:                   # {time}: the arguments {hour} and {minute} said together
        query_ph |= {"hour", "minute"}
    if len(ex["calls"]) > MAX_CALLS:
        return "%d calls (at most %d)" % (len(ex["calls"]), MAX_CALLS)
    used = set()
    for c in ex["calls"]:
        fn = c.get("name")
        if fn not in skill.fns:
            return "unknown function %r" % (fn,)
        args = c.get("arguments", {})
        if not isinstance(args, dict):
            return "%s: arguments must be an object" % fn
        props = skill.params(fn)
        for k in sorted(skill.required(fn) - set(args)):
            return "%s: required argument %s missing" % (fn, k)
        for k, v in args.items():
            p = props.get(k)
            if p is None:
                return "%s: unknown argument %s" % (fn, k)
            m = PH.fullmatch(v) if isinstance(v, str) else None
            if m:
                if m.group(1) not in query_ph:
                    return "%s.%s: placeholder %s is not in the query" % (fn, k, v)
                used.add(m.group(1))
                continue
            bad = "%s.%s: %s" % (fn, k, json.dumps(v))
            if "enum" in p:
                if v not in p["enum"]:
                    return "%s is not one of %s" % (bad, ", ".join(p["enum"]))
            elif p["type"] in ("integer", "number"):
                if not _is_int(v) or not p["minimum"] <= v <= p["maximum"]:
                    return "%s is not a whole number in %s..%s" % (bad, p["minimum"], p["maximum"])
            elif p["type"] == "boolean":
                if not isinstance(v, bool):
                    return "%s is not true or false" % bad
            elif not isinstance(v, str) or len(v) > p.get("maxLength", STR_MAX):
                return "%s is not a string of at most %d characters" % (bad, p.get("maxLength", STR_MAX))
    if timed:
        if ex["calls"] and not {"hour", "minute"} <= used:
            return "placeholder {time} needs the arguments \"{hour}\" and \"{minute}\" of one call"
        used.add(TIME)
    for name in sorted(query_ph - used):
        if ex["calls"] or not any(name in skill.params(fn) for fn in skill.fns):
            return "placeholder {%s} in the query is no argument's value" % name
    return None


MIN_LINES = 3          # example lines per function below which `reku train` says so


def suggest_line(skill, fn, params):
    """A starting example line calling fn with placeholders for params (and its required ones): the words of the
    function's name, then one {placeholder} per parameter, for the user to rewrite as people say it."""
    props = skill.params(fn)
    req = skill.fns[fn].get("parameters", {}).get("required", [])
    names = [p for p in props if p in req or p in params]
    query = " ".join([fn.replace("_", " ")] + ["{%s}" % p for p in names])
    return json.dumps({"query": query, "calls": [{"name": fn, "arguments": {p: "{%s}" % p for p in names}}]})


def always_set(skill):
    """(function, parameter) pairs, in schema order: an optional parameter that every example line calling the
    function sets (coverage names them; reku.model.data.unsaid_lines also draws those lines without it)."""
    used, left = set(), set()
    for ex in skill.examples:
        for c in ex["calls"]:
            used.update((c["name"], a) for a in c.get("arguments", {}))
            left.update((c["name"], a) for a in skill.params(c["name"]) if a not in c.get("arguments", {}))
    return [(fn, p) for fn in skill.fns for p in skill.params(fn)
            if p not in skill.required(fn) and (fn, p) in used and (fn, p) not in left]


def coverage(skill):
    """What the examples leave out, as (message, line to add) pairs: a function with fewer than MIN_LINES example
    lines, a parameter no example line sets, an optional parameter every line of its function sets. `reku train`
    prints them before training."""
    lines, used = {}, set()
    for ex in skill.examples:
        for c in ex["calls"]:
            lines.setdefault(c["name"], set()).add(ex.get("_line"))
            used.update((c["name"], a) for a in c.get("arguments", {}))
    out = []
    for fn in skill.fns:
        n = len(lines.get(fn, ()))
        if n < MIN_LINES:
            out.append(("function %s has %d example line%s (%d or more, in different words, teach it the ways people "
                        "ask)" % (fn, n, "" if n == 1 else "s", MIN_LINES), suggest_line(skill, fn, ())))
        unused = [p for p in skill.params(fn) if (fn, p) not in used]
        for p in unused:
            out.append(("parameter %s of %s is set by no example line, so the model never learns to fill it"
                        % (p, fn), suggest_line(skill, fn, (p,))))
        for p in [p for f, p in always_set(skill) if f == fn]:
            out.append(("parameter %s of %s is optional but every example line sets it, so the model learns to fill "
                        "it even when a request does not say it" % (p, fn), suggest_line(skill, fn, ())))
    return out


def load_skill(path, lenient=False):
    """The skill in directory `path`, its tools checked and every example line validated against them: a bad line
    is a RekuError naming file and line, or with lenient=True dropped (skill.dropped lists (line, why))."""
    path = Path(path)
    tf = path / "tools.json"
    if not tf.is_file():
        raise RekuError("%s: no tools.json (a skill is a directory with tools.json and examples.jsonl)" % path)
    try:
        tools = json.loads(tf.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise RekuError("%s: not UTF-8 text" % tf)
    except ValueError as e:
        raise RekuError("%s: not JSON (%s)" % (tf, e))
    check_tools(tools, str(tf))
    ef = path / "examples.jsonl"
    if not ef.is_file():
        raise RekuError("%s: no examples.jsonl" % path)
    examples = read_jsonl(ef)
    test = read_jsonl(path / "test.jsonl") if (path / "test.jsonl").exists() else []
    sk = Skill(path, tools, examples, test)
    sk.dropped = []
    kept = []
    for ex in examples:
        why = example_problem(ex, sk)
        if why is None:
            kept.append(ex)
        elif lenient:
            sk.dropped.append((ex["_line"], why))
        else:
            raise RekuError("%s line %d: %s (fix the line, or train with --lenient to drop such lines)"
                            % (ef, ex["_line"], why))
    if not kept:
        raise RekuError("%s: no usable examples%s" % (ef, " (%d dropped)" % len(sk.dropped) if sk.dropped else ""))
    if not any(ex["calls"] for ex in kept):
        raise RekuError("%s: no example makes a call (the model learns the calls from them)" % ef)
    sk.examples = kept
    return sk


def compile_schema(skill_or_tools, str_max=STR_MAX, max_calls=MAX_CALLS, refuse=False):
    """(schema, vocab): the compact schema stored in the .rku and the output token strings. refuse: the model may
    refuse a value the schema does not allow (rkfw.infer.Grammar; trained with refusal negatives).
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
    schema = {"max_calls": max_calls, "fns": fns}
    if refuse:
        schema["refuse"] = True
    return schema, vocab
