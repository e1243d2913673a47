// The virtual board on the official MicroPython WebAssembly build.
// usage: node board.mjs MICROPYTHON_MJS BOARD_DIR HAL_DIR FD [--repl]
//
// UART mode (default): the board's files are copied into MicroPython's in-memory filesystem at /board,
// the simulated hardware (machine.py) at /sim, and main.py runs. FD (the pty master) is the UART; the JS
// module `simio` moves its bytes. MicroPython's own stdout/stderr go to this process's stderr (the log).
//
// REPL mode (--repl): FD is the board's USB serial. MicroPython's real REPL (friendly, raw, raw-paste) runs
// on it, as on a board after Ctrl-C: main.py is not started. The board directory is the root filesystem
// ("/"), the simulated hardware is mounted at /sim. Soft reset (Ctrl-D, machine.reset()) starts a fresh
// interpreter; the filesystem is written back to BOARD_DIR on every soft reset and when the process stops
// (SIGTERM/SIGINT), so that a later run (either mode) boots the files that were put there.
//
// A directory named .reku-sim in BOARD_DIR belongs to the simulator, not to the board's filesystem:
// .reku-sim/romfs.img, when present, is the board's ROMFS partition (mounted at /rom).
import fs from "fs";
import path from "path";
import { pathToFileURL } from "url";

const [mpPath, boardDir, halDir, uartFdArg] = process.argv.slice(2);
const replMode = process.argv.slice(6).includes("--repl");
const uartFd = Number(uartFdArg);
const { loadMicroPython } = await import(pathToFileURL(mpPath).href);
const SIM_DIR = ".reku-sim";

const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms) => Atomics.wait(sleeper, 0, 0, ms);
const inbuf = Buffer.alloc(4096);

// Bytes already taken off the wire by uartAvail() (the fd is non-blocking: `reku sim` sets O_NONBLOCK).
let pending = Buffer.alloc(0);

function uartAvail() {
  if (pending.length < inbuf.length) {
    try {
      const got = fs.readSync(uartFd, inbuf, 0, inbuf.length - pending.length, null);
      if (got > 0) pending = Buffer.concat([pending, inbuf.subarray(0, got)]);
    } catch (e) {
      if (e.code !== "EAGAIN" && e.code !== "EIO") throw e;
    }
  }
  return pending.length;
}

function uartIdle() {
  if (!uartAvail()) sleep(1);      // machine.idle(): wait about a millisecond for the next byte
}

function uartRead(n) {
  const want = Math.max(1, Math.min(Number(n) || 1, inbuf.length));
  if (pending.length) {
    const k = Math.min(want, pending.length);
    const out = pending.toString("hex", 0, k);
    pending = pending.subarray(k);
    return out;
  }
  // The fd is non-blocking: wait with a back-off from 20 µs to 2 ms, so that a byte is picked up quickly (an
  // I2C transaction is a few round trips) without spinning while the wire is quiet.
  let wait = 0.02;
  for (;;) {
    try {
      const got = fs.readSync(uartFd, inbuf, 0, want, null);
      if (got > 0) return inbuf.toString("hex", 0, got);
    } catch (e) {
      if (e.code !== "EAGAIN" && e.code !== "EIO") throw e;
    }
    sleep(wait);
    wait = Math.min(wait * 2, 2);
  }
}

function writeAll(b) {
  let off = 0;
  while (off < b.length) {
    try { off += fs.writeSync(uartFd, b, off, b.length - off); }
    catch (e) { if (e.code === "EAGAIN") { sleep(1); continue; } throw e; }
  }
}

function uartWrite(hex) {
  writeAll(Buffer.from(String(hex), "hex"));
}

const log = (s) => process.stderr.write(s + "\n");

function copyIn(mp, src, dst) {
  try { mp.FS.mkdir(dst); } catch (e) { /* exists */ }
  for (const name of fs.readdirSync(src)) {
    if (name === SIM_DIR || name === "__pycache__") continue;
    const s = path.join(src, name), d = dst + "/" + name;
    if (fs.statSync(s).isDirectory()) copyIn(mp, s, d);
    else mp.FS.writeFile(d, fs.readFileSync(s));
  }
}

function romfsImage() {
  const p = path.join(boardDir, SIM_DIR, "romfs.img");
  return fs.existsSync(p) ? new Uint8Array(fs.readFileSync(p)) : undefined;
}

// ---- REPL mode -----------------------------------------------------------------------------------------

// Write the in-memory tree back to the host directory: changed files rewritten, deleted ones removed.
function copyOut(mp, src, dst) {
  fs.mkdirSync(dst, { recursive: true });
  const seen = new Set();
  for (const name of mp.FS.readdir(src)) {
    if (name === "." || name === "..") continue;
    seen.add(name);
    const s = src + "/" + name, d = path.join(dst, name);
    if (mp.FS.isDir(mp.FS.stat(s).mode)) {
      if (fs.existsSync(d) && !fs.statSync(d).isDirectory()) fs.rmSync(d);
      copyOut(mp, s, d);
    } else {
      const data = mp.FS.readFile(s);
      let same = false;
      try {
        if (fs.statSync(d).isDirectory()) fs.rmSync(d, { recursive: true });
        else same = Buffer.from(data).equals(fs.readFileSync(d));
      } catch (e) { /* missing */ }
      if (!same) fs.writeFileSync(d, data);
    }
  }
  for (const name of fs.readdirSync(dst)) {
    if (!seen.has(name) && !(src === "/board" && name === SIM_DIR)) {
      fs.rmSync(path.join(dst, name), { recursive: true, force: true });
    }
  }
}

// Python run once per boot: the simulated hardware (\`machine\`) is imported while /sim is reachable, then
// the board directory becomes the root filesystem "/". The wasm build's VfsPosix raises OSError with
// Emscripten's errno numbers (ENOENT is 44) while its own errno module, like every board, says ENOENT is 2:
// the root is wrapped so that filesystem errors carry the numbers a board's would (mpremote relies on them).
const BOOT_PY = `
import sys, vfs, os
sys.path.insert(0, '/sim')
import machine
sys.path.pop(0)
try:
    f = open('/simrom/romfs.img', 'rb')
    _rom = bytearray(f.read())
    f.close()
except OSError:
    _rom = None

class _BoardFS:
    E = {63: 1, 44: 2, 29: 5, 8: 9, 6: 11, 48: 12, 2: 13, 10: 16, 20: 17, 75: 18, 43: 19, 54: 20,
         31: 21, 28: 22, 51: 28, 69: 30, 37: 36, 55: 39}

    def __init__(self, fs):
        self.fs = fs

    def _do(self, f, *args):
        try:
            return f(*args)
        except OSError as e:
            n = e.errno
            raise OSError(self.E.get(n, n))

    def mount(self, readonly, mkfs):
        return self._do(self.fs.mount, readonly, mkfs)

    def umount(self):
        return self._do(self.fs.umount)

    def ilistdir(self, path):
        return iter(self._do(lambda p: list(self.fs.ilistdir(p)), path))

    def open(self, path, mode):
        return self._do(self.fs.open, path, mode)

    def chdir(self, path):
        return self._do(self.fs.chdir, path)

    def getcwd(self):
        return self._do(self.fs.getcwd)

    def mkdir(self, path):
        return self._do(self.fs.mkdir, path)

    def remove(self, path):
        return self._do(self.fs.remove, path)

    def rename(self, old, new):
        return self._do(self.fs.rename, old, new)

    def rmdir(self, path):
        return self._do(self.fs.rmdir, path)

    def stat(self, path):
        return self._do(self.fs.stat, path)

    def statvfs(self, path):
        return self._do(self.fs.statvfs, path)

vfs.umount('/')
vfs.mount(_BoardFS(vfs.VfsPosix('/board')), '/')
os.chdir('/')

# The ROMFS partition (.reku-sim/romfs.img on the host): the wasm build's own one is read-only, so the
# partition is a bytearray behind a \`vfs\` whose rom_ioctl implements the calls mpremote romfs uses
# (1 count, 2 memory, 3 prepare, 4 write, 5 end -> saved to the host, 6 block size), as on a board.
if _rom is not None:
    class _Vfs:
        mount = vfs.mount
        umount = vfs.umount
        VfsRom = vfs.VfsRom
        VfsPosix = vfs.VfsPosix

        def rom_ioctl(self, op, *args):
            if op == 1:
                return 1
            if args and args[0] != 0:
                return -19
            if op == 2:
                return memoryview(_rom)
            if op == 3:
                off, n = (args[1], args[2]) if len(args) > 2 else (0, args[1])
                for i in range(off, min(off + n, len(_rom))):
                    _rom[i] = 0xff
                return 4
            if op == 4:
                _rom[args[1]:args[1] + len(args[2])] = args[2]
                return 0
            if op == 5:
                import binascii, _simrom
                _simrom.save(binascii.hexlify(_rom).decode())
                return 0
            if op == 6:
                return len(_rom)
            return -22
    sys.modules['vfs'] = _Vfs()
    if _rom[:3] == b'\\xd2\\xcd\\x31':
        vfs.mount(vfs.VfsRom(_rom), '/rom')
    del _Vfs
del sys, vfs, os, machine, _BoardFS
`;

async function runRepl() {
  let mp = null;
  let out = [];               // bytes waiting to go to the host
  let drop = null;            // output prefix to swallow (the "OK" of a raw-paste run)
  let tail = "";              // last output characters, to follow the REPL's mode
  let raw = false;            // raw REPL (Ctrl-A) or friendly REPL
  let rawLineLen = 0;         // bytes in the raw REPL's current line (raw-paste needs an empty line)
  let held = [];              // a possible raw-paste request (\x05 A \x01) being matched
  let paste = null;           // raw-paste in progress: {data: [], window, remain}
  const WINDOW = 1024;

  function onOut(bytes) {
    for (const b of bytes) {
      if (drop !== null) {
        if (b === drop.charCodeAt(0)) { drop = drop.slice(1) || null; continue; }
        drop = null;
      }
      out.push(b);
      tail = (tail + String.fromCharCode(b)).slice(-40);
      if (tail.endsWith("raw REPL; CTRL-B to exit\r\n")) raw = true;
      else if (tail.endsWith("for more information.\r\n")) raw = false;
    }
    if (out.length >= 4096) flush();
  }

  function flush() {
    if (out.length) { writeAll(Buffer.from(out)); out = []; }
  }

  function persist() {
    if (mp !== null) copyOut(mp, "/board", boardDir);
  }

  async function boot(quiet) {
    const m = await loadMicroPython({ stdout: (b) => onOut(b), stderr: (b) => onOut(b), linebuffer: false });
    copyIn(m, boardDir, "/board");
    copyIn(m, halDir, "/sim");
    m.registerJsModule("simio", { read: () => "", write: () => {}, avail: () => 0, idle: () => sleep(1) });   // no UART in REPL mode
    const rom = romfsImage();
    if (rom !== undefined) {
      m.FS.mkdir("/simrom");
      m.FS.writeFile("/simrom/romfs.img", rom);
    }
    m.registerJsModule("_simrom", {
      save: (hex) => {
        fs.mkdirSync(path.join(boardDir, SIM_DIR), { recursive: true });
        fs.writeFileSync(path.join(boardDir, SIM_DIR, "romfs.img"), Buffer.from(String(hex), "hex"));
      },
    });
    m.runPython(BOOT_PY);
    mp = m;
    if (quiet) {
      // Back in the REPL the board was in, without the friendly banner in between.
      const keep = out;
      out = [];
      mp.replInit();
      mp.replProcessChar(0x01);
      out = keep;
      onOut(Buffer.from("raw REPL; CTRL-B to exit\r\n>"));
    } else {
      mp.replInit();
    }
  }

  async function softReset() {
    flush();
    persist();
    const wasRaw = raw;
    onOut(Buffer.from("MPY: soft reboot\r\n"));
    mp = null;
    await boot(wasRaw);
    rawLineLen = 0;
    flush();
  }

  // One byte for the REPL. Returns true when MicroPython asked for a soft reset.
  function feed(b) {
    if (raw) {
      if (b >= 1 && b <= 4) rawLineLen = 0; else rawLineLen++;
    }
    return mp.replProcessChar(b) !== 0;
  }

  function runPaste(code) {
    // MicroPython's raw-paste reader needs a blocking stdin, which the WebAssembly build does not have
    // (its mp_hal_stdin_rx_chr() is 0): the paste is collected here and run as a raw REPL command
    // whose "OK" is not sent, which is what the board's raw-paste run looks like on the wire.
    for (const c of code) if (feed(c)) return true;
    drop = "OK";
    return feed(0x04);
  }

  // Returns true when a soft reset is due.
  function handle(b) {
    if (paste !== null) {
      if (b === 0x04 || b === 0x03) {
        const code = b === 0x04 ? paste.data : Buffer.from("raise KeyboardInterrupt\n");
        paste = null;
        onOut([0x04]);            // end of data acknowledged
        return runPaste(code);
      }
      paste.data.push(b);
      if (--paste.remain === 0) { onOut([0x01]); paste.remain = WINDOW; }
      return false;
    }
    if (raw && (held.length > 0 || (b === 0x05 && rawLineLen === 0))) {
      held.push(b);
      const want = [0x05, 0x41, 0x01];
      if (held.every((x, i) => x === want[i])) {
        if (held.length < 3) return false;
        held = [];
        paste = { data: [], remain: WINDOW };
        onOut([0x52, 0x01, WINDOW & 0xff, WINDOW >> 8, 0x01]);   // "R\x01", window size, one more window
        return false;
      }
      const h = held;
      held = [];
      for (const x of h) if (feed(x)) return true;
      return false;
    }
    return feed(b);
  }

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    try { flush(); persist(); } finally { process.exit(0); }
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.on("SIGHUP", stop);

  await boot(false);
  flush();
  log("reku sim: MicroPython REPL serving on the pty");

  const buf = Buffer.alloc(4096);
  const pump = async () => {
    let got = 0;
    try {
      got = fs.readSync(uartFd, buf, 0, buf.length, null);
    } catch (e) {
      if (e.code !== "EAGAIN" && e.code !== "EIO") throw e;
    }
    for (let i = 0; i < got; i++) {
      if (handle(buf[i])) {
        const rest = Buffer.from(buf.subarray(i + 1, got));
        await softReset();
        // Bytes that came after the reset go to the fresh interpreter.
        for (let j = 0; j < rest.length; j++) if (handle(rest[j])) await softReset();
        break;
      }
    }
    flush();
    if (!stopping) setTimeout(pump, got > 0 ? 0 : 2);
  };
  pump();
}

// ---- start ---------------------------------------------------------------------------------------------

if (!replMode) {
  // machine.reset() in the simulated hardware raises SystemExit("machine.reset()"): the files are
  // written back to BOARD_DIR and a fresh interpreter boots them, as a board would after a reset.
  for (;;) {
    const mp = await loadMicroPython({ stdout: log, stderr: log, linebuffer: true, romfs: romfsImage() });
    mp.registerJsModule("simio", { read: uartRead, write: uartWrite, avail: uartAvail, idle: uartIdle });
    copyIn(mp, boardDir, "/board");
    copyIn(mp, halDir, "/sim");
    try {
      mp.runPython("import sys, os\nos.chdir('/board')\nsys.path[:0] = ['/board', '/sim']\nimport main\n");
    } catch (e) {
      const msg = String(e.message || e);
      if (msg.includes("SystemExit: machine.reset()")) {
        copyOut(mp, "/board", boardDir);
        continue;
      }
      log(msg);
      process.exit(1);
    }
    break;
  }
} else {
  await runRepl();
}
