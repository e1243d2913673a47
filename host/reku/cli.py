"""The `reku` command. Each subcommand lives in its own module with `configure(parser)` and
`run(args) -> int`; the table below is the single list of subcommands."""

import argparse
import importlib
import sys

from . import __version__
from .errors import RekuError

# name: (module or None when not built yet, one-line help, issue that builds it)
COMMANDS = {
    "demo": ("reku.demo", "start a virtual board and send example queries to it", 2),
    "sim": ("reku.sim.cli", "run the firmware as a virtual board with its UART on a pty", 2),
    "query": ("reku.client_cli", "send a request to a board and print the calls as JSON", 5),
    "info": ("reku.client_cli", "print what a board reports about itself and its model", 5),
    "upload": ("reku.client_cli", "upload a model to a board over the protocol (--port or --i2c)", 5),
    "train": ("reku.model.cli", "train a model for a skill", 3),
    "eval": ("reku.model.cli", "evaluate a model on a JSONL test set", 3),
    "quantize": ("reku.model.cli", "post-training ternary quantization of a float checkpoint", 8),
    "inspect": ("reku.model.cli", "show sizes, bits per weight and board fit of a .rku file", 3),
    "flash": ("reku.flash", "flash MicroPython firmware onto a board", 7),
    "deploy": ("reku.deploy", "copy firmware, profile, model and native module onto a board", 7),
    "doctor": ("reku.doctor", "check a connected board end to end", 7),
    "wiring": ("reku.wiring", "draw the wiring between a board and its host as SVG", 4),
    "bench": ("reku.bench", "run the benchmarks and write benchmarks/results/", 6),
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what and where) instead of a usage dump."""

    def error(self, message):
        self.exit(2, "%s: error: %s\n" % (self.prog, message))


def _top_parser():
    parser = _Parser(prog="reku", description="AI co-processor tooling: train, pack, flash, deploy and query.")
    parser.add_argument("--version", action="version", version="reku " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_mod, helptext, _issue) in COMMANDS.items():
        sub.add_parser(name, help=helptext)
    return parser


def command_parser(name):
    """The parser of one subcommand; only that command's module is imported."""
    modname, helptext, _issue = COMMANDS[name]
    p = _Parser(prog="reku " + name, description=helptext)
    mod = importlib.import_module(modname)
    (getattr(mod, "configure_" + name, None) or mod.configure)(p)
    p.set_defaults(_run=getattr(mod, "run_" + name, None) or mod.run)
    return p


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        parser = _top_parser()
        args = parser.parse_args(argv)
        parser.print_help(sys.stderr)
        return 2
    name = argv[0]
    if name not in COMMANDS:
        print("reku: error: unknown command %r (see 'reku --help')" % name, file=sys.stderr)
        return 2
    args = command_parser(name).parse_args(argv[1:])
    try:
        return int(args._run(args) or 0)
    except RekuError as e:
        print("reku %s: error: %s" % (name, e), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
