"""`reku doctor --port PORT`: check a connected board end to end and say how to fix what is wrong.

Checks, in order (a failed prerequisite marks what depends on it as SKIP): the REPL answers; MicroPython
version and .mpy version; the board profile /board.json is valid and matches the hardware; free memory and
filesystem space; every file `reku deploy` puts on the board is present and intact (SHA-256 against what
deploy would write now); the native module imports; the model loads with the firmware's own loader; a test
query runs the engine on the board. Exit status 1 when any check fails.
"""

import json
import sys
from pathlib import Path

from . import deploy as dp
from .errors import RekuError

TEST_QUERY = "turn on the kitchen light"
MIN_VERSION = (1, 23, 0)        # .mpy 6.3 and the APIs the firmware uses (ROMFS needs 1.25, I2CTarget 1.26)
HEAP_MARGIN = 64 * 1024         # heap the firmware and engine need beyond the model buffer: 61,072 bytes measured
                                # for the home model on MicroPython 1.29 (docs/custom-firmware.md)

ENGINE_PY = """
import gc, json, time
gc.collect()
a0 = gc.mem_alloc()
from rkfw import app
f = open('board.json')
p = json.load(f)
f.close()
a = app.App(p, {})
ok = a.load_model()
r = {'ok': ok, 'error': a.model_error, 'path': a.model_path}
if ok:
    gc.collect()
    r['id'] = a.model.model_id
    r['sha256'] = a.model.sha256
    r['tier'] = a.engine.tier
    r['mem_free'] = gc.mem_free()
    r['heap_used'] = gc.mem_alloc() - a0
    t = time.ticks_ms()
    calls, st = a.engine.run(%r)
    r['ms'] = time.ticks_diff(time.ticks_ms(), t)
    r['calls'] = calls
    r['tokens_out'] = st['tokens_out']
print(json.dumps(r))
"""

NATIVE_PY = """
import sys
try:
    import rkernel
    print(repr(('ok', [n for n in ('tmv', 'quant_i8', 'quant_fp4') if hasattr(rkernel, n)])))
except Exception as e:
    print(repr(('fail', '%s: %s' % (type(e).__name__, e))))
"""


class Report:
    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.results = []

    def add(self, status, name, detail, fix=None):
        self.results.append((status, name, detail, fix))
        print("  %-5s %-12s %s" % (status, name, detail), file=self.out, flush=True)
        if fix and status == "FAIL":
            print("  %-5s %-12s fix: %s" % ("", "", fix), file=self.out, flush=True)

    @property
    def failed(self):
        return [r for r in self.results if r[0] == "FAIL"]


def configure_doctor(p):
    p.add_argument("--port", required=True, help="the board's USB serial port, or a reku sim --repl pty")
    p.add_argument("--board", help="board profile to check against (default: the name in the board's /board.json)")
    p.add_argument("--model", default="home", help="the model deploy would put there (default: home)")
    p.add_argument("--native", metavar="FILE.mpy", help="the native module deploy would put there")
    p.add_argument("--query", default=TEST_QUERY, help="test query run on the board (default: %r)" % TEST_QUERY)
    p.add_argument("--baud", type=int, default=115200)


def doctor(port, board=None, model="home", native=None, query=TEST_QUERY, baud=115200, out=None):
    """Run every check; returns the Report (report.failed is empty when the board is healthy)."""
    rep = Report(out)
    print("reku doctor: %s" % port, file=rep.out, flush=True)
    try:
        b = dp.Board(port, baud)
    except RekuError as e:
        rep.add("FAIL", "connection", str(e),
                "check the cable and --port (ls /dev/ttyACM* /dev/ttyUSB*); flash MicroPython with reku flash")
        return rep
    try:
        _checks(rep, b, port, board, model, native, query)
    except RekuError as e:
        rep.add("FAIL", "board", str(e), "reset the board (unplug/replug) and run reku doctor again")
    finally:
        b.close()
    n, f = len(rep.results), len(rep.failed)
    print("%d checks, %d failed%s" % (n, f, "" if f else ": the board is ready"), file=rep.out, flush=True)
    return rep


def _checks(rep, b, port, board, model, native, query):
    explicit_board = board is not None
    info = b.info()
    rep.add("OK", "connection", "MicroPython REPL answered on %s" % port)
    simulated = "Emscripten" in info["machine"]
    ver = tuple(info["version"])
    desc = "%s %s on %s (.mpy %s.%s, native arch %s)" % (info["impl"], dp.version_str(info), info["machine"],
                                                       info["mpy_major"], info["mpy_sub"], info["arch"])
    if info["impl"] != "micropython":
        rep.add("FAIL", "micropython", desc, "flash MicroPython (reku flash --board NAME --port PORT --firmware F)")
        return
    if ver < MIN_VERSION:
        rep.add("FAIL", "micropython", desc + "; reku needs >= %d.%d" % MIN_VERSION[:2],
                "flash MicroPython >= %d.%d (reku flash), then reku deploy" % MIN_VERSION[:2])
    else:
        rep.add("OK", "micropython", desc)

    # -- profile
    deploy_hint = "reku deploy --board %s --port %s" % (board or "NAME", port)
    profile = None
    raw = _read(b, dp.PROFILE_PATH)
    if raw is None:
        rep.add("FAIL", "profile", "/board.json missing", deploy_hint)
    else:
        from rkfw import boards
        try:
            profile = boards.parse(raw.decode(), "/board.json on the board")
        except (boards.BoardError, UnicodeError) as e:
            rep.add("FAIL", "profile", str(e), deploy_hint)
    if profile is not None:
        board = board or profile["name"]
        deploy_hint = "reku deploy --board %s --port %s" % (board, port)
        problems = []
        if not simulated and info["platform"] != profile["port"]:
            problems.append("profile is for port %s but the board runs %s" % (profile["port"], info["platform"]))
        if not simulated and info["arch"] not in (None, "none") and info["arch"] != profile["native_arch"]:
            problems.append("profile native_arch %s but the board's MicroPython is %s"
                            % (profile["native_arch"], info["arch"]))
        if problems:
            rep.add("FAIL", "profile", "; ".join(problems),
                    "deploy the profile of this board: reku deploy --board <its name> --port %s" % port)
        else:
            rep.add("OK", "profile", "/board.json valid: %s (%s)%s" % (
                profile["name"], profile["chip"], ", virtual board" if simulated else ""))

    # -- memory and storage
    model_path = dp.resolve_model(model, False) if model else None
    model_size = model_path.stat().st_size if model_path else 0
    in_rom = bool(info["rom_mounted"]) and _read_hash(b, "/rom/" + dp.MODEL_PATH) is not None
    need = (0 if in_rom else model_size) + HEAP_MARGIN
    mem = "%d bytes free RAM (model %s, %d bytes)" % (info["mem_free"], "in ROMFS" if in_rom else "in RAM", model_size)
    if info["mem_free"] < need:
        rep.add("FAIL", "memory", mem + "; needs about %d" % need,
                "use a smaller model, or firmware with ROMFS so the weights stay in flash (docs/custom-firmware.md)")
    else:
        rep.add("OK", "memory", mem)
    if "fs_free" in info:
        rep.add("OK", "storage", "%d of %d bytes free on the filesystem" % (info["fs_free"], info["fs_size"]))

    # -- files
    names = b.listfiles(dp.PACKAGE)
    use_mpy = any(n.endswith(".mpy") for n in names) or not names
    try:
        items = dp.firmware_items(info, profile or {}, use_mpy, lambda s: None)
    except RekuError as e:
        items = []
        rep.add("FAIL", "files", "cannot work out the expected firmware files: %s" % e, "reku deploy --no-mpy ...")
    if profile is not None:
        try:
            _p, pbytes = dp.load_profile(board)
            items.append(dp.Item(dp.PROFILE_PATH, pbytes, "profile"))
        except RekuError as e:
            if explicit_board:
                rep.add("FAIL", "profile", "no host profile to compare with: %s" % e, "pass --board NAME or FILE.json")
            else:
                rep.add("SKIP", "profile", "no host profile named %r to compare /board.json with (pass --board "
                        "FILE.json)" % board)
    if native:
        items.append(dp.Item(dp.NATIVE_PATH, Path(native).read_bytes(), "native module"))
    model_item = None
    if model_path is not None:
        model_item = dp.Item("/rom/" + dp.MODEL_PATH if in_rom else dp.MODEL_PATH, model_path.read_bytes(), "model")
    got = b.hashes([it.path for it in items] + ([model_item.path] if model_item else []))
    missing = [it.path for it in items if got[it.path] is None]
    differ = [it.path for it in items if got[it.path] not in (None, it.sha256)]
    stale = [n for n in names if "%s/%s" % (dp.PACKAGE, n) not in {it.path for it in items}]
    if missing or differ or stale:
        parts = []
        if missing:
            parts.append("missing: " + ", ".join(missing))
        if differ:
            parts.append("differ from this reku's build (corrupt or another version): " + ", ".join(differ))
        if stale:
            parts.append("stale in /%s: %s" % (dp.PACKAGE, ", ".join(stale)))
        rep.add("FAIL", "files", "; ".join(parts), deploy_hint)
    elif items:
        rep.add("OK", "files", "%d files intact (SHA-256): %s" % (len(items), ", ".join(
            ["main.py", "/%s (%s)" % (dp.PACKAGE, "bytecode .mpy" if use_mpy else "source")]
            + [it.path for it in items if not it.path.startswith(dp.PACKAGE) and it.path != "main.py"])))
    if model_item is not None:
        h = got[model_item.path]
        if h is None:
            rep.add("FAIL", "model file", "/%s missing" % dp.MODEL_PATH, deploy_hint + " --model " + str(model))
        elif h != model_item.sha256:
            rep.add("FAIL", "model file", "%s on the board differs from %s (SHA-256 %s..., expected %s...)"
                    % (model_item.path, model_path, h[:12], model_item.sha256[:12]),
                    deploy_hint + " --model " + str(model))
        else:
            rep.add("OK", "model file", "%s intact (SHA-256 %s...)" % (model_item.path, h[:12]))

    # -- native module
    if got.get(dp.NATIVE_PATH) is None and _read_hash(b, dp.NATIVE_PATH) is None:
        rep.add("SKIP", "native", "no /%s (kernels run as %s)" % (
            dp.NATIVE_PATH, "viper/bytecode" if info["arch"] not in (None, "none") else "bytecode"))
    else:
        status, detail = b.eval_lines(NATIVE_PY)
        if status == "ok":
            rep.add("OK", "native", "rkernel imports (%s)" % ", ".join(detail))
        else:
            rep.add("FAIL", "native", "rkernel does not import: %s" % detail,
                    "rebuild modules/rkernel for arch %s and MicroPython %s (docs/native.md), then "
                    "reku deploy --native FILE.mpy" % (info["arch"], dp.version_str(info)))

    # -- model loads, test query
    if _read_hash(b, "rkfw/app.mpy") is None and _read_hash(b, "rkfw/app.py") is None:
        rep.add("SKIP", "engine", "firmware missing, cannot load the model", deploy_hint)
        return
    try:
        res = json.loads(b.exec(ENGINE_PY % query, timeout=120).strip().splitlines()[-1])
    except (RekuError, ValueError, IndexError) as e:
        rep.add("FAIL", "engine", "running the engine on the board failed: %s" % e, deploy_hint)
        return
    if not res["ok"]:
        fix = deploy_hint + " --model FILE.rku"
        if "RAM" in (res["error"] or ""):
            fix = ("a smaller model, or firmware with a ROMFS partition so the weights stay in flash "
                   "(docs/custom-firmware.md)")
        rep.add("FAIL", "model load", res["error"], fix)
        return
    rep.add("OK", "model load", "%s from %s (%s kernels): firmware, model and engine hold %d bytes of heap, "
            "%d free" % (res["id"], res["path"], res["tier"], res["heap_used"], res["mem_free"]))
    calls = ", ".join("%s(%s)" % (c["name"], ", ".join("%s=%r" % kv for kv in c["arguments"].items()))
                      for c in res["calls"]) or "no call"
    rep.add("OK", "query", "%r -> %s in %d ms on the board" % (query, calls, res["ms"]))


def _read(b, path):
    try:
        return bytes(b.t.fs_readfile(path))
    except Exception:
        return None


def _read_hash(b, path):
    return b.hashes([path])[path]


def run_doctor(args):
    rep = doctor(args.port, board=args.board, model=args.model, native=args.native, query=args.query,
                 baud=args.baud)
    return 1 if rep.failed else 0


configure = configure_doctor
run = run_doctor
