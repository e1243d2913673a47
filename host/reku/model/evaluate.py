"""Scoring a model on JSONL data: exact match of the call set, names, arguments, no-call, validity."""

import string

from .reference import Reference

_STRIP = string.whitespace + string.punctuation


def norm_value(v):
    if isinstance(v, str):
        return v.lower().strip(_STRIP)
    if isinstance(v, bool):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def norm_call(c):
    args = c.get("arguments", {}) or {}
    return (c["name"], tuple(sorted((k, norm_value(v)) for k, v in args.items())))


def validate_call(call, tools):
    """None when call satisfies the tools' JSON schema, else what is wrong (independent of the grammar)."""
    fns = {t["function"]["name"]: t["function"] for t in tools}
    fn = fns.get(call.get("name"))
    if fn is None:
        return "unknown function %r" % call.get("name")
    params = fn.get("parameters", {})
    props = params.get("properties", {})
    args = call.get("arguments", {})
    if not isinstance(args, dict):
        return "arguments is not an object"
    for r in params.get("required", []):
        if r not in args:
            return "missing required %s" % r
    for k, v in args.items():
        p = props.get(k)
        if p is None:
            return "unexpected parameter %s" % k
        ty = p["type"]
        if ty == "string":
            if not isinstance(v, str):
                return "%s is not a string" % k
            if "enum" in p and v not in p["enum"]:
                return "%s=%r not in enum" % (k, v)
        elif ty in ("integer", "number"):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (ty == "integer" and not isinstance(v, int)):
                return "%s is not a %s" % (k, ty)
            if not p.get("minimum", v) <= v <= p.get("maximum", v):
                return "%s=%r out of range" % (k, v)
        elif ty == "boolean" and not isinstance(v, bool):
            return "%s is not a boolean" % k
    return None


def score(pairs, tools):
    """pairs: list of (expected calls, predicted calls) -> metrics dict."""
    n = len(pairs)
    exact = names = valid = 0
    neg = neg_ok = pos = pos_called = 0
    arg_total = arg_ok = 0
    for exp, got in pairs:
        e = sorted(norm_call(c) for c in exp)
        g = sorted(norm_call(c) for c in got)
        exact += e == g
        names += sorted(c["name"] for c in exp) == sorted(c["name"] for c in got)
        valid += all(validate_call(c, tools) is None for c in got)
        if not exp:
            neg += 1
            neg_ok += not got
        else:
            pos += 1
            pos_called += bool(got)
        used = set()
        for c in exp:
            for j, d in enumerate(got):
                if j not in used and d["name"] == c["name"]:
                    used.add(j)
                    ea, ga = dict(norm_call(c)[1]), dict(norm_call(d)[1])
                    keys = set(ea) | set(ga)
                    arg_total += len(keys)
                    arg_ok += sum(ea.get(k) == ga.get(k) for k in keys)
                    break
    return {"n": n, "exact_match": exact / max(1, n), "name_accuracy": names / max(1, n),
            "argument_accuracy": arg_ok / max(1, arg_total), "no_call_accuracy": neg_ok / max(1, neg),
            "call_recall": pos_called / max(1, pos), "valid": valid / max(1, n)}


def predict(model, queries, engine="reference", why=False):
    """The calls for each query; why=True: (calls, reason) pairs, reason None or rkfw.infer.Grammar.reason()'s."""
    out = []
    if engine == "reference":
        r = Reference(model)
        for q in queries:
            calls = r.run(q)[0]
            out.append((calls, r.why) if why else calls)
        return out
    from rkfw.infer import Engine
    e = Engine(model)
    for q in queries:
        calls, st = e.run(q)
        out.append((calls, st.get("why")) if why else calls)
    return out


def tools_of(model):
    """The tools' JSON schema as far as the model's compact schema knows it (for validity checks)."""
    from .rkufile import schema_vocab
    schema, vocab = schema_vocab(model)
    tools = []
    for name, params in schema["fns"]:
        props, req = {}, []
        for p in params:
            pname, kind, r, a, b = p
            if kind == "e":
                props[pname] = {"type": "string", "enum": [vocab[t][2:] for t in a]}
            elif kind == "i":
                props[pname] = {"type": "integer", "minimum": a, "maximum": b}
            elif kind == "b":
                props[pname] = {"type": "boolean"}
            else:
                props[pname] = {"type": "string"}
            if r:
                req.append(pname)
        tools.append({"type": "function", "function": {"name": name, "parameters": {
            "type": "object", "properties": props, "required": req}}})
    return tools


def evaluate_model(model, data, engine="reference", tools=None, with_errors=False):
    """score() of the model on data; where lines say why there is no call ("reason": "out of range" or "unknown
    value", optionally "param"), reason_accuracy: the share of them answered with no call and that reason."""
    both = predict(model, [ex["query"] for ex in data], engine, why=True)
    preds = [c for c, _ in both]
    res = score([(ex["calls"], p) for ex, p in zip(data, preds)], tools or tools_of(model))
    said = [(ex, w) for ex, (c, w) in zip(data, both) if ex.get("reason")]
    if said:
        res["reasons"] = len(said)
        res["reason_accuracy"] = sum(1 for ex, w in said if w is not None and w[0] == ex["reason"]
                                     and ex.get("param") in (None, w[2])) / len(said)
    if with_errors:
        res["errors"] = [{"query": ex["query"], "expected": ex["calls"], "got": p}
                         for ex, p in zip(data, preds)
                         if sorted(map(norm_call, ex["calls"])) != sorted(map(norm_call, p))]
    return res
