# The co-processor application: boot (profile, config, model), then serve framed requests on the
# configured transports. Runs unchanged on rp2, esp32, and the virtual board (CPython or MicroPython wasm).
import gc
import json
import sys

from rkfw import proto
from rkfw import port

FW_VERSION = "0.1.0"
MAX_QUERY = 256                 # bytes of request text accepted by QUERY
MODEL_PATHS = ("/rom/model.rku", "model.rku")


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        return {}


def _map_model(path):
    """The model as a buffer: zero-copy from ROMFS (/rom), otherwise read into RAM."""
    f = open(path, "rb")
    if path.startswith("/rom/"):
        return memoryview(f)        # ROMFS files expose the buffer protocol: weights stay in flash
    try:
        return f.read()
    finally:
        f.close()


class App:
    def __init__(self, profile, config):
        self.profile = profile
        self.config = config
        self.model = None
        self.engine = None
        self.model_path = None
        self.model_error = "no model file"
        self.stats = {"frames": 0, "queries": 0, "errors": 0, "calls": 0, "no_calls": 0,
                      "last_ms": 0, "max_ms": 0}
        self.boot_ms = port.ticks_ms()

    # ---- model -------------------------------------------------------------------------------------
    def load_model(self):
        """Load the first model found. On failure the board keeps answering INFO with the reason."""
        self.model = self.engine = None
        try:
            from rkfw import rku
            from rkfw import infer
        except ImportError as e:
            self.model_error = "inference runtime missing from the board: %s" % e
            return False
        self.model_error = "no model file (looked for %s)" % ", ".join(MODEL_PATHS)
        for path in MODEL_PATHS:
            try:
                buf = _map_model(path)
            except OSError:
                continue
            try:
                model = rku.load(buf)
                engine = infer.Engine(model)
            except MemoryError:
                self.model_error = "%s does not fit in RAM (%d bytes free)" % (path, port.mem_free())
                buf = None
                gc.collect()
                return False
            except Exception as e:      # rku.RkuError and anything a bad file provokes
                self.model_error = "%s: %s" % (path, e)
                return False
            self.model, self.engine, self.model_path, self.model_error = model, engine, path, None
            gc.collect()
            return True
        return False

    # ---- requests ----------------------------------------------------------------------------------
    def handle(self, event):
        """One decoder event -> the reply frame (bytes) or None."""
        self.stats["frames"] += 1
        if isinstance(event, proto.ProtocolError):
            self.stats["errors"] += 1
            return proto.encode(proto.ERROR, event.seq, proto.error_payload(event.code, str(event)))
        ftype, seq, payload = event
        handler = self.HANDLERS.get(ftype)
        if handler is None:
            return self.error(seq, proto.E_TYPE, "unknown message type 0x%02x" % ftype)
        try:
            return handler(self, seq, payload)
        except MemoryError:
            gc.collect()
            return self.error(seq, proto.E_INTERNAL, "out of memory")
        except Exception as e:
            return self.error(seq, proto.E_INTERNAL, "%s: %s" % (type(e).__name__, e))

    def error(self, seq, code, message):
        self.stats["errors"] += 1
        return proto.encode(proto.ERROR, seq, proto.error_payload(code, message))

    def reply(self, ftype, seq, payload):
        return proto.encode(ftype | proto.REPLY, seq, payload)

    def on_hello(self, seq, payload):
        return self.reply(proto.HELLO, seq, json.dumps(self.info()).encode())

    def on_ping(self, seq, payload):
        return self.reply(proto.PING, seq, payload)

    def on_stats(self, seq, payload):
        st = dict(self.stats)
        st["uptime_ms"] = port.ticks_diff(port.ticks_ms(), self.boot_ms)
        st["mem_free"] = port.mem_free()
        return self.reply(proto.STATS, seq, json.dumps(st).encode())

    def on_query(self, seq, payload):
        if self.engine is None:
            return self.error(seq, proto.E_NO_MODEL, self.model_error or "no model")
        if len(payload) > MAX_QUERY:
            return self.error(seq, proto.E_REQUEST, "query of %d bytes exceeds %d" % (len(payload), MAX_QUERY))
        try:
            text = payload.decode()
        except UnicodeError:
            return self.error(seq, proto.E_REQUEST, "query is not valid UTF-8")
        gc.collect()
        t0 = port.ticks_us()
        calls, st = self.engine.run(text)
        us = port.ticks_diff(port.ticks_us(), t0)
        ms = us // 1000
        self.stats["queries"] += 1
        self.stats["last_ms"] = ms
        if ms > self.stats["max_ms"]:
            self.stats["max_ms"] = ms
        if calls:
            self.stats["calls"] += len(calls)
        else:
            self.stats["no_calls"] += 1
        out = {"calls": calls, "us": us, "tokens_in": st["tokens_in"], "tokens_out": st["tokens_out"]}
        return self.reply(proto.QUERY, seq, json.dumps(out, separators=(",", ":")).encode())

    HANDLERS = {
        proto.HELLO: on_hello,
        proto.PING: on_ping,
        proto.STATS: on_stats,
        proto.QUERY: on_query,
    }

    def info(self):
        p = self.profile
        model = None
        if self.model is not None:
            model = {"id": self.model.model_id, "sha256": self.model.sha256, "path": self.model_path,
                     "tier": self.engine.tier, "schema": self.model.schema_summary()}
        return {"fw": FW_VERSION, "proto": proto.VERSION, "runtime": port.runtime(),
                "board": p.get("name", "unknown"), "chip": p.get("chip", "unknown"),
                "model": model, "model_error": self.model_error,
                "limits": {"max_payload": proto.MAX_PAYLOAD, "max_query": MAX_QUERY},
                "mem_free": port.mem_free()}


def open_transports(profile, config):
    """The transports named in the configuration (default: the profile's UART)."""
    from rkfw import transport
    names = config.get("transports", ["uart"])
    out = []
    for name in names:
        if name == "uart":
            import machine
            out.append(transport.Uart(machine, profile["uart"], config.get("baud")))
        elif name == "usb":
            out.append(transport.UsbStdio())
        else:
            raise ValueError("unknown transport %r in reku.json" % name)
    return out


def serve(app, transports, wdt=None):
    while True:
        idle = True
        for t in transports:
            data = t.read()
            if data:
                idle = False
                for ev in t.decoder.feed(data):
                    out = app.handle(ev)
                    if out:
                        t.write(out)
        if wdt is not None:
            wdt.feed()
        if idle:
            port.sleep_ms(1)


def main():
    profile = _read_json("board.json")
    config = _read_json("reku.json")
    app = App(profile, config)
    app.load_model()
    if app.model_error:
        print("reku: model not loaded:", app.model_error)
    transports = open_transports(profile, config)
    print("reku %s serving on %s" % (FW_VERSION, ", ".join(t.name for t in transports)))
    serve(app, transports)
