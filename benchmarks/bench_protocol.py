"""Protocol benchmark: upload efficiency (model bytes / wire bytes, both directions), framing overhead per
query, and round trips of PING and QUERY on the virtual board, per runtime and link (UART pty, I2C bus).

    python benchmarks/bench_protocol.py --out benchmarks/results [--quick]

Writes OUT/protocol.json. Wire bytes are counted by the host's link: on UART every byte both ways; on I2C
every data byte of every bus transaction both ways (register addresses and STATUS polls included; the
address byte, ACK bits and START/STOP of each transaction are not)."""
import argparse
import hashlib
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from reku import paths
from reku.client import Client
from reku.sim import VirtualBoard, available_runtimes, populate
from rkfw import proto

MODEL = paths.SKILLS / "home" / "model.rku"
QUERIES = ["turn on the kitchen light", "dim the living room to 30%", "set the thermostat to 21 degrees",
           "lock the front door", "play some jazz in the bedroom"]


def variant_model():
    """The bundled model with another id (a different file to upload)."""
    import struct
    import zlib
    data = bytearray(MODEL.read_bytes())
    meta_len = struct.unpack_from("<I", data, 12)[0]
    meta = json.loads(bytes(data[16:16 + meta_len]))
    meta["model_id"] = "bench-variant"
    m = json.dumps(meta, separators=(",", ":")).encode()
    data[16:16 + meta_len] = m + b" " * (meta_len - len(m))
    struct.pack_into("<I", data, len(data) - 4, zlib.crc32(bytes(data[:-4])) & 0xFFFFFFFF)
    return bytes(data)


def framing_overhead():
    """Bytes a query costs beyond its text and its JSON answer (codec only, deterministic)."""
    rows = []
    for q in QUERIES:
        text = q.encode()
        req = b"\x00" + proto.encode(proto.QUERY, 0x1234, text)        # the serial client's leading 0x00
        answer = json.dumps({"calls": [{"name": "set_brightness", "arguments": {"room": "living room", "level": 30}}],
                             "us": 123456, "tokens_in": 27, "tokens_out": 9}, separators=(",", ":")).encode()
        rep = proto.encode(proto.QUERY | proto.REPLY, 0x1234, answer)
        rows.append({"text": len(text), "request_wire": len(req), "request_overhead": len(req) - len(text),
                     "reply_payload": len(answer), "reply_overhead": len(rep) - len(answer)})
    return {"per_query": rows,
            "request_overhead_bytes": max(r["request_overhead"] for r in rows),
            "reply_overhead_bytes": max(r["reply_overhead"] for r in rows),
            "note": "header 6 + CRC 4 + COBS 1 per 254 bytes + delimiter 1 (+1 leading 0x00 on serial)"}


def codec_upload_efficiency(data):
    """Upload efficiency from the codec alone: every request and reply frame of BEGIN, CHUNKs, COMMIT."""
    size = len(data)
    sha = hashlib.sha256(data).digest()
    import struct
    wire = len(b"\x00" + proto.encode(proto.MODEL_BEGIN, 1, struct.pack("<I", size) + sha))
    wire += len(proto.encode(proto.MODEL_BEGIN | proto.REPLY, 1, struct.pack("<I", 0)))
    for off in range(0, size, proto.MAX_CHUNK):
        wire += len(b"\x00" + proto.encode(proto.MODEL_CHUNK, 2, struct.pack("<I", off) + data[off:off + proto.MAX_CHUNK]))
        wire += len(proto.encode(proto.MODEL_CHUNK | proto.REPLY, 2, struct.pack("<I", off)))
    wire += len(b"\x00" + proto.encode(proto.MODEL_COMMIT, 3))
    wire += len(proto.encode(proto.MODEL_COMMIT | proto.REPLY, 3, b'{"id":"bench-variant","sha256":"' + b"0" * 64
                             + b'","bytes":37772,"path":"model.rku"}'))
    return size / wire


def measure(client, n_ping, n_query):
    link = client.link
    client.info()
    out = {}
    for label, payload in (("ping_4B", b"ping"), ("ping_1024B", bytes(range(1, 256)) * 4 + b"abcd")):
        ts = [client.ping(payload) * 1000 for _ in range(n_ping)]
        out[label + "_ms"] = {"median": statistics.median(ts), "p90": sorted(ts)[int(0.9 * (len(ts) - 1))],
                              "n": len(ts)}
    ts, board_ms = [], []
    for i in range(n_query):
        q = QUERIES[i % len(QUERIES)]
        t0 = time.perf_counter()
        r = client.query(q)
        ts.append((time.perf_counter() - t0) * 1000)
        board_ms.append(r.us / 1000)
    out["query_ms"] = {"median": statistics.median(ts), "p90": sorted(ts)[int(0.9 * (len(ts) - 1))], "n": len(ts)}
    out["query_on_board_ms"] = {"median": statistics.median(board_ms)}
    out["query_protocol_ms"] = {"median": statistics.median(t - b for t, b in zip(ts, board_ms))}
    data = variant_model()
    o0, i0, n0 = link.bytes_out, link.bytes_in, getattr(link, "transactions", 0)
    t0 = time.perf_counter()
    r = client.upload_model(data)
    dt = time.perf_counter() - t0
    assert r["sha256"] == hashlib.sha256(data).hexdigest()
    wire = (link.bytes_out - o0) + (link.bytes_in - i0)
    out["upload"] = {"model_bytes": len(data), "wire_bytes_out": link.bytes_out - o0,
                     "wire_bytes_in": link.bytes_in - i0, "efficiency": len(data) / wire, "seconds_on_the_sim": dt}
    if hasattr(link, "transactions"):
        # line time on a real bus: 9 bits per byte, plus START, address byte and STOP per transaction
        bits = 9 * wire + 11 * (link.transactions - n0)
        out["upload"]["bus_transactions"] = link.transactions - n0
        out["upload"]["line_seconds_at_100kHz"] = bits / 100e3
        out["upload"]["line_seconds_at_400kHz"] = bits / 400e3
    else:
        # 8N1: 10 bits per byte; the larger direction bounds the time (the UART is full duplex)
        out["upload"]["line_seconds_at_115200_baud"] = 10 * (link.bytes_out - o0) / 115200
        out["upload"]["line_seconds_at_1000000_baud"] = 10 * (link.bytes_out - o0) / 1e6
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(paths.ROOT / "benchmarks" / "results"))
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n_ping, n_query = (10, 2) if args.quick else (100, 10)
    res = {"name": "protocol", "command": "python benchmarks/bench_protocol.py --out benchmarks/results"
           + (" --quick" if args.quick else ""),
           "machine": "%s, %s, Python %s" % (platform.machine(), platform.processor() or platform.system(),
                                             platform.python_version()),
           "framing": framing_overhead(), "codec_upload_efficiency": codec_upload_efficiency(variant_model()),
           "virtual_board": {}}
    for runtime in available_runtimes():
        # i2c: the controller polls STATUS; i2c-ready: it waits for the READY pin (the profile's ready_pin,
        # the wiring docs/i2c.md recommends) and reads STATUS once per reply.
        for link in ("uart", "i2c", "i2c-ready"):
            with tempfile.TemporaryDirectory() as tmp:
                d = Path(tmp) / "board"
                populate(d, "pico", "home")
                if link != "uart":
                    (d / "reku.json").write_text(json.dumps({"transports": ["i2c"]}))
                with VirtualBoard(runtime=runtime, state_dir=str(d)) as vb:
                    if link == "uart":
                        c = Client.serial(vb.port, timeout=60)
                    elif link == "i2c":
                        c = Client.i2c("sim:" + vb.port, 0x42, timeout=60)
                    else:
                        pin = json.loads((d / "board.json").read_text())["ready_pin"]
                        c = Client.i2c("sim:" + vb.port, 0x42, ready_pin=pin, timeout=60)
                    with c:
                        key = "%s/%s" % (runtime, link)
                        print("measuring", key, flush=True)
                        res["virtual_board"][key] = measure(c, n_ping, n_query)
    vb = res["virtual_board"]
    uart_eff = min(v["upload"]["efficiency"] for k, v in vb.items() if k.endswith("/uart"))
    i2c_eff = min(v["upload"]["efficiency"] for k, v in vb.items() if k.endswith("/i2c"))
    ready_eff = min(v["upload"]["efficiency"] for k, v in vb.items() if k.endswith("/i2c-ready"))
    res["targets"] = [
        {"what": "upload efficiency over UART, model bytes / wire bytes (both ways)", "value": round(uart_eff, 4),
         "op": ">=", "limit": 0.95, "ok": uart_eff >= 0.95},
        {"what": "upload efficiency over I2C with the READY pin, model bytes / bus data bytes (both ways)",
         "value": round(ready_eff, 4), "op": ">=", "limit": 0.95, "ok": ready_eff >= 0.95},
        {"what": "upload efficiency over I2C polling STATUS, model bytes / bus data bytes (both ways, polls "
                 "included)", "value": round(i2c_eff, 4), "op": ">=", "limit": 0.95, "ok": i2c_eff >= 0.95},
        {"what": "framing overhead of a QUERY request, bytes", "value": res["framing"]["request_overhead_bytes"],
         "op": "<=", "limit": 16, "ok": res["framing"]["request_overhead_bytes"] <= 16},
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "protocol.json").write_text(json.dumps(res, indent=2) + "\n")
    for k, v in vb.items():
        print("%-18s ping %.2f ms  ping1k %.2f ms  query %.0f ms (protocol %.1f ms)  upload eff %.4f in %.2f s" % (
            k, v["ping_4B_ms"]["median"], v["ping_1024B_ms"]["median"], v["query_ms"]["median"],
            v["query_protocol_ms"]["median"], v["upload"]["efficiency"], v["upload"]["seconds_on_the_sim"]))
    for t in res["targets"]:
        print("%s: %s %s %s -> %s" % (t["what"], t["value"], t["op"], t["limit"], "ok" if t["ok"] else "MISSED"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
