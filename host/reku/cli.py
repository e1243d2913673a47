"""The `reku` command. Each subcommand lives in its own module with `configure(parser)` and
`run(args) -> int`; the table below is the single list of subcommands."""

import argparse
import importlib
import sys

from . import __version__
from .errors import RekuError

# name: (module that configures and runs it, one-line help)
COMMANDS = {
    "demo": ("reku.demo", "start a virtual board and send example queries to it"),
    "playground": ("reku.playground", "serve a page that runs the board in the browser (and talks to one over Web Serial)"),
    "sim": ("reku.sim.cli", "run the firmware as a virtual board with its UART on a pty"),
    "query": ("reku.client_cli", "send a request to a board and print the calls as JSON"),
    "info": ("reku.client_cli", "print what a board reports about itself and its model"),
    "upload": ("reku.client_cli", "upload a model to a board over the protocol (--port or --i2c)"),
    "feedback": ("reku.client_cli", "copy the feedback a board stored into a file (feedback pull [--clear])"),
    "train": ("reku.model.cli", "train a model for a skill"),
    "eval": ("reku.model.cli", "evaluate a model on a JSONL test set"),
    "prior": ("reku.model.prior", "build the general prior that new skills start from (prior build)"),
    "memory": ("reku.client_cli", "teach a board a correction, list what it learnt, forget it (memory teach|list|forget)"),
    "learn": ("reku.model.learn", "fine-tune a deployed model on its board's feedback (refused if it gets worse)"),
    "federate": ("reku.model.federate", "federated fine-tuning across a fleet on Flower (simulated or deployed)"),
    "quantize": ("reku.model.cli", "post-training ternary quantization of a float checkpoint"),
    "inspect": ("reku.model.cli", "show sizes, bits per weight and board fit of a .rku file"),
    "repack": ("reku.model.cli", "convert a version 1 .rku file to the current format (same weights)"),
    "firmware": ("reku.firmware", "build a custom MicroPython image with reku frozen in (firmware build)"),
    "flash": ("reku.flash", "flash MicroPython firmware onto a board"),
    "deploy": ("reku.deploy", "copy firmware, profile, model and native module onto a board"),
    "doctor": ("reku.doctor", "check a connected board end to end"),
    "wiring": ("reku.wiring", "draw the wiring between a board and its host as SVG"),
    "bench": ("reku.bench", "run the benchmarks and write benchmarks/results/"),
}


# optional dependencies: the module a command may import, and the extra of the reku package that installs it
EXTRAS = {"torch": "train", "matplotlib": "train", "flwr": "fleet", "dp_accounting": "fleet", "ray": "fleet"}


# control characters (a newline inside an argument, terminal escapes) are shown, not obeyed: one line stays one line
_CONTROLS = {c: "\\x%02x" % c for c in list(range(0x20)) + [0x7F] if c != 0x09}


def say(message, stream=None):
    """One line on stderr, whatever it holds: control characters as \\xNN, and arguments the terminal could not
    decode (surrogate escapes, which a strict encoder refuses) as backslash escapes."""
    stream = stream or sys.stderr
    enc = getattr(stream, "encoding", None) or "utf-8"
    stream.write(message.translate(_CONTROLS).encode(enc, "backslashreplace").decode(enc) + "\n")
    stream.flush()


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what and where) instead of a usage dump."""

    def error(self, message):
        say("%s: error: %s" % (self.prog, message))
        self.exit(2)


def _top_parser():
    parser = _Parser(prog="reku", description="AI co-processor tooling: train, pack, flash, deploy and query.")
    parser.add_argument("--version", action="version", version="reku " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_mod, helptext) in COMMANDS.items():
        sub.add_parser(name, help=helptext)
    return parser


def command_parser(name):
    """The parser of one subcommand; only that command's module is imported."""
    modname, helptext = COMMANDS[name]
    p = _Parser(prog="reku " + name, description=helptext)
    mod = importlib.import_module(modname)
    (getattr(mod, "configure_" + name, None) or mod.configure)(p)
    p.set_defaults(_run=getattr(mod, "run_" + name, None) or mod.run)
    return p


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    for stream in (sys.stdout, sys.stderr):     # reports that echo an argument the terminal could not decode
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass
    if not argv or argv[0].startswith("-"):
        parser = _top_parser()
        parser.parse_args(argv)            # --help and --version print and exit here
        parser.print_help(sys.stderr)
        return 2
    name = argv[0]
    if name not in COMMANDS:
        say("reku: error: unknown command %r (see 'reku --help')" % name)
        return 2
    args = command_parser(name).parse_args(argv[1:])
    try:
        return int(args._run(args) or 0)
    except RekuError as e:
        say("reku %s: error: %s" % (name, e))
        return e.exit_code
    except ModuleNotFoundError as e:
        top = (e.name or "").split(".")[0]
        if top not in EXTRAS:
            raise
        say("reku %s: error: needs %s, which this installation lacks: pip install 'reku[%s]'"
            % (name, top, EXTRAS[top]))
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
