# The playground's board, run by MicroPython (WebAssembly) in the page's worker (worker.js). It serves frames with
# the unchanged firmware in /board, as a board would: the App of rkfw.app built from board.json and reku.json, the
# model loaded by App.load_model, each frame deframed by rkfw.proto.Decoder and answered by App.handle. The page
# speaks the protocol to it through its own JavaScript codec, exactly as it does to a real board over Web Serial.
# What a board does not do and the page shows: the top alternatives of the first decision (NOCALL or a function),
# read by wrapping rkfw.infer.pick, which run() looks up at each call; the decision itself is unchanged.
import binascii
import gc
import json
import os
import sys

os.chdir("/board")
sys.path.insert(0, "/board")

from rkfw import app as A      # noqa: E402
from rkfw import infer, proto      # noqa: E402

TOP = 5


class Board:
    def __init__(self):
        from rkfw import boot
        profile = boot.read_profile() or {}
        A.drop("boot")                  # as main.py does once the board serves
        self.app = A.App(profile, A._read_json(A.CONFIG_FILE))
        self.app.load_model()
        self.decoder = proto.Decoder()
        self.first = None
        self._pick = infer.pick
        infer.pick = self.pick

    def pick(self, logits, allow, n):
        if self.first is None:
            order = sorted(range(n), key=lambda i: (-logits[allow[i]], allow[i]))[:TOP]
            g = self.app.engine.grammar
            self.first = [(g.string(allow[i]), logits[allow[i]]) for i in order]
        return self._pick(logits, allow, n)

    def frames(self, hexdata):
        """Bytes from the page (hex) -> JSON: the reply bytes (hex), the first-decision alternatives of a QUERY
        (or null), and the heap bytes allocated while answering (the WebAssembly build collects only between
        calls from JavaScript, so this is every allocation the request made)."""
        data = binascii.unhexlify(hexdata)
        out = []
        self.first = None
        before = gc.mem_alloc()
        for ev in self.decoder.feed(data):
            r = self.app.handle(ev)
            if r:
                out.append(r)
        allocated = gc.mem_alloc() - before
        alts = self.first
        self.first = None
        if self.app.reset_pending:      # RESET: a fresh App on the same filesystem, as after machine.reset()
            infer.pick = self._pick
            reboot()
        self.app.collect_due = False
        gc.collect()                    # made when control returns to JavaScript (the board's serve() does it here)
        return json.dumps({"reply": binascii.hexlify(b"".join(out)).decode(), "alts": alts,
                           "allocated": allocated})


def reboot():
    global board
    board = None
    gc.collect()
    board = Board()


def heap():
    """(bytes in use, bytes free) of MicroPython's heap."""
    return gc.mem_alloc(), gc.mem_free()


board = None
