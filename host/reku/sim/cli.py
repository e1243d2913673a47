"""`reku sim`: run a virtual board until interrupted and print the serial port to talk to it on."""

import signal
import sys

from . import VirtualBoard, available_runtimes


def configure(p):
    p.add_argument("--runtime", default="auto", choices=["auto", "micropython", "cpython"],
                   help="MicroPython WebAssembly under Node (default where available) or CPython")
    p.add_argument("--board", default="pico", help="board profile from hw/boards (default: pico)")
    p.add_argument("--model", default="home", help="model file or bundled name (default: home)")
    p.add_argument("--state", metavar="DIR", help="keep the board's filesystem in DIR across runs")
    p.add_argument("--link", metavar="PATH", help="also make PATH a symlink to the pty (e.g. /tmp/reku0)")
    p.add_argument("--quiet", action="store_true", help="do not echo the board's log")


def run(args):
    vb = VirtualBoard(runtime=args.runtime, board=args.board, model=args.model, state_dir=args.state,
                      link=args.link, log=None if args.quiet else sys.stderr)
    vb.start()
    print("virtual board %s (%s) on %s" % (args.board, vb.runtime, vb.port), flush=True)
    if args.link:
        print("linked as %s" % args.link, flush=True)
    print("try: reku query --port %s \"turn on the kitchen light\"   (Ctrl-C stops the board)" % vb.port,
          flush=True)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    try:
        vb.proc.wait()
        print("the virtual board stopped (exit %s)" % vb.proc.returncode, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        vb.stop()


__all__ = ["configure", "run", "available_runtimes"]
