// The JavaScript frame codec (host/reku/playground/static/codec.js) against the golden frames that
// tests/test_proto.py checks against firmware/rkfw/proto.py. Run by tests/test_playground.py with `node --test`.
import test from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as C from "../../host/reku/playground/static/codec.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const golden = JSON.parse(fs.readFileSync(path.join(here, "..", "data", "golden_frames.json"), "utf8"));
const hex = (b) => Buffer.from(b).toString("hex");
const bytes = (h) => Uint8Array.from(Buffer.from(h, "hex"));

test("crc32 check value", () => {
  assert.equal(C.crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
});

for (const g of golden.frames) {
  test(`frame: ${g.name}`, () => {
    const wire = C.encode(g.type, g.seq, bytes(g.payload));
    assert.equal(hex(wire), g.wire);
    const f = C.decode(wire.subarray(0, wire.length - 1));
    assert.deepEqual({ type: f.type, seq: f.seq, payload: hex(f.payload) },
                     { type: g.type, seq: g.seq, payload: g.payload });
  });
}

for (const g of golden.streams) {
  test(`stream: ${g.name}`, () => {
    const all = bytes(g.bytes);
    // the same events whatever the chunking of the stream
    for (const chunk of [1, 3, 64, all.length]) {
      const d = new C.Decoder();
      const got = [];
      for (let i = 0; i < all.length; i += chunk) {
        for (const ev of d.feed(all.subarray(i, i + chunk))) {
          got.push(ev instanceof C.ProtocolError ? { error: ev.code, seq: ev.seq, message: ev.message }
                                                 : { type: ev.type, seq: ev.seq, payload: hex(ev.payload) });
        }
      }
      assert.deepEqual(got, g.events);
    }
  });
}

test("encode refuses an oversized payload", () => {
  assert.throws(() => C.encode(C.QUERY, 1, new Uint8Array(C.MAX_PAYLOAD + 1)), RangeError);
});

test("every single-bit flip of a frame is detected", () => {
  const wire = C.encode(C.QUERY, 7, new TextEncoder().encode("lock the front door"));
  for (let i = 0; i < wire.length - 1; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const w = Uint8Array.from(wire);
      w[i] ^= 1 << bit;
      const evs = new C.Decoder().feed(w);
      assert.ok(!evs.some((e) => !(e instanceof C.ProtocolError) && e.seq === 7 && hex(e.payload) === hex(
        new TextEncoder().encode("lock the front door"))), `flip ${i}:${bit} accepted`);
    }
  }
});

test("error payload round trip", () => {
  const p = C.errorPayload(C.E_NO_MODEL, "no model");
  assert.deepEqual(C.parseError(p), { code: C.E_NO_MODEL, message: "no model" });
});
