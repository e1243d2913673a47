# The board's rare requests: HELLO (INFO), SCHEMA, STATS, RESET, model upload (BEGIN, CHUNK, COMMIT, ABORT),
# FEEDBACK (store, read, clear) and CONFIG (docs/protocol.md). rkfw.app imports this module when one of them arrives and drops it after
# the reply (it stays while an upload runs), so a board between requests does not keep its code on the heap. Each
# handler takes the App, the request's seq and its payload, like App's own.
import binascii
import hashlib
import json
import os
import struct

from rkfw import port
from rkfw import proto
from rkfw.app import (ADMIN, CONFIG_FILE, FW_VERSION, MAX_MODEL, MAX_QUERY, MODEL_FILE, MODEL_PART, _read_json, _remove,
                      drop)

FEEDBACK_FILE = "feedback.jsonl"
FEEDBACK_OLD = "feedback.1.jsonl"
FEEDBACK_MAX = 16384            # bytes per feedback file; one older file is kept (so at most twice this)
OUTCOMES = ("success", "failure", "corrected")


def _free_bytes():
    try:
        st = os.statvfs(".")
        return st[0] * st[3]
    except (OSError, AttributeError):
        return -1


def _u32(n):
    return struct.pack("<I", n)


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return 0


def _sha256_file(path, buf):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(memoryview(buf)[:n])
    return h.digest()


# ---- HELLO (INFO), SCHEMA, STATS, RESET -----------------------------------------------------------
def hello(app, seq, payload):
    info = _info(app)
    data = json.dumps(info, separators=(",", ":")).encode()
    if len(data) > proto.MAX_PAYLOAD and info["model"] is not None:
        # A large tool schema: INFO says so, and SCHEMA hands it out in pieces.
        info["model"]["schema"] = None
        info["model"]["schema_truncated"] = True
        data = json.dumps(info, separators=(",", ":")).encode()
    return app.reply(proto.HELLO, seq, data)

def schema(app, seq, payload):
    if app.model is None:
        return app.error(seq, proto.E_NO_MODEL, app.model_error or "no model")
    if len(payload) != 4:
        return app.error(seq, proto.E_REQUEST, "SCHEMA needs an offset u32")
    off = struct.unpack_from("<I", payload, 0)[0]
    data = json.dumps(app.engine.grammar.summary(), separators=(",", ":")).encode()
    return app.reply(proto.SCHEMA, seq, _u32(len(data)) + data[off:off + proto.MAX_PAYLOAD - 4])

def stats(app, seq, payload):
    st = dict(app.stats)
    st["uptime_ms"] = port.ticks_diff(port.ticks_ms(), app.boot_ms)
    st["mem_free"] = port.mem_free()
    return app.reply_json(proto.STATS, seq, st)

def reset(app, seq, payload):
    app.reset_pending = True
    return app.reply(proto.RESET, seq, b"")

def _info(app):
    model = None
    if app.model is not None:
        model = {"id": app.model.model_id, "sha256": app.model.sha256, "path": app.model_path,
                 "tier": app.engine.tier, "schema": app.engine.grammar.summary()}
    auth = {"required": bool(app.auth_types)}
    if app.auth_types:
        auth["nonce"] = binascii.hexlify(app.nonce).decode()
        auth["counter"] = app.counter
        auth["types"] = list(app.auth_types)
        if app.key_error:
            auth["error"] = app.key_error
    up = app.upload
    chunk = proto.MAX_CHUNK
    if proto.MODEL_CHUNK in app.auth_types:
        from rkfw import auth as _auth
        chunk -= _auth.AUTH_TRAILER             # the trailer takes room in every authenticated chunk
    return {"fw": FW_VERSION, "proto": proto.VERSION, "proto_min": proto.MIN_VERSION,
            "runtime": port.runtime(), "board": app.board[0], "chip": app.board[1],
            "model": model, "model_error": app.model_error,
            "types": sorted(list(app.HANDLERS) + list(ADMIN)), "auth": auth,
            "transports": [t.name for t in app.transports],
            "upload": None if up is None else {"bytes": up[0], "received": up[2]},
            "limits": {"max_payload": proto.MAX_PAYLOAD, "max_query": MAX_QUERY, "max_chunk": chunk,
                       "max_model": MAX_MODEL, "fs_free": _free_bytes()},
            "mem_free": port.mem_free()}


# ---- model upload: BEGIN, CHUNK..., COMMIT (or ABORT) ------------------------------------------------
def drop_upload(app):
    up = app.upload
    app.upload = None
    if up is not None:
        try:
            up[3].close()
        except OSError:
            pass
    _remove(MODEL_PART)

def model_begin(app, seq, payload):
    if len(payload) != 36:
        return app.error(seq, proto.E_REQUEST, "MODEL_BEGIN needs size u32 and SHA-256 (36 bytes), got %d"
                          % len(payload))
    size = struct.unpack_from("<I", payload, 0)[0]
    sha = bytes(payload[4:36])
    up = app.upload
    if up is not None and up[0] == size and up[1] == sha:
        return app.reply(proto.MODEL_BEGIN, seq, _u32(up[2]))     # the same upload again: resume
    drop_upload(app)
    if size < 20 or size > MAX_MODEL:
        return app.error(seq, proto.E_MODEL, "model size %d outside 20..%d bytes" % (size, MAX_MODEL))
    free = _free_bytes()
    if 0 <= free < size + 4096:
        return app.error(seq, proto.E_MODEL, "model of %d bytes does not fit: %d bytes free on the "
                          "filesystem next to the current model" % (size, free))
    f = open(MODEL_PART, "wb")
    app.upload = [size, sha, 0, f, hashlib.sha256()]
    return app.reply(proto.MODEL_BEGIN, seq, _u32(0))

def model_chunk(app, seq, payload):
    up = app.upload
    if up is None:
        return app.error(seq, proto.E_MODEL, "no upload in progress (MODEL_BEGIN first)")
    if len(payload) < 4:
        return app.error(seq, proto.E_REQUEST, "MODEL_CHUNK needs an offset u32")
    off = struct.unpack_from("<I", payload, 0)[0]
    n = len(payload) - 4
    if off != up[2]:
        # Not where the board is: nothing is written; the reply says where to continue.
        return app.reply(proto.MODEL_CHUNK, seq, _u32(up[2]))
    if off + n > up[0]:
        return app.error(seq, proto.E_MODEL, "chunk %d+%d runs past the announced size %d"
                          % (off, n, up[0]))
    data = memoryview(payload)[4:]
    up[3].write(data)
    up[4].update(data)
    up[2] = off + n
    return app.reply(proto.MODEL_CHUNK, seq, _u32(up[2]))

def model_commit(app, seq, payload):
    up = app.upload
    if up is None:
        return app.error(seq, proto.E_MODEL, "no upload in progress (MODEL_BEGIN first)")
    size, sha, off = up[0], up[1], up[2]
    if off != size:
        return app.error(seq, proto.E_MODEL, "upload incomplete: %d of %d bytes received" % (off, size))
    up[3].close()
    streamed = up[4].digest()
    app.upload = None
    stored = _sha256_file(MODEL_PART, app.buf)       # verify what is on flash, not what passed by
    if _size(MODEL_PART) != size or stored != sha or streamed != sha:
        _remove(MODEL_PART)
        return app.error(seq, proto.E_MODEL, "SHA-256 mismatch: announced %s, received %s; the old "
                          "model is still serving" % (binascii.hexlify(sha).decode(),
                                                        binascii.hexlify(stored).decode()))
    # The new file is complete and verified. Load it before it replaces the old one (the old
    # engine is dropped first so that both need not fit in RAM at once).
    if app.load_model((MODEL_PART,)):
        try:
            os.rename(MODEL_PART, MODEL_FILE)   # atomic on littlefs and POSIX: old or new, never neither
        except OSError:
            _remove(MODEL_FILE)
            os.rename(MODEL_PART, MODEL_FILE)
        app.model_path = MODEL_FILE
        app.stats["uploads"] += 1
        m = app.model
        return app.reply_json(proto.MODEL_COMMIT, seq, {"id": m.model_id, "sha256": m.sha256,
                                                          "bytes": size, "path": MODEL_FILE})
    reason = app.model_error
    _remove(MODEL_PART)
    app.load_model()
    return app.error(seq, proto.E_MODEL, "new model rejected (%s); %s" % (
        reason, "the old model is still serving" if app.engine else "no model loaded"))

def model_abort(app, seq, payload):
    drop_upload(app)
    return app.reply(proto.MODEL_ABORT, seq, b"")

# ---- feedback, config ---------------------------------------------------------------------------------
def feedback(app, seq, payload):
    try:
        fb = json.loads(payload)
    except (ValueError, UnicodeError):
        return app.error(seq, proto.E_REQUEST, "FEEDBACK payload is not JSON")
    if not isinstance(fb, dict) or fb.get("outcome") not in OUTCOMES:
        return app.error(seq, proto.E_REQUEST, "FEEDBACK needs an object with outcome %s" % "|".join(OUTCOMES))
    text = fb.get("text", "")
    calls = fb.get("calls", [])
    corrected = fb.get("corrected")
    if not isinstance(text, str) or not isinstance(calls, list):
        return app.error(seq, proto.E_REQUEST, "FEEDBACK text must be a string and calls a list")
    if fb["outcome"] == "corrected" and not isinstance(corrected, list):
        return app.error(seq, proto.E_REQUEST, "outcome corrected needs the corrected calls (a list)")
    entry = {"t": port.ticks_diff(port.ticks_ms(), app.boot_ms), "text": text, "outcome": fb["outcome"],
             "calls": calls}
    if corrected is not None:
        entry["corrected"] = corrected
    if app.model is not None:
        entry["model"] = app.model.sha256[:16]
    line = json.dumps(entry, separators=(",", ":")) + "\n"
    limit = app.config.get("feedback_max", FEEDBACK_MAX)
    if _size(FEEDBACK_FILE) + len(line) > limit:
        _remove(FEEDBACK_OLD)
        try:
            os.rename(FEEDBACK_FILE, FEEDBACK_OLD)
        except OSError:
            pass
    with open(FEEDBACK_FILE, "a") as f:
        f.write(line)
    line = entry = None
    app.stats["feedback"] += 1
    out = {"bytes": _size(FEEDBACK_FILE) + _size(FEEDBACK_OLD), "limit": 2 * limit}
    if corrected is not None and app.engine is not None and app.config.get("learn", True):
        # the board learns the correction at once (rkfw.teach); the feedback line is stored either way
        try:
            out["learnt"] = _teach(app, "teach", text, corrected)
        except MemoryError:
            raise
        except Exception as e:      # calls the schema cannot produce for this text, or of the wrong shape
            out["learnt"] = {"error": "%s: %s" % (type(e).__name__, e) if not isinstance(e, ValueError) else str(e)}
    return app.reply_json(proto.FEEDBACK, seq, out)

# The stored feedback as one stream: the older file, then the current one (FEEDBACK_READ, FEEDBACK_CLEAR).
def _log():
    return ((FEEDBACK_OLD, _size(FEEDBACK_OLD)), (FEEDBACK_FILE, _size(FEEDBACK_FILE)))

def _log_read(off, n, buf=None):
    """Up to n bytes of the stream from off (bytes); with buf (a bytearray), fed through crc32 instead: the
    CRC-32 of stream bytes [off, off + n)."""
    out = b"" if buf is None else 0
    pos = 0
    for path, size in _log():
        if n > 0 and off < pos + size:
            with open(path, "rb") as f:
                f.seek(off - pos)
                while n > 0 and off < pos + size:
                    k = min(n, pos + size - off)
                    if buf is None:
                        data = f.read(k)
                        out += data
                    else:
                        data = memoryview(buf)[:f.readinto(memoryview(buf)[:min(k, len(buf))])]
                        out = binascii.crc32(data, out)
                    if not data:
                        return out
                    off += len(data)
                    n -= len(data)
        pos += size
    return out

def feedback_read(app, seq, payload):
    if len(payload) != 4:
        return app.error(seq, proto.E_REQUEST, "FEEDBACK_READ needs an offset u32")
    off = struct.unpack_from("<I", payload, 0)[0]
    total = _log()[0][1] + _log()[1][1]
    return app.reply(proto.FEEDBACK_READ, seq, _u32(total) + _log_read(off, proto.MAX_PAYLOAD - 4))

def _drop_prefix(path, k, size, buf):
    """Remove the first k bytes of the file (all of it when k >= size): what follows is copied to a new file that
    is renamed into place, so a power cut leaves the old file or the new one."""
    if k >= size:
        _remove(path)
    elif k:
        tmp = path + ".tmp"
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            src.seek(k)
            while True:
                got = src.readinto(buf)
                if not got:
                    break
                dst.write(memoryview(buf)[:got])
        try:
            os.rename(tmp, path)
        except OSError:
            _remove(path)
            os.rename(tmp, path)

def feedback_clear(app, seq, payload):
    if len(payload) != 8:
        return app.error(seq, proto.E_REQUEST, "FEEDBACK_CLEAR needs a byte count u32 and their CRC-32 u32")
    n, crc = struct.unpack_from("<II", payload, 0)
    (old, n_old), (cur, n_cur) = _log()
    if n > n_old + n_cur or _log_read(0, n, app.buf) & 0xFFFFFFFF != crc:
        return app.error(seq, proto.E_REQUEST, "the stored feedback changed since it was read (%d bytes now): read "
                         "it again before clearing" % (n_old + n_cur))
    if n >= n_old:
        _remove(old)
        _drop_prefix(cur, n - n_old, n_cur, app.buf)
    else:
        _drop_prefix(old, n, n_old, app.buf)
    return app.reply_json(proto.FEEDBACK_CLEAR, seq, {"cleared": n, "bytes": _size(old) + _size(cur)})

# ---- what the board learnt from corrections (rkfw.teach) ----------------------------------------------------
def _teach(app, fn, *a):
    """rkfw.teach.fn(app, *a), the module dropped after it (with rkfw.steps, which teaching imports)."""
    from rkfw import teach
    try:
        return getattr(teach, fn)(app, *a)
    finally:
        drop("teach")
        drop("steps")

def _memory_request(app, seq, payload, what):
    """The u32 of a MEMORY_LIST/MEMORY_FORGET request, or the ERROR reply (as bytes) when it cannot be served."""
    if app.engine is None:
        return app.error(seq, proto.E_NO_MODEL, app.model_error or "no model")
    if len(payload) != 4:
        return app.error(seq, proto.E_REQUEST, "%s needs %s u32" % what)
    return struct.unpack_from("<I", payload, 0)[0]

def memory_list(app, seq, payload):
    off = _memory_request(app, seq, payload, ("MEMORY_LIST", "an offset"))
    if isinstance(off, bytes):
        return off
    data = json.dumps(_teach(app, "listing"), separators=(",", ":")).encode()
    return app.reply(proto.MEMORY_LIST, seq, _u32(len(data)) + data[off:off + proto.MAX_PAYLOAD - 4])

def memory_forget(app, seq, payload):
    i = _memory_request(app, seq, payload, ("MEMORY_FORGET", "an entry (0xFFFFFFFF: all)"))
    if isinstance(i, bytes):
        return i
    try:
        left = _teach(app, "forget", None if i == 0xFFFFFFFF else i)
    except ValueError as e:
        return app.error(seq, proto.E_REQUEST, str(e))
    return app.reply_json(proto.MEMORY_FORGET, seq, {"entries": left})

def config(app, seq, payload):
    if payload:
        try:
            change = json.loads(payload)
        except (ValueError, UnicodeError):
            return app.error(seq, proto.E_REQUEST, "CONFIG payload is not JSON")
        if not isinstance(change, dict):
            return app.error(seq, proto.E_REQUEST, "CONFIG payload must be a JSON object")
        cfg = _read_json(CONFIG_FILE)
        for k in change:
            if change[k] is None:
                cfg.pop(k, None)
            else:
                cfg[k] = change[k]
        tmp = CONFIG_FILE + ".tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps(cfg))
        try:
            os.rename(tmp, CONFIG_FILE)
        except OSError:
            _remove(CONFIG_FILE)
            os.rename(tmp, CONFIG_FILE)
    return app.reply_json(proto.CONFIG, seq, _read_json(CONFIG_FILE))


HANDLERS = {
    proto.HELLO: hello,
    proto.SCHEMA: schema,
    proto.STATS: stats,
    proto.RESET: reset,
    proto.MODEL_BEGIN: model_begin,
    proto.MODEL_CHUNK: model_chunk,
    proto.MODEL_COMMIT: model_commit,
    proto.MODEL_ABORT: model_abort,
    proto.FEEDBACK: feedback,
    proto.CONFIG: config,
    proto.FEEDBACK_READ: feedback_read,
    proto.FEEDBACK_CLEAR: feedback_clear,
    proto.MEMORY_LIST: memory_list,
    proto.MEMORY_FORGET: memory_forget,
}
