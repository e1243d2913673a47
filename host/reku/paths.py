"""Where the repository's shared trees are: firmware/, hw/ and skills/ next to the package in a checkout (the
editable install `make` does), or the copy a wheel carries in reku/_tree (setup.py). $REKU_ROOT overrides both."""

import os
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_CHECKOUT = _HERE.parents[1]
ROOT = Path(os.environ.get("REKU_ROOT") or (_CHECKOUT if (_CHECKOUT / "firmware" / "main.py").exists()
                                             else _HERE / "_tree"))
FIRMWARE = ROOT / "firmware"
HW = ROOT / "hw"
BOARDS = HW / "boards"
SKILLS = ROOT / "skills"
MODULES = ROOT / "modules"          # the C modules and the frozen manifest (`reku firmware build`)


def model_path(name_or_path):
    """A model given by file path, or by the name of a bundled skill (`home` -> skills/home/model.rku)."""
    p = Path(name_or_path)
    if p.suffix == ".rku" or p.exists():
        return p
    return SKILLS / str(name_or_path) / "model.rku"


def model_file(name_or_path):
    """model_path(), checked: an existing file, else RekuError naming what was given (one line for the CLI)."""
    from .errors import RekuError
    p = model_path(name_or_path)
    if p.is_dir():
        raise RekuError("model %s is a directory, not a .rku file" % p)
    if not p.is_file():
        raise RekuError("model %s not found" % p)
    return p
