// The reku frame codec in JavaScript, for the playground page (Web Serial) and Node. It is a port of the one
// codec, firmware/rkfw/proto.py (docs/protocol.md), tested byte for byte against it: tests/data/golden_frames.json
// is checked by both test suites, and tests/test_playground.py compares every constant below with proto.py's.
//
// Wire:  COBS( header | payload | crc32 ) 0x00
// header: version u8, type u8, seq u16 LE, length u16 LE (= payload bytes); crc32: u32 LE over header|payload.

export const VERSION = 1;
export const MIN_VERSION = 1;
export const HEADER = 6;
export const MAX_PAYLOAD = 1024;
export const MAX_FRAME = HEADER + MAX_PAYLOAD + 4;
export const MAX_WIRE = MAX_FRAME + Math.floor(MAX_FRAME / 254) + 2;
export const MAX_CHUNK = MAX_PAYLOAD - 4;

export const HELLO = 0x01, PING = 0x02, QUERY = 0x03, STATS = 0x04, SCHEMA = 0x05;
export const MODEL_BEGIN = 0x10, MODEL_CHUNK = 0x11, MODEL_COMMIT = 0x12, MODEL_ABORT = 0x13;
export const FEEDBACK = 0x20, RESET = 0x21, CONFIG = 0x22, FEEDBACK_READ = 0x23, FEEDBACK_CLEAR = 0x24,
  MEMORY_LIST = 0x25, MEMORY_FORGET = 0x26;
export const REPLY = 0x80, ERROR = 0xff;

export const E_FRAME = 1, E_CRC = 2, E_TOO_LONG = 3, E_VERSION = 4, E_LENGTH = 5, E_TYPE = 6, E_REQUEST = 7;
export const E_BUSY = 8, E_NO_MODEL = 9, E_MODEL = 10, E_AUTH = 11, E_INTERNAL = 12;

export class ProtocolError extends Error {
  constructor(code, message, seq = 0) {
    super(message);
    this.name = "ProtocolError";
    this.code = code;
    this.seq = seq;
  }
}

const CRC_TABLE = new Uint32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  CRC_TABLE[n] = c >>> 0;
}

/** CRC-32 (IEEE 802.3), the same as binascii.crc32. */
export function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function cobsEncode(data) {
  const out = new Uint8Array(data.length + Math.floor(data.length / 254) + 2);
  let ci = 0, oi = 1, code = 1;
  for (const b of data) {
    if (b === 0) {
      out[ci] = code; ci = oi++; code = 1;
    } else {
      out[oi++] = b;
      if (++code === 0xff) { out[ci] = code; ci = oi++; code = 1; }
    }
  }
  out[ci] = code;
  return out.slice(0, oi);
}

export function cobsDecode(data) {
  const out = [];
  let i = 0;
  const n = data.length;
  while (i < n) {
    const code = data[i];
    if (code === 0) throw new ProtocolError(E_FRAME, "zero byte inside a frame");
    i += 1;
    const end = i + code - 1;
    if (end > n) throw new ProtocolError(E_FRAME, "COBS block runs past the end of the frame");
    for (let j = i; j < end; j++) out.push(data[j]);
    i = end;
    if (code < 0xff && i < n) out.push(0);
  }
  return Uint8Array.from(out);
}

/** One frame ready for the wire, delimiter included. */
export function encode(type, seq, payload = new Uint8Array(0)) {
  const n = payload.length;
  if (n > MAX_PAYLOAD) throw new RangeError(`payload of ${n} bytes exceeds ${MAX_PAYLOAD}`);
  const body = new Uint8Array(HEADER + n + 4);
  const dv = new DataView(body.buffer);
  dv.setUint8(0, VERSION);
  dv.setUint8(1, type);
  dv.setUint16(2, seq & 0xffff, true);
  dv.setUint16(4, n, true);
  body.set(payload, HEADER);
  dv.setUint32(HEADER + n, crc32(body.subarray(0, HEADER + n)), true);
  const wire = cobsEncode(body);
  const out = new Uint8Array(wire.length + 1);
  out.set(wire);
  return out;
}

/** One frame's bytes (without the 0x00 delimiter) -> {type, seq, payload}. Throws ProtocolError. */
export function decode(wire) {
  const body = cobsDecode(wire);
  if (body.length < HEADER + 4) {
    throw new ProtocolError(E_FRAME, `frame of ${body.length} bytes is shorter than header and checksum`);
  }
  const dv = new DataView(body.buffer, body.byteOffset, body.length);
  const ver = dv.getUint8(0), type = dv.getUint8(1), seq = dv.getUint16(2, true), n = dv.getUint16(4, true);
  const crc = dv.getUint32(body.length - 4, true);
  if (crc32(body.subarray(0, body.length - 4)) !== crc) throw new ProtocolError(E_CRC, "checksum mismatch", seq);
  if (ver < MIN_VERSION || ver > VERSION) {
    throw new ProtocolError(E_VERSION,
      `frame version ${ver} not supported (this side speaks ${MIN_VERSION}..${VERSION})`, seq);
  }
  if (HEADER + n + 4 !== body.length) {
    throw new ProtocolError(E_LENGTH, `header says ${n} payload bytes, frame has ${body.length - HEADER - 4}`, seq);
  }
  return { type, seq, payload: body.slice(HEADER, HEADER + n) };
}

export function errorPayload(code, message) {
  const m = new TextEncoder().encode(message).subarray(0, MAX_PAYLOAD - 1);
  const out = new Uint8Array(1 + m.length);
  out[0] = code;
  out.set(m, 1);
  return out;
}

export function parseError(payload) {
  if (!payload.length) return { code: E_INTERNAL, message: "empty error frame" };
  return { code: payload[0], message: new TextDecoder().decode(payload.subarray(1)) };
}

/** Streaming deframer: feed() bytes as they arrive; it returns complete frames ({type, seq, payload}) and
 *  ProtocolError instances in order. Garbage and cut frames are dropped at the next 0x00. */
export class Decoder {
  constructor(maxWire = MAX_WIRE) {
    this.maxWire = maxWire;
    this.buf = new Uint8Array(maxWire);
    this.n = 0;
    this.overflow = false;
  }

  reset() {
    this.n = 0;
    this.overflow = false;
  }

  feed(data) {
    const events = [];
    for (const b of data) {
      if (b === 0) {
        if (this.overflow) {
          events.push(new ProtocolError(E_TOO_LONG, `frame longer than ${this.maxWire} bytes dropped`));
        } else if (this.n) {
          try {
            events.push(decode(this.buf.subarray(0, this.n)));
          } catch (e) {
            if (!(e instanceof ProtocolError)) throw e;
            events.push(e);
          }
        }
        this.n = 0;
        this.overflow = false;
      } else if (!this.overflow) {
        if (this.n < this.maxWire) this.buf[this.n++] = b;
        else this.overflow = true;
      }
    }
    return events;
  }
}
