"""The virtual board: the unchanged firmware/ tree running on MicroPython (official WebAssembly build under
Node) or CPython, its UART exposed as a pseudo-terminal that any serial client can open."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path

from .. import paths
from ..errors import RekuError

HAL = Path(__file__).parent / "hal"
NODE_RUNNER = Path(__file__).parent / "board.mjs"
CPYTHON_RUNNER = Path(__file__).parent / "cpython_board.py"
WASM_PACKAGE = "@micropython/micropython-webassembly-pyscript"
READY_MARK = "serving on"
SIM_DIR = ".reku-sim"           # in a state dir: the simulator's own files (e.g. romfs.img), not the board's


def micropython_mjs():
    """Path of the WebAssembly MicroPython's micropython.mjs, or None when it is not installed."""
    env = os.environ.get("REKU_MICROPYTHON_MJS")
    if env:
        return Path(env) if Path(env).exists() else None
    for top in (paths.ROOT, Path.cwd()):        # the checkout's node_modules, or one where reku runs
        p = top / "node_modules" / WASM_PACKAGE / "micropython.mjs"
        if p.exists():
            return p
    return None


def available_runtimes():
    out = []
    if shutil.which("node") and micropython_mjs():
        out.append("micropython")
    out.append("cpython")
    return out


def populate(board_dir, board="pico", model=None):
    """Lay out a board's filesystem as `reku deploy` would: firmware, profile, model."""
    board_dir = Path(board_dir)
    model_file = None
    if model is not None:
        model_file = paths.model_file(model)
    board_dir.mkdir(parents=True, exist_ok=True)
    for src in paths.FIRMWARE.rglob("*.py"):
        if "__pycache__" in src.parts:
            continue
        dst = board_dir / src.relative_to(paths.FIRMWARE)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    profile = paths.BOARDS / (board + ".json")
    if not profile.exists():
        raise RekuError("no board profile %s (known: %s)" % (profile, ", ".join(
            sorted(p.stem for p in paths.BOARDS.glob("*.json")))))
    shutil.copyfile(profile, board_dir / "board.json")
    if model_file is not None:
        shutil.copyfile(model_file, board_dir / "model.rku")
    return board_dir


class VirtualBoard:
    """Start with `with VirtualBoard(model="home") as vb: Client.serial(vb.port)`.

    repl=True: the pty is the board's USB serial with MicroPython's REPL on it (friendly, raw and
    raw-paste, as mpremote uses them) instead of the firmware serving frames on its UART; main.py is not
    started, as on a board interrupted with Ctrl-C. The filesystem is written back to state_dir on soft
    reset and on stop(), so that a later VirtualBoard(state_dir=same) boots what was put there.
    `bare=True` starts from an empty filesystem instead of populating it with the firmware.
    `romfs_kb=N` gives the board a ROMFS partition of N KiB (kept in state_dir/.reku-sim/romfs.img; writable
    with `mpremote romfs deploy` in REPL mode, mounted at /rom in both modes when it holds a ROMFS image).
    `config={...}` writes the board's reku.json (e.g. {"transports": ["i2c"]}: the pty is then the I2C bus)."""

    def __init__(self, runtime="auto", board="pico", model="home", state_dir=None, link=None,
                 log=None, boot_timeout=60.0, repl=False, bare=False, romfs_kb=None, config=None):
        if runtime == "auto":
            runtime = available_runtimes()[0]
        if runtime not in ("micropython", "cpython"):
            raise RekuError("unknown runtime %r (micropython or cpython)" % runtime)
        if runtime == "micropython" and "micropython" not in available_runtimes():
            raise RekuError("the MicroPython runtime needs node and the npm package %s "
                            "(`npm install %s` in the current folder, or REKU_MICROPYTHON_MJS)" % (WASM_PACKAGE, WASM_PACKAGE))
        if repl and runtime != "micropython":
            raise RekuError("the REPL mode of the virtual board needs the MicroPython runtime "
                            "(node and the npm package %s)" % WASM_PACKAGE)
        if romfs_kb is not None and runtime != "micropython":
            raise RekuError("a ROMFS partition needs the MicroPython runtime of the virtual board")
        self.repl = repl
        self.config = config
        self.bare = bare
        self.romfs_kb = romfs_kb
        self.runtime = runtime
        self.board = board
        self.model = model
        self.state_dir = state_dir
        self.link = link
        self.log = log
        self.boot_timeout = boot_timeout
        self.port = None
        self.proc = None
        self.lines = []
        self._tmp = None
        self._ready = threading.Event()

    def start(self):
        if self.state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="reku-board-")
            board_dir = Path(self._tmp.name)
        else:
            board_dir = Path(self.state_dir)
        if self.bare:
            board_dir.mkdir(parents=True, exist_ok=True)
        elif not (board_dir / "main.py").exists():
            populate(board_dir, self.board, self.model)
        self.board_dir = board_dir
        if self.config is not None:
            (board_dir / "reku.json").write_text(json.dumps(self.config))
        rom = board_dir / SIM_DIR / "romfs.img"
        if self.romfs_kb is not None and not rom.exists():
            rom.parent.mkdir(exist_ok=True)
            rom.write_bytes(b"\xff" * (self.romfs_kb * 1024))    # an erased flash partition
        master, slave = os.openpty()
        tty.setraw(slave)           # no echo, no line discipline: the pty carries raw bytes like a UART
        if self.repl or self.runtime == "micropython":
            # Node reads it without blocking: the REPL keeps its event loop free, UART.any() asks without waiting
            os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.port = os.ttyname(slave)
        if self.link:
            if os.path.lexists(self.link):
                os.unlink(self.link)
            os.symlink(self.port, self.link)
        env = dict(os.environ, REKU_SIM_UART_FD=str(master), PYTHONUNBUFFERED="1")
        if self.runtime == "micropython":
            cmd = ["node", str(NODE_RUNNER), str(micropython_mjs()), str(board_dir), str(HAL), str(master)]
            if self.repl:
                cmd.append("--repl")
        else:
            cmd = [sys.executable, "-I", "-S", "-u", str(CPYTHON_RUNNER), str(board_dir), str(HAL)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, pass_fds=(master,), env=env)
        threading.Thread(target=self._pump, daemon=True).start()
        t_end = time.monotonic() + self.boot_timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > t_end:
                tail = "\n".join(self.lines[-15:])
                self.stop()
                raise RekuError("virtual board (%s) did not boot:\n%s" % (self.runtime, tail))
        return self

    def _pump(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            if self.log is not None:
                self.log.write("[board] %s\n" % line)
                self.log.flush()
            if READY_MARK in line:
                self._ready.set()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()   # REPL mode: the board writes its filesystem back, then exits
            try:
                self.proc.wait(30 if self.repl else 5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for fd in (getattr(self, "_master", None), getattr(self, "_slave", None)):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None
        if self.link and os.path.islink(self.link):
            os.unlink(self.link)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
