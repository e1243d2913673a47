"""The `reku` command surface: every subcommand answers --help; errors are one line and non-zero."""
import subprocess
import sys

import pytest

from reku.cli import COMMANDS

REKU = [sys.executable, "-m", "reku.cli"]


def reku(*args):
    return subprocess.run(REKU + list(args), capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_has_help(name):
    r = reku(name, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: reku %s" % name)


def test_top_level_help_lists_every_subcommand():
    r = reku("--help")
    assert r.returncode == 0
    for name in COMMANDS:
        assert name in r.stdout


def test_unknown_subcommand_is_one_line_and_fails():
    r = reku("frobnicate")
    assert r.returncode != 0
    assert r.stderr.strip().count("\n") == 0
    assert "unknown command 'frobnicate'" in r.stderr


def test_bad_option_is_one_line_and_fails():
    r = reku("query", "--port")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "--port" in r.stderr


def test_missing_serial_port_is_one_clear_line():
    r = reku("query", "--port", "/dev/does-not-exist", "turn on the light")
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1
    assert "cannot open serial port /dev/does-not-exist" in r.stderr


def test_missing_model_file_is_one_clear_line():
    r = reku("sim", "--runtime", "cpython", "--model", "/no/such/model.rku")
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1
    assert "/no/such/model.rku not found" in r.stderr


@pytest.mark.parametrize("argv", [["inspect", "{d}"], ["eval", "--model", "{d}", "--data", "{d}"],
                                  ["upload", "--port", "{d}/nope", "{d}"], ["sim", "--runtime", "cpython", "--model", "{d}"],
                                  ["train", "--skill", "{d}", "--out", "{d}/m.rku", "--steps", "0"],
                                  ["train", "--skill", "{d}", "--out", "{d}/m.rku", "--steps", "-5"]])
def test_a_directory_or_bad_count_is_one_line(tmp_path, argv):
    """A directory where a model file belongs, and a step count below 1, are refused in one line, no traceback."""
    r = reku(*[a.format(d=tmp_path) for a in argv])
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    want = "steps must be at least 1" if "--steps" in argv else "is a directory, not a .rku file"
    assert want in r.stderr, r.stderr


def test_requests_a_board_cannot_take_are_one_line(tmp_path):
    """reku query with a request over the board's limit, over a frame, or with characters that cannot be sent as
    UTF-8 (surrogate escapes of undecodable terminal bytes): one line, and the board still answers afterwards."""
    import os
    link = str(tmp_path / "board")
    sim = subprocess.Popen(REKU + ["sim", "--runtime", "cpython", "--quiet", "--link", link],
                           stdout=subprocess.PIPE, text=True)
    try:
        assert "on /dev/pts/" in sim.stdout.readline()
        for text, message in (("x" * 300, "request of 300 bytes exceeds the board's limit of 256"),
                              ("lamp " * 400, "request of 2000 bytes exceeds the board's limit of 256"),
                              (os.fsdecode(b"lamp \xff on"), "cannot be sent as UTF-8")):
            r = subprocess.run(REKU + ["query", "--port", link, text], capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, PYTHONIOENCODING="utf-8:surrogateescape"))
            assert r.returncode == 1 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
        r = reku("query", "--port", link, "turn on the kitchen light")
        assert r.returncode == 0 and '"calls"' in r.stdout, r.stderr
    finally:
        sim.terminate()
        sim.wait(10)
