""".ci/provision, the one step that installs the Debian packages `make demo` and `make test` need: silent when
everything is there; without root or sudo, one line naming the packages to install (never a traceback per test).
Run with a PATH that holds only the tools named here, so a missing one is really missing."""
import shutil
import subprocess
import sys

import pytest

from reku import paths

SCRIPT = paths.ROOT / ".ci" / "provision"
TOOLS = ["make", "gcc", "node", "npm", "arm-none-eabi-gcc", "chromium"]


def fake_path(tmp_path, omit=(), uid=1000):
    """A bin folder with links to the real tools (less `omit`), the venv's Python as python3.11 and an `id` that
    says `uid`; no sudo."""
    b = tmp_path / "bin"
    b.mkdir()
    for t in TOOLS + ["bash", "env", "cat"]:
        if t in omit:
            continue
        real = shutil.which(t)
        assert real, "%s is not installed (`make test` provisions it)" % t
        (b / t).symlink_to(real)
    (b / "python3.11").symlink_to(sys.executable)
    (b / "id").write_text("#!%s\necho %d\n" % (shutil.which("bash"), uid))
    (b / "id").chmod(0o755)
    return str(b)


def provision(path, what="test"):
    return subprocess.run([shutil.which("bash"), str(SCRIPT), what], env={"PATH": path}, capture_output=True,
                          text=True, timeout=60)


def test_nothing_missing_is_silent(tmp_path):
    r = provision(fake_path(tmp_path))
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r


@pytest.mark.parametrize("what,omit,want", [
    ("test", ["arm-none-eabi-gcc"], "gcc-arm-none-eabi"),
    ("test", ["chromium"], "chromium"),
    ("test", ["node", "npm"], "nodejs npm"),
    ("demo", ["gcc"], "gcc"),
])
def test_without_root_one_line_names_the_packages(tmp_path, what, omit, want):
    r = provision(fake_path(tmp_path, omit=omit), what)
    assert r.returncode == 1 and r.stdout == "", r
    assert r.stderr.count("\n") == 1, r.stderr
    assert ("missing Debian packages for 'make %s': %s (install them: sudo apt-get install %s)"
            % (what, want, want)) in r.stderr


def test_demo_does_not_need_the_arm_toolchain_or_a_browser(tmp_path):
    r = provision(fake_path(tmp_path, omit=["arm-none-eabi-gcc", "chromium"]), "demo")
    assert r.returncode == 0 and r.stderr == "", r
