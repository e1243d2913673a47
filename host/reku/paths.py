"""Where the repository's shared trees are. reku is installed editable from the repository
(`make` does this), so firmware/, hw/ and skills/ are found next to the package."""

import os
from pathlib import Path

ROOT = Path(os.environ.get("REKU_ROOT") or Path(__file__).resolve().parents[2])
FIRMWARE = ROOT / "firmware"
HW = ROOT / "hw"
BOARDS = HW / "boards"
SKILLS = ROOT / "skills"


def model_path(name_or_path):
    """A model given by file path, or by the name of a bundled skill (`home` -> skills/home/model.rku)."""
    p = Path(name_or_path)
    if p.suffix == ".rku" or p.exists():
        return p
    return SKILLS / str(name_or_path) / "model.rku"
