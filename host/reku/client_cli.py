"""`reku query`, `reku info`, `reku upload`, `reku feedback pull` and `reku memory`: talk to a board (real or
virtual) over UART/USB serial (--port) or I2C (--i2c BUS:ADDR)."""

import json
import sys
import time
from pathlib import Path

from . import paths
from .client import Client
from .errors import RekuError


def _link_args(p):
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--port", help="serial port of the board (e.g. /dev/ttyACM0, or the pty of reku sim)")
    g.add_argument("--i2c", metavar="BUS:ADDR",
                   help="I2C instead: BUS is N for /dev/i2c-N (or a device path, or sim:PTY for a virtual "
                        "board), ADDR its address, e.g. 1:0x42")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--ready-pin", type=int, metavar="GPIO",
                   help="with --i2c: host GPIO wired to the board's READY pin (sysfs number), instead of polling")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each reply")
    p.add_argument("--key", metavar="FILE", help="HMAC key file, for boards deployed with --key")


def open_client(args):
    key = None
    if getattr(args, "key", None):
        try:
            key = Path(args.key).read_bytes()
        except OSError as e:
            raise RekuError("cannot read key file %s: %s" % (args.key, e.strerror)) from None
    if args.i2c:
        from .i2c import parse_target
        bus, addr = parse_target(args.i2c)
        return Client.i2c(bus, addr, ready_pin=args.ready_pin, timeout=args.timeout, key=key)
    return Client.serial(args.port, args.baud, timeout=args.timeout, key=key)


def configure_query(p):
    _link_args(p)
    p.add_argument("text", help="the request, e.g. \"dim the kitchen to 30%%\"")
    p.add_argument("--verbose", "-v", action="store_true", help="also print timing and token counts")


def run_query(args):
    with open_client(args) as board:
        r = board.query(args.text)
    out = {"calls": [c.to_dict() for c in r.calls]}
    if r.reason:
        out["reason"] = r.reason
        if r.param:
            out.update(function=r.function, param=r.param)
    if args.verbose:
        out.update(us=r.us, tokens_in=r.tokens_in, tokens_out=r.tokens_out)
    print(json.dumps(out))
    return 0


def configure_info(p):
    _link_args(p)


def run_info(args):
    with open_client(args) as board:
        info = board.info()
    json.dump(info, sys.stdout, indent=2)
    print()
    return 0


def configure_upload(p):
    _link_args(p)
    p.add_argument("model", help="the .rku file (or a bundled skill's name, e.g. home)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


class ProgressBar:
    """One line on stderr, redrawn in place: [#####.....]  45%  17.0/37.8 KB  12.3 KB/s"""

    def __init__(self, stream=sys.stderr, width=30):
        self.stream = stream
        self.width = width
        self.t0 = time.monotonic()
        self.last = -1.0

    def __call__(self, done, total):
        now = time.monotonic()
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        frac = done / total if total else 1.0
        fill = int(frac * self.width)
        rate = done / max(now - self.t0, 1e-6) / 1000
        self.stream.write("\r[%s%s] %3d%%  %.1f/%.1f KB  %.1f KB/s" % (
            "#" * fill, "." * (self.width - fill), int(frac * 100), done / 1000, total / 1000, rate))
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


class Interrupted(RekuError):
    exit_code = 130


def after_interrupt(board, path, old_sha):
    """What the board serves after an upload was interrupted (the commit may have happened): asked, not assumed."""
    import hashlib
    new_sha = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    try:
        model = board.info().get("model") or {}
    except Exception:                                  # the link or the board is gone: say so, do not guess
        return "interrupted; the board did not answer (`reku info` tells what it serves)"
    sha = model.get("sha256")
    if sha == new_sha:
        return "interrupted after the commit: the board serves the new model %s (%s)" % (model.get("id"), sha[:16])
    if sha == old_sha and sha is not None:
        return ("interrupted: the board still serves its previous model %s (%s); `reku upload` again resumes the "
                "transfer" % (model.get("id"), sha[:16]))
    return "interrupted: the board serves %s" % (("model %s (%s)" % (model.get("id"), sha[:16])) if sha else "no model")


def run_upload(args):
    path = paths.model_file(args.model)
    with open_client(args) as board:
        before = board.info()
        old = (before.get("model") or {}).get("sha256")
        try:
            r = board.upload_model(path, progress=None if args.quiet else ProgressBar())
        except KeyboardInterrupt:
            if not args.quiet:
                sys.stderr.write("\n")            # end the progress bar's line
            raise Interrupted(after_interrupt(board, path, old)) from None
    print("uploaded %s (%d bytes) to %s: model %s, sha256 %s%s" % (
        path, r["bytes"], args.port or args.i2c, r["id"], r["sha256"],
        "" if old != r["sha256"] else " (the same model as before)"))
    return 0


def configure_feedback(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    pull = sub.add_parser("pull", help="copy the feedback the board stored (FEEDBACK_READ) into a JSONL file")
    _link_args(pull)
    pull.add_argument("--out", required=True, metavar="FILE", help="JSONL file to write (see --append)")
    pull.add_argument("--append", action="store_true", help="add to FILE instead of replacing it")
    pull.add_argument("--clear", action="store_true", help="then remove what was copied from the board "
                      "(FEEDBACK_CLEAR: lines stored meanwhile stay)")


def run_feedback(args):
    out = Path(args.out)
    with open_client(args) as board:
        data = board.feedback_read()
        lines = [ln for ln in data.split(b"\n") if ln.strip()]
        bad = 0
        for ln in lines:
            try:
                json.loads(ln)
            except ValueError:
                bad += 1
        try:
            with open(out, "ab" if args.append else "wb") as f:
                f.write(data)
        except OSError as e:
            raise RekuError("cannot write %s: %s" % (out, e.strerror)) from None
        cleared = board.feedback_clear(data) if args.clear and data else None
    print("%s: %d feedback lines (%d bytes)%s%s" % (
        out, len(lines), len(data), "; %d not JSON (cut by a power loss?)" % bad if bad else "",
        "; cleared on the board (%d bytes stored since)" % cleared["bytes"] if cleared else ""))
    return 0


def parse_calls(text, where="--calls"):
    """Calls given on the command line: a JSON list of {"name", "arguments"} (or one such object; [] for no call)."""
    try:
        v = json.loads(text)
    except ValueError as e:
        raise RekuError("%s is not JSON (%s): give e.g. '[{\"name\": \"set_light\", \"arguments\": "
                        "{\"room\": \"kitchen\", \"state\": \"off\"}}]'" % (where, e)) from None
    v = [v] if isinstance(v, dict) else v
    if not isinstance(v, list) or not all(isinstance(c, dict) and isinstance(c.get("name"), str)
                                          and isinstance(c.get("arguments", {}), dict) for c in v):
        raise RekuError("%s must be a list of {\"name\": ..., \"arguments\": {...}}" % where)
    return [{"name": c["name"], "arguments": c.get("arguments", {})} for c in v]


def configure_memory(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    teach = sub.add_parser("teach", help="tell the board the right calls for a request (FEEDBACK corrected): it "
                           "answers so from now on, and near paraphrases too (docs/learning.md)")
    _link_args(teach)
    teach.add_argument("text", help="the request, as the user said it")
    teach.add_argument("--calls", required=True, metavar="JSON",
                       help='the right calls, e.g. \'[{"name": "set_light", "arguments": {"room": "bathroom", '
                            '"state": "off"}}]\' ([] for no call)')
    ls = sub.add_parser("list", help="what the board learnt from corrections (oldest use first)")
    _link_args(ls)
    ls.add_argument("--json", action="store_true", help="print the board's JSON")
    forget = sub.add_parser("forget", help="forget one learnt correction (its number in memory list), or --all")
    _link_args(forget)
    g = forget.add_mutually_exclusive_group(required=True)
    g.add_argument("index", nargs="?", type=int, help="entry number, as memory list shows it")
    g.add_argument("--all", action="store_true", help="forget everything the board learnt")


def _fmt_calls(calls):
    if not calls:
        return "(no call)"
    return "; ".join("%s(%s)" % (c["name"], ", ".join("%s=%s" % (k, json.dumps(v))
                                                        for k, v in c.get("arguments", {}).items())) for c in calls)


def run_memory(args):
    with open_client(args) as board:
        if args.action == "teach":
            calls = parse_calls(args.calls)
            got = [c.to_dict() for c in board.query(args.text).calls]
            r = board.correct(args.text, calls, got=got)
            learnt = r.get("learnt")
            if learnt is None:
                raise RekuError("the board stored the correction but has no memory of corrections (learning off "
                                "in reku.json, or firmware older than it)")
            if "error" in learnt:
                raise RekuError("the board stored the correction but cannot learn it: %s" % learnt["error"])
            after = [c.to_dict() for c in board.query(args.text).calls]
            if not learnt["decisions"]:
                print("the board already answers %r with %s: nothing to learn" % (args.text, _fmt_calls(after)))
            else:
                print("learnt (%d decisions; %d of %d entries%s): %r was %s, now %s" % (
                    learnt["decisions"], learnt["entries"], learnt["cap"],
                    "; %d least recently used forgotten" % learnt["evicted"] if learnt["evicted"] else "",
                    args.text, _fmt_calls(got), _fmt_calls(after)))
            return 0
        if args.action == "list":
            m = board.memory_list()
            if args.json:
                print(json.dumps(m))
                return 0
            if "stale" in m:
                print("(a memory file of %d bytes made for another model: not used; memory forget --all "
                      "removes it)" % m["stale"])
            print("%d of %d entries learnt for model %s%s" % (len(m["entries"]), m["cap"], m["model"],
                                                            ":" if m["entries"] else ""))
            for i, e in enumerate(m["entries"]):
                print("%3d  %-40s -> %s" % (i, json.dumps(e["text"]), _fmt_calls(e["calls"])))
            return 0
        r = board.memory_forget(None if args.all else args.index)
        print("forgot %s; %d entries left" % ("everything" if args.all else "entry %d" % args.index, r["entries"]))
    return 0
