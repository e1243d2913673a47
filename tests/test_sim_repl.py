"""The virtual board's REPL mode: MicroPython's own REPL on a pty, driven by the real mpremote (CLI and
Python API), with the board filesystem written back to the state dir."""
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial
from mpremote.transport_serial import SerialTransport

from reku.errors import RekuError
from reku.sim import VirtualBoard

from conftest import require_runtime

MPREMOTE = [str(Path(sys.executable).with_name("mpremote"))]


def mpremote(port, *args, timeout=60):
    r = subprocess.run(MPREMOTE + ["connect", port] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    return r


@pytest.fixture
def repl_board(tmp_path):
    require_runtime("micropython")
    state = tmp_path / "board"
    state.mkdir()
    (state / "hello.py").write_text("print('hello from the board')\n")
    vb = VirtualBoard(runtime="micropython", state_dir=state, repl=True, bare=True)
    vb.start()
    yield vb
    vb.stop()


def read_until(s, marker, timeout=10):
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(marker) and time.monotonic() < deadline:
        data += s.read(1)
    return data


def test_mpremote_cli_fs_roundtrip(repl_board, tmp_path):
    port = repl_board.port
    r = mpremote(port, "fs", "ls")
    assert r.returncode == 0, r.stderr
    assert "hello.py" in r.stdout
    payload = os.urandom(3000) + bytes(range(256))
    src = tmp_path / "blob.bin"
    src.write_bytes(payload)
    r = mpremote(port, "fs", "mkdir", ":data", "+", "fs", "cp", str(src), ":data/blob.bin")
    assert r.returncode == 0, r.stderr
    r = mpremote(port, "fs", "sha256sum", ":data/blob.bin")
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(payload).hexdigest() in r.stdout
    back = tmp_path / "back.bin"
    r = mpremote(port, "fs", "cp", ":data/blob.bin", str(back))
    assert r.returncode == 0, r.stderr
    assert back.read_bytes() == payload
    r = mpremote(port, "exec", "import sys; print(sys.implementation.name, sys.implementation._mpy & 0xff)")
    assert r.returncode == 0 and r.stdout.split() == ["micropython", "6"], (r.stdout, r.stderr)
    r = mpremote(port, "run", str(repl_board.board_dir / "hello.py"))
    assert "hello from the board" in r.stdout


def test_missing_file_reports_enoent_like_a_board(repl_board):
    # mpremote turns the board's OSError numbers into messages; the board must use MicroPython's (ENOENT 2).
    r = mpremote(repl_board.port, "fs", "ls", ":nope")
    assert r.returncode != 0
    assert "No such file or directory" in r.stdout + r.stderr or "ENOENT" in r.stdout + r.stderr, r
    t = SerialTransport(repl_board.port, baudrate=115200)
    try:
        t.enter_raw_repl(soft_reset=False)
        assert not t.fs_exists("nope.txt") and t.fs_exists("hello.py")
        t.exit_raw_repl()
    finally:
        t.close()


def test_raw_paste_with_flow_control(repl_board):
    # A command many flow-control windows long goes through raw-paste (mpremote keeps using it only when
    # the board answered the raw-paste request properly).
    t = SerialTransport(repl_board.port, baudrate=115200)
    try:
        t.enter_raw_repl(soft_reset=False)
        lines = ["v%d = %d" % (i, i * 7) for i in range(1500)]
        code = "\n".join(lines) + "\nprint(sum([%s]))\n" % ",".join("v%d" % i for i in range(1500))
        assert len(code) > 20000
        out = t.exec(code)
        assert int(out.strip()) == sum(i * 7 for i in range(1500))
        assert t.use_raw_paste, "the board refused raw-paste mode"
        with pytest.raises(Exception) as e:
            t.exec("raise ValueError('on purpose')")
        assert "ValueError: on purpose" in str(e.value)
        assert t.eval("1+1") == 2        # still in sync after an error
        t.exit_raw_repl()
    finally:
        t.close()


def test_friendly_repl_soft_reset_and_ctrl_c(repl_board):
    with serial.Serial(repl_board.port, timeout=0.2) as s:
        s.write(b"\r\x03")
        time.sleep(0.5)
        s.reset_input_buffer()
        s.write(b"x = 6 * 7\r")
        read_until(s, b">>> ")
        s.write(b"x\r")
        assert b"42" in read_until(s, b">>> ")
        s.write(b"for i in range(3):\r")       # Ctrl-C abandons a continuation line
        read_until(s, b"... ")
        s.write(b"\x03")
        read_until(s, b">>> ")
        s.write(b"\x04")                        # Ctrl-D: soft reset, a fresh interpreter
        data = read_until(s, b">>> ")
        assert b"soft reboot" in data and b"MicroPython v1." in data, data
        s.write(b"x\r")
        assert b"NameError" in read_until(s, b">>> ")


def test_soft_reset_in_raw_repl_like_mpremote(repl_board):
    t = SerialTransport(repl_board.port, baudrate=115200)
    try:
        t.enter_raw_repl(soft_reset=False)
        t.exec("marker = 1")
        t.exit_raw_repl()
        t.enter_raw_repl(soft_reset=True)    # Ctrl-A, Ctrl-D: "soft reboot" then back in the raw REPL
        assert t.eval("'marker' in globals()") is False
        t.exit_raw_repl()
    finally:
        t.close()


def test_filesystem_written_back_on_soft_reset_and_stop(repl_board):
    state = repl_board.board_dir
    r = mpremote(repl_board.port, "exec",
                 "import os\nos.mkdir('lib')\nf = open('lib/a.txt', 'w')\nf.write('abc')\nf.close()\n"
                 "os.remove('hello.py')", "+", "soft-reset")
    assert r.returncode == 0, r.stderr
    assert (state / "lib" / "a.txt").read_text() == "abc"       # written back on the soft reset
    assert not (state / "hello.py").exists()
    r = mpremote(repl_board.port, "exec", "f = open('late.txt', 'w')\nf.write('z' * 5000)\nf.close()")
    assert r.returncode == 0, r.stderr
    repl_board.stop()                                              # ... and when the board stops
    assert (state / "late.txt").read_text() == "z" * 5000


def test_machine_reset_reboots_the_virtual_board(repl_board):
    r = mpremote(repl_board.port, "exec", "open('x.txt', 'w').write('1')", "+", "reset")
    assert r.returncode == 0, r.stderr
    assert (repl_board.board_dir / "x.txt").read_text() == "1"
    r = mpremote(repl_board.port, "exec", "print(open('x.txt').read())")
    assert r.returncode == 0 and r.stdout.strip() == "1", r


def test_repl_mode_needs_the_micropython_runtime():
    with pytest.raises(RekuError) as e:
        VirtualBoard(runtime="cpython", repl=True)
    assert "MicroPython runtime" in str(e.value)


def test_romfs_partition_with_mpremote(tmp_path):
    require_runtime("micropython")
    src = tmp_path / "romsrc"
    src.mkdir()
    (src / "data.bin").write_bytes(bytes(range(256)) * 10)
    state = tmp_path / "board"
    with VirtualBoard(runtime="micropython", state_dir=state, repl=True, bare=True, romfs_kb=64) as vb:
        r = mpremote(vb.port, "romfs", "query")
        assert r.returncode == 0 and "65536 bytes" in r.stdout and "Not a valid ROMFS" in r.stdout, r
        r = mpremote(vb.port, "romfs", "deploy", str(src))
        assert r.returncode == 0 and "ROMFS image deployed" in r.stdout, r.stdout + r.stderr
        r = mpremote(vb.port, "soft-reset", "exec",
                     "import os, hashlib, binascii\nprint(os.listdir('/rom'))\n"
                     "f = open('/rom/data.bin', 'rb')\nm = memoryview(f)\n"
                     "print(len(m), binascii.hexlify(hashlib.sha256(m).digest()).decode())")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.split("\n")
        assert lines[0] == "['data.bin']"
        assert lines[1] == "2560 %s" % hashlib.sha256(bytes(range(256)) * 10).hexdigest()
    assert (state / ".reku-sim" / "romfs.img").stat().st_size == 65536
    assert not (state / "data.bin").exists()
