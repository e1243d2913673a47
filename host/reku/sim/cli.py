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
    p.add_argument("--repl", action="store_true",
                   help="expose MicroPython's REPL on the pty, like a board's USB serial (for mpremote and "
                        "reku deploy/doctor); main.py is not started; with --state the filesystem is kept")
    p.add_argument("--romfs", type=int, metavar="KB",
                   help="give the board a ROMFS partition of KB KiB (kept with --state; MicroPython runtime)")
    p.add_argument("--i2c", action="store_true",
                   help="serve the I2C target instead of the UART: the pty is then the simulated I2C bus "
                        "(talk to it with --i2c sim:PTY:0x42, see docs/i2c.md)")
    p.add_argument("--bare", action="store_true",
                   help="start from an empty filesystem (as a freshly flashed board) instead of the firmware")


def run(args):
    runtime = args.runtime
    if (args.repl or args.romfs) and runtime == "auto":
        runtime = "micropython"
    vb = VirtualBoard(runtime=runtime, board=args.board, model=args.model, state_dir=args.state,
                      link=args.link, log=None if args.quiet else sys.stderr, repl=args.repl, bare=args.bare,
                      romfs_kb=args.romfs, config={"transports": ["i2c"]} if args.i2c else None)
    vb.start()
    print("virtual board %s (%s%s) on %s" % (args.board, vb.runtime, ", REPL" if args.repl else "", vb.port),
          flush=True)
    if args.link:
        print("linked as %s" % args.link, flush=True)
    if args.repl:
        print("try: mpremote connect %s fs ls   or   reku deploy --board %s --port %s   (Ctrl-C stops the board)"
              % (vb.port, args.board, vb.port), flush=True)
    elif args.i2c:
        print("try: reku query --i2c sim:%s:0x%02x \"turn on the kitchen light\"   (Ctrl-C stops the board)"
              % (args.link or vb.port, vb_address(vb)), flush=True)
    else:
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


def vb_address(vb):
    from rkfw import boards
    return boards.load(str(vb.board_dir / "board.json"))["i2c"]["address"]


__all__ = ["configure", "run", "available_runtimes"]
