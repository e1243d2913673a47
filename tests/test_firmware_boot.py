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


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "not a model"])
def test_bad_model_at_boot_still_answers_info(runtime, damage, tmp_path):
    """A damaged model file: the board boots, INFO says why there is no model, QUERY gets E_NO_MODEL; an
    upload of a good model then serves without a reboot."""
    require_runtime(runtime)
    from reku import sim
    from reku.client import BoardError
    from rkfw import proto
    good = paths.model_path("home").read_bytes()
    bad = {"truncated": good[:len(good) // 2],
           "flipped byte": good[:100] + bytes([good[100] ^ 0x40]) + good[101:],
           "not a model": b"this is not a model file\n" * 10}[damage]
    d = tmp_path / "board"
    sim.populate(d, "pico", "home")
    (d / "model.rku").write_bytes(bad)
    with VirtualBoard(runtime=runtime, state_dir=str(d)) as vb:
        with Client.serial(vb.port, timeout=20) as c:
            info = c.info()
            assert info["model"] is None
            reason = info["model_error"]
            assert reason.startswith("model.rku: "), reason
            assert any(w in reason for w in ("truncated", "checksum", "magic")), reason
            with pytest.raises(BoardError) as e:
                c.query("turn on the kitchen light")
            assert e.value.code == proto.E_NO_MODEL and reason in str(e.value)
            c.upload_model(good)
            assert c.call("turn on the kitchen light")
    assert any("model not loaded: model.rku: " in ln for ln in vb.lines), vb.lines


OUT_OF_RAM = r'''
import json, resource, sys
sys.path.insert(0, FIRMWARE)
from rkfw import app as A, proto
a = A.App({"name": "pico"}, {})
with open("/proc/self/status") as f:
    vm = [int(ln.split()[1]) for ln in f if ln.startswith("VmSize:")][0] * 1024
# the address space this process has now plus 64 MB: the engine of this model needs ~400 MB
resource.setrlimit(resource.RLIMIT_AS, (vm + (64 << 20), resource.getrlimit(resource.RLIMIT_AS)[1]))
ok = a.load_model()
hello = proto.decode(a.handle((proto.HELLO, 1, b""))[:-1])
query = proto.decode(a.handle((proto.QUERY, 2, b"turn on the kitchen light"))[:-1])
print(json.dumps({"ok": ok, "error": a.model_error, "info": json.loads(hello[2]),
                  "query": [query[0], proto.parse_error(query[2])[0]]}))
'''


def test_model_too_big_for_ram_reports_it_and_info_answers(tmp_path):
    """A model whose buffers do not fit in RAM (CPython board with its address space capped, so that
    MemoryError really happens; MicroPython's wasm heap grows on demand and cannot be capped): a clear error,
    INFO still answers."""
    import subprocess
    import sys
    from reku.model.synth import random_model
    from rkfw import proto
    tools = json.loads((paths.SKILLS / "home" / "tools.json").read_text())
    (tmp_path / "model.rku").write_bytes(random_model(tools, max_in=10_000_000))
    r = subprocess.run([sys.executable, "-c", "FIRMWARE = %r\n" % str(paths.FIRMWARE) + OUT_OF_RAM],
                       cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["ok"] is False
    assert "model.rku does not fit in RAM" in out["error"], out["error"]
    assert out["info"]["model"] is None and out["info"]["model_error"] == out["error"]
    assert out["query"] == [proto.ERROR, proto.E_NO_MODEL]
