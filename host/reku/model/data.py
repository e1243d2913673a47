"""Training data from a skill: placeholder expansion, paraphrase/noise augmentation, negatives, compounds.
Deterministic for a given seed (random.Random only, no global state)."""

import random
import re

from rkfw.infer import NUM_TENS as TENS
from rkfw.infer import NUM_UNITS as ONES          # the words the board's number reader knows, and no others

PH = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

# Requests for nothing a home-automation-like skill does; skills add their own near misses as examples.
GENERIC_NEGATIVES = [
    "what's the capital of france", "tell me a joke", "who won the game last night", "what is the meaning of life",
    "how tall is mount everest", "translate hello into spanish", "what's two plus two", "order a pizza",
    "call mom", "send a text to john", "what's the weather like tomorrow", "book a flight to berlin",
    "how do i bake bread", "remind me to buy milk", "what day is it", "who are you", "sing me a song",
    "how far is the moon", "add eggs to my shopping list", "what's on my calendar today", "open youtube",
    "search the web for cheap flights", "how old is the queen", "what's the news", "check my email",
    "tell me a story", "what time is it in tokyo", "spell necessary", "how many ounces in a cup",
    "good job", "thank you", "never mind", "hello", "hi there", "cancel", "nothing", "blah blah",
    "asdf jkl", "i love you", "what can you do", "play a game with me", "flip a coin", "roll a dice",
    "what's the stock price of apple", "how do you say thanks in french", "recommend a movie",
    "find a recipe for lasagna", "who is the president", "what is photosynthesis", "set up a meeting with sam",
    "how are you today", "what's up", "are you a robot", "can you hear me", "repeat that", "say that again",
    "what did you say", "i'm bored", "you're funny", "that's wrong", "no", "yes", "maybe later", "stop talking",
    "how do i change a tire", "what's the speed of light", "how many legs does a spider have", "who painted the mona lisa",
    "convert 10 miles to kilometers", "what's 7 plus 12", "how much is 20 euros in dollars", "what's the square root of 81",
    "tell me a fun fact", "give me a compliment", "what's trending today", "post this on twitter", "take a selfie",
    "navigate to the nearest gas station", "how long is the drive to work", "find a dentist near me", "order sushi",
    "schedule a haircut for friday", "what time does the bank open", "what's my account balance", "pay the electricity bill",
    "track my package", "renew my library books", "how do you make pancakes", "what's a good name for a dog",
    "spell the word restaurant", "what rhymes with orange", "teach me spanish", "what's the best laptop",
    "who won the world cup in 2018", "how many people live in tokyo", "what's the tallest building in the world",
    "is pluto a planet", "what causes earthquakes", "how do airplanes fly", "what's the boiling point of water",
    "send flowers to my mom", "buy tickets for the concert", "what movies are playing tonight", "rate this restaurant",
    "open the calculator", "turn on airplane mode", "charge my phone", "update my apps", "delete my last email",
    "what's the moon phase tonight", "when is the next full moon", "how many calories in an apple",
]

# Common words outside any home-automation vocabulary: random strings of them are negatives too
# ("requests" in unknown words must give no call rather than the nearest function).
COMMON = ("the a my your his her our their this that some any every what who why how when where which is are was "
          "be have has do does did can could would should will may might must tell me about give show find make "
          "take get send write read call ask buy sell order book pay learn teach explain define describe "
          "compare translate spell count name list remember forget think know want need like love hate "
          "friend family mother father sister brother john mary boss teacher doctor dog cat bird horse fish "
          "car bus train plane bike road city country world river mountain ocean sky sun moon star rain snow "
          "book story poem letter email message phone computer internet website app game show news "
          "money bank price cost shop store market food bread cheese apple pizza coffee tea milk sugar salt "
          "school work office meeting project report plan idea question answer problem reason example "
          "history science math art sport football tennis chess weather spring summer autumn winter "
          "monday tuesday friday weekend afternoon today tomorrow yesterday week year "
          "big small new old good bad happy sad funny strange quick slow early late long short far near "
          "running late lost found broken fixed ready busy free tired hungry thirsty sick healthy "
          "serendipity philosophy democracy economy galaxy dinosaur volcano pyramid algorithm").split()
FILL_PRE = ["please ", "hey, ", "could you ", "can you ", "would you ", "i want to ", "i'd like you to ",
            "ok ", "hey reku, ", "quick, ", "go ahead and ", "um, "]
FILL_POST = [" please", " thanks", " now", " for me", " thank you", " right now", ", thanks"]
NEGATIVES = 0.18     # share of requests for nothing (reku train's default, --negatives)
REFUSALS = 0.05      # share of refusal requests for a model that refuses (reku train's default; learn and federate)
JOIN = [" and ", " and then ", ", then ", " and also ", ". also ", " then "]


def number_words(n):
    if n < 20:
        return ONES[n]
    if n < 100:
        t, o = divmod(n, 10)
        return TENS[t] + ("" if o == 0 else " " + ONES[o])
    if n < 1000:
        h, r = divmod(n, 100)
        return ONES[h] + " hundred" + ("" if r == 0 else " " + number_words(r))
    return str(n)


THE_THE = re.compile(r"\bthe ((?:the|my|all|every|both) )")
TIME = "time"   # a query placeholder for the arguments {hour} and {minute} said together ("7 pm", "half past 6")


def spoken_time(rng, lo=0, hi=23, mlo=0, mhi=59):
    """(text, hour, minute): a time of day as people say or write it ("7 pm", "7:30 pm", "22:10", "half past 6",
    "quarter to 8", "seven in the evening", "noon"), the hour in lo..hi and the minute in mlo..mhi. A form without
    am/pm ("half past 6", "7 o'clock") means the hour as said (1..12), as the skills' own lines do."""
    while True:
        h = rng.randint(max(0, lo), min(23, hi))
        m = rng.choice((0, 0, 0, 0, 30, 30, 15, 45, rng.randint(0, 59), rng.randint(0, 59)))
        if mlo <= m <= mhi:
            break
    h12 = h % 12 or 12
    said = number_words(h12) if rng.random() < 0.25 else str(h12)
    if h < 12:
        ap = rng.choice(("am", "am", "in the morning") if h >= 5 else ("am", "am", "at night"))
    else:
        ap = rng.choice(("pm", "pm", "in the afternoon" if h < 17 else "in the evening" if h < 21 else "at night"))
    bare = 1 <= h <= 12                         # said without am/pm, the hour is what is said
    forms = ["%02d:%02d" % (h, m), "%d:%02d" % (h, m), "%d:%02d %s" % (h12, m, ap)]
    if m == 0:
        forms += ["%s %s" % (said, ap), "%d%s" % (h12, ap[:2]) if ap in ("am", "pm") else "%s %s" % (said, ap)]
        forms += ["%s o'clock" % said] if bare else ["%s o'clock %s" % (said, ap)]
        forms += ["noon", "midday", "12 noon"] if h == 12 else ["midnight"] if h == 0 else []
    elif m >= 10:
        forms.append("%s %s %s" % (number_words(h12), number_words(m), ap))
    if m == 30:
        forms += ["half past %s" % said] if bare else ["half past %s %s" % (said, ap)]
    if m == 15:
        forms += ["quarter past %s" % said, "a quarter past %s" % said] if bare else ["quarter past %s %s" % (said, ap)]
    if m == 45:
        nxt = (h + 1) % 12 or 12
        forms += ["quarter to %d" % nxt] if h <= 11 else ["quarter to midnight"] if h == 23 else \
            ["quarter to %d %s" % (nxt, "pm" if h < 22 else "at night")]
    return rng.choice(forms), h, m


def forms_of(p, v):
    """The words that say enum value v of parameter p: its x-synonyms (or the value itself), and what the
    parameter's description names it ("Which seat ('my seat' is driver)": "my seat" says driver)."""
    forms = list(p.get("x-synonyms", {}).get(v) or [v.replace("_", " ")])
    for m in re.finditer(r"'([^']+)' is (?:the )?([a-z_]+)", (p.get("description") or "").lower()):
        if m.group(2) == v and m.group(1) not in forms:
            forms.append(m.group(1))
    return forms


def _param_of(ex, skill, name):
    """The schema of the parameter whose argument is the placeholder {name}, and the function it is in.
    In a no-call example, any parameter of that name (its values make near-miss negatives)."""
    for c in ex["calls"]:
        for k, v in c.get("arguments", {}).items():
            if v == "{%s}" % name:
                return skill.params(c["name"]).get(k), c["name"]
    if not ex["calls"]:
        for fn in skill.fns:
            p = skill.params(fn).get(name)
            if p is not None:
                return p, fn
    return None, None


def _int_value(rng, lo, hi):
    r = rng.random()
    if r < 0.35 and hi - lo >= 10:
        vals = [v for v in range(lo, hi + 1) if v % 10 == 0 or v % 5 == 0]
        return rng.choice(vals)
    if r < 0.5:
        return rng.choice([lo, hi, min(hi, lo + 1), max(lo, hi - 1)])
    return rng.randint(lo, hi)


def expand(ex, skill, rng, fixed=None, said=None):
    """One concrete (query, calls, strings) from an example with placeholders. strings: values copied into
    the query (they must stay spans: noise does not touch them). fixed: {placeholder: enum value} to use instead
    of a drawn one; said: a dict that receives {placeholder: (value, surface words)}."""
    q = ex["query"]
    values = {}
    surfaces = {}
    strings = []
    for m in PH.finditer(q):
        name = m.group(1)
        if name in values:
            continue
        p, fn = _param_of(ex, skill, name)
        if p is None and name == TIME:
            ph, pmin = _param_of(ex, skill, "hour")[0], _param_of(ex, skill, "minute")[0]
            if ph is not None and pmin is not None:
                s, values["hour"], values["minute"] = spoken_time(rng, int(ph["minimum"]), int(ph["maximum"]),
                                                                   int(pmin["minimum"]), int(pmin["maximum"]))
                values[name] = None
                surfaces[name] = s
                continue
        if p is None:
            raise ValueError("line %s: placeholder {%s} has no argument \"{%s}\"" % (ex.get("_line"), name, name))
        before = q[:m.start()]
        if "enum" in p:
            v = fixed[name] if fixed and name in fixed else rng.choice(p["enum"])
            forms = forms_of(p, v)
            forms += [v.replace("_", " ")] if v.replace("_", " ") not in forms else []
            s = rng.choice(forms)
            if s.split()[-1:] == q[m.end():].split()[:1] and " " in s:
                s = s.rsplit(" ", 1)[0]             # "my seat" before "seat heater", "the driver's window" before "window"
        elif p["type"] in ("integer", "number"):
            v = _int_value(rng, int(p["minimum"]), int(p["maximum"]))
            if before.endswith(":"):
                s = "%02d" % v
            elif rng.random() < 0.3 and v <= 100 and not q[m.end():].startswith(":"):    # "7:30", not "seven:30"
                s = number_words(v)
                if v == 100 and rng.random() < 0.5:
                    s = "a hundred"
            else:
                s = str(v)
        elif p["type"] == "boolean":
            v = rng.random() < 0.5
            s = "on" if v else "off"
        else:
            s = rng.choice(p.get("examples") or ["something"])
            v = s
            strings.append(s)
        values[name] = v
        surfaces[name] = s
        if said is not None:
            said[name] = (v, s)
    text = THE_THE.sub(r"\1", PH.sub(lambda m: surfaces[m.group(1)], q))       # "close the my window"
    calls = []
    for c in ex["calls"]:
        args = {}
        for k, v in c.get("arguments", {}).items():
            m = PH.fullmatch(v) if isinstance(v, str) else None
            args[k] = values[m.group(1)] if m else v
        calls.append({"name": c["name"], "arguments": args})
    for c in calls:
        for k, v in c["arguments"].items():
            p = skill.params(c["name"]).get(k, {})
            if p.get("type") == "string" and "enum" not in p and v not in strings:
                strings.append(v)
    return text, calls, strings


MARKERS = ("in", "on", "at", "for", "from", "called", "named", "with", "by")     # words that introduce an argument
DETS = ("the", "a", "an", "my", "some")


def unsaid(query, name):
    """The request without placeholder {name}: with the words that introduce it ("in the {room}", "for {label}",
    "called {label}") or, where it modifies a noun, alone ("a {label} timer" -> "a timer"). None where neither
    applies: it is the verb's object ("put on some {query}"), or it is said twice or next to punctuation."""
    toks = query.split()
    ph = "{%s}" % name
    at = [i for i, t in enumerate(toks) if t == ph]
    if len(at) != 1 or query.count(ph) != 1:
        return None
    i = j = at[0]
    while j > 0 and toks[j - 1] in DETS:
        j -= 1
    if j >= 3 and toks[j - 1] in MARKERS:           # not a particle right after the verb ("put on some {query}")
        del toks[j - 1:i + 1]
    elif 0 < i < len(toks) - 1 and toks[i - 1] in DETS and not PH.search(toks[i + 1]) and toks[i + 1] not in MARKERS:
        del toks[i]
    else:
        return None
    return " ".join(toks)


def unsaid_lines(skill):
    """{function: example lines} that say less than the user's lines do: where every example line of a function
    sets an optional parameter (skill.coverage names it), each such line again without it (unsaid), so that the
    model does not learn to fill it when a request does not say it."""
    from .skill import always_set
    out = {}
    for fn, p in always_set(skill):
        for ex in skill.examples:
            c = ex["calls"][0] if len(ex["calls"]) == 1 else {}
            q = unsaid(ex["query"], p) if c.get("name") == fn and c["arguments"].get(p) == "{%s}" % p else None
            if q is not None and "{%s}" % p not in q:
                args = {k: v for k, v in c["arguments"].items() if k != p}
                out.setdefault(fn, []).append(dict(ex, query=q, calls=[{"name": fn, "arguments": args}]))
    return out


def requests(examples, skill, seed=7):
    """Example lines as requests to evaluate on: each placeholder filled once (random.Random(seed)), no noise."""
    rng = random.Random(seed)
    out = []
    for ex in examples:
        text, calls, _ = expand(ex, skill, rng)
        out.append({"query": text, "calls": calls})
    return out


HOLD_OUT_SEED = 19      # which lines --hold-out keeps out: the same for every training seed


def hold_out(skill, share):
    """(examples to train on, dev requests): `share` of the skill's example lines (random.Random(HOLD_OUT_SEED),
    at least one) kept out of training and filled once as hand-written requests to choose a checkpoint on."""
    if not 0 < share < 1:
        raise ValueError("--hold-out %g: a share between 0 and 1 (0.2 keeps a fifth of the lines out)" % share)
    n = max(1, int(round(share * len(skill.examples))))
    if n >= len(skill.examples):
        raise ValueError("--hold-out %g of %d example lines leaves none to train on" % (share, len(skill.examples)))
    held = set(random.Random(HOLD_OUT_SEED).sample(range(len(skill.examples)), n))
    train = [ex for i, ex in enumerate(skill.examples) if i not in held]
    if not any(ex["calls"] for ex in train):
        raise ValueError("--hold-out %g keeps every example line that makes a call out of training" % share)
    return train, requests([ex for i, ex in enumerate(skill.examples) if i in held], skill)


# Words that are no value of any enum of the usual skills (places, colours, modes, things): said where an enum value
# goes, they make a refusal ("turn the sauna lights on": unknown value). A skill's own forms are filtered out.
UNKNOWN_PLACES = ("attic", "basement", "cellar", "sauna", "balcony", "porch", "loft", "pantry", "laundry room",
                  "upstairs", "downstairs", "roof", "trunk", "sunroof", "left", "right", "middle", "top", "shed",
                  "guest room", "dining room", "playroom", "greenhouse", "driveway", "terrace")
UNKNOWN_COLOURS = ("magenta", "turquoise", "beige", "cyan", "gold", "silver", "maroon", "lilac", "teal", "brown",
                   "black", "grey", "violet", "lime")
UNKNOWN_OTHER = ("turbo", "eco", "silent", "disco", "romantic", "sport", "ludicrous", "extreme", "medium rare",
                 "holiday", "storm", "weekend", "vacation", "spicy", "crazy", "banana", "monday", "cheese", "pressure",
                 "noise level", "radiation", "wifi", "cassette", "vinyl")


def unknown_values(p, taken):
    """Words no value of enum parameter p (nor any other enum form of the skill, `taken`) means, of the parameter's
    kind: places for a place, colours for a colour, other words otherwise."""
    name = p.get("_name", "")
    desc = (p.get("description") or "").lower()
    if any(w in name for w in ("room", "zone", "area", "location", "place", "seat", "window", "door", "screen")) \
            or "room" in desc or "zone" in desc:
        pool = UNKNOWN_PLACES
    elif "colo" in name or "colo" in desc:
        pool = UNKNOWN_COLOURS
    else:
        pool = UNKNOWN_OTHER
    return [w for w in pool if not set(w.split()) & taken]


def _bad_int(rng, lo, hi):
    """An integer outside [lo, hi]: above it, below it (when lo > 0), or negative."""
    r = rng.random()
    if r < 0.5 or (lo <= 0 and r < 0.75):
        return rng.randint(hi + 1, max(hi + 10, min(hi * 3, hi + 900)))
    if lo > 0 and r < 0.75:
        return rng.randint(0, lo - 1)
    return -rng.randint(1, max(10, min(hi, 99)))


def refusal(ex, skill, rng, unknown):
    """A request like the example's but with one integer out of its range or one enum value the schema lacks:
    (text, calls up to the refused value with that argument None, strings, reason), or None when the example
    has no such argument. `unknown`: the words of the skill's enum forms (no unknown value may use one)."""
    cands = []
    for ci, c in enumerate(ex["calls"]):
        for k, v in c.get("arguments", {}).items():
            m = PH.fullmatch(v) if isinstance(v, str) else None
            if not m or v not in ex["query"]:
                continue                                  # a literal, or said through {time}
            p = skill.params(c["name"]).get(k, {})
            if p.get("type") in ("integer", "number") or "enum" in p and len(p["enum"]) >= 3:
                cands.append((ci, k, m.group(1), p))
    if not cands:
        return None
    ci, k, name, p = rng.choice(cands)
    q = ex["query"]
    at = q.index("{%s}" % name)
    if "enum" in p:
        bad, why = rng.choice(unknown_values(dict(p, _name=k), unknown)), "unknown value"
    else:
        v = _bad_int(rng, int(p["minimum"]), int(p["maximum"]))
        bad = ("%02d" % v if v >= 0 else "-%02d" % -v) if q[:at].endswith(":") else str(v)
        why = "out of range"
        if bad.startswith("-") and at > 0 and q[at - 1].isalnum():
            return None
    # the refused placeholder becomes a mark in the query and a stand-in value in the calls; the rest expands as usual
    ph = "{%s}" % name
    stand = p["enum"][0] if "enum" in p else int(p["minimum"])
    filled = expand({"query": q.replace(ph, "\x00"), "calls": [
        {"name": c["name"], "arguments": {a: (stand if w == ph else w) for a, w in c.get("arguments", {}).items()}}
        for c in ex["calls"]]}, skill, rng)
    text = filled[0].replace("\x00", bad)
    calls = filled[1][:ci + 1]
    calls[ci]["arguments"][k] = None
    return text, calls, filled[2], why


def _protected(text, strings):
    """Character mask of positions that noise must leave alone (copied strings and digits)."""
    prot = [c.isdigit() for c in text]
    low = text.lower()
    for s in strings:
        i = low.find(str(s).lower())
        if i >= 0:
            for j in range(i, i + len(s)):
                prot[j] = True
    return prot


def typo(text, rng, strings):
    words = [(m.start(), m.end()) for m in re.finditer(r"[a-z]{4,}", text)]
    prot = _protected(text, strings)
    words = [w for w in words if not any(prot[w[0]:w[1]])]
    if not words:
        return text
    a, b = rng.choice(words)
    w = text[a:b]
    i = rng.randrange(1, len(w) - 1)
    op = rng.random()
    if op < 0.35:
        w = w[:i] + w[i + 1] + w[i] + w[i + 2:]       # swap
    elif op < 0.65:
        w = w[:i] + w[i + 1:]                           # drop
    elif op < 0.85:
        w = w[:i] + w[i] + w[i:]                        # double
    else:
        w = w[:i] + rng.choice("aeiou") + w[i + 1:]      # substitute a vowel
    return text[:a] + w + text[b:]


def noise(text, rng, strings, level=1.0):
    if rng.random() < 0.25 * level:
        text = rng.choice(FILL_PRE) + text
    if rng.random() < 0.2 * level:
        post = rng.choice(FILL_POST)
        if not text.endswith(post.strip(" ,")):          # not "lock the doors please please"
            text = text + post
    if rng.random() < 0.15 * level:
        text = typo(text, rng, strings)
    if rng.random() < 0.03 * level:
        text = typo(text, rng, strings)
    r = rng.random()
    if r < 0.15 * level:
        text = text[:1].upper() + text[1:]
    elif r < 0.18 * level:
        text = text.upper()
    if rng.random() < 0.1 * level:
        text = text + rng.choice(["?", ".", "!"])
    return text


def _norm(text):
    return text.lower().strip(" .,!?")


def claims(skill, extra=()):
    """A predicate: would one of the skill's own (call-making) examples, or an `extra` line, produce this text?
    Placeholders match any words. Generic negatives the skill claims ("call mom" in a skill with `call {name}`)
    are not negatives for that skill."""
    numwords = "(?:%s)" % "|".join(sorted(set(ONES + TENS[2:] + ("hundred", "a")), key=len, reverse=True))
    number = r"(?:[0-9]+|%s(?: %s)*)" % (numwords, numwords)
    pats = []
    for ex in list(skill.examples) + list(extra):
        if not ex["calls"]:
            continue
        parts = PH.split(_norm(ex["query"]))
        rx = []
        for i, t in enumerate(parts):
            if i % 2 == 0:
                rx.append(re.escape(t))
                continue
            p, _ = _param_of(ex, skill, t)
            if p is None:
                rx.append(".+")
            elif "enum" in p:
                forms = set()
                for v in p["enum"]:
                    forms.add(v.replace("_", " "))
                    forms.update(p.get("x-synonyms", {}).get(v, []))
                rx.append("(?:%s)" % "|".join(re.escape(f.lower()) for f in sorted(forms, key=len, reverse=True)))
            elif p["type"] in ("integer", "number"):
                rx.append(number)
            elif p["type"] == "boolean":
                rx.append("(?:on|off)")
            else:
                rx.append(".+")
        pats.append(re.compile("".join(rx)))
    return lambda text: any(p.fullmatch(_norm(text)) for p in pats)


def random_negative(rng, claimed=None):
    """A request made of common words that are not commands ("define serendipity", "tell john about ..."),
    redrawn while the skill claims it."""
    while True:
        text = " ".join(rng.choice(COMMON) for _ in range(rng.randint(1, 7)))
        if claimed is None or not claimed(text):
            return text


def _enum_forms(skill):
    """(function, parameter, surface form) of every enum parameter of three or more values (places and things,
    not on/off), its x-synonyms standing for a value where given."""
    for fn in skill.fns:
        for name, p in skill.params(fn).items():
            if "enum" in p and len(p["enum"]) >= 3:
                for v in p["enum"]:
                    for f in p.get("x-synonyms", {}).get(v) or [v.replace("_", " ")]:
                        yield fn, name, f


def shared_forms(skill):
    """Surface forms of the enum parameters that several functions share (rooms, doors): words that appear in
    many requests but make none by themselves."""
    users = {}
    for fn, name, _ in _enum_forms(skill):
        users.setdefault(name, set()).add(fn)
    return sorted({f for _, name, f in _enum_forms(skill) if len(users[name]) > 1})


ENTITY_NEG = ["%s in the %s", "%s for the %s", "the %s, %s", "%s from the %s"]


def entity_negative(rng, negs, forms, claimed):
    """A request for nothing that names a thing the skill knows ("order a pizza for the kitchen"): the entity
    alone must not make a call."""
    while True:
        g, f = rng.choice(negs), rng.choice(forms)
        pat = rng.choice(ENTITY_NEG)
        text = pat % ((f, g) if pat.startswith("the") else (g, f))
        if "{" not in text and not claimed(text):
            return text


def value_forms(skill):
    """(kind, surface form) of every enum value of three or more values (colours, scenes, modes, rooms...): the
    words a request can mention without asking for anything."""
    return sorted({(name.replace("_", " "), f) for _, name, f in _enum_forms(skill)})


# Frames that talk about a word instead of asking for something: a value the skill knows ("blue", "movie night")
# said in them makes no call. %(v)s is the value's surface form, %(k)s its kind (the parameter's name).
MENTION_NEG = ["translate %(v)s into german", "translate %(v)s to french", "how do you say %(v)s in spanish",
               "what is %(v)s in italian", "spell %(v)s", "how do you spell %(v)s", "what does %(v)s mean",
               "define %(v)s", "what rhymes with %(v)s", "is %(v)s a noun", "write a poem about %(v)s",
               "tell me a joke about %(v)s", "i like %(v)s", "i hate %(v)s",
               "%(v)s is my favourite", "my favourite %(k)s is %(v)s", "the word %(v)s", "say %(v)s backwards",
               "how many letters are in %(v)s", "what's the opposite of %(v)s", "search the web for %(v)s",
               "draw a picture of %(v)s", "is %(v)s a good name for a dog", "what %(k)s do you like, %(v)s?",
               "what's another word for %(v)s"]


def mention_negative(rng, values, claimed):
    """A request for nothing that mentions a value of the skill in passing ("translate good morning to german",
    "my favourite colour is blue")."""
    while True:
        k, v = rng.choice(values)
        text = rng.choice(MENTION_NEG) % {"k": k, "v": v}
        if not claimed(text):
            return text


# Commands for a device the skill does not have ("turn on the wipers" to a car skill without wipers): the verbs
# people command devices with, said of things of the home, the car, the garden and the office. A device that shares
# a word with the skill's schema (its names, values, synonyms, descriptions) is never drawn for that skill.
DEVICE_NEG = ["turn on the %s", "turn off the %s", "switch on the %s", "switch off the %s", "open the %s",
              "close the %s", "start the %s", "stop the %s", "activate the %s", "turn the %s up", "is the %s on",
              "lock the %s", "check the %s", "reset the %s", "%s on", "%s off"]
DEVICES = ("headlights", "high beams", "fog lights", "hazard lights", "wipers", "horn", "hood", "trunk", "sunroof",
           "parking brake", "lane assist", "parking sensors", "mirrors", "engine", "heated steering wheel",
           "massage seat", "tv", "television", "oven", "stove", "dishwasher", "washing machine", "dryer",
           "microwave", "kettle", "coffee machine", "fridge", "freezer", "printer", "router", "wifi", "doorbell",
           "security camera", "alarm system", "garage door opener", "sprinkler system", "pool pump", "hot tub",
           "air purifier", "dehumidifier", "projector", "computer", "lawn mower", "gate", "fireplace", "jacuzzi")


def schema_words(skill):
    """The words of a skill's schema: function names, enum values, synonyms, descriptions (a final "s" dropped)."""
    text = []
    for fn in skill.fns:
        text += [fn.replace("_", " "), skill.fns[fn].get("description") or ""]
        for name, p in skill.params(fn).items():
            text += [name.replace("_", " "), p.get("description") or ""]
            text += [v.replace("_", " ") for v in p.get("enum", [])]
            text += [f for syn in p.get("x-synonyms", {}).values() for f in syn]
    return {w.rstrip("s") for t in text for w in re.findall(r"[a-z]+", t.lower())}


def device_negative(rng, words, claimed):
    """A command for a device the skill does not have ("turn on the hazard lights", "open the trunk"), or None
    when every device shares a word with the skill (or the skill claims the commands drawn)."""
    devices = [d for d in DEVICES if not {w.rstrip("s") for w in d.split()} & words]
    for _ in range(20 if devices else 0):
        text = rng.choice(DEVICE_NEG) % rng.choice(devices)
        if not claimed(text):
            return text
    return None


AREAS = ("room", "zone", "area", "location", "place", "floor")     # a place argument a compound can share


def _place_of(ex, skill):
    """(placeholder, argument) of the single call's place, said by a placeholder, or None."""
    if len(ex["calls"]) != 1:
        return None
    c = ex["calls"][0]
    for k, v in c.get("arguments", {}).items():
        m = PH.fullmatch(v) if isinstance(v, str) else None
        if m and k in AREAS and "enum" in skill.params(c["name"]).get(k, {}) and v in ex["query"]:
            return m.group(1), k
    return None


def also_place(ex, skill, rng):
    """A request said again for another place: "turn on the kitchen lights and the bedroom too" (two calls, the
    second with the other place), or None."""
    pl = _place_of(ex, skill)
    if pl is None:
        return None
    said = {}
    text, calls, strings = expand(ex, skill, rng, said=said)
    p = skill.params(calls[0]["name"])[pl[1]]
    v2 = rng.choice([v for v in p["enum"] if v != said[pl[0]][0]])
    s2 = rng.choice(forms_of(p, v2))
    text = THE_THE.sub(r"\1", text + rng.choice((" and the %s too", " and in the %s", ", and the %s as well",
                                                  " and the %s")) % s2)
    c2 = {"name": calls[0]["name"], "arguments": dict(calls[0]["arguments"])}
    c2["arguments"][pl[1]] = v2
    return text, calls + [c2], strings


def shared_place(ex1, ex2, skill, rng):
    """Two requests, the second taking the first's place without naming it: "turn on the kitchen lights and set
    the lights to 30 percent" / "... and play jazz there" (both calls with the kitchen), or None."""
    p1, p2 = _place_of(ex1, skill), _place_of(ex2, skill)
    if p1 is None or p2 is None:
        return None
    said1, said2 = {}, {}
    t1, c1, s1 = expand(ex1, skill, rng, said=said1)
    v = said1[p1[0]][0]
    if v not in skill.params(ex2["calls"][0]["name"])[p2[1]]["enum"]:
        return None
    t2, c2, s2 = expand(ex2, skill, rng, fixed={p2[0]: v}, said=said2)
    w = said2[p2[0]][1]
    ways = ((" in the %s" % w, rng.choice((" there", ""))), ("the %s " % w, "the "), ("%s " % w, ""))
    if p2[1] not in skill.required(c2[0]["name"]):
        ways = ((" in the %s" % w, " there"),)      # an optional place left out would mean everywhere
    for a, b in ways:
        if a in t2:
            t2 = t2.replace(a, b, 1).strip()
            break
    else:
        return None
    if re.search(r"\bthe (to|at|in|on|for|and|of|up|down|off)\b|\bthe$", t2) or w in t2:
        return None
    return t1 + rng.choice(JOIN) + t2, c1 + c2, s1 + s2


def generate(skill, n, seed=0, negatives=NEGATIVES, compounds=0.15, noise_level=1.0, entity_negatives=0.22,
             mention_negatives=0.12, device_negatives=0.12, schema=0.0, refusals=0.0):
    """n examples {"query", "calls"} drawn from the skill's examples; deterministic for a seed. schema > 0 adds
    the lines the schema itself gives (reku.model.phrase): a function without example lines is drawn from them,
    one with example lines from them with probability `schema`. refusals: the share of requests that ask for a
    value the schema does not allow ({"query", "calls": [], "refuse": calls up to the refused value (None),
    "reason"}; for a model compiled with refuse=True)."""
    rng = random.Random(seed)
    groups = {}
    negs = []
    for ex in skill.examples:
        if not ex["calls"]:
            negs.append(ex["query"])
        else:
            groups.setdefault(ex["calls"][0]["name"], []).append(ex)
    for fn, ls in unsaid_lines(skill).items():
        groups[fn] = groups[fn] + ls
    extra = {}
    if schema > 0:
        from .phrase import schema_lines
        extra = {fn: ls for fn, ls in schema_lines(skill).items() if ls}
        for fn in extra:
            groups.setdefault(fn, [])
    claimed = claims(skill, [ln for ls in extra.values() for ln in ls])
    generic = [g for g in GENERIC_NEGATIVES if not claimed(g)]
    negs = negs + generic
    forms = shared_forms(skill)
    values = value_forms(skill)
    words = schema_words(skill)
    names = sorted(groups)

    def pick(names):
        fn = rng.choice(names)
        if fn in extra and (not groups[fn] or rng.random() < schema):
            return rng.choice(extra[fn])
        return rng.choice(groups[fn])
    enum_words = {w for _, _, f in _enum_forms(skill) for w in f.lower().split()}
    for fn in skill.fns:
        for p in skill.params(fn).values():
            enum_words.update(w for v in p.get("enum", []) for w in v.lower().replace("_", " ").split())
            for syn in p.get("x-synonyms", {}).values():
                enum_words.update(w for f in syn for w in f.lower().split())
    out = []
    while len(out) < n:
        if refusals and rng.random() < refusals:
            for _ in range(8):
                got = refusal(pick(names), skill, rng, enum_words)
                if got is not None:
                    text, calls, strings, why = got
                    out.append({"query": noise(text, rng, strings, noise_level), "calls": [], "refuse": calls,
                                "reason": why})
                    break
            continue
        r = rng.random()
        if r < negatives:
            k = rng.random()
            if k < 0.15:
                neg = random_negative(rng, claimed)
            elif k < 0.15 + entity_negatives and forms:
                neg = entity_negative(rng, generic, forms, claimed)
            elif k < 0.15 + entity_negatives + mention_negatives and values:
                neg = mention_negative(rng, values, claimed)
            elif k < 0.15 + entity_negatives + mention_negatives + device_negatives and \
                    (neg := device_negative(rng, words, claimed)) is not None:
                pass
            else:
                neg = rng.choice(negs)
            text, _, strings = expand({"query": neg, "calls": []}, skill, rng) if "{" in neg else (neg, [], [])
            text = noise(text, rng, strings, noise_level)
            out.append({"query": text, "calls": []})
            continue
        ex = pick(names)
        text, calls, strings = expand(ex, skill, rng)
        if r < negatives + compounds and len(calls) == 1:
            k = rng.random()
            got = also_place(ex, skill, rng) if k < 0.2 else shared_place(ex, pick(names), skill, rng) \
                if k < 0.4 else None
            if got is not None:
                text, calls, strings = got
                out.append({"query": noise(text, rng, strings, noise_level), "calls": calls})
                continue
            ex2 = pick(names)
            t2, c2, s2 = expand(ex2, skill, rng)
            if len(c2) == 1:
                text = text + rng.choice(JOIN) + t2
                calls = calls + c2
                strings = strings + s2
        text = noise(text, rng, strings, noise_level)
        out.append({"query": text, "calls": calls})
    return out
