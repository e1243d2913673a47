# Authentication of requests (HMAC-SHA256, docs/protocol.md "Authentication"): the tag both sides compute, and
# the board's side of it (its key, per-boot nonce and counter). Shared by the board and the host like the codec;
# the board imports it only when it has a key (rkfw.app), so a board without one does not pay for it on the heap.
import struct
import hashlib

AUTH_TRAILER = 36                   # counter u32 LE | tag[32], appended to the payload
AUTH_LABEL = b"reku-auth-v1"


def hmac_sha256(key, msg):
    """RFC 2104 HMAC with SHA-256 (hashlib.sha256 is all MicroPython has; there is no hmac module)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    k = bytearray(64)
    k[:len(key)] = key
    ipad = bytearray(64)
    opad = bytearray(64)
    for i in range(64):
        ipad[i] = k[i] ^ 0x36
        opad[i] = k[i] ^ 0x5C
    h = hashlib.sha256(ipad)
    h.update(msg)
    inner = h.digest()
    h = hashlib.sha256(opad)
    h.update(inner)
    return h.digest()


def auth_tag(key, nonce, ftype, counter, payload):
    """The tag of one authenticated request: HMAC(key, label | nonce | type | counter | payload)."""
    msg = bytearray(AUTH_LABEL)
    msg.extend(nonce)
    msg.extend(struct.pack("<BI", ftype, counter))
    msg.extend(payload)
    return hmac_sha256(key, msg)


def add_auth(key, nonce, ftype, counter, payload=b""):
    """payload | counter | tag, ready to send."""
    return bytes(payload) + struct.pack("<I", counter) + auth_tag(key, nonce, ftype, counter, payload)


def same_bytes(a, b):
    """Constant-time comparison (the time does not depend on where the first difference is)."""
    if len(a) != len(b):
        return False
    d = 0
    for i in range(len(a)):
        d |= a[i] ^ b[i]
    return d == 0


class AuthError(Exception):
    pass


def random_bytes(n):
    """Unpredictable bytes for the per-boot nonce: os.urandom where the port has it (rp2, esp32), otherwise a
    hash of the random module, the clock and the chip id."""
    import os
    try:
        return os.urandom(n)
    except (AttributeError, NotImplementedError):
        pass
    import random
    from rkfw import port
    seed = bytearray(struct.pack("<II", random.getrandbits(30), port.ticks_us() & 0x3FFFFFFF))
    try:
        import machine
        seed.extend(machine.unique_id())
    except (ImportError, AttributeError):
        pass
    return hashlib.sha256(seed).digest()[:n]


def check(app, ftype, payload):
    """The payload of an authenticated request without its trailer, or AuthError. app: rkfw.app.App (its key,
    nonce and last accepted counter)."""
    if app.key_error:
        raise AuthError(app.key_error)
    n = len(payload) - AUTH_TRAILER
    if n < 0:
        raise AuthError("message type 0x%02x needs authentication (HMAC trailer missing)" % ftype)
    counter = struct.unpack_from("<I", payload, n)[0]
    body = payload[:n]
    tag = auth_tag(app.key, app.nonce, ftype, counter, body)
    if not same_bytes(tag, payload[n + 4:]):
        raise AuthError("bad HMAC tag (wrong key, or a message for another board or boot)")
    if counter <= app.counter:
        raise AuthError("replayed or stale counter %d (last accepted %d)" % (counter, app.counter))
    app.counter = counter
    return body
