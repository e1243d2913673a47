# The co-processor application: serve framed requests on the configured transports (rkfw.boot boots it; the rare
# requests live in rkfw.admin). Runs unchanged on rp2, esp32, and the virtual board (CPython or MicroPython wasm).
# The messages and their rules are specified in docs/protocol.md.
import gc
import json
import os
import binascii

from rkfw import proto
from rkfw import port

FW_VERSION = "0.2.0"
MAX_QUERY = 256                 # bytes of request text accepted by QUERY
MODEL_FILE = "model.rku"        # where MODEL_COMMIT puts an uploaded model (it wins over /rom)
MODEL_PART = "model.rku.part"   # an upload in progress; never loaded
MODEL_PATHS = (MODEL_FILE, "/rom/model.rku")
KEY_FILE = "reku_key.bin"       # HMAC key, provisioned by `reku deploy --key`
CONFIG_FILE = "reku.json"
MEMORY_FILE = "memory.rkm"      # what the board learnt from corrections for its model (rkfw.memory, rkfw.teach)
MAX_MODEL = 8 * 1024 * 1024
# State-changing requests that need an HMAC trailer when the board has a key.
AUTH_STATE = (proto.MODEL_BEGIN, proto.MODEL_COMMIT, proto.MODEL_ABORT, proto.RESET, proto.CONFIG,
              proto.FEEDBACK_CLEAR, proto.MEMORY_FORGET)
# With "auth": "all" in reku.json everything but HELLO and PING needs it.
AUTH_ALL = AUTH_STATE + (proto.QUERY, proto.STATS, proto.FEEDBACK, proto.MODEL_CHUNK, proto.FEEDBACK_READ,
                         proto.MEMORY_LIST)
# Every other request is rare: rkfw.admin serves it, imported when one arrives and dropped after its reply (kept
# while an upload runs), so a board between requests holds only the code of QUERY and PING.
ADMIN = (proto.HELLO, proto.SCHEMA, proto.STATS, proto.RESET, proto.MODEL_BEGIN, proto.MODEL_CHUNK,
         proto.MODEL_COMMIT, proto.MODEL_ABORT, proto.FEEDBACK, proto.CONFIG, proto.FEEDBACK_READ,
         proto.FEEDBACK_CLEAR, proto.MEMORY_LIST, proto.MEMORY_FORGET)


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def drop(name):
    """Forget the module rkfw.NAME, if imported, so that the collector can free its code."""
    import sys
    import rkfw
    if sys.modules.pop("rkfw." + name, None) is not None:
        try:
            delattr(rkfw, name)
        except AttributeError:
            pass


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


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
        # of the profile only what INFO reports: boot has configured pins, LED and watchdog from the rest
        self.board = (profile.get("name", "unknown"), profile.get("chip", "unknown"))
        self.config = config
        self.model = None
        self.engine = None
        self.model_path = None
        self.model_error = "no model file"
        self.stats = {"frames": 0, "queries": 0, "errors": 0, "calls": 0, "no_calls": 0,
                      "last_ms": 0, "max_ms": 0, "duplicates": 0, "uploads": 0, "feedback": 0,
                      "auth_refused": 0, "busy": 0}
        self.boot_ms = port.ticks_ms()
        self.last = None            # duplicate cache of the link-less caller (tests, fuzzing)
        self.upload = None          # [size, sha256, offset, file, hash] while a MODEL upload runs
        self.reset_pending = False
        self.collect_due = False    # a query's garbage, collected by serve() after the reply is written
        self.buf = bytearray(512)
        self.transports = ()
        self.status = None          # rkfw.status.Status on a board (main()): watchdog and LED
        self._init_auth()
        _remove(MODEL_PART)         # an upload cut by a reset or power loss: the old model stays

    # ---- authentication (rkfw.auth, imported only on a board with a key) ---------------------------------
    def _init_auth(self):
        self.key = None
        self.key_error = None
        self.nonce = None
        self.counter = 0
        self.auth_types = ()
        try:
            with open(KEY_FILE, "rb") as f:
                self.key = f.read()
        except OSError:
            return
        if len(self.key) < 16:
            self.key_error = "%s has %d bytes (needs at least 16): authenticated commands are refused" % (
                KEY_FILE, len(self.key))
        from rkfw import auth
        self.nonce = auth.random_bytes(8)
        self.auth_types = AUTH_ALL if self.config.get("auth") == "all" else AUTH_STATE

    # ---- model -------------------------------------------------------------------------------------
    def load_model(self, paths=MODEL_PATHS, preloaded=None):
        """Load the first model found. On failure the board keeps answering INFO with the reason. `preloaded`:
        the bytes of MODEL_FILE when main.py read them at boot."""
        self.model = self.engine = None
        gc.collect()
        try:
            from rkfw import rku
            from rkfw import infer
        except ImportError as e:
            self.model_error = "inference runtime missing from the board: %s" % e
            return False
        self.model_error = "no model file (looked for %s)" % ", ".join(paths)
        for path in paths:
            try:
                buf = preloaded if preloaded is not None and path == MODEL_FILE else _map_model(path)
            except OSError:
                continue
            preloaded = None
            try:
                model = rku.load(buf)
                engine = infer.Engine(model)
            except MemoryError:
                buf = None
                gc.collect()
                self.model_error = "%s does not fit in RAM (%d bytes free)" % (path, port.mem_free())
                return False
            except Exception as e:      # rku.RkuError and anything a bad file provokes
                self.model_error = "%s: %s" % (path, e)
                return False
            engine.hook = self.between_steps
            self.model, self.engine, self.model_path, self.model_error = model, engine, path, None
            self.load_memory()
            gc.collect()
            self._show_model()
            return True
        self._show_model()
        return False

    def load_memory(self):
        """What the board learnt from corrections for this model (rkfw.memory): its code imported only where the
        file exists."""
        self.engine.memory = None
        try:
            os.stat(MEMORY_FILE)
        except OSError:
            return
        from rkfw import memory
        memory.attach(self)

    def _show_model(self):
        st = self.status
        if st is not None:
            from rkfw import status
            st.set(status.IDLE if self.engine is not None else status.MODEL_ERROR)

    def between_steps(self):
        """The engine's hook, before every recurrent step: feed the watchdog, drive the LED, and answer a
        request that arrives while an inference runs with E_BUSY (its sender resends after the reply it is
        waiting for). Allocates nothing while the links are quiet."""
        st = self.status
        if st is not None:
            st.feed()
            st.tick()
        for t in self.transports:
            data = t.read()
            if data:
                for ev in t.decoder.feed(data):
                    self.stats["frames"] += 1
                    if isinstance(ev, proto.ProtocolError):
                        self.stats["errors"] += 1
                        out = proto.encode(proto.ERROR, ev.seq, proto.error_payload(ev.code, str(ev)))
                    else:
                        self.stats["busy"] += 1      # counted here, not in "errors"
                        out = proto.encode(proto.ERROR, ev[1], proto.error_payload(
                            proto.E_BUSY, "busy serving another request: send again after its reply"))
                    t.write(out)
                t.working()

    # ---- requests ----------------------------------------------------------------------------------
    def handle(self, event, link=None):
        """One decoder event -> the reply frame (bytes) or None. `link` is the transport the event came
        from: it keeps the last request's key and reply, so that a resent request (same seq, type and
        payload) is answered again without being executed twice."""
        self.stats["frames"] += 1
        if isinstance(event, proto.ProtocolError):
            self.stats["errors"] += 1
            return proto.encode(proto.ERROR, event.seq, proto.error_payload(event.code, str(event)))
        ftype, seq, payload = event
        if link is None:
            link = self
        key = (ftype, seq, binascii.crc32(payload))
        last = getattr(link, "last", None)
        if last is not None and last[0] == key:
            self.stats["duplicates"] += 1
            return last[1]
        reply = self.dispatch(ftype, seq, payload)
        link.last = (key, reply)
        return reply

    def dispatch(self, ftype, seq, payload):
        handler = self.HANDLERS.get(ftype)
        rare = handler is None
        try:
            if rare:
                if ftype not in ADMIN:
                    return self.error(seq, proto.E_TYPE, "unknown message type 0x%02x" % ftype)
                from rkfw import admin
                handler = admin.HANDLERS[ftype]
            if ftype in self.auth_types:
                from rkfw import auth
                try:
                    payload = auth.check(self, ftype, payload)
                except auth.AuthError as e:
                    self.stats["auth_refused"] += 1
                    return self.error(seq, proto.E_AUTH, str(e))
            return handler(self, seq, payload)
        except MemoryError:
            gc.collect()
            return self.error(seq, proto.E_INTERNAL, "out of memory")
        except Exception as e:
            return self.error(seq, proto.E_INTERNAL, "%s: %s" % (type(e).__name__, e))
        finally:
            if rare and self.upload is None:
                drop("admin")

    def error(self, seq, code, message):
        self.stats["errors"] += 1
        return proto.encode(proto.ERROR, seq, proto.error_payload(code, message))

    def reply(self, ftype, seq, payload):
        return proto.encode(ftype | proto.REPLY, seq, payload)

    def reply_json(self, ftype, seq, obj):
        return self.reply(ftype, seq, json.dumps(obj, separators=(",", ":")).encode())

    def on_ping(self, seq, payload):
        return self.reply(proto.PING, seq, payload)

    def on_query(self, seq, payload):
        if self.engine is None:
            return self.error(seq, proto.E_NO_MODEL, self.model_error or "no model")
        if len(payload) > MAX_QUERY:
            return self.error(seq, proto.E_REQUEST, "query of %d bytes exceeds %d" % (len(payload), MAX_QUERY))
        if not proto.utf8_ok(payload):
            return self.error(seq, proto.E_REQUEST, "query is not valid UTF-8")
        text = payload.decode()
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
        why = st.get("why")
        if why is not None:             # no call: why (and which value was refused, for a refusing model)
            out["reason"] = why[0]
            if why[1] is not None:
                out["function"] = why[1]
                out["param"] = why[2]
        self.collect_due = True       # serve() collects once the reply is written, off the query's latency
        return self.reply_json(proto.QUERY, seq, out)

    HANDLERS = {
        proto.PING: on_ping,
        proto.QUERY: on_query,
    }


def _idle_wait():
    """Wait for the next interrupt, at most about a millisecond (machine.idle() where there is one)."""
    try:
        import machine
        return machine.idle
    except (ImportError, AttributeError):
        return lambda: port.sleep_ms(1)


def serve(app, transports):
    """Serve the transports forever (until RESET, or KeyboardInterrupt from the USB link)."""
    app.transports = transports
    idle_wait = _idle_wait()
    st = app.status
    while True:
        idle = True
        for t in transports:
            try:
                data = t.read()
                if data:
                    idle = False
                    for ev in t.decoder.feed(data):
                        errors = app.stats["errors"]
                        if st is not None:
                            st.busy()
                        out = app.handle(ev, t)
                        if out:
                            t.write(out)
                        if st is not None:
                            st.done(app.stats["errors"] != errors)
                    t.served()
                    if app.collect_due:
                        app.collect_due = False
                        gc.collect()
            except MemoryError:
                gc.collect()
                app.stats["errors"] += 1
            except Exception as e:          # a transport hiccup must not stop the board
                app.stats["errors"] += 1
                print("reku: %s: %s: %s" % (t.name, type(e).__name__, e))
            if app.reset_pending:
                t.flush()
                reset()
        if st is not None:
            st.feed()
            st.tick()
        if idle:
            idle_wait()


def reset():
    import machine
    machine.reset()


def run(app, transports):
    """Serve until Ctrl-C on the USB REPL (maintenance: a timer keeps feeding an armed watchdog; machine.reset()
    or `mpremote reset` serves again)."""
    try:
        serve(app, transports)
    except KeyboardInterrupt:
        app.status.maintenance()
        print("reku: stopped for maintenance; machine.reset() serves again")


