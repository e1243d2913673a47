"""Training targets: the grammar steps (tokens and pointer positions) that produce given calls for a request.
Host-only (the board only decodes); uses the board's Grammar so both agree by construction."""

from rkfw.infer import (ABSENT, DIG0, END, FN0, FALSE, K_DONE, K_NUM, K_START, K_STOP, K_TOKEN, MINUS, NOCALL,
                        NUM_COPY, NUM_END, PRESENT, TRUE)


def target_steps(grammar, calls, text, tok):
    """The step sequence that produces `calls` for `text`: list of (kind, choice, allowed) with allowed a
    tuple of tokens or positions. Raises ValueError when the calls cannot be produced (bad value, a string
    that is not a span of whole words of the text)."""
    vocab_index = {}
    for i, v in enumerate(grammar.vocab):
        vocab_index[v] = i
    fn_index = {}
    for i, fn in enumerate(grammar.fns):
        fn_index[fn[0]] = i
    grammar.reset(text, tok)
    wanted = []
    for c in calls:
        if c["name"] not in fn_index:
            raise ValueError("unknown function %s" % c["name"])
        fi = fn_index[c["name"]]
        wanted.append(FN0 + fi)
        args = c.get("arguments", {})
        for p in grammar.fns[fi][1]:
            name, kind, req = p[0], p[1], p[2]
            if name not in args:
                if req:
                    raise ValueError("%s: missing required %s" % (c["name"], name))
                wanted.append(ABSENT)
                continue
            v = args[name]
            if not req:
                wanted.append(PRESENT)
            if kind == "e":
                t = vocab_index.get("v:" + str(v))
                if t is None or t not in p[3]:
                    raise ValueError("%s: %s=%r not in enum" % (c["name"], name, v))
                wanted.append(t)
            elif kind == "b":
                wanted.append(TRUE if v else FALSE)
            elif kind == "i":
                v = int(v)
                copy = [pos for pos, rv in grammar.runs if rv == v]
                if copy:
                    wanted.append(NUM_COPY)
                    wanted.append(("num", copy[0]))
                    continue
                if v < 0:
                    wanted.append(MINUS)
                for ch in str(abs(v)):
                    wanted.append(DIG0 + ord(ch) - 48)
                wanted.append(NUM_END)
            else:
                span = find_span(text, str(v), tok)
                if span is None:
                    raise ValueError("%s: %s=%r is not a span of %r" % (c["name"], name, v, text))
                wanted.append(("span", span[0], span[1]))
        for unknown in args:
            if unknown not in [p[0] for p in grammar.fns[fi][1]]:
                raise ValueError("%s: unknown parameter %s" % (c["name"], unknown))
    wanted.append(END if calls else NOCALL)
    steps = []
    for w in wanted:
        if isinstance(w, tuple):
            for pos in w[1:]:
                kind = grammar.next()
                allowed = tuple(grammar.positions())
                if kind not in (K_START, K_STOP, K_NUM) or pos not in allowed:
                    raise ValueError("span %r not allowed in %r" % (w, text))
                steps.append((kind, pos, allowed))
                grammar.feed(pos)
            continue
        kind = grammar.next()
        allowed = tuple(grammar.allow[:grammar.n_allow])
        if kind != K_TOKEN or w not in allowed:
            raise ValueError("token %s not allowed here (%r)" % (grammar.vocab[w], text))
        steps.append((kind, w, allowed))
        grammar.feed(w)
    if grammar.next() != K_DONE:
        raise ValueError("grammar did not finish for %r" % text)
    return steps



def find_span(text, value, tok):
    """(start, stop) of value in text (case-insensitive) on word boundaries, or None."""
    t = text.lower()
    v = value.lower().strip()
    if not v:
        return None
    i = t.find(v)
    while i >= 0:
        j = i + len(v)
        if ((i == 0 or not tok.is_word(t[i - 1])) and tok.is_word(t[i])
                and tok.is_word(t[j - 1]) and (j == len(t) or not tok.is_word(t[j]))):
            return i, j
        i = t.find(v, i + 1)
    return None
