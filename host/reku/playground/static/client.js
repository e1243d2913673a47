// The page's protocol client (docs/protocol.md), the same for both boards it talks to: the firmware running in the
// page (WasmLink: frames go to worker.js) and a real board on USB serial (SerialLink: Web Serial). Requests and
// replies are frames of codec.js; a reply is matched by its seq; ERROR frames become BoardError.
import * as C from "./codec.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

export class BoardError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "BoardError";
    this.code = code;
  }
}

/** The firmware in the page's worker. transact(wire) -> {events, extra}: extra carries what only the page's board
 *  can tell (time in the browser, heap, first-decision alternatives). */
export class WasmLink {
  constructor(worker) {
    this.worker = worker;
    this.decoder = new C.Decoder();
    this.next = 1;
    this.waiting = new Map();
    worker.onmessage = (ev) => {
      const w = this.waiting.get(ev.data.id);
      if (w) { this.waiting.delete(ev.data.id); ev.data.ok ? w.resolve(ev.data) : w.reject(new Error(ev.data.error)); }
    };
    worker.onerror = (ev) => {
      for (const w of this.waiting.values()) w.reject(new Error(ev.message || "the board's worker failed"));
      this.waiting.clear();
    };
  }

  call(op, args = {}, transfer = []) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, ...args }, transfer);
    });
  }

  boot(board, model) {
    const copy = model ? model.slice(0) : null;
    return this.call("boot", { board, model: copy }, copy ? [copy] : []);
  }

  async transact(wire) {
    const r = await this.call("frames", { hex: toHex(wire) });
    return { events: this.decoder.feed(fromHex(r.reply)), extra: r };
  }

  get name() { return "the board in this page (MicroPython WebAssembly)"; }
}

/** A board on a serial port, through the Web Serial API (navigator.serial). */
export class SerialLink {
  constructor(port) {
    this.port = port;
    this.decoder = new C.Decoder();
    this.events = [];
    this.wake = null;
    this.closed = false;
  }

  async open(baudRate = 115200) {
    await this.port.open({ baudRate });
    this.writer = this.port.writable.getWriter();
    this.reader = this.port.readable.getReader();
    this.pump = (async () => {
      try {
        for (;;) {
          const { value, done } = await this.reader.read();
          if (done) break;
          for (const ev of this.decoder.feed(value)) this.events.push(ev);
          if (this.wake) this.wake();
        }
      } catch (e) {
        this.error = e;
      } finally {
        this.closed = true;
        if (this.wake) this.wake();
      }
    })();
  }

  async close() {
    try { await this.reader.cancel(); } catch (e) { /* gone */ }
    try { this.reader.releaseLock(); this.writer.releaseLock(); await this.port.close(); } catch (e) { /* gone */ }
  }

  /** Send a request frame (after a 0x00 that ends any garbage the board holds) and wait for the reply with its
   *  seq, as reku.client does: damaged replies and silence are resent (same seq), stale replies skipped, a
   *  board busy with an earlier request waited for. */
  async transact(wire, seq, timeoutMs = 10000, tries = 3) {
    const frame = new Uint8Array(wire.length + 1);
    frame.set(wire, 1);
    let problem = "silence";
    for (let t = 0; t < tries; t++) {
      await this.writer.write(frame);
      const deadline = performance.now() + timeoutMs;
      let resend = false;
      while (!resend) {
        while (this.events.length && !resend) {
          const e = this.events.shift();
          if (e instanceof C.ProtocolError) { problem = "damaged reply: " + e.message; continue; }
          if (e.seq !== seq) continue;                       // a stale reply to an earlier request
          if (e.type === C.ERROR) {
            const err = C.parseError(e.payload);
            if ([C.E_CRC, C.E_FRAME, C.E_TOO_LONG].includes(err.code)) {
              problem = "request damaged on the wire: " + err.message;
              resend = true;
              continue;
            }
            if (err.code === C.E_BUSY) { problem = "board busy: " + err.message; continue; }
          }
          return { events: [e], extra: null };
        }
        if (resend) break;
        if (this.closed) throw new Error("the serial port closed" + (this.error ? ": " + this.error.message : ""));
        const left = deadline - performance.now();
        if (left <= 0) break;
        await new Promise((resolve) => { this.wake = resolve; setTimeout(resolve, Math.min(left, 200)); });
        this.wake = null;
      }
    }
    throw new Error(`no reply from ${this.name} after ${tries} tries of ${timeoutMs / 1000} s (last: ${problem})`);
  }

  get name() {
    const i = this.port.getInfo ? this.port.getInfo() : {};
    return "a board on USB serial" + (i.usbVendorId ? ` (USB ${hex4(i.usbVendorId)}:${hex4(i.usbProductId)})` : "");
  }
}

export class Client {
  constructor(link) {
    this.link = link;
    this.seq = Math.floor(Math.random() * 0xfff0) + 1;
    this.extra = null;       // what the page's board said besides the reply, for the last request
  }

  async request(type, payload = new Uint8Array(0)) {
    for (let attempt = 0; ; attempt++) {
      this.seq = (this.seq + 1) & 0xffff || 1;
      const { events, extra } = await this.link.transact(C.encode(type, this.seq, payload), this.seq);
      this.extra = extra;
      const ev = events.find((e) => e instanceof C.ProtocolError || e.seq === this.seq);
      if (ev === undefined) throw new Error("the board sent no reply");
      if (ev instanceof C.ProtocolError) throw new BoardError(ev.code, "reply not readable: " + ev.message);
      if (ev.type === C.ERROR) {
        const e = C.parseError(ev.payload);
        if (e.code === C.E_BUSY && attempt < 20) continue;
        throw new BoardError(e.code, e.message);
      }
      if (ev.type !== (type | C.REPLY)) throw new Error(`reply of type 0x${ev.type.toString(16)} to 0x${type.toString(16)}`);
      return ev.payload;
    }
  }

  async json(type, obj) {
    const payload = obj === undefined ? new Uint8Array(0) : enc.encode(JSON.stringify(obj));
    return JSON.parse(dec.decode(await this.request(type, payload)));
  }

  hello() { return this.json(C.HELLO); }
  stats() { return this.json(C.STATS); }
  feedback(entry) { return this.json(C.FEEDBACK, entry); }

  async query(text) {
    const b = enc.encode(text);
    return JSON.parse(dec.decode(await this.request(C.QUERY, b)));
  }

  /** {function: [parameter names]}, read in pages (SCHEMA: offset u32 -> total u32 | JSON from offset). */
  async schema() {
    const parts = [];
    let off = 0, total = null;
    while (total === null || off < total) {
      const p = new Uint8Array(4);
      new DataView(p.buffer).setUint32(0, off, true);
      const r = await this.request(C.SCHEMA, p);
      total = new DataView(r.buffer, r.byteOffset).getUint32(0, true);
      const chunk = r.subarray(4);
      if (!chunk.length && off < total) throw new Error("SCHEMA reply stopped short");
      parts.push(chunk);
      off += chunk.length;
    }
    const all = new Uint8Array(off);
    let o = 0;
    for (const p of parts) { all.set(p, o); o += p.length; }
    return JSON.parse(dec.decode(all));
  }

  /** The board's atomic model upload: BEGIN (size, SHA-256), CHUNKs, COMMIT. A file the board rejects leaves the
   *  old model serving (the board says so in its error). */
  async upload(bytes, progress = () => {}) {
    const sha = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    const begin = new Uint8Array(36);
    new DataView(begin.buffer).setUint32(0, bytes.length, true);
    begin.set(sha, 4);
    let off = u32(await this.request(C.MODEL_BEGIN, begin));
    try {
      while (off < bytes.length) {
        const n = Math.min(C.MAX_CHUNK, bytes.length - off);
        const p = new Uint8Array(4 + n);
        new DataView(p.buffer).setUint32(0, off, true);
        p.set(bytes.subarray(off, off + n), 4);
        off = u32(await this.request(C.MODEL_CHUNK, p));
        progress(off, bytes.length);
      }
      return JSON.parse(dec.decode(await this.request(C.MODEL_COMMIT)));
    } catch (e) {
      if (!(e instanceof BoardError && e.code === C.E_MODEL)) {
        try { await this.request(C.MODEL_ABORT); } catch (e2) { /* the board is gone */ }
      }
      throw e;
    }
  }
}

function u32(b) { return new DataView(b.buffer, b.byteOffset).getUint32(0, true); }
function hex4(n) { return n.toString(16).padStart(4, "0"); }
export function toHex(b) { return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(""); }
export function fromHex(h) {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.substr(2 * i, 2), 16);
  return out;
}
