"""`reku doctor` against the virtual board in REPL mode: a healthy board, a corrupted file that the next deploy
repairs, a missing model, a bare board and a bad port, each reported with OK/FAIL and a fix."""
import io
import subprocess
import sys

import pytest

from reku import deploy as dp
from reku.doctor import doctor
from reku.sim import VirtualBoard

from conftest import require_runtime

REKU = [sys.executable, "-m", "reku.cli"]


def reku(*args):
    return subprocess.run(REKU + list(args), capture_output=True, text=True, timeout=300)


def lines_of(text, status):
    return [ln for ln in text.splitlines() if ln.split()[:1] == [status]]


@pytest.fixture
def bare_board(tmp_path):
    require_runtime("micropython")
    vb = VirtualBoard(runtime="micropython", state_dir=tmp_path / "fs", repl=True, bare=True)
    vb.start()
    yield vb
    vb.stop()


@pytest.fixture
def deployed(bare_board):
    dp.deploy(bare_board.port, "pico", out=io.StringIO())
    return bare_board


def test_healthy_board_passes_every_check(deployed):
    r = reku("doctor", "--port", deployed.port)
    assert r.returncode == 0, r.stdout + r.stderr
    names = [ln.split()[1] for ln in lines_of(r.stdout, "OK")]
    for check in ("connection", "micropython", "profile", "memory", "files", "model", "query"):
        assert check in names, (check, r.stdout)
    assert not lines_of(r.stdout, "FAIL")
    assert "'turn on the kitchen light' ->" in r.stdout and "0 failed" in r.stdout


def test_corrupted_file_is_found_and_the_next_deploy_fixes_it(deployed):
    with dp.Board(deployed.port) as b:
        b.exec("f = open('rkfw/proto.mpy', 'r+b')\nf.seek(40)\nc = f.read(1)\nf.seek(40)\n"
               "f.write(bytes([c[0] ^ 0xff]))\nf.close()")
    out = io.StringIO()
    rep = doctor(deployed.port, out=out)
    failed = rep.failed
    assert failed[0][1] == "files", out.getvalue()
    assert {f[1] for f in failed} <= {"files", "engine"}     # a corrupt module may also break the engine
    assert "rkfw/proto.mpy" in failed[0][2]
    assert failed[0][3] == "reku deploy --board pico --port %s" % deployed.port
    assert "fix: reku deploy --board pico --port" in out.getvalue()
    s = dp.deploy(deployed.port, "pico", out=io.StringIO())
    assert s["copied"] == 1
    assert not doctor(deployed.port, out=io.StringIO()).failed


def test_missing_model_is_reported_with_a_fix(deployed):
    with dp.Board(deployed.port) as b:
        b.remove("model.rku")
    out = io.StringIO()
    rep = doctor(deployed.port, out=out)
    failed = {f[1]: f for f in rep.failed}
    assert set(failed) == {"model file", "model load"}, out.getvalue()
    assert "no model file" in failed["model load"][2]
    assert failed["model file"][3].startswith("reku deploy --board pico")


def test_bare_board_fails_clearly(bare_board):
    r = reku("doctor", "--port", bare_board.port)
    assert r.returncode == 1
    fails = lines_of(r.stdout, "FAIL")
    assert any("profile" in ln and "/board.json missing" in ln for ln in fails), r.stdout
    assert any(ln.split()[1] == "files" and "missing" in ln for ln in fails), r.stdout
    assert "Traceback" not in r.stdout + r.stderr


def test_bad_port_is_a_failed_connection_check():
    r = reku("doctor", "--port", "/dev/does-not-exist")
    assert r.returncode == 1
    fails = lines_of(r.stdout, "FAIL")
    assert len(fails) == 1 and "connection" in fails[0] and "/dev/does-not-exist" in fails[0]
    assert "fix:" in r.stdout
