"""Board profiles (hw/boards/*.json) and their one reader, firmware/rkfw/boards.py, on CPython and on
real MicroPython (the WebAssembly build)."""
import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from reku import paths, sim
from rkfw import boards

REQUIRED = {"pico": "rp2040", "pico2": "rp2350", "esp32-devkitc": "esp32",
            "esp32-s3-devkitc": "esp32s3", "esp32-s3-n8r8": "esp32s3", "xiao-esp32c3": "esp32c3"}
HELPER = Path(__file__).parent / "helpers" / "mp_boards.mjs"


def profile_files():
    return sorted(paths.BOARDS.glob("*.json"))


def test_required_boards_exist_with_their_chip():
    for name, chip in REQUIRED.items():
        assert boards.load(name)["chip"] == chip


def test_names_lists_every_profile_file_and_name_matches_file():
    assert boards.names() == [p.stem for p in profile_files()]
    for p in profile_files():
        assert boards.load(p.stem)["name"] == p.stem
        assert boards.load(str(p)) == json.loads(p.read_text())


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_profile_is_consistent_with_its_chip(name):
    p = boards.load(name)
    c = boards.CHIPS[p["chip"]]
    assert (p["port"], p["firmware_format"], p["firmware_offset"], p["native_arch"]) == \
        (c["port"], c["format"], c["offset"], c["arch"])
    # every signal pin has a header label so the wiring diagram can name it
    for pin in (p["uart"]["tx"], p["uart"]["rx"], p["i2c"]["sda"], p["i2c"]["scl"], p["ready_pin"]):
        assert boards.header_pin(p, pin)


def test_facts_that_flashing_and_transports_rely_on():
    # MicroPython's own board.json deploy_options: ESP32 at 0x1000, S3 and C3 at 0
    assert boards.load("esp32-devkitc")["firmware_offset"] == 0x1000
    assert boards.load("esp32-s3-devkitc")["firmware_offset"] == 0
    assert boards.load("xiao-esp32c3")["firmware_offset"] == 0
    # the original ESP32 has no machine.I2CTarget; rp2 and the newer ESP32s do
    assert [n for n in sorted(REQUIRED) if not boards.load(n)["i2c_target"]] == ["esp32-devkitc"]
    assert {boards.load(n)["i2c"]["address"] for n in REQUIRED} == {boards.DEFAULT_I2C_ADDRESS}
    # stock firmware has no ROMFS
    assert not any(boards.load(n)["romfs"] for n in REQUIRED)
    # the XIAO's D6/D7 are UART0, where ESP32_GENERIC_C3 keeps its REPL: the profile must avoid them
    xiao = boards.load("xiao-esp32c3")
    assert not {xiao["uart"]["tx"], xiao["uart"]["rx"]} & {20, 21}


def _tmp_profile(tmp_path, mutate, name="x"):
    p = copy.deepcopy(boards.load("esp32-devkitc"))
    p["name"] = name
    mutate(p)
    (tmp_path / (name + ".json")).write_text(json.dumps(p))
    return tmp_path


def _del(*keys):
    def f(p):
        d = p
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]
    return f


def _set(value, *keys):
    def f(p):
        d = p
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return f


@pytest.mark.parametrize("mutate,message", [
    (_del("uart", "tx"), "uart.tx missing"),
    (_del("i2c"), "i2c missing"),
    (_del("chip"), "chip missing"),
    (_set("esp8266", "chip"), "chip 'esp8266' unknown"),
    (_set("rp2", "port"), "port must be 'esp32' for chip esp32"),
    (_set(0, "firmware_offset"), "firmware_offset must be 0x1000 for chip esp32"),
    (_set("uf2", "firmware_format"), "firmware_format must be 'bin' for chip esp32"),
    (_set("rv32imc", "native_arch"), "native_arch must be 'xtensawin' for chip esp32"),
    (_set(7, "uart", "tx"), "uart.tx = GPIO7 is used by the flash chip on the esp32"),
    (_set(34, "uart", "tx"), "uart.tx = GPIO34 is input-only on the esp32"),
    (_set(40, "i2c", "sda"), "i2c.sda = 40 is not a GPIO of the esp32 (0..39)"),
    (_set(16, "uart", "tx"), "uart.tx and uart.rx are both GPIO16"),
    (_set(0x80, "i2c", "address"), "i2c.address must be a 7-bit address"),
    (_set("0x42", "i2c", "address"), "i2c.address must be an integer"),
    (_set(2000000, "uart", "baud"), "uart.baud must be 1200..1000000"),
    (_set(["native", "asm"], "emitters"), "emitters must be a list of native and viper"),
    (_set({"17": "J3-11"}, "header"), "header has no pin label for GPIO16 (uart.rx)"),
    (_set(600, "heap_kb"), "heap_kb larger than ram_kb"),
    (_set(200, "block_kb"), "block_kb (the largest single allocation) larger than heap_kb"),
    (_set(0, "block_kb"), "block_kb must be positive"),
    (_set(7, "mp_variant"), "mp_variant must be a string"),
    (_set(True, "flash_kb"), "flash_kb must be an integer"),
    (_set(2, "led"), "led"),
])
def test_invalid_profile_is_one_clear_error_naming_file_and_field(tmp_path, mutate, message):
    d = _tmp_profile(tmp_path, mutate)
    with pytest.raises(boards.BoardError) as e:
        boards.load("x", directory=str(d))
    text = str(e.value)
    assert text.startswith("%s/x.json: " % d)
    assert message in text
    assert "\n" not in text


def test_error_names_the_repository_path_when_loaded_from_hw_boards():
    with pytest.raises(boards.BoardError) as e:
        boards.parse(json.dumps({k: v for k, v in boards.load("pico").items() if k != "uart"}),
                     "hw/boards/pico.json")
    assert str(e.value) == "hw/boards/pico.json: uart missing"


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(boards.BoardError) as e:
        boards.load("pico3")
    assert str(e.value) == "unknown board 'pico3' (known: %s)" % ", ".join(boards.names())


def test_bad_json_and_missing_path(tmp_path):
    (tmp_path / "broken.json").write_text("{ nope")
    with pytest.raises(boards.BoardError, match="broken.json: not valid JSON"):
        boards.load(str(tmp_path / "broken.json"))
    with pytest.raises(boards.BoardError, match="no such board profile"):
        boards.load(str(tmp_path / "absent.json"))


def test_deployed_profile_is_read_from_board_json_by_default(tmp_path, monkeypatch):
    shutil.copyfile(paths.BOARDS / "pico2.json", tmp_path / "board.json")
    monkeypatch.chdir(tmp_path)
    assert boards.load()["name"] == "pico2"


MP_CODE = r"""
import json
from rkfw import boards
out = {"names": boards.names('/hw/boards'), "profiles": {}, "errors": []}
for n in out["names"]:
    out["profiles"][n] = boards.load(n, '/hw/boards')
bad = boards.load('pico', '/hw/boards')
del bad['uart']['tx']
try:
    boards.validate(bad, 'hw/boards/pico.json')
except boards.BoardError as e:
    out["errors"].append(str(e))
try:
    boards.load('pico3', '/hw/boards')
except boards.BoardError as e:
    out["errors"].append(str(e))
f = open('/board.json', 'w'); f.write(json.dumps(boards.load('xiao-esp32c3', '/hw/boards'))); f.close()
import os
os.chdir('/')
out["deployed"] = boards.load()["name"]
print("RESULT " + json.dumps(out))
"""


def test_reader_gives_the_same_profiles_and_errors_on_micropython(tmp_path):
    mjs = sim.micropython_mjs()
    if not (shutil.which("node") and mjs):
        pytest.fail("MicroPython WebAssembly build missing (run `make test`, which installs it)")
    code = tmp_path / "code.py"
    code.write_text(MP_CODE)
    r = subprocess.run(["node", str(HELPER), str(mjs), str(paths.FIRMWARE), str(paths.BOARDS), str(code)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")][-1]
    got = json.loads(line[len("RESULT "):])
    assert got["names"] == boards.names()
    assert got["profiles"] == {n: boards.load(n) for n in boards.names()}
    assert got["errors"] == ["hw/boards/pico.json: uart.tx missing",
                             "unknown board 'pico3' (known: %s)" % ", ".join(boards.names())]
    assert got["deployed"] == "xiao-esp32c3"
