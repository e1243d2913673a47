"""Boot the virtual board with every profile in hw/boards, on both runtimes: INFO names that board and its
chip, the model is loaded, and a query is answered over the profile's UART."""
import json

import pytest

from reku import paths
from reku.client import Client
from reku.sim import VirtualBoard
from rkfw import boards

from conftest import require_runtime

PROFILES = boards.names(str(paths.BOARDS))


def test_every_profile_is_listed():
    assert len(PROFILES) >= 5
    assert {"pico", "pico2", "esp32-devkitc", "esp32-s3-devkitc", "xiao-esp32c3"} <= set(PROFILES)


def boot_and_query(runtime, name, config=None):
    profile = boards.load(name, str(paths.BOARDS))
    with VirtualBoard(runtime=runtime, board=name, model="home", config=config) as vb:
        with Client.serial(vb.port, timeout=20) as c:
            info = c.info()
            r = c.query("turn on the kitchen light")
    assert info["board"] == name
    assert info["chip"] == profile["chip"]
    assert info["runtime"].startswith(runtime)
    assert info["model"] is not None, info["model_error"]
    assert info["model_error"] is None
    assert len(info["model"]["sha256"]) == 64
    assert r.calls, "no call for a plain light request on %s" % name
    assert {c.name for c in r.calls} <= {t["function"]["name"] for t in json.loads(
        (paths.SKILLS / "home" / "tools.json").read_text())}
    assert r.us > 0 and r.tokens_in > 0 and r.tokens_out > 0
    return profile, info


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
@pytest.mark.parametrize("name", PROFILES)
def test_boot_each_profile(runtime, name):
    require_runtime(runtime)
    profile, info = boot_and_query(runtime, name)
    assert info["transports"] == ["uart%d" % profile["uart"]["id"]]


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_profile_without_i2c_target_serves_uart(runtime):
    """esp32-devkitc has no I2C target: configured for I2C it still boots and answers on its UART."""
    require_runtime(runtime)
    name = [n for n in PROFILES if not boards.load(n, str(paths.BOARDS))["i2c_target"]]
    assert "esp32-devkitc" in name
    profile, info = boot_and_query(runtime, "esp32-devkitc", config={"transports": ["i2c"]})
    assert info["transports"] == ["uart%d" % profile["uart"]["id"]]
