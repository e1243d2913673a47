"""The lean boot (issue 17), on both runtimes: main.py's path (rkfw.boot.start, then rkfw.app.drop("boot")) on
the pico profile with the bundled model leaves only the serve loop's and the inference's modules imported, and
the rare requests import rkfw.admin for their reply only. What that saves is measured by
benchmarks/bench_board.py (docs/firmware.md); this checks which code stays."""
import json

import pytest

from reku import paths
from rkfw import proto

from test_firmware_busy import SCENARIO, model_prelude
from test_firmware_status import run_scenario
from conftest import require_runtime

FAKES = SCENARIO[SCENARIO.index("class Pin:"):SCENARIO.index('sys.modules["machine"] = Machine')]

BOOT = r'''
import sys, json
sys.path.insert(0, '/fw')
''' + FAKES + r'''
sys.modules["machine"] = Machine
open("board.json", "w").write(PROFILE)
model = open(MODEL, "rb").read()
import rkfw.app
import rkfw.boot
served = rkfw.boot.start(model)
model = None
rkfw.app.drop("boot")
from rkfw import proto
app, transports = served
def mods():
    return sorted(k for k in sys.modules if k.startswith("rkfw"))
out = {"after_boot": mods(), "transports": [t.name for t in transports]}
r = app.handle((proto.QUERY, 1, b"turn on the kitchen light"))
out["query"] = json.loads(proto.decode(r[:-1])[2])["calls"]
out["after_query"] = mods()
r = app.handle((proto.HELLO, 2, b""))
out["hello"] = proto.decode(r[:-1])[0]
out["after_hello"] = mods()
out["tier"] = app.engine.tier
print("RESULT " + json.dumps(out))
'''


@pytest.fixture(scope="module", params=["cpython", "micropython"])
def lean(request, tmp_path_factory):
    require_runtime(request.param)
    profile = (paths.BOARDS / "pico.json").read_text()
    return run_scenario(request.param, tmp_path_factory.mktemp(request.param),
                        model_prelude(request.param) + "PROFILE = %r\n" % profile + BOOT)


def test_a_uart_board_serves_with_only_the_serve_loop_and_inference_imported(lean):
    serving = {"rkfw", "rkfw.app", "rkfw.port", "rkfw.proto", "rkfw.status", "rkfw.transport", "rkfw.rku",
               "rkfw.infer", "rkfw.kernels"}
    tier_module = {"python": {"rkfw.kernels_py"}, "viper": {"rkfw.kernels_viper"}, "native": set()}[lean["tier"]]
    assert lean["transports"] == ["uart0"]
    assert set(lean["after_boot"]) == serving | tier_module, lean["after_boot"]
    # not there: boot (dropped), admin, auth (no key), boards (the host validates profiles), i2c_target, lowrank
    assert lean["query"] == [{"name": "set_light", "arguments": {"room": "kitchen", "state": "on"}}]
    assert lean["after_query"] == lean["after_boot"]


def test_a_rare_request_imports_admin_for_its_reply_only(lean):
    assert lean["hello"] == proto.HELLO | proto.REPLY
    assert lean["after_hello"] == lean["after_boot"]
