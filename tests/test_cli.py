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
