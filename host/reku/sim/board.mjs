// The virtual board on the official MicroPython WebAssembly build.
// usage: node board.mjs MICROPYTHON_MJS BOARD_DIR HAL_DIR UART_FD [--repl]
// The board's files are copied into MicroPython's in-memory filesystem at /board, the simulated
// hardware (machine.py) at /sim. The UART is the pty master file descriptor UART_FD; the JS module
// `simio` moves its bytes. MicroPython's own stdout/stderr go to this process's stderr (the board's log).
import fs from "fs";
import path from "path";
import { pathToFileURL } from "url";

const [mpPath, boardDir, halDir, uartFdArg] = process.argv.slice(2);
const uartFd = Number(uartFdArg);
const { loadMicroPython } = await import(pathToFileURL(mpPath).href);

const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms) => Atomics.wait(sleeper, 0, 0, ms);
const inbuf = Buffer.alloc(4096);

function uartRead(n) {
  const want = Math.max(1, Math.min(Number(n) || 1, inbuf.length));
  for (;;) {
    try {
      const got = fs.readSync(uartFd, inbuf, 0, want, null);
      if (got > 0) return inbuf.toString("hex", 0, got);
      sleep(5);
    } catch (e) {
      if (e.code === "EAGAIN" || e.code === "EIO") { sleep(5); continue; }
      throw e;
    }
  }
}

function uartWrite(hex) {
  const b = Buffer.from(String(hex), "hex");
  let off = 0;
  while (off < b.length) {
    try { off += fs.writeSync(uartFd, b, off, b.length - off); }
    catch (e) { if (e.code === "EAGAIN") { sleep(1); continue; } throw e; }
  }
}

const log = (s) => process.stderr.write(s + "\n");
const mp = await loadMicroPython({ stdout: log, stderr: log, linebuffer: true });
mp.registerJsModule("simio", { read: uartRead, write: uartWrite });

function copyIn(src, dst) {
  try { mp.FS.mkdir(dst); } catch (e) { /* exists */ }
  for (const name of fs.readdirSync(src)) {
    const s = path.join(src, name), d = dst + "/" + name;
    if (fs.statSync(s).isDirectory()) copyIn(s, d);
    else mp.FS.writeFile(d, fs.readFileSync(s));
  }
}
copyIn(boardDir, "/board");
copyIn(halDir, "/sim");

try {
  mp.runPython("import sys, os\nos.chdir('/board')\nsys.path[:0] = ['/board', '/sim']\nimport main\n");
} catch (e) {
  log(String(e.message || e));
  process.exit(1);
}
