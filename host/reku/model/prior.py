"""The general prior (issue 19): one network trained on many skills' worth of requests, that `reku train` starts a
new skill from instead of random weights.

Its training data is generated, never a bundled skill's example lines (the few-example benchmark measures home and
car from 30 of their lines: a prior that had read the rest would not be a fair start). DOMAINS below are skills of
many products (kitchen, garden, pool, office, workshop, vehicle, media, ...) written as compact function specs; the
lines come from their schemas alone (reku.model.phrase) plus the generator's negatives, noise and compounds. All
of them together form one large skill (the "prior skill"); the network trained on it keeps what is not particular
to a skill: the character embedding, the recurrent blocks, the pointer and the fixed output tokens (no call, end,
digits, copy...). A new skill gets those, and fresh rows for its own functions and values (`transfer`).

    reku prior build --out host/reku/model/prior.rku [--steps N]        (the packaged prior; docs/model.md)
"""

import json
import re
from pathlib import Path

from rkfw import infer

# A function spec: "name param param ...", a param "name:kind[:args]" ("?" after the name: optional):
#   int:LO:HI[:unit]   place (the domain's places)   enum:a,b,c   onoff   text:ex1|ex2|...   bool:yes-word:no-word
DOMAINS = {
    "kitchen": (["kitchen", "pantry", "dining room", "island"], [
        "preheat_oven temperature:int:50:250:degrees",
        "set_oven_timer minutes:int:1:240:minutes",
        "start_dishwasher program?:enum:eco,normal,intensive,quick",
        "stop_dishwasher",
        "brew_coffee cups:int:1:12 strength?:enum:mild,regular,strong",
        "set_fridge_temperature temperature:int:1:8:degrees",
        "boil_kettle",
        "set_hood_fan speed:enum:off,low,medium,high",
        "add_to_shopping_list item:text:milk|eggs|olive oil|two lemons|coffee beans|dish soap",
    ]),
    "garden": (["front lawn", "back lawn", "vegetable patch", "flower bed", "orchard"], [
        "start_sprinklers zone:place minutes?:int:1:90:minutes",
        "stop_sprinklers zone?:place",
        "set_pond_pump state:onoff",
        "mow_lawn zone?:place",
        "dock_mower",
        "get_soil_moisture zone?:place",
        "set_garden_lights state:onoff zone?:place",
    ]),
    "pool": (["pool", "spa", "hot tub"], [
        "set_pool_heater temperature:int:20:40:degrees",
        "start_pool_pump hours?:int:1:12:hours",
        "stop_pool_pump",
        "set_pool_cover position:int:0:100:percent open",
        "get_water_temperature",
        "set_pool_lights color:enum:blue,green,purple,white,rainbow",
    ]),
    "office": (["meeting room", "reception", "open space", "server room", "break room"], [
        "book_room room:place hour:int:0:23 minute:int:0:59",
        "set_ac temperature:int:16:30:degrees room?:place",
        "print_document copies:int:1:50 colour?:enum:colour,greyscale",
        "call_colleague name:text:anna|the front desk|mr smith|it support|my manager",
        "send_message recipient:text:the team|sarah|everyone|facilities text:text:running late|lunch is here|meeting moved",
        "get_occupancy room?:place",
    ]),
    "workshop": (["bench", "paint booth", "garage bay"], [
        "start_printer job:text:the bracket|the phone stand|part twelve|the gear",
        "pause_printer",
        "resume_printer",
        "set_bed_temperature temperature:int:0:120:degrees",
        "set_extractor speed:int:0:5",
        "start_compressor pressure?:int:1:10:bar",
        "stop_compressor",
    ]),
    "vehicle": (["front", "rear", "left", "right", "roof"], [
        "set_cabin_temperature temperature:int:16:28:degrees",
        "set_wipers speed:enum:off,slow,fast,auto",
        "set_headlights mode:enum:off,dipped,full,auto",
        "open_trunk",
        "close_trunk",
        "start_charging limit?:int:50:100:percent",
        "stop_charging",
        "find_parking near?:text:the station|the office|downtown|the airport",
    ]),
    "media": (["living room", "bedroom", "kitchen", "patio", "study"], [
        "play_radio station:text:bbc one|jazz fm|the news|classic hits|radio paradise",
        "play_podcast show:text:the daily|my history podcast|science friday|the latest episode",
        "pause_playback",
        "skip_track",
        "set_speaker_volume level:int:0:100:percent room?:place",
        "set_tv_channel channel:int:1:999",
        "turn_tv state:onoff room?:place",
    ]),
    "pets": (["living room", "hallway", "garden", "utility room"], [
        "feed_cat portions:int:1:5",
        "feed_fish",
        "set_aquarium_temperature temperature:int:18:32:degrees",
        "set_aquarium_light state:onoff",
        "open_cat_flap",
        "lock_cat_flap",
        "get_litter_level",
    ]),
    "security": (["front door", "back door", "garage", "driveway", "side gate"], [
        "arm_alarm mode:enum:home,away,night",
        "disarm_alarm",
        "lock_gate gate:place",
        "unlock_gate gate:place",
        "show_camera camera:place",
        "record_camera camera:place minutes?:int:1:60:minutes",
        "set_porch_light state:onoff",
    ]),
    "laundry": (["laundry room", "basement", "bathroom"], [
        "start_washer program:enum:cotton,delicates,wool,quick,eco temperature?:int:20:90:degrees",
        "stop_washer",
        "start_dryer minutes?:int:10:180:minutes",
        "stop_dryer",
        "get_washer_status",
    ]),
    "health": (["bedroom", "bathroom", "living room"], [
        "log_water glasses:int:1:20",
        "log_weight kilos:int:30:200:kilograms",
        "set_reminder hour:int:0:23 minute:int:0:59 note?:text:take my pills|call the doctor|stretch|drink water",
        "start_meditation minutes:int:1:60:minutes",
        "get_heart_rate",
        "set_humidifier level:int:30:70:percent",
    ]),
    "energy": (["house", "garage", "workshop", "solar roof"], [
        "get_battery_level",
        "set_battery_reserve level:int:0:100:percent",
        "set_water_heater temperature:int:35:75:degrees",
        "boost_water_heater minutes:int:15:120:minutes",
        "get_power_usage place?:place",
        "set_heat_pump mode:enum:heat,cool,auto,off",
    ]),
    "boat": (["bow", "stern", "cabin", "deck"], [
        "raise_anchor",
        "drop_anchor",
        "set_heading degrees:int:0:359:degrees",
        "set_speed knots:int:0:30:knots",
        "set_bilge_pump state:onoff",
        "set_nav_lights state:onoff",
    ]),
    "drone": (["north field", "south field", "barn", "landing pad"], [
        "take_off",
        "land_drone",
        "fly_to place:place",
        "set_altitude meters:int:5:120:meters",
        "take_photo",
        "return_home",
    ]),
    "store": (["aisle one", "checkout", "stockroom", "entrance"], [
        "announce message:text:we close in ten minutes|cleanup in aisle four|welcome to the store",
        "open_register register:int:1:12",
        "close_register register:int:1:12",
        "check_stock item:text:bananas|paper towels|the blue shirts|size ten shoes",
        "set_music_volume level:int:0:10",
        "set_door state:enum:open,closed,locked",
    ]),
    "lab": (["fume hood", "incubator", "cold room", "bench two"], [
        "set_incubator temperature:int:20:45:degrees",
        "set_centrifuge rpm:int:100:15000 minutes:int:1:60:minutes",
        "stop_centrifuge",
        "start_stirrer speed:int:1:10",
        "log_sample name:text:sample a|the control|plate three|batch seven",
        "get_co2_level place?:place",
    ]),
}

VERBS_OF = {"onoff": "Switch", "int": "Set", "enum": "Set", "text": "Use", "place": "Choose", "bool": "Set"}


def _param(spec, places):
    """(name, JSON schema, required) of a param spec."""
    name, kind, *args = spec.split(":")
    req = not name.endswith("?")
    name = name.rstrip("?")
    if kind == "int":
        lo, hi = int(args[0]), int(args[1])
        unit = args[2] if len(args) > 2 else ""
        desc = ("%s in %s, %d to %d." % (name.replace("_", " ").capitalize(), unit, lo, hi) if unit else
                "%s, %d to %d." % (name.replace("_", " ").capitalize(), lo, hi))
        p = {"type": "integer", "minimum": lo, "maximum": hi, "description": desc}
    elif kind == "place":
        vals = [v.replace(" ", "_") for v in places]
        p = {"type": "string", "enum": vals, "description": "Which %s (the place)." % name,
             "x-synonyms": {v: [v.replace("_", " ")] for v in vals}}
    elif kind == "enum":
        vals = args[0].split(",")
        p = {"type": "string", "enum": vals, "description": "The %s." % name.replace("_", " ")}
    elif kind == "onoff":
        p = {"type": "string", "enum": ["on", "off"], "description": "on or off"}
    elif kind == "text":
        p = {"type": "string", "description": "The %s, as said." % name, "examples": args[0].split("|")}
    elif kind == "bool":
        p = {"type": "boolean", "description": "true to %s, false to %s." % (args[0], args[1])}
    else:
        raise ValueError("unknown kind %r in %r" % (kind, spec))
    return name, p, req


def domain_tools(domain):
    """The tools.json list of one domain."""
    places, fns = DOMAINS[domain]
    tools = []
    for spec in fns:
        name, *params = re.split(r"\s+(?=[a-z_]+\??:)", spec)
        props, req = {}, []
        for ps in params:
            pn, p, r = _param(ps, places)
            props[pn] = p
            if r:
                req.append(pn)
        words = name.replace("_", " ")
        tools.append({"type": "function", "function": {
            "name": name, "description": words[:1].upper() + words[1:] + " (%s)." % domain,
            "parameters": {"type": "object", "properties": props, "required": req}}})
    return tools


def prior_tools():
    """Every domain's functions as one tools.json list (the prior skill)."""
    out = []
    for d in sorted(DOMAINS):
        out.extend(domain_tools(d))
    return out


def prior_skill():
    """The prior skill: every domain's tools, no example lines (its lines come from the schema alone)."""
    from .skill import Skill, check_tools
    tools = prior_tools()
    check_tools(tools, "reku.model.prior")
    return Skill(Path("prior"), tools, [])


def transfer(prior_model, n_out):
    """A network for a skill with n_out output tokens that starts from the prior (a loaded .rku): its character
    embedding, blocks, pointer and the fixed output tokens' rows of the embedding and the head; the skill's own
    function and value tokens start fresh."""
    import torch
    from .qat import Net
    src = Net.from_rku(prior_model)
    a = prior_model.arch
    net = Net(a["n_in"], n_out, d=a["d"], f=a["f"], layers=a["layers"], dk=a["dk"], acts=a["acts"],
              emb=a.get("emb", "t"))
    keep = a["n_in"] + len(infer.FIXED)                 # characters, SEP..., then the fixed output tokens
    with torch.no_grad():
        net.emb[:keep].copy_(src.emb[:keep])
        for b, sb in zip(net.blocks, src.blocks):
            b.load_state_dict(sb.state_dict())
        for nm in ("ptr_k", "ptr_q"):
            getattr(net, nm).load_state_dict(getattr(src, nm).state_dict())
        net.head.weight[:len(infer.FIXED)].copy_(src.head.weight[:len(infer.FIXED)])
        net.head.log_gain.copy_(src.head.log_gain)
    return net


def packaged():
    """The packaged prior's path (reku/model/prior.rku), or None when this installation has none."""
    p = Path(__file__).resolve().parent / "prior.rku"
    return p if p.exists() else None


def describe():
    return json.dumps({d: len(f) for d, (_, f) in DOMAINS.items()})


# ---- reku prior build ------------------------------------------------------------------------------------------
DIMS = (150, 300, 2)        # the packaged prior's shape: the largest a stock Pico takes for a skill like home's
SEED = 0


def configure(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="train the prior on the generated requests of every domain in "
                       "reku.model.prior.DOMAINS")
    b.add_argument("--out", required=True, help="the prior's .rku (the packaged one: host/reku/model/prior.rku)")
    b.add_argument("--dims", default="%d,%d,%d" % DIMS, help="width, channel-mixing width and layers (default %(default)s)")
    b.add_argument("--steps", type=int, default=6000)
    b.add_argument("--minutes", type=float, help="wall-time cap")
    b.add_argument("--examples", type=int, default=60000, help="generated training requests")
    b.add_argument("--seed", type=int, default=SEED)
    b.add_argument("--lr", type=float, default=3e-3)
    b.add_argument("--eval-every", type=int, default=500)
    b.add_argument("--quiet", action="store_true")


def run(args):
    from ..errors import RekuError
    from . import data as datagen
    from .train import TrainConfig, train
    try:
        d, f, layers = (int(x) for x in args.dims.split(","))
    except ValueError:
        raise RekuError("--dims: expected width,channel width,layers such as 150,300,2, got %r" % args.dims)
    skill = prior_skill()
    cfg = TrainConfig(d=d, f=f, layers=layers, steps=args.steps, minutes=args.minutes, seed=args.seed,
                      n_train=args.examples, lr=args.lr, eval_every=args.eval_every, schema_lines=1.0,
                      refusals=datagen.REFUSALS)
    dev = datagen.generate(skill, 500, seed=args.seed + 1000, schema=1.0, refusals=datagen.REFUSALS)
    blob, info = train(skill, cfg, dev_data=dev, log=(lambda s: None) if args.quiet else print,
                       id_extra=["prior", describe()])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(blob)
    ev = info.get("eval", {})
    print("wrote %s: the prior, %d bytes, d=%d f=%d layers=%d, %d functions of %d domains, %d steps in %.0fs; "
          "held-out (generated) exact %.3f, no-call %.3f" % (out, len(blob), d, f, layers, len(skill.fns),
                                                             len(DOMAINS), info["steps"], info["seconds"],
                                                             ev.get("exact_match", 0), ev.get("no_call_accuracy", 0)))
    return 0
