"""The I2C transport: the register map of docs/i2c.md, end to end on the virtual board (the firmware's
I2CTarget transport on both runtimes, the simulated I2CTarget applying MicroPython's memory-mode rules,
the host's I2CLink over the simulated bus), plus the simulated target's rules on their own."""
import hashlib
import importlib.util
import json
import os
import struct
import time

import pytest

from reku import i2c, paths
from reku.client import Client
from reku.errors import RekuError
from reku.sim import VirtualBoard, populate
from rkfw import i2c_target, proto

from proto_support import HOME_MODEL, variant_model

ADDR = 0x42
OLD_SHA = hashlib.sha256(HOME_MODEL.read_bytes()).hexdigest()
NEW = variant_model("home-variant-i2c")
NEW_SHA = hashlib.sha256(NEW).hexdigest()
READY_PIN = 15          # pico.json


@pytest.fixture
def i2c_board(runtime, tmp_path):
    d = tmp_path / "board"
    populate(d, "pico", "home")
    (d / "reku.json").write_text(json.dumps({"transports": ["i2c"]}))
    with VirtualBoard(runtime=runtime, state_dir=str(d)) as vb:
        vb.bus = "sim:" + vb.port
        yield vb


def test_query_info_upload_over_i2c(i2c_board):
    with Client.i2c(i2c_board.bus, ADDR, timeout=30) as c:
        info = c.info()
        assert info["transports"] == ["i2c0@0x42"]
        assert info["model"]["sha256"] == OLD_SHA
        assert c.ping(b"x" * proto.MAX_PAYLOAD) > 0
        calls = c.call("turn on the kitchen light")
        assert c.upload_model(NEW)["sha256"] == NEW_SHA
        assert c.info()["model"]["sha256"] == NEW_SHA
        assert c.call("turn on the kitchen light") == calls     # same weights, other id
    with Client.i2c(i2c_board.bus, ADDR, ready_pin=READY_PIN, timeout=30) as c:
        assert c.info()["model"]["sha256"] == NEW_SHA
        assert c.stats()["uploads"] == 1


def _wait_ready(bus, timeout=30):
    end = time.monotonic() + timeout
    while bus.pin(READY_PIN) != 0:
        assert time.monotonic() < end, "READY pin never went low"
        time.sleep(0.002)


def test_register_map_status_ready_pin_and_ack(i2c_board):
    bus = i2c.SimBus(i2c_board.port, ADDR)
    link = i2c.I2CLink(bus)
    assert link.regs(i2c_target.I2C_MAGIC, 4) == b"reku"
    assert link.regs(i2c_target.I2C_MAP, 1)[0] == i2c_target.I2C_MAP_VERSION
    assert struct.unpack("<H", link.regs(i2c_target.I2C_WINDOW, 2))[0] == proto.MAX_WIRE
    st, rid, n = link.status()
    assert st & i2c_target.ST_BOOT and not st & i2c_target.ST_READY and bus.pin(READY_PIN) == 1
    link.write(proto.encode(proto.PING, 9, b"abc"))
    _wait_ready(bus)
    st, rid2, n = link.status()
    assert st & i2c_target.ST_READY and not st & i2c_target.ST_BUSY and rid2 == (rid + 1) & 0xFF
    reply = link.regs(i2c_target.I2C_REPLY, n)
    assert proto.decode(reply[:-1]) == (proto.PING | proto.REPLY, 9, b"abc")
    link.control(i2c_target.CTRL_ACK)
    end = time.monotonic() + 30
    while link.status()[0] & i2c_target.ST_READY:
        assert time.monotonic() < end
    st, _rid, _n = link.status()
    assert not st & (i2c_target.ST_READY | i2c_target.ST_BOOT) and bus.pin(READY_PIN) == 1
    # the same request again: the board answers from its cache (same bytes, counted as a duplicate)
    link.write(proto.encode(proto.PING, 9, b"abc"))
    assert link.read(30) == reply
    link.write(proto.encode(proto.STATS, 10))
    stats = json.loads(proto.decode(link.read(30)[:-1])[2])
    assert stats["duplicates"] == 1
    bus.close()


def test_small_transfers_like_an_arduino_wire_buffer(i2c_board):
    """Writes of 32 bytes (2 address + 30 data) and reads of 32: the request is assembled in the window
    from several writes, the reply read in several pieces."""
    bus = i2c.SimBus(i2c_board.port, ADDR)
    c = Client(i2c.I2CLink(bus, max_write=32, max_read=32), timeout=30)
    assert c.info()["model"]["sha256"] == OLD_SHA
    assert c.ping(bytes(range(1, 256)) * 3) > 0
    c.close()


def test_cut_write_and_garbage_recover(i2c_board):
    bus = i2c.SimBus(i2c_board.port, ADDR)
    link = i2c.I2CLink(bus)
    good = proto.encode(proto.PING, 21, b"after the cut")
    # half a frame (the controller restarted), then a whole frame written over it
    link.write(proto.encode(proto.PING, 20, b"x" * 300)[:150])
    time.sleep(0.1)
    assert not link.status()[0] & i2c_target.ST_READY
    link.write(good)
    assert proto.decode(link.read(30)[:-1]) == (proto.PING | proto.REPLY, 21, b"after the cut")
    # a longer cut frame, then a shorter complete one over it (no flush): the first 0x00 ends it
    link.write(proto.encode(proto.PING, 22, b"y" * 600)[:500])
    link.write(good)
    assert proto.decode(link.read(30)[:-1]) == (proto.PING | proto.REPLY, 21, b"after the cut")
    # a window full of bytes without a delimiter: dropped with an ERROR reply
    link.write(b"\x01" * proto.MAX_WIRE)
    t, _seq, p = proto.decode(link.read(30)[:-1])
    assert t == proto.ERROR and p[0] in (proto.E_FRAME, proto.E_CRC, proto.E_TOO_LONG)
    link.write(good)
    assert proto.decode(link.read(30)[:-1])[2] == b"after the cut"
    bus.close()


def test_reset_over_i2c(i2c_board):
    with Client.i2c(i2c_board.bus, ADDR, timeout=30) as c:
        assert c.stats()["frames"] >= 1
        c.reset()
        assert c.info()["model"]["sha256"] == OLD_SHA
        assert c.stats()["frames"] == 2                       # a fresh boot: HELLO and this STATS


def test_nobody_at_another_address(i2c_board):
    with pytest.raises(i2c.BusError) as e:
        Client.i2c(i2c_board.bus, 0x43)
    assert "0x43" in str(e.value)


def test_board_without_i2c_target_serves_uart(runtime, tmp_path):
    d = tmp_path / "board"
    populate(d, "esp32-devkitc", "home")
    (d / "reku.json").write_text(json.dumps({"transports": ["i2c"]}))
    with VirtualBoard(runtime=runtime, board="esp32-devkitc", state_dir=str(d)) as vb:
        assert any("no I2C target" in line for line in vb.lines)
        with Client.serial(vb.port, timeout=20) as c:
            assert c.info()["transports"] == ["uart2"]


# ---- the host side's parsing and the Linux bus -----------------------------------------------------------

def test_parse_target():
    assert i2c.parse_target("1:0x42") == (1, 0x42)
    assert i2c.parse_target("/dev/i2c-3:66") == ("/dev/i2c-3", 66)
    assert i2c.parse_target("sim:/dev/pts/4:0x42") == ("sim:/dev/pts/4", 0x42)
    for bad in ("1", ":0x42", "1:0x99", "1:zz", "1:0x03"):
        with pytest.raises(RekuError):
            i2c.parse_target(bad)


def test_missing_linux_bus_is_reported():
    with pytest.raises(i2c.BusError) as e:
        Client.i2c(97, ADDR)
    assert "/dev/i2c-97" in str(e.value)


# ---- the simulated I2CTarget follows extmod/machine_i2c_target.c ------------------------------------------

@pytest.fixture
def hal(monkeypatch):
    master, slave = os.openpty()
    import tty
    tty.setraw(slave)
    monkeypatch.setenv("REKU_SIM_UART_FD", str(master))
    spec = importlib.util.spec_from_file_location("reku_test_hal_machine", paths.ROOT / "host/reku/sim/hal/machine.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.slave_path = os.ttyname(slave)
    yield mod
    for t in list(mod._targets.values()):
        t.deinit()


def test_simulated_target_memory_mode_rules(hal):
    mem = bytearray(300)
    events = []
    t = hal.I2CTarget(0, 0x30, mem=mem, mem_addrsize=16)
    t.irq(lambda tgt: events.append((tgt.irq().flags(), tgt.memaddr)),
          hal.I2CTarget.IRQ_END_WRITE | hal.I2CTarget.IRQ_END_READ)
    bus = i2c.SimBus(hal.slave_path, 0x30, timeout=10)
    bus.write(b"\x00\x10abc")
    assert mem[0x10:0x13] == b"abc" and events == [(hal.I2CTarget.IRQ_END_WRITE, 0x10)]
    bus.write(b"\x00\x20")                                  # address only: no END_WRITE
    assert events[-1] == (hal.I2CTarget.IRQ_END_WRITE, 0x10) and len(events) == 1
    mem[0x20:0x25] = b"hello"
    assert bus.read(3) == b"hel" and bus.read(2) == b"lo"   # reads continue where the last one ended
    assert events[-1] == (hal.I2CTarget.IRQ_END_READ, 0x20)
    bus.write(struct.pack(">H", 299) + b"xy")               # wrap-around at the end of mem
    assert mem[299] == ord("x") and mem[0] == ord("y")
    bus.write(struct.pack(">H", 0xFFFF) + b"z")             # the address is taken modulo len(mem)
    assert mem[0xFFFF % 300] == ord("z") and t.memaddr == 0xFFFF % 300
    bus.write(b"")                                          # an empty write still ends as a write
    assert events[-1][0] == hal.I2CTarget.IRQ_END_WRITE
    with pytest.raises(i2c.BusError):
        i2c.SimBus(hal.slave_path, 0x31, timeout=10).write(b"\x00\x00")
    with pytest.raises(ValueError):
        t.irq(lambda tgt: None, hal.I2CTarget.IRQ_READ_REQ)  # needs hard=True, as on rp2
    p = hal.Pin(7, hal.Pin.OPEN_DRAIN, value=1)
    assert bus.pin(7) == 1
    p.value(0)
    assert bus.pin(7) == 0
    bus.close()


def test_sim_cli_i2c_switch_serves_the_bus(tmp_path):
    """`reku sim --i2c` turns the pty into the I2C bus; `reku query --i2c sim:PTY:ADDR` gets a call over it."""
    import subprocess
    import sys
    link = str(tmp_path / "bus")
    sim = subprocess.Popen([sys.executable, "-m", "reku.cli", "sim", "--runtime", "cpython", "--i2c", "--quiet",
                            "--link", link], stdout=subprocess.PIPE, text=True)
    try:
        lines = [sim.stdout.readline() for _ in range(3)]
        assert "--i2c sim:%s:0x42" % link in lines[2], lines
        r = subprocess.run([sys.executable, "-m", "reku.cli", "query", "--i2c", "sim:%s:0x42" % link,
                            "lock the front door"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert '"calls"' in r.stdout
    finally:
        sim.terminate()
        sim.wait(10)
