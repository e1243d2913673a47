"""`reku query` and `reku info`: talk to a board (real or virtual) over its serial port."""

import json
import sys

from .client import Client


def _link_args(p):
    p.add_argument("--port", required=True, help="serial port of the board (e.g. /dev/ttyACM0, or the pty of reku sim)")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each reply")


def configure_query(p):
    _link_args(p)
    p.add_argument("text", help="the request, e.g. \"dim the kitchen to 30%%\"")
    p.add_argument("--verbose", "-v", action="store_true", help="also print timing and token counts")


def run_query(args):
    with Client.serial(args.port, args.baud, timeout=args.timeout) as board:
        r = board.query(args.text)
    out = {"calls": [c.to_dict() for c in r.calls]}
    if args.verbose:
        out.update(us=r.us, tokens_in=r.tokens_in, tokens_out=r.tokens_out)
    print(json.dumps(out))
    return 0


def configure_info(p):
    _link_args(p)


def run_info(args):
    with Client.serial(args.port, args.baud, timeout=args.timeout) as board:
        info = board.info()
    json.dump(info, sys.stdout, indent=2)
    print()
    return 0
