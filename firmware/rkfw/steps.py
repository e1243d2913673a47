# The grammar steps (tokens and pointer positions) that produce given calls for a request: training's targets on
# the host (reku.model.objective) and what a board teaches its memory from a correction (rkfw.teach). Read from
# the grammar table in place (rkfw.infer.Grammar), so that host and board agree by construction. Imported on a
# board only while it learns a correction.
from rkfw.infer import (_KB, _KE, _KI, _u16, ABSENT, DIG0, END, FN0, FALSE, K_DONE, K_NUM, K_START, K_STOP,
                        K_TOKEN, MINUS, NOCALL, NUM_COPY, NUM_END, PRESENT, TRUE)


HALF_DAY = ("am", "pm", "morning", "afternoon", "evening", "night", "tonight", "noon", "midday", "midnight")


def _half_day(text, pos):
    """Whether the number run at pos is a time of day's marker (rkfw.infer.Grammar.set_text puts the hour there)."""
    w = text[pos:pos + 10].lower()
    for m in HALF_DAY:
        if w.startswith(m) and (len(w) == len(m) or not w[len(m)].isalpha()):
            return True
    return False


def _enum_token(g, r, value):
    """The output token of enum value `value` of the parameter record at r, or None."""
    T = g.T
    e = g._enum + 2 * _u16(T, r + 4)
    want = "v:" + str(value)
    for j in range(_u16(T, r + 6)):
        t = _u16(T, e + 2 * j)
        if g.string(t) == want:
            return t
    return None


def target_steps(g, calls, text, tok):
    """The step sequence that produces `calls` for `text`: list of (kind, choice, allowed) with allowed a
    tuple of tokens or positions. Raises ValueError when the calls cannot be produced (unknown function or
    parameter, bad value, a string that is not a span of whole words of the text). An integer or enum argument
    None is a refused value (a refusing model's NOCALL there): the steps end with it, and the answer is no call."""
    names = [g.fn_name(i) for i in range(g.n_fns)]
    T = g.T
    g.reset(text, tok)
    wanted = []
    refused = False
    for c in calls:
        if not isinstance(c, dict) or c.get("name") not in names:
            raise ValueError("unknown function %s" % (c.get("name") if isinstance(c, dict) else c))
        fi = names.index(c["name"])
        wanted.append(FN0 + fi)
        args = c.get("arguments", {})
        if not isinstance(args, dict):
            raise ValueError("%s: arguments must be an object" % c["name"])
        a, b = g._recs(fi)
        pnames = []
        for r in range(a, b, 16):
            name = g.string(_u16(T, r))
            kind = T[r + 2]
            req = T[r + 3]
            pnames.append(name)
            if name not in args:
                if req:
                    raise ValueError("%s: missing required %s" % (c["name"], name))
                wanted.append(ABSENT)
                continue
            v = args[name]
            if not req:
                wanted.append(PRESENT)
            if v is None and (kind == _KE or kind == _KI):
                wanted.append(NOCALL)
                refused = True
                break
            if kind == _KE:
                t = _enum_token(g, r, v)
                if t is None:
                    raise ValueError("%s: %s=%r not in enum" % (c["name"], name, v))
                wanted.append(t)
            elif kind == _KB:
                wanted.append(TRUE if v else FALSE)
            elif kind == _KI:
                v = int(v)
                copy = [pos for pos, rv in g.runs if rv == v]
                if copy:
                    # an hour said with its half of the day is copied there ("8 am": at "am", as "9 pm" is 21
                    # at "pm"), so that every time of day's hour is copied at its marker
                    at = [pos for pos in copy if _half_day(text, pos)]
                    wanted.append(NUM_COPY)
                    wanted.append(("num", (at or copy)[0]))
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
        if refused:
            break
        for unknown in args:
            if unknown not in pnames:
                raise ValueError("%s: unknown parameter %s" % (c["name"], unknown))
    if not refused:
        wanted.append(END if calls else NOCALL)
    steps = []
    for w in wanted:
        if isinstance(w, tuple):
            for pos in w[1:]:
                kind = g.next()
                allowed = tuple(g.positions())
                if kind not in (K_START, K_STOP, K_NUM) or pos not in allowed:
                    raise ValueError("span %r not allowed in %r" % (w, text))
                steps.append((kind, pos, allowed))
                g.feed(pos)
            continue
        kind = g.next()
        allowed = tuple(g.allow[:g.n_allow])
        if kind != K_TOKEN or w not in allowed:
            raise ValueError("token %s not allowed here (%r)" % (g.string(w), text))
        steps.append((kind, w, allowed))
        g.feed(w)
    if g.next() != K_DONE:
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
