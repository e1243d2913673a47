# What a board has learnt from corrections, without backprop (docs/learning.md, "A board that learns from a
# correction"). A record is one corrected request: its key, the model's own int8 stream (the head's input) averaged
# over the last character of each word and SEP, and centred on the stream of an empty request, and the token decisions where the model
# did not follow the correction (decision number, right token). A query computes the same key while it reads the
# request (two kernel calls a word, in rkfw.infer.Engine.prefill); the most similar record whose cosine reaches
# THRESHOLD is recognised, and at its decisions its tokens replace the head's choice where the grammar allows them. The keys stay in the file (read one
# at a time, once a query); RAM holds their norms, offsets and the decisions. Integer-only: the host reference
# (reku.model.reference) and every kernel tier give the same tokens. This module is the lookup a serving board
# keeps; rkfw.teach (imported to read the file at boot, and to learn, list and forget) owns the file.
from array import array

THRESHOLD = 900     # cosine x 1024 a record's key must reach (chosen on the dev corrections: benchmarks/bench_memory.py)


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
    """Records 0..records-1 of a memory file (rkfw.teach.load fills the tables; an empty one computes a request's
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
        self.q = array("i", bytes(4))
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
        kern.dot_rows(xs, 1, d, xs, self.q)
        nq = isqrt(self.q[0])
        if nq == 0:
            return
        best = -1
        bc = THRESHOLD - 1
        q = self.q
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

