"""The package as a user gets it: a wheel built from this tree (`pip wheel .`), installed with its dependencies into
a new virtual environment, run from a folder outside the checkout. Every subcommand is there, the bundled skills,
board profiles and firmware come with it (package data, reku/_tree), a virtual board answers a query on both
runtimes, and what needs an extra (`reku train` without PyTorch) or a checkout (`reku bench`) says so in one line."""
import json
import os
import re
import subprocess
import sys
import venv
from urllib.request import urlopen

import pytest

from reku import paths, sim
from reku.cli import COMMANDS
from reku.model.reference import Reference
from rkfw import rku

QUERY = "turn on the kitchen light"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    top = tmp_path_factory.mktemp("wheel")
    dist = top / "dist"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(paths.ROOT), "--no-deps", "--no-build-isolation",
                        "-q", "-w", str(dist)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = dist.glob("reku-*.whl")
    env_dir = top / "venv"
    venv.create(env_dir, with_pip=True)
    r = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    work = top / "elsewhere"            # not the checkout: nothing may be found next to the sources
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("REKU_ROOT", "PYTHONPATH", "REKU_MICROPYTHON_MJS")}
    return {"bin": env_dir / "bin", "cwd": work, "env": env}


def run(inst, *args, env=None, timeout=120):
    return subprocess.run([str(inst["bin"] / "reku")] + list(args), cwd=inst["cwd"], env=env or inst["env"],
                          capture_output=True, text=True, timeout=timeout)


def test_wheel_is_not_the_checkout(installed):
    r = subprocess.run([str(installed["bin"] / "python"), "-c",
                        "import reku, rkfw, reku._rkernel; from reku import paths; "
                        "print(reku.__file__); print(rkfw.__file__); print(paths.ROOT)"],
                       cwd=installed["cwd"], env=installed["env"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for line in r.stdout.split():
        assert "site-packages" in line and not line.startswith(str(paths.ROOT / "host")), r.stdout


def test_every_subcommand_is_installed(installed):
    r = run(installed, "--help")
    assert r.returncode == 0, r.stderr
    for name in COMMANDS:
        assert name in r.stdout
        h = run(installed, name, "--help")
        assert h.returncode == 0 and h.stdout.startswith("usage: reku " + name), (name, h.stderr)


def test_inspect_a_bundled_model(installed):
    r = run(installed, "inspect", "home", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    want = rku.load((paths.SKILLS / "home" / "model.rku").read_bytes())
    assert got["sha256"] == want.sha256 and got["file_bytes"] == (paths.SKILLS / "home" / "model.rku").stat().st_size
    assert set(got["boards"]) == {p.stem for p in paths.BOARDS.glob("*.json")}


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_a_virtual_board_answers_a_query(installed, runtime, tmp_path):
    env = dict(installed["env"])
    if runtime == "micropython":
        mjs = sim.micropython_mjs()
        assert mjs is not None, "the MicroPython WebAssembly build is missing (`make test` installs it)"
        env["REKU_MICROPYTHON_MJS"] = str(mjs)          # node_modules is not part of a wheel
    link = str(tmp_path / "board")
    board = subprocess.Popen([str(installed["bin"] / "reku"), "sim", "--runtime", runtime, "--quiet", "--link", link],
                             cwd=installed["cwd"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = board.stdout.readline()
        assert ("(%s) on /dev/pts/" % runtime) in first, (first, board.stderr.read() if board.poll() else "")
        r = run(installed, "query", "--port", link, QUERY, timeout=120)
        assert r.returncode == 0, r.stderr
        ref = Reference(rku.load((paths.SKILLS / "home" / "model.rku").read_bytes()))
        assert json.loads(r.stdout)["calls"] == ref.run(QUERY)[0]
    finally:
        board.terminate()
        board.wait(20)


def test_what_a_wheel_lacks_is_one_line(installed, tmp_path):
    r = run(installed, "train", "--skill", "home", "--out", str(tmp_path / "m.rku"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "needs torch" in r.stderr and "pip install 'reku[train]'" in r.stderr
    r = run(installed, "bench")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "repository checkout" in r.stderr, r.stderr
    (tmp_path / "fb").mkdir()
    (tmp_path / "fb" / "p0.jsonl").write_text('{"t": 0, "text": "hi", "outcome": "failure", "calls": []}\n')
    r = run(installed, "federate", "--model", "home", "--feedback-dir", str(tmp_path / "fb"), "--out",
            str(tmp_path / "f.rku"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "pip install 'reku[fleet]'" in r.stderr or "pip install 'reku[train]'" in r.stderr, r.stderr


def test_the_playground_serves_its_page_from_a_wheel(installed):
    env = dict(installed["env"], REKU_MICROPYTHON_MJS=str(sim.micropython_mjs()))
    pg = subprocess.Popen([str(installed["bin"] / "reku"), "playground", "--port", "0"], cwd=installed["cwd"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = pg.stdout.readline()
        m = re.search(r"on (http://localhost:\d+/)", first)
        assert m, (first, pg.stderr.read() if pg.poll() is not None else "")
        for path in ("", "static/app.js", "static/codec.js", "static/client.js", "static/worker.js",
                     "static/driver.py", "static/style.css", "mp/micropython.wasm", "fw/rkfw/app.mpy"):
            with urlopen(m.group(1) + path, timeout=10) as r:
                assert r.status == 200 and r.read()
        with urlopen(m.group(1) + "api/skills", timeout=10) as r:
            assert {s["name"] for s in json.loads(r.read())["skills"]} >= {"home", "car"}
    finally:
        pg.terminate()
        pg.wait(20)
    # without the MicroPython build (not part of a wheel): one line naming it
    r = run(installed, "playground", "--port", "0")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "MicroPython WebAssembly build" in r.stderr, r.stderr
