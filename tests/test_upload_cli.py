"""`reku upload`, `reku query` and `reku info` from the command line, over serial and over I2C, with and
without an HMAC key, against the virtual board."""
import hashlib
import json
import subprocess
import sys

import pytest

from reku.sim import VirtualBoard, populate

from proto_support import HOME_MODEL, variant_model

OLD_SHA = hashlib.sha256(HOME_MODEL.read_bytes()).hexdigest()
KEY = bytes(range(7, 39))


def reku(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "reku.cli"] + list(args), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def variant(tmp_path):
    p = tmp_path / "variant.rku"
    p.write_bytes(variant_model("home-cli-variant"))
    return p, hashlib.sha256(p.read_bytes()).hexdigest()


def test_upload_over_serial_with_progress(runtime, tmp_path, variant):
    path, sha = variant
    d = tmp_path / "board"
    populate(d, "pico", "home")
    with VirtualBoard(runtime=runtime, state_dir=str(d)) as vb:
        r = reku("upload", "--port", vb.port, "--timeout", "20", str(path))
        assert r.returncode == 0, r.stderr
        assert "100%" in r.stderr and "[" + "#" * 30 + "]" in r.stderr
        assert sha in r.stdout and "home-cli-variant" in r.stdout
        info = json.loads(reku("info", "--port", vb.port, "--timeout", "20").stdout)
        assert info["model"]["sha256"] == sha
        q = reku("query", "--port", vb.port, "--timeout", "20", "turn on the kitchen light")
        assert q.returncode == 0 and "calls" in json.loads(q.stdout)


def test_upload_over_i2c_needs_the_key(tmp_path, variant):
    path, sha = variant
    d = tmp_path / "board"
    populate(d, "pico", "home")
    (d / "reku.json").write_text(json.dumps({"transports": ["i2c"]}))
    (d / "reku_key.bin").write_bytes(KEY)
    keyfile = tmp_path / "key.bin"
    keyfile.write_bytes(KEY)
    with VirtualBoard(runtime="cpython", state_dir=str(d)) as vb:
        target = "sim:%s:0x42" % vb.port
        r = reku("upload", "--i2c", target, "-q", str(path))
        assert r.returncode != 0
        assert "not authorised" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        r = reku("upload", "--i2c", target, "--key", str(keyfile), "-q", str(path))
        assert r.returncode == 0, r.stderr
        assert r.stderr == ""
        info = json.loads(reku("info", "--i2c", target).stdout)
        assert info["model"]["sha256"] == sha and info["transports"] == ["i2c0@0x42"]
        q = reku("query", "--i2c", target, "--ready-pin", "15", "-v", "lock the front door")
        assert q.returncode == 0, q.stderr
        assert json.loads(q.stdout)["tokens_in"] > 0


def test_usage_errors_are_one_line():
    r = reku("upload", "home")
    assert r.returncode == 2 and "--port" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = reku("upload", "--port", "/dev/x", "--i2c", "1:0x42", "home")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    r = reku("query", "--i2c", "1:0x99", "hi")
    assert r.returncode == 1 and "0x99" in r.stderr
    r = reku("upload", "--port", "/dev/does-not-exist-reku", "/nonexistent/model.rku")
    assert r.returncode == 1 and "not found" in r.stderr
    r = reku("upload", "--port", "/dev/does-not-exist-reku", "--key", "/nonexistent/key", "home")
    assert r.returncode == 1 and "/nonexistent/key" in r.stderr
