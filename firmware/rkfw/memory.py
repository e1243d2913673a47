# What a board has learnt from corrections, without backprop (docs/learning.md, "A board that learns from a
# correction"). A record is one corrected request: its key, the model's own int8 stream (the head's input) summed
# over the last character of each word and SEP and centred on the stream of an empty request, and the token
# decisions where the model did not follow the correction (decision number, right token). A query computes the same
# key while it reads the request (two kernel calls a word, in rkfw.infer.Engine.prefill); the most similar record
# whose cosine reaches THRESHOLD is recognised, and at its decisions its tokens replace the head's choice where the
# grammar allows them. The keys stay in the file (read one at a time, once a query); RAM holds their norms, offsets
# and the decisions. Integer-only: the host reference (reku.model.reference) and every kernel tier give the same
# tokens. This module (the lookup and the file's reader) is what a board with a memory keeps; rkfw.teach writes the
# file (imported to learn, list and forget).
#
# File (rkfw.app.MEMORY_FILE): "RKM2" | model tag (16 ASCII bytes: the model's SHA-256 hex, first 16) | u16 d |
# u16 records | u16 decisions (of all records), then per record (oldest use first): u16 decisions | u16 norm |
# u16 text bytes | u16 calls bytes | key (d int8) | decisions x (u16 decision number | u16 token) | text (UTF-8) |
# calls (JSON). A file made for another model (tag or d) is not loaded.
from array import array
from struct import unpack

THRESHOLD = 900     # cosine x 1024 a record's key must reach (chosen on dev corrections: benchmarks/bench_memory.py)


def isqrt(n):
    """floor(sqrt(n)) for an integer n >= 0 (Newton; small integers throughout)."""
    if n <= 0:
        return 0
    x = n
    y = (x + 1) >> 1
    while y < x:
        x = y
        y = (x + n // x) >> 1
    return x


def cosine(s, nk, nq):
    """cos x 1024 of a dot product s of vectors with integer norms nk, nq (> 0); below 2**30 for every d up to
    4096 (MicroPython small integers: no allocation)."""
    return ((s << 4) // nk << 6) // nq


class Memory:
    """Records 0..records-1 of a memory file (load() fills the tables; an empty one computes a request's
    key for teaching)."""

    def __init__(self, engine, records=0, decisions=0, path=None):
        d = self.d = engine.d
        self.path = path
        n = max(1, records)
        self.off = array("I", bytes(4 * n))            # where record r's key is in the file
        self.nk = array("H", bytes(2 * n))             # its norm
        self.first = array("H", bytes(2 * n + 2))      # its decisions: dec[2*first[r]:2*first[r+1]]
        self.dec = array("H", bytes(4 * max(1, decisions)))    # (decision number, token) pairs
        self.used = array("i", bytes(4 * n))           # when it last decided (LRU)
        self.acc = array("i", bytes(4 * d))            # the request's streams summed while it is read
        # one key, read from the file: the engine's channel-mixing input, free between steps, where it is long enough
        xf = getattr(engine, "xf", b"")
        self.kbuf = memoryview(xf)[:d] if len(xf) >= d else array("b", bytes(d))
        self.clock = 0
        self.records = 0
        self.hit = -1                                  # the record recognised in this query, or -1
        self.k = 0                                     # token decisions taken in this query
        # the centre: the int8 stream of an empty request (SEP from the reset state)
        self.c = array("b", bytes(d))
        engine._reset()
        engine.step(engine.tok.sep)
        engine.kern.quant_i8(engine.h, self.c)

    def recognise(self, kern, n, xs, tmp):
        """After n streams of a request were added (its words' last characters and SEP): the record whose key is
        most similar to their centred average (first on ties) if its cosine reaches THRESHOLD. xs: int8 scratch,
        left holding that average."""
        d = self.d
        kern.embed(self.c, 0, d, -2 * n, 1, tmp)    # -n * c
        kern.add(self.acc, tmp)
        kern.quant_i8(self.acc, xs)
        kern.embed(self.c, 0, d, 0, 1, self.acc)    # the sum is zeroed for the next request
        self.k = 0
        self.hit = -1
        if self.records == 0:
            return
        q = tmp                                     # free now: its first entry takes each dot product
        kern.dot_rows(xs, 1, d, xs, q)
        nq = isqrt(q[0])
        if nq == 0:
            return
        best = -1
        bc = THRESHOLD - 1
        kb = self.kbuf
        with open(self.path, "rb") as f:
            for r in range(self.records):
                f.seek(self.off[r])
                f.readinto(kb)
                kern.dot_rows(kb, 1, d, xs, q)
                c = cosine(q[0], self.nk[r], nq)
                if c > bc:
                    best = r
                    bc = c
        self.hit = best
        if best >= 0:
            self.clock += 1
            self.used[best] = self.clock

    def replay(self, allow, n_allow):
        """At a token decision (allowed tokens allow[:n_allow]): the recognised record's token for this decision
        number if it has one the grammar allows, else -1. Counts the decision."""
        k = self.k
        self.k = k + 1
        r = self.hit
        dec = self.dec
        for i in range(2 * self.first[r], 2 * self.first[r + 1], 2):
            if dec[i] == k:
                t = dec[i + 1]
                for j in range(n_allow):
                    if allow[j] == t:
                        return t
        return -1


MAGIC = b"RKM2"
HEAD = 26           # bytes of the file header
RECORDS = 32        # default records a board keeps (reku.json "memory_records")
MAX_DEC = 4         # decisions a record may take on average (rkfw.teach keeps a file to MAX_DEC * records)


def cap(config):
    """Records a board keeps: reku.json "memory_records" (default RECORDS), at least 1."""
    return max(1, config.get("memory_records", RECORDS))


def tag_of(model):
    return model.sha256[:16].encode()


def attach(app):
    """Give the app's engine the memory file made for its model (at boot and after a new model); a damaged file
    leaves the model serving without it."""
    from rkfw.app import MEMORY_FILE
    e = app.engine
    try:
        e.memory = load(e, MEMORY_FILE, tag_of(app.model), cap(app.config))
    except Exception as ex:
        print("reku: %s: %s" % (MEMORY_FILE, ex))


def load(engine, path, tag, cap):
    """The memory in file `path` for the engine's model (tag), its newest uses up to cap records, as a Memory whose
    tables hold those; None when there is no such file or it was made for another model."""
    try:
        f = open(path, "rb")
    except OSError:
        return None
    d = engine.d
    try:
        h = f.read(HEAD)
        if len(h) < HEAD or h[:4] != MAGIC or h[4:20] != tag:
            return None
        fd, nrec, ndec = unpack("<HHH", h[20:])
        if fd != d:
            return None
        skip = max(0, nrec - cap)
        m = Memory(engine, nrec - skip, ndec, path)
        pos = HEAD
        for r in range(nrec):
            nd, nk, lt, lc = unpack("<HHHH", f.read(8))
            if r >= skip:
                i = m.records
                m.off[i] = pos + 8
                m.nk[i] = nk
                f.seek(d, 1)
                j = m.first[i]
                for _ in range(nd):
                    m.dec[2 * j], m.dec[2 * j + 1] = unpack("<HH", f.read(4))
                    j += 1
                m.first[i + 1] = j
                m.used[i] = m.clock = i + 1
                m.records = i + 1
                f.seek(lt + lc, 1)
            else:
                f.seek(d + 4 * nd + lt + lc, 1)
            pos += 8 + d + 4 * nd + lt + lc
        return m
    finally:
        f.close()
