"""The viper tier (firmware/rkfw/kernels_viper.py, and fp4_viper.py for FP4 layers) on a MicroPython with native
emitters (the unix port):
identical tokens to the numpy reference. The WebAssembly build has no viper, so this needs a unix
`micropython` binary: $REKU_MICROPYTHON_UNIX or `micropython` on PATH (skipped, saying so, without one)."""
import json
import os
import shutil
import subprocess

import pytest

from reku import paths
from reku.model.reference import Reference
from reku.model.synth import random_model
from rkfw import rku

TOOLS = json.loads((paths.SKILLS / "home" / "tools.json").read_text())
QUERIES = ["turn on the kitchen light", "play some jazz in the kitchen", "set an alarm for 7:30",
           "what is the capital of france", "dim the bedroom to twenty five percent", ""]

SCRIPT = r"""
import sys, json
sys.path.insert(0, %r)
from rkfw import rku, infer, kernels
m = rku.load(open(%r, 'rb').read())
e = infer.Engine(m)
out = {"tier": e.tier, "calls": [e.run(q)[0] for q in json.loads(%r)]}
if hasattr(e, "kern4"):
    from rkfw import fp4_viper
    out["viper_tmv4"] = e.kern4[2] is fp4_viper.tmv4
print(json.dumps(out))
"""


def unix_micropython():
    exe = os.environ.get("REKU_MICROPYTHON_UNIX") or shutil.which("micropython")
    if not exe:
        pytest.skip("no unix MicroPython with viper: set REKU_MICROPYTHON_UNIX (the WebAssembly build has no viper)")
    return exe


@pytest.mark.parametrize("seed,acts", [(5, ["i8"]), (6, ["fp4", "i8"]), (7, ["fp4", "fp4"])])
def test_viper_tier_matches_reference(tmp_path, seed, acts):
    exe = unix_micropython()
    blob = random_model(TOOLS, seed=seed, d=40, f=80, layers=len(acts), acts=acts)
    f = tmp_path / "m.rku"
    f.write_bytes(blob)
    code = SCRIPT % (str(paths.FIRMWARE), str(f), json.dumps(QUERIES))
    p = subprocess.run([exe, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["tier"] in ("viper", "native")
    if "fp4" in acts and out["tier"] == "viper":
        assert out["viper_tmv4"], "FP4 layers on the viper tier should use rkfw.fp4_viper.tmv4"
    r = Reference(rku.load(blob))
    assert out["calls"] == [r.run(q)[0] for q in QUERIES]
