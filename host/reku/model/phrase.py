"""Example lines from the schema alone (issue 19, "use the whole schema"): what a function's name, its
description and its parameters say about how people ask for it, as example lines with placeholders that the
generator (reku.model.data) expands like the user's own.

- the function's name gives a verb and an object ("start_timer": start, timer); each verb has a family of the
  words people use for it ("stop": halt, kill, shut off, enough ...), getters become questions;
- each parameter gets the frames its kind allows: a place ("in the {room}"), a modifier ("the {door} door"), a
  value ("to {level} percent", the unit read from the description), a copied string ("play {query}");
- short forms without a verb ("thermostat 20", "kitchen lights at 40%", "target humidity 85"), an optional mode
  said with the value ("heating to 20 degrees"), a switch's own verbs ("kill the lights": off), open/close/shut and
  the description's quoted verbs for a position that opens ("crack the window": 10), verbs that move a value ("turn
  the volume down to 20", "dim the lights to 30"), and the object the description names ("the brightness of a
  room's lights": lights);
- a description that names values ("0 is closed, 100 fully open, 50 halfway", "'max heat' is 28", "true to lock,
  false to unlock") gives lines with those words and their literal values; durations in minutes and percentages
  get the words for common values ("an hour", "halfway").

Deterministic: `schema_lines(skill)` is a list, the same for the same tools.json."""

import re

# verb families: the name's first word -> the words people use for it (imperative forms)
VERBS = {
    "set": ["set", "change", "put", "make", "adjust"],
    "get": ["what is", "what's", "tell me", "check", "read", "show me", "how is"],
    "read": ["read", "what is", "what's", "check", "tell me"],
    "check": ["check", "what is", "what's", "tell me"],
    "start": ["start", "begin", "run", "kick off", "launch"],
    "stop": ["stop", "halt", "kill", "end", "cancel", "shut off", "turn off", "enough", "no more", "pause"],
    "play": ["play", "put on", "start", "listen to", "i want to hear", "queue up"],
    "pause": ["pause", "hold"],
    "resume": ["resume", "continue", "unpause"],
    "lock": ["lock", "secure", "lock up", "bolt"],
    "unlock": ["unlock", "open", "unbolt"],
    "open": ["open"],
    "close": ["close", "shut"],
    "activate": ["activate", "turn on", "start", "enable", "switch to", "run"],
    "deactivate": ["deactivate", "turn off", "disable"],
    "enable": ["enable", "turn on", "switch on", "activate"],
    "disable": ["disable", "turn off", "switch off", "deactivate"],
    "turn": ["turn", "switch"],
    "add": ["add", "put", "write", "make"],
    "remove": ["remove", "delete", "take off"],
    "call": ["call", "ring", "phone", "dial"],
    "send": ["send"],
    "navigate": ["navigate", "take me", "drive", "go", "directions", "head", "get me", "how do i get"],
    "water": ["water"],
    "feed": ["feed"],
    "increase": ["increase", "raise", "turn up"],
    "decrease": ["decrease", "lower", "turn down"],
    "show": ["show", "display"],
    "toggle": ["toggle", "switch"],
    "control": ["", "control"],
}
QUESTION = {"get", "read", "check"}
PLACE = ("room", "zone", "area", "location", "place", "floor", "bed", "greenhouse", "garden", "seat", "window",
         "door", "screen", "side", "tank", "zone_id")
SPELL = {"color": "colour", "colour": "color"}
UNITS = (("percent", ["percent", "%"]), ("degrees", ["degrees", ""]), ("minutes", ["minutes", "min"]),
         ("seconds", ["seconds", "secs"]), ("hours", ["hours"]), ("km/h", ["km/h", ""]), ("liters", ["liters"]),
         ("litres", ["litres"]), ("millilit", ["ml"]))
# words for common values of a unit, each with the value it means
UNIT_WORDS = {
    "minutes": [("an hour", 60), ("one hour", 60), ("half an hour", 30), ("a quarter of an hour", 15),
                ("two hours", 120), ("an hour and a half", 90), ("a minute", 1), ("three hours", 180),
                ("1 hour", 60), ("2 hours", 120), ("3 hours", 180), ("one and a half hours", 90)],
    "percent": [("half", 50), ("full", 100), ("a quarter", 25), ("three quarters", 75), ("max", 100)],
    "position": [("halfway", 50), ("all the way", 100), ("fully open", 100), ("a crack", 10)],
}
STOP = {"the", "a", "an", "of", "in", "to", "is", "and", "or", "on", "for", "as", "at", "with", "one", "given",
        "optionally"}
COUNTABLE = ("light", "lamp", "door", "window", "blind", "fan", "timer", "alarm", "seat", "heater", "valve", "pump",
             "sprinkler", "camera", "plug", "socket", "sensor")
BARE = ("enough", "no more")                  # verb forms that take the object without an article
ACTION = ("action", "command", "operation", "mode_action")
RAISED = ("blind", "shade", "shutter", "awning", "curtain")      # raised to open, lowered to close (not a window)
# the verbs of a switch, each with the value it sets ("kill the kitchen lights": off)
SWITCH = {"on": ["turn on", "switch on", "put on", "power on"],
          "off": ["turn off", "switch off", "shut off", "kill", "cut", "turn out", "power off"]}
# the verbs of a system or a device that is not a light ("engage cruise control", "cancel the defrost")
SYSTEM = {"on": ["activate", "engage", "enable", "start"],
          "off": ["cancel", "disengage", "disable", "deactivate", "stop"]}
# a device named by what it does to a thing ("seat heater"): the verbs said of the thing ("heat my seat": on)
HEATS = {"heater": (["heat", "warm up", "warm"], ["stop heating"]),
         "warmer": (["warm up", "warm", "heat"], ["stop warming"])}
# verbs that move a value up or down to a number ("turn the volume down to 20"); brightness also dims
TO_VALUE = ["turn up", "turn down", "raise", "lower", "bring"]
BRIGHT = ["dim", "brighten"]
# how people ask for a reading without naming the sensor ("how warm is it in the kitchen": temperature)
ASK = {"temperature": ["how warm is it", "how hot is it", "how cold is it", "is it warm", "is it cold"],
       "humidity": ["how humid is it", "is it humid", "how damp is it"],
       "motion": ["is anyone", "is there anyone", "is there movement", "any motion"],
       "air_quality": ["is the air ok", "how is the air", "how fresh is the air"],
       "soil_moisture": ["is the soil dry", "how wet is the soil", "does the soil need water"],
       "light": ["how bright is it", "is it dark"],
       "co2": ["how stuffy is it", "is there too much co2"]}
DIRECT = ("play", "call", "navigate", "send", "search", "find", "say", "text", "dial")   # verb, then the string
AREA = ("room", "zone", "area", "location", "place", "floor")      # places said "in the ..."


def _words(name):
    return [w for w in name.lower().split("_") if w]


def _split(name):
    """(verb key or None, object words, preposition) of a function name: "navigate_to" -> navigate, [], "to".
    The first of two or more words is the verb ("feed_cat": feed) even when VERBS has no family for it."""
    w = _words(name)
    if w and (w[0] in VERBS or len(w) > 1):
        prep = [x for x in w[1:] if x in ("to", "for", "on", "off", "at")]
        return w[0], [x for x in w[1:] if x not in ("to", "for", "on", "off", "at")], prep[0] if prep else ""
    return None, w, ""


def _unit(p):
    d = (p.get("description") or "").lower()
    for key, forms in UNITS:
        if key in d:
            return key, forms
    return None, [""]


def _quoted(s):
    return [q.strip().lower() for q in re.findall(r"'([^']+)'", s)]


def value_words(p, fn_desc=""):
    """(surface words, value) pairs that an integer parameter's description names: "0 is closed ('close'),
    100 fully open, 50 halfway", "'max heat' is 28", "0 off, 1 low"; plus the words for common values of its
    unit (minutes, percent) within its range."""
    lo, hi = int(p["minimum"]), int(p["maximum"])
    out = []
    descs = [p.get("description") or "", fn_desc]
    for d in descs:
        for seg in re.split(r"[,;:.]\s+|\)\s*,?\s*|\s+\(", d):
            seg = seg.strip().lower().strip("().")
            nums = re.findall(r"-?\d+", seg)
            if len(nums) != 1:
                continue
            v = int(nums[0])
            words = _quoted(seg)
            if not words:
                rest = " ".join(re.sub(r"-?\d+|\bis\b|'", " ", seg).split())
                content = [w for w in rest.split() if w not in STOP]
                if content and all(w.isalpha() for w in rest.split()) and len(rest.split()) <= 3 \
                        and " ".join(content) not in ("percent", "degrees", "minutes", "hour", "minute", "level",
                                                      "position", "volume"):
                    words = [rest]
            out += [(w, v) for w in words if lo <= v <= hi and w]
    # a quoted phrase just after "N is WORDS (" belongs to N too
    for d in descs:
        for m in re.finditer(r"(-?\d+) (?:is )?[a-z ]+ \(([^)]*)\)", d.lower()):
            v = int(m.group(1))
            out += [(w, v) for w in _quoted(m.group(2)) if lo <= v <= hi]
    key, _ = _unit(p)
    moves = "open" in (p.get("description") or "").lower()        # a position: blinds, windows, vents
    for w, v in UNIT_WORDS.get(key, []) + (UNIT_WORDS["position"] if moves and key == "percent" else []):
        if lo <= v <= hi:
            out.append((w, v))
    seen, uniq = set(), []
    for w, v in out:
        if w not in seen:
            seen.add(w)
            uniq.append((w, v))
    return uniq


def bool_words(p):
    """(words, value) of a boolean parameter: "true to lock, false to unlock" gives ("lock", True), ("unlock",
    False); otherwise on/off."""
    d = (p.get("description") or "").lower()
    out = []
    for m in re.finditer(r"(true|false)\s+(?:to|=|means|is)\s+([a-z]+)", d):
        out.append((m.group(2), m.group(1) == "true"))
    return out


def _is_place(name, p):
    d = (p.get("description") or "").lower()
    return name in PLACE or ("room" in d or "the place" in d) and "enum" in p


def _is_onoff(p):
    return "enum" in p and set(p["enum"]) <= {"on", "off"}


def _objects(obj):
    """The object's surface forms: its words, the other spelling (colour), "lights" beside "light"."""
    o = " ".join(obj)
    if not o:
        return [""]
    objs = [o]
    for a, b in SPELL.items():
        if a in obj:
            objs.append(o.replace(a, b))
    if obj[-1] in COUNTABLE:
        objs.append(o + "s")
    if len(obj) >= 2 and obj[-1] == "control":
        objs.append(" ".join(obj[:-1]))           # "cruise control": cruise
    return objs


def _desc_objects(desc, obj):
    """What the object belongs to, named by the description: "Set the brightness of a room's lights" gives
    "lights" for brightness (people dim the lights, not the brightness); and the object with the word the
    description puts before it: "Control the robot vacuum" gives "robot vacuum", "the cabin temperature"."""
    if not obj:
        return []
    out = []
    # the object's last word in either spelling ("the colour of a room's lights" for set_light_color)
    last = "(?:%s)" % "|".join(re.escape(w) for w in dict.fromkeys((obj[-1], SPELL.get(obj[-1], obj[-1]))))
    m = re.search(r"\b%s of (?:a |an |the )?(?:\w+'s )?([a-z]+)" % last, desc.lower())
    if m and m.group(1) not in STOP and m.group(1) not in PLACE:
        out.append(m.group(1))
    m = re.search(r"\bthe ([a-z]+) %s\b" % re.escape(" ".join(obj)), desc.lower())
    if m and m.group(1) not in STOP and m.group(1) not in PLACE:
        out.append("%s %s" % (m.group(1), " ".join(obj)))
    for i, w in enumerate(obj):                   # another name in parentheses: "the fan (blower) speed": blower
        m = re.search(r"\b%s \(([a-z]+)\)" % re.escape(w), desc.lower())
        if m and m.group(1) not in STOP:
            out.append(" ".join(obj[:i] + [m.group(1)] + obj[i + 1:]))
    return out


def _device_verbs(objs, desc):
    """{"on": [(verb, thing)], "off": [...], "nouns": [...]}: the verbs that say a device's on and off of the thing it acts on. A
    heater heats its thing ("seat heater": "heat the seat", "stop heating the seat"); a device whose name is a verb
    that the description also says as a device noun ("defrost" beside "defroster/demister") is that verb and its
    alternatives, said of the modifier alone ("defrost the windshield", "demist the windscreen")."""
    out = {"on": [], "off": [], "nouns": []}
    o = objs[0].split() if objs and objs[0] else []
    if len(o) >= 2 and o[-1] in HEATS:
        on, off = HEATS[o[-1]]
        thing = " ".join(o[:-1])
        out["on"] += [(v, thing) for v in on]
        out["off"] += [(v, thing) for v in off]
    elif len(o) == 1 and re.search(r"\b%se?r\b" % re.escape(o[0]), desc):
        verbs = [o[0]]
        m = re.search(r"\b%se?r((?:/[a-z]+er)+)\b" % re.escape(o[0]), desc)
        for alt in (m.group(1).split("/")[1:] if m else []):
            verbs.append(alt[:-2])                # "demister": demist
            out["nouns"].append(alt)
        out["on"] += [(v, "") for v in verbs]
    return out


def _device_lines(fn, objs, desc, val, a, where, lit):
    """A switch's lines beyond turn on/off (the value `val` in arguments `a`): a system's own verbs where it is not
    a light ("engage the cruise control", "cancel the defrost"), the verbs said of what a device acts on ("heat
    the driver seat", "stop heating the driver seat"), the description's other names for it ("the demister")."""
    lines = []
    dv = _device_verbs(objs, desc)
    for k, w in enumerate([] if lit else SYSTEM[val]):
        pre, post = where(k)
        lines.append(_line("%s the %s%s%s" % (w, pre, objs[k % len(objs)], post), fn, a))
    for k, (w, thing) in enumerate(dv[val]):
        pre, post = where(k)
        lines.append(_line("%s the %s%s%s" % (w, pre, thing, post), fn, a))
    for k, noun in enumerate(dv["nouns"]):
        pre, post = where(k)
        lines.append(_line("%s the %s%s%s" % (SWITCH[val][k % 2], pre, noun, post), fn, a))
        lines.append(_line("%s%s %s%s" % (pre, noun, val, post), fn, a))
    return lines


def _frames(name, p, required=True):
    """(prefix frames, suffix frames) that realise parameter `name`: prefixes go before the object ("the {door}
    door" -> "{door}"), suffixes after it ("in the {room}", "to {level} percent")."""
    ph = "{%s}" % name
    if "enum" in p:
        if _is_onoff(p):
            return [], [ph]
        if _is_place(name, p):
            return [ph], ["in the " + ph, "for the " + ph, "in " + ph]
        return [ph], ["to " + ph, ph, "on " + ph]
    if p["type"] in ("integer", "number"):
        _, units = _unit(p)
        if name in ("hour", "hours"):
            return [], ["at " + ph, "for " + ph]
        suf = []
        for u in units:
            u = (" " + u) if u and u != "%" else u
            suf += ["to %s%s" % (ph, u), "at %s%s" % (ph, u), "%s%s" % (ph, u)]
            if units[0] in ("minutes", "seconds", "hours"):
                suf.append("for %s%s" % (ph, u))
        return [], suf
    if p["type"] == "boolean":
        return [], []
    short = p.get("examples") and all(len(str(x).split()) <= 2 for x in p["examples"])
    if not required:        # an optional string is said with a word that marks it ("a timer for pasta"), never
        return ([ph] if short else []), ["for " + ph, ": " + ph, "called " + ph, "named " + ph]   # bare after a value
    return ([ph] if short else []), [ph, "for " + ph, ": " + ph, "that " + ph, "called " + ph]


def _line(query, fn, args):
    q = re.sub(r"\s+", " ", query).strip().replace(" :", ":")
    return {"query": q, "calls": [{"name": fn, "arguments": dict(args)}], "_line": "schema"}


def _article(verb, obj):
    if verb in ("start", "set", "add") and obj.split()[-1:] and obj.split()[-1] in COUNTABLE:
        return "an" if obj[:1] in "aeiou" else "a"
    return "the"


def function_lines(skill, fn):
    """The schema's example lines for one function (placeholders for enum, integer and string parameters, literal
    values where the description or the unit names them in words)."""
    verb, obj, prep = _split(fn)
    props = skill.params(fn)
    req = [n for n in props if n in skill.required(fn)]         # in schema order: the same lines every run
    desc = skill.fns[fn].get("description") or ""
    objs = _objects(obj) + _desc_objects(desc, obj)
    verbs = VERBS.get(verb, [verb]) if verb else ["", "start", "use"]
    verbs = (verbs * 3)[:max(3, len(verbs))]          # a short family still gets three frames
    question = verb in QUESTION
    onoff = [n for n in props if _is_onoff(props[n])]
    actions = [n for n in props if "enum" in props[n] and n in ACTION]
    hm = "hour" in props and "minute" in props
    plain = [n for n in props if props[n]["type"] != "boolean" and n not in onoff and n not in actions
             and not (hm and n in ("hour", "minute"))]
    base = [n for n in props if n in req]
    subsets = [base] + [base + [o] for o in props if o not in req]
    lines = []
    for si, names in enumerate(subsets):
        if any(props[n]["type"] == "boolean" for n in names):
            continue                              # boolean lines come from the description below
        for vi, v in enumerate(verbs):
            o = objs[(si + vi) % len(objs)]
            pre, suf, args = [], [], {}
            for k, n in enumerate(n for n in names if n in plain):
                a, b = _frames(n, props[n], n in req)
                if question and "enum" in props[n] and not _is_place(n, props[n]):
                    a, b = [a[0]], []             # the thing asked about: "what's the {sensor} ..."
                if prep and not obj:
                    a, b = [], ["{%s}" % n]       # the name's preposition leads it: "navigate to {destination}"
                if a and (not b or (vi + k) % 2 == 0):
                    pre.append(a[(vi + k) % len(a)])
                else:
                    suf.append(b[(vi + k) % len(b)])
                args[n] = "{%s}" % n
            if hm and "hour" in names:
                suf.append(["at {time}", "for {time}", "{hour}:{minute}"][vi % 3])
                args["hour"], args["minute"] = "{hour}", "{minute}"
            mods = " ".join(pre)
            tail = " ".join(suf)
            sw = [n for n in names if n in onoff]
            act = [n for n in names if n in actions]
            if sw:
                n = sw[0]
                args[n] = "{%s}" % n
                q = ["turn {%s} the %s %s %s" % (n, mods, o, tail), "switch the %s %s %s {%s}" % (mods, o, tail, n),
                     "%s %s %s {%s}" % (mods, o, tail, n)][vi % 3]
            elif act:
                n = act[0]
                args[n] = "{%s}" % n
                q = ["{%s} the %s %s %s" % (n, mods, o, tail), "%s %s %s {%s}" % (mods, o, tail, n),
                     "tell the %s %s to {%s} %s" % (mods, o, n, tail)][vi % 3]
            elif question:
                q = "%s the %s %s %s" % (v, mods, "" if pre and vi % 2 else o, tail)
            elif not o:
                q = "%s %s %s %s" % (v, prep, mods, tail)
            elif v in BARE:
                q = "%s %s %s %s" % (v, mods, o, tail)
            else:
                q = "%s %s %s %s %s" % (v, _article(verb, o) if (vi + si) % 3 == 0 else "the", mods, o, tail)
            lines.append(_line(q, fn, args))
            if not names and o and v and v not in BARE:
                lines.append(_line("%s %s" % (v, o), fn, args))              # "feed fish"
                if verb in ("stop", "start", "play") and vi == 0:
                    lines.append(_line("%s %s" % (o, verb), fn, args))        # "music stop"
    # values named in words by the description or the unit ("halfway", "an hour"): literal arguments
    ints = [n for n in props if props[n]["type"] in ("integer", "number")]
    for n in ints:
        p = props[n]
        others = {m: "{%s}" % m for m in req if m != n and m in plain and "enum" in props[m]}
        if [m for m in req if m != n and m not in others]:
            continue                              # another value or a switch this line cannot say
        mods = " ".join("{%s}" % m for m in others)
        timed = _unit(p)[0] in ("minutes", "seconds", "hours")
        quoted = set(_quoted(desc.lower()) + _quoted((p.get("description") or "").lower()))
        for j, (w, val) in enumerate(value_words(p, desc if len(ints) == 1 else "")):
            v = verbs[j % len(verbs)]
            o = objs[j % len(objs)]
            if timed:
                q = "%s %s %s %s for %s" % (v, _article(verb, o) if j % 2 else "the", mods, o, w)
            else:
                q = ["%s the %s %s %s" % (v, mods, o, w), "%s %s %s" % (mods, o, w),
                     "%s the %s %s to %s" % (v, mods, o, w)][j % 3]
            args = dict(others)
            args[n] = val
            lines.append(_line(q, fn, args))
            if not others and w in quoted:          # the description's own phrase is a whole request: "max heat"
                lines.append(_line("make it %s" % w if w.startswith("as ") else w, fn, args))
    # times of day as people say them ("7 pm", "half past 6", "22:10"): {time} is drawn anew for every request
    if hm and [m for m in req if m not in ("hour", "minute")] == []:
        for j in range(6):
            v = verbs[j % len(verbs)]
            o = objs[j % len(objs)]
            art = _article(verb, o) if o else ""
            lines.append(_line("%s %s %s %s {time}" % (v, art, o, ("for", "at")[j % 2]), fn,
                               {"hour": "{hour}", "minute": "{minute}"}))
    for n in props:
        if props[n]["type"] == "boolean":
            others = {m: "{%s}" % m for m in req if m != n and "enum" in props[m]}
            if [m for m in req if m != n and m not in others]:
                continue                          # another required value this line cannot say
            mods = " ".join("{%s}" % m for m in others)
            for w, val in bool_words(props[n]):
                for o in objs:
                    args = dict(others)
                    args[n] = val
                    lines.append(_line("%s the %s %s" % (w, mods, o), fn, args))
                    lines.append(_line("%s %s %s" % (w, mods, o), fn, args))
    lines += _more_lines(skill, fn, verb, objs, question, prep)
    seen, out = set(), []
    for ln in lines:
        if ln["query"] not in seen:
            seen.add(ln["query"])
            out.append(ln)
    return out


def _more_lines(skill, fn, verb, objs, question, prep=""):
    """Frames beyond verb + object + parameters: short forms without a verb ("thermostat 20", "kitchen lights at
    40%"), a mode said before its value ("heating to 20 degrees", "auto mode 22"), a switch's own verbs ("kill the
    lights in the bath": off), open/close for a position ("open the blinds in the garage": 100), and verbs that move a
    value ("turn the volume down to 20", "dim the bedroom lights to 20")."""
    props = skill.params(fn)
    req = [n for n in props if n in skill.required(fn)]         # in schema order: the same lines every run
    desc = (skill.fns[fn].get("description") or "").lower()
    places = [n for n in req if "enum" in props[n] and _is_place(n, props[n]) and n in AREA]
    mods = {n: "{%s}" % n for n in req if "enum" in props[n] and not _is_onoff(props[n])}
    lines = []

    def where(k, but=None):
        """The required enum modifiers (all but `but`), a place said before the object or after it: ("{room} ",
        "") or ("", " in the {room}")."""
        ms = [n for n in mods if n != but]
        if not places or k % 2 == 0:
            return " ".join(mods[n] for n in ms) + " ", ""
        return " ".join(mods[n] for n in ms if n not in places) + " ", " in the {%s}" % places[0]
    ints = [n for n in req if props[n]["type"] in ("integer", "number")]
    rest = [n for n in req if n not in ints and n not in mods]
    if len(ints) == 1 and not rest and not question and ints[0] not in ("hour", "minute"):
        n = ints[0]
        p = props[n]
        ph = "{%s}" % n
        key, units = _unit(p)
        u = " " + units[0] if units[0] and units[0] != "%" else units[0]
        args = dict(mods)
        args[n] = ph
        named = " ".join(_words(n))
        moves = "open" in desc and key == "percent"
        timed = key in ("minutes", "seconds", "hours")
        for k, o in enumerate(objs):
            pre, post = where(k)
            lines.append(_line("%s%s %s%s%s" % (pre, o, ph, u, post), fn, args))           # "thermostat 20"
            if not timed:
                lines.append(_line("%s%s at %s%s%s" % (pre, o, ph, u, post), fn, args))    # "kitchen lights at 40%"
                lines.append(_line("%s%s to %s%s%s" % (pre, o, ph, u, post), fn, args))
            if not moves and not timed:
                for j, v in enumerate(TO_VALUE + (BRIGHT if "bright" in fn + desc and "bright" not in o else [])):
                    pre, post = where(j + k)
                    if v.startswith("turn "):
                        q = "turn the %s%s %s to %s%s%s" % (pre, o, v[5:], ph, u, post)
                    else:
                        q = "%s the %s%s%s to %s%s" % (v, pre, o, post, ph, u)
                    lines.append(_line(q, fn, args))
        if key == "degrees" and not mods:       # a temperature said of the place one is in: "make it 20 in here"
            # with an optional mode of heating and cooling, "warm it up" and "cool it down" say the mode (the
            # user's lines do: "cool it down to 20" is cool), and so do "heat it to", "cool it to"
            heat = [m for m in props if m not in req and "enum" in props[m] and
                    {"heat", "cool"} & set(props[m]["enum"])]
            for q in ("make it %s%s", "make it %s%s in here", "set it to %s%s", "i'd like it at %s%s",
                      "warm it up to %s%s", "cool it down to %s%s", "keep it at %s%s"):
                if not (heat and q.startswith(("warm", "cool"))):
                    lines.append(_line(q % (ph, u), fn, args))
            for m in heat[:1]:
                for v, qs in (("heat", ("heat it to %s%s", "warm it up to %s%s", "heat it up to %s%s")),
                              ("cool", ("cool it to %s%s", "cool it down to %s%s"))):
                    if v in props[m]["enum"]:
                        for q in qs:
                            lines.append(_line(q % (ph, u), fn, dict(args, **{m: v})))
        # an optional zone that only this function has is a zone of its value: "set the passenger side to 27",
        # "my side 25 degrees" (a room that every function has says nothing of which value is meant)
        own = [m for m in props if m not in req and "enum" in props[m] and _is_place(m, props[m]) and m in AREA
               and not [f for f in skill.fns if f != fn and m in skill.params(f)]]
        if own and not moves and not timed and not mods:
            z = "{%s}" % own[0]
            a = dict(args, **{own[0]: z})
            for q in ("set the %s to %s%s", "make the %s %s%s", "%s %s%s", "%s to %s%s", "%s at %s%s",
                      "turn the %s up to %s%s", "turn the %s down to %s%s"):
                lines.append(_line(q % (z, ph, u), fn, a))
            lines.append(_line("%s %s %s%s" % (z, objs[0], ph, u), fn, a))
        # the ends of the range: "turn the fan all the way up" (its maximum), "volume all the way down" (minimum)
        if not moves and not timed:
            for k, (w, val) in enumerate((("up", p["maximum"]), ("down", p["minimum"]))):
                a = dict(mods, **{n: int(val)})
                for j, o in enumerate(dict.fromkeys(re.sub(r" (speed|level)$", "", o) for o in objs[:2])):
                    pre, post = where(k + j)
                    lines.append(_line("turn the %s%s all the way %s%s" % (pre, o, w, post), fn, a))
                    lines.append(_line("%s%s all the way %s%s" % (pre, o, w, post), fn, a))
        for o in objs:          # the thing the value belongs to moves it: "turn the music down to 5" (volume)
            if not moves and not timed and len(o.split()) == 2 and o.split()[1] == objs[0]:
                for j, v in enumerate(("turn up", "turn down")):
                    pre, post = where(j)
                    q = "turn the %s%s %s to %s%s%s" % (pre, o.split()[0], v[5:], ph, u, post)
                    lines.append(_line(q, fn, args))
        for w in [named] + objs:
            if not mods and re.search(r"target (?:[a-z]+ )?%s\b" % re.escape(w), desc):
                lines.append(_line("target %s %s%s" % (w, ph, u), fn, args))               # "target humidity 85"
                break
        if named not in [" ".join(o.split()) for o in objs] + [key] and named not in ("level", "value", "position",
                                                                                      "speed"):
            lines.append(_line("%s %s%s" % (named, ph, u), fn, args))                     # "temperature 20"
        # an optional mode said with the value: "heating to 20 degrees", "auto mode 22", "thermostat on cool, 18"
        for m in props:
            pm = props[m]
            if m in req or "enum" not in pm or _is_place(m, pm) or _is_onoff(pm) or mods:
                continue
            a = dict(args)
            a[m] = "{%s}" % m
            for q in ("{%s} to %s%s" % (m, ph, u), "{%s} mode %s" % (m, ph), "set {%s} mode to %s" % (m, ph),
                      "%s on {%s}, %s%s" % (objs[0], m, ph, u), "{%s} at %s%s" % (m, ph, u)):
                lines.append(_line(q, fn, a))
        # a position that opens: "open the blinds in the garage", "crack the window"
        if moves:
            said = [("open", 100), ("close", 0), ("shut", 0)]
            for w, v in value_words(p, desc):
                if w.split()[0] not in ("a", "an", "the", "all", "fully", "half", "halfway", "full", "max") \
                        and len(w.split()) <= 2 and w not in ("closed", "three quarters"):
                    said.append((w, v))
            if ("roll down", 100) in said:        # a window rolled down is open: lowered, put down
                said += [("lower", 100), ("raise", 0), ("put down", 100), ("put up", 0)]
            elif any(o.split()[-1].rstrip("s") in RAISED for o in objs if o):
                said += [("raise", 100), ("lower", 0), ("pull up", 100), ("pull down", 0), ("roll up", 100),
                         ("roll down", 0)]
            for k, (w, v) in enumerate(said):
                a = dict(mods)
                a[n] = v
                for j, o in enumerate(objs[:2]):
                    for pre, post in dict.fromkeys((where(k + j), where(k + j + 1))):     # the place before and after
                        lines.append(_line("%s the %s%s%s" % (w, pre, o, post), fn, a))
                if w in ("pull up", "pull down", "roll up", "roll down", "put up", "put down"):
                    pre, post = where(k)
                    lines.append(_line("%s%s %s%s" % (pre, objs[0], w.split()[1], post), fn, a))  # "blinds up"
    # a choice set for a place: "make the bath lights green", "turn the kitchen pink", "office lights orange",
    # "blue lights in the hall"
    vals = [n for n in req if "enum" in props[n] and not _is_place(n, props[n]) and not _is_onoff(props[n])
            and n not in ACTION]
    if verb == "set" and len(vals) == 1 and places and all(n in vals or n in mods for n in req):
        n = vals[0]
        a = dict(mods)
        v = "{%s}" % n
        for k, o in enumerate(objs):
            for j, w in enumerate(("make", "turn")):
                pre, post = where(k + j, n)
                lines.append(_line("%s the %s%s%s %s" % (w, pre, o, post, v), fn, a))
            pre, post = where(k, n)
            lines.append(_line("%s%s %s%s" % (pre, o, v, post), fn, a))
            lines.append(_line("%s %s in the {%s}" % (v, o, places[0]), fn, a))
        lines.append(_line("turn the {%s} %s" % (places[0], v), fn, a))
        lines.append(_line("make the {%s} %s" % (places[0], v), fn, a))
    # a number whose description says what "on" and "off" are: "turn off my seat heater" (0), "fan off"
    for n in ints if not question else []:
        if [m for m in req if m != n and m not in mods]:
            continue
        said = dict(value_words(props[n], desc))
        for val in ("on", "off"):
            if val not in said:
                continue
            a = dict(mods)
            a[n] = said[val]
            for k, w in enumerate(SWITCH[val][:3]):
                pre, post = where(k)
                o = re.sub(r" (speed|level)$", "", objs[k % len(objs)])      # "turn off the fan", not its speed
                lines.append(_line("%s the %s%s%s" % (w, pre, o, post), fn, a))
            lines.append(_line("%s%s %s%s" % (where(1)[0], re.sub(r" (speed|level)$", "", objs[0]), val,
                                              where(1)[1]), fn, a))
            lines += _device_lines(fn, [re.sub(r" (speed|level)$", "", o) for o in objs], desc, val, a, where,
                                   False)
    # a switch with an optional number: "set cruise control to 113", "cruise control on at 35" (on)
    for n in req:
        if not _is_onoff(props[n]) or question or [m for m in req if m != n and m not in mods]:
            continue
        for m in props:
            if m in req or props[m]["type"] not in ("integer", "number"):
                continue
            a = dict(mods)
            a[n], a[m] = "on", "{%s}" % m
            u = (" " + _unit(props[m])[1][0]).rstrip()
            mw = " ".join(_words(m))
            for q in ("set the %s to {%s}%s" % (objs[0], m, u), "%s on at {%s}%s" % (objs[0], m, u),
                      "%s {%s}" % (objs[0], m), "set %s to {%s}%s" % (mw, m, u), "keep the %s at {%s}" % (mw, m)):
                lines.append(_line(q, fn, a))
            for o in objs:                        # "cruise at 96", "cruise control at 110"
                lines.append(_line("%s at {%s}%s" % (o, m, u), fn, a))
    # a switch's own verbs: "kill the lights in the bath", "switch on the kitchen lamp"
    for n in props:
        if n not in req or not _is_onoff(props[n]) or question:
            continue
        if [m for m in req if m != n and m not in mods]:
            continue
        for val, words in SWITCH.items():
            a = dict(mods)
            a[n] = val
            lit = any(x in o for o in objs for x in ("light", "lamp"))
            for k, w in enumerate(words):
                o = objs[k % len(objs)]
                if w == "turn out" and not lit:
                    continue                      # "turn out" and "... out" are said of lights
                pre, post = where(k)
                if w.endswith((" on", " off", " out")) and k % 2:
                    head, tail = w.rsplit(" ", 1)
                    lines.append(_line("%s the %s%s %s%s" % (head, pre, o, tail, post), fn, a))
                else:
                    lines.append(_line("%s the %s%s%s" % (w, pre, o, post), fn, a))
            if lit or val == "on":
                lines.append(_line("%s%s %s%s" % (where(1)[0], objs[-1], "out" if val == "off" else "on",
                                                  where(1)[1]), fn, a))
            lines += _device_lines(fn, objs, desc, val, a, where, lit)
    # a copied string said right after the verb: "play hip hop", "listen to jazz in the kitchen", "call mom"
    strs = [n for n in props if props[n]["type"] == "string" and "enum" not in props[n]]
    opt_place = [n for n in props if n not in req and "enum" in props[n] and _is_place(n, props[n]) and n in AREA]
    if len(strs) == 1 and verb in DIRECT and not [m for m in req if m not in strs]:
        n = strs[0]
        for k, v in enumerate(dict.fromkeys(VERBS.get(verb, [verb]))):
            if v in BARE or v == "start":
                continue
            v = ("%s %s" % (v, prep)).strip() if not v.endswith(" " + prep) and v != "directions" else v + " to"
            lines.append(_line("%s {%s}" % (v, n), fn, {n: "{%s}" % n}))
            if opt_place and k % 2 == 0:
                lines.append(_line("%s {%s} in the {%s}" % (v, n, opt_place[0]), fn,
                                   {n: "{%s}" % n, opt_place[0]: "{%s}" % opt_place[0]}))
        if verb == "play":                  # the words before what is played are not part of it
            for q in ("play some {%s}", "play something by {%s}", "play songs by {%s}", "put on some {%s}"):
                lines.append(_line(q % n, fn, {n: "{%s}" % n}))
        if verb == "call":
            for q in ("give {%s} a call" % n, "start a call with {%s}" % n):
                lines.append(_line(q, fn, {n: "{%s}" % n}))
        # an optional choice of where it comes from: "play jazz on the radio", "switch to fm", "play from usb"
        for e in [m for m in props if m not in req and "enum" in props[m] and not _is_place(m, props[m])
                  and not _is_onoff(props[m])]:
            for k, q in enumerate(("%s {%s} on the {%s}", "%s {%s} from the {%s}", "%s {%s} on {%s}")):
                v = VERBS.get(verb, [verb])[k % 2]
                lines.append(_line(q % (v, n, e), fn, {n: "{%s}" % n, e: "{%s}" % e}))
            for q in ("switch to {%s}" % e, "%s from the {%s}" % (verb, e), "turn on the {%s}" % e,
                      "%s the {%s}" % (verb, e)):
                lines.append(_line(q, fn, {e: "{%s}" % e}))
    # playing without saying what: "play something", "put on some tunes" (no string to copy)
    if verb == "play" and not req:
        for q in ("play something", "play a song", "put on some tunes", "play some music", "put some music on"):
            lines.append(_line(q, fn, {}))
            if opt_place:
                lines.append(_line("%s in the {%s}" % (q, opt_place[0]), fn, {opt_place[0]: "{%s}" % opt_place[0]}))
    # a stop said as "music off", and "stop playing" where the skill plays it (play_music beside stop_music)
    if verb == "stop" and objs[0] and not [m for m in req]:
        lines.append(_line("%s off" % objs[0], fn, {}))
        if "play_" + "_".join(_words(fn)[1:]) in skill.fns:
            lines.append(_line("stop playing", fn, {}))
            if opt_place:
                lines.append(_line("stop playing in the {%s}" % opt_place[0], fn, {opt_place[0]: "{%s}" % opt_place[0]}))
        if opt_place:
            lines.append(_line("{%s} %s off" % (opt_place[0], objs[0]), fn, {opt_place[0]: "{%s}" % opt_place[0]}))
    # a duration before its object: "a 20 minute timer", "an hour timer", "three hour timer"
    for n in req:
        if props[n]["type"] == "integer" and _unit(props[n])[0] == "minutes" and objs[0] and \
                not [m for m in req if m != n]:
            a = {n: "{%s}" % n}
            lines.append(_line("a {%s} minute %s" % (n, objs[0]), fn, a))
            lines.append(_line("%s a {%s} minute %s" % (VERBS.get(verb, [verb])[0], n, objs[0]), fn, a))
            for w, val in UNIT_WORDS["minutes"]:
                if int(props[n]["minimum"]) <= val <= int(props[n]["maximum"]):
                    lines.append(_line("%s %s" % (w.replace("hours", "hour"), objs[0]), fn, {n: val}))
    # an enum with an "off" among its levels: "turn off the bedroom fan" is speed off
    for n in req:
        p = props[n]
        if "enum" in p and "off" in p["enum"] and not _is_onoff(p) and not question and \
                not [m for m in req if m != n and m not in mods]:
            a = dict(mods)
            a[n] = "off"
            for k, w in enumerate(SWITCH["off"][:4] + ["stop"]):
                pre, post = where(k, n)
                lines.append(_line("%s the %s%s%s" % (w, pre, objs[0], post), fn, a))
    # a reading asked for by what it measures: "how warm is it in the kitchen", "is anyone in the hall", "kitchen
    # motion"
    for n in req if question else []:
        p = props[n]
        if "enum" not in p or _is_place(n, p) or [m for m in req if m != n]:
            continue
        room = [m for m in props if m not in req and "enum" in props[m] and _is_place(m, props[m]) and m in AREA]
        for v in p["enum"]:
            for q in ASK.get(v, []):
                lines.append(_line(q, fn, {n: v}))
                if room:
                    lines.append(_line("%s in the {%s}" % (q, room[0]), fn, {n: v, room[0]: "{%s}" % room[0]}))
        if room:
            a = {n: "{%s}" % n, room[0]: "{%s}" % room[0]}
            for q in ("{%s} {%s}" % (room[0], n), "{%s} in the {%s}" % (n, room[0]), "{%s} reading please" % n,
                      "what's the {%s} {%s}" % (room[0], n), "what is the {%s} in the {%s}" % (n, room[0]),
                      "how is the {%s}" % n):
                lines.append(_line(q, fn, a if room[0] in q else {n: "{%s}" % n}))
    # a one-word name that is itself a verb with an action to start: "vacuum the kitchen" (start)
    acts = [n for n in req if n in ACTION and "enum" in props[n] and "start" in props[n]["enum"]]
    if verb is None and acts and len(req) == 1 and objs[0]:
        room = [m for m in props if m not in req and "enum" in props[m] and _is_place(m, props[m]) and m in AREA]
        a = {acts[0]: "start"}
        for q in ("%s the {%s}" % (objs[0], room[0]) if room else None, "%s the house" % objs[0],
                  "start the %s" % objs[0], "can you %s the {%s}" % (objs[0], room[0]) if room else None):
            if q:
                lines.append(_line(q, fn, dict(a, **({room[0]: "{%s}" % room[0]} if "{" in q else {}))))
    # an action said as the name's -ing form ("stop vacuuming") or in the description's words for it: "dock (go back
    # to the base)" gives "tell the vacuum to go back to the base", "send the vacuum back to the base"
    if acts and objs[0]:
        n = acts[0]
        pd = (props[n].get("description") or "").lower()
        name = objs[0].split()[-1]
        if verb is None and len(fn.split("_")) == 1:
            ing = (name[:-1] if name.endswith("e") else name) + "ing"
            for v in ("start", "stop"):
                if v in props[n]["enum"]:
                    lines.append(_line("%s %s" % (v, ing), fn, {n: v}))
        for v in props[n]["enum"]:
            m = re.search(r"\b%s \(([a-z ]+)\)" % re.escape(v), pd)
            if not m:
                continue
            g = m.group(1).strip()
            qs = ["tell the %s to %s" % (objs[-1], g), "%s, %s" % (objs[0], g)]
            if g.startswith("go back "):
                qs.append("send the %s back %s" % (objs[0], g[len("go back "):]))
            for q in qs:
                lines.append(_line(q, fn, {n: v}))
    # "mute" named by the description as a value: "mute the music", "mute the kitchen speaker"
    for n in ints:
        said = dict(value_words(props[n], desc))
        if "mute" in said and not [m for m in req if m != n]:
            room = [m for m in props if m not in req and "enum" in props[m] and _is_place(m, props[m]) and m in AREA]
            for o in objs[:1] + ["music", "sound", "speakers"]:
                lines.append(_line("mute the %s" % o, fn, {n: said["mute"]}))
            lines.append(_line("mute", fn, {n: said["mute"]}))
            if room:
                lines.append(_line("mute the {%s} speaker" % room[0], fn, {n: said["mute"], room[0]: "{%s}" % room[0]}))
    # a function that only chooses among values: "{scene} mode", "switch to {scene}", "go to {scene}"
    if len(req) == 1 and set(req) <= set(mods) and not question and not _is_place(list(req)[0], props[list(req)[0]]) \
            and list(req)[0] not in ACTION:
        n = list(req)[0]
        a = {n: "{%s}" % n}
        for q in ("{%s} mode" % n, "switch to {%s}" % n, "go to {%s}" % n, "turn on {%s} mode" % n,
                  "%s {%s}" % (VERBS.get(verb, [verb or "start"])[0], n)):
            lines.append(_line(q, fn, a))
    return lines


def schema_lines(skill):
    """{function: [example lines]} for every function of the skill, from its schema alone."""
    return {fn: function_lines(skill, fn) for fn in skill.fns}
