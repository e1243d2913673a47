"""`reku demo`: start a virtual board with the bundled model and send it a few requests over the
real path (model file -> firmware loader -> framed protocol over a pty opened with pyserial -> client)."""

import json
import time

from .client import Client
from .sim import VirtualBoard

EXAMPLES = [
    "turn on the kitchen light",
    "dim the bedroom to 30%",
    "set the thermostat to 21 degrees",
    "lock the front door",
    "start a timer for 10 minutes",
    "what's the capital of france",
]


def configure(p):
    p.add_argument("--runtime", default="auto", choices=["auto", "micropython", "cpython"])
    p.add_argument("--board", default="pico")
    p.add_argument("--model", default="home")
    p.add_argument("queries", nargs="*", help="requests to send (default: a few examples)")


def run(args):
    queries = args.queries or EXAMPLES
    with VirtualBoard(runtime=args.runtime, board=args.board, model=args.model) as vb:
        with Client.serial(vb.port) as board:
            info = board.info()
            model = info.get("model") or {}
            print("virtual %s board on %s: %s, model %s (%s kernels)"
                  % (info["board"], vb.port, info["runtime"], model.get("id"), model.get("tier")))
            for text in queries:
                t0 = time.perf_counter()
                r = board.query(text)
                ms = (time.perf_counter() - t0) * 1000
                calls = json.dumps([c.to_dict() for c in r.calls]) if r.calls else "(no call)"
                print("%-40s -> %s   [%.0f ms round trip, %.1f ms on board]" % (text, calls, ms, r.us / 1000))
    return 0
