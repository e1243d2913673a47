"""`reku wiring`: the SVG is well-formed, carries every required connection with the pins of the profile,
crosses TX and RX, draws the pull-ups, and an unknown board is one line."""
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from reku import wiring
from rkfw import boards

SVG = "{http://www.w3.org/2000/svg}"
REKU = [sys.executable, "-m", "reku.cli"]
PI_HEADER = {"3v3": "1", "5v": "2", "gnd": "6", "tx": "8", "rx": "10", "sda": "3", "scl": "5"}


def reku(*args, cwd=None):
    return subprocess.run(REKU + list(args), capture_output=True, text=True, timeout=120, cwd=cwd)


def draw(name, host):
    root = ET.fromstring(wiring.render_svg(boards.load(name), host).encode("utf-8"))
    assert root.tag == SVG + "svg"
    wires = {g.get("data-signal"): g for g in root.iter(SVG + "g") if g.get("class") == "wire"}
    pulls = {g.get("data-net"): g for g in root.iter(SVG + "g") if g.get("class") == "pullup"}
    texts = [t.text or "" for t in root.iter(SVG + "text")]
    return root, wires, pulls, texts


@pytest.mark.parametrize("host", wiring.host_names())
@pytest.mark.parametrize("name", boards.names())
def test_every_required_connection_with_the_profiles_pins(name, host):
    p = boards.load(name)
    root, wires, pulls, texts = draw(name, host)
    expected = {"uart-tx": p["uart"]["tx"], "uart-rx": p["uart"]["rx"], "gnd": None, "5v": None}
    if p["i2c_target"]:
        expected.update({"sda": p["i2c"]["sda"], "scl": p["i2c"]["scl"]})
    if p["ready_pin"] is not None:
        expected["ready"] = p["ready_pin"]
    assert set(wires) == set(expected)
    for sig, gpio in expected.items():
        w = wires[sig]
        if gpio is None:
            assert w.get("data-board-gpio") == ""
        else:
            assert int(w.get("data-board-gpio")) == gpio
            assert w.get("data-board-pin") == boards.header_pin(p, gpio)
            # the labels a person follows: GPIO name and header pin, side by side
            assert any(boards.gpio_name(p, gpio) in t and
                       (boards.header_pin(p, gpio) in t) for t in texts), (sig, texts)
    assert wires["gnd"].get("data-board-pin") == p["pin_gnd"]
    assert wires["5v"].get("data-board-pin") == p["pin_5v"]
    assert wires["5v"].get("data-optional") == "yes" and wires["gnd"].get("data-optional") == "no"
    # wires are drawn: every wire group has a path
    for w in wires.values():
        assert w.find(SVG + "path") is not None


@pytest.mark.parametrize("name", boards.names())
def test_tx_and_rx_are_crossed(name):
    p = boards.load(name)
    _, wires, _, _ = draw(name, "pi")
    tx, rx = wires["uart-tx"], wires["uart-rx"]
    assert (int(tx.get("data-board-gpio")), tx.get("data-host-role"), tx.get("data-host-pin")) == \
        (p["uart"]["tx"], "rx", PI_HEADER["rx"])
    assert (int(rx.get("data-board-gpio")), rx.get("data-host-role"), rx.get("data-host-pin")) == \
        (p["uart"]["rx"], "tx", PI_HEADER["tx"])
    # and drawn crossed: the host's TX sits on the board's TX row and its RX on the board's RX row,
    # so each wire goes from one row to the other and the two wires cross
    def ends(g):
        """{x: y} of the two ends of a wire path made of M, H and L commands."""
        x = y = None
        pts = []
        for cmd, arg in re.findall(r"([MHL])([^MHL]*)", g.find(SVG + "path").get("d")):
            if cmd == "H":
                x = int(arg)
            else:
                x, y = (int(v) for v in arg.split(","))
            pts.append((x, y))
        return {pts[0][0]: pts[0][1], pts[-1][0]: pts[-1][1]}
    t, r = ends(tx), ends(rx)
    board_x, host_x = wiring.BOARD_X1, wiring.HOST_X0
    assert t[board_x] != t[host_x]
    assert t[board_x] == r[host_x] and t[host_x] == r[board_x]


def test_raspberry_pi_header_numbers():
    _, wires, pulls, texts = draw("pico", "pi")
    assert wires["sda"].get("data-host-pin") == PI_HEADER["sda"]
    assert wires["scl"].get("data-host-pin") == PI_HEADER["scl"]
    assert wires["gnd"].get("data-host-pin") == PI_HEADER["gnd"]
    assert wires["5v"].get("data-host-pin") == PI_HEADER["5v"]
    assert "GPIO15 RXD · pin 10" in texts and "GP0 · pin 1" in texts


@pytest.mark.parametrize("host", wiring.host_names())
def test_pull_ups_on_i2c_and_ready(host):
    _, wires, pulls, _ = draw("pico", host)
    assert set(pulls) == {"sda", "scl", "ready"}
    assert pulls["ready"].get("data-value") == wiring.READY_PULLUP
    if host == "pi":
        # the Pi has its own 1.8 kΩ on GPIO2/3: drawn as being on the Pi, not as parts to add
        assert {pulls[n].get("data-on-host") for n in ("sda", "scl")} == {"yes"}
        assert pulls["sda"].get("data-value") == "1.8 kΩ"
    else:
        assert pulls["sda"].get("data-value") == wiring.I2C_PULLUP
    for g in pulls.values():
        assert g.find(SVG + "rect") is not None     # the resistor itself


def test_original_esp32_has_no_i2c_and_says_so():
    _, wires, pulls, texts = draw("esp32-devkitc", "pi")
    assert "sda" not in wires and "scl" not in wires and set(pulls) == {"ready"}
    assert any("no I2C target" in t for t in texts)
    assert not any("/dev/i2c-1" in t for t in texts)


def test_arduino_gets_a_level_shifter():
    root, _, _, texts = draw("pico", "arduino")
    assert [g for g in root.iter(SVG + "g") if g.get("class") == "level-shifter"]
    root, _, _, _ = draw("pico", "pi")
    assert not [g for g in root.iter(SVG + "g") if g.get("class") == "level-shifter"]


def test_cli_writes_the_svg_and_prints_the_table(tmp_path):
    out = tmp_path / "w.svg"
    r = reku("wiring", "--board", "esp32-s3-devkitc", "--host", "generic", "--out", str(out))
    assert r.returncode == 0, r.stderr
    ET.parse(out)
    assert "GPIO17 (J1-10)" in r.stdout and "wrote %s" % out in r.stdout
    r = reku("wiring", "--board", "pico", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "pico-pi.svg").exists()


def test_unknown_board_is_one_line():
    r = reku("wiring", "--board", "pico9", "--out", "/tmp/never.svg")
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1
    assert r.stderr.startswith("reku wiring: error: unknown board 'pico9' (known: ")


def test_invalid_profile_path_is_one_line(tmp_path):
    bad = tmp_path / "b.json"
    bad.write_text('{"name": "b"}')
    r = reku("wiring", "--board", str(bad), "--out", str(tmp_path / "x.svg"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "%s: title missing" % bad in r.stderr


def test_committed_diagrams_are_current():
    """docs/wiring/*.svg are what `reku wiring` draws today (regenerate: see docs/wiring.md)."""
    from reku import paths
    d = paths.ROOT / "docs" / "wiring"
    for name in boards.names():
        for host in wiring.host_names():
            f = d / ("%s-%s.svg" % (name, host))
            assert f.exists(), "missing %s" % f
            assert f.read_text(encoding="utf-8") == wiring.render_svg(boards.load(name), host), \
                "%s is stale" % f
