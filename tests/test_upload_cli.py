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


def test_ctrl_c_during_an_upload_says_what_the_board_serves(tmp_path, variant):
    """SIGINT while `reku upload` runs (MicroPython board, interrupted once its progress bar has moved): exit 130 and
    one line that says which model the board serves now, asked from the board, which `reku info` confirms; the
    upload then resumes and completes."""
    import os
    import signal
    path, sha = variant
    d = tmp_path / "board"
    populate(d, "pico", "home")
    with VirtualBoard(runtime="micropython", state_dir=str(d)) as vb:
        p = subprocess.Popen([sys.executable, "-m", "reku.cli", "upload", "--port", vb.port, "--timeout", "20",
                              str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        seen = b""
        while b"%" not in seen:                    # the first redraw of the progress bar
            b = os.read(p.stderr.fileno(), 64)
            assert b, "upload ended before its progress bar moved"
            seen += b
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        err = (seen + err).decode()
        served = json.loads(reku("info", "--port", vb.port, "--timeout", "20").stdout)["model"]
        if p.returncode == 0:                      # it finished first: nothing to report, and nothing wrong
            assert served["sha256"] == sha
            return
        last = err.strip().splitlines()[-1].split("\r")[-1]
        assert p.returncode == 130 and "Traceback" not in err, err
        assert last.startswith("reku upload: error: interrupted") and served["sha256"][:16] in last, last
        assert ("previous model" in last) == (served["sha256"] == OLD_SHA)
        r = reku("upload", "--port", vb.port, "--timeout", "20", str(path))
        assert r.returncode == 0, r.stderr
        assert json.loads(reku("info", "--port", vb.port, "--timeout", "20").stdout)["model"]["sha256"] == sha


FEEDBACK = [("turn on the kitchen light", "success", None),
            ("make it dark in the bathroom", "corrected",
             [{"name": "set_light", "arguments": {"room": "bathroom", "state": "off"}}]),
            ("what's the capital of france", "failure", None)]


def _give_feedback(client):
    from reku.client import Call
    for text, outcome, corrected in FEEDBACK:
        client.feedback(text, outcome, [], [Call(c["name"], c["arguments"]) for c in corrected] if corrected else None)


def _check_pulled(path, n=len(FEEDBACK)):
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [(x["text"], x["outcome"]) for x in lines[-n:]] == [(t, o) for t, o, _ in FEEDBACK][:n]
    assert lines[-2]["corrected"] == FEEDBACK[1][2]
    return lines


@pytest.mark.parametrize("link", ["uart", "i2c"])
def test_feedback_pull_and_clear(runtime, tmp_path, link):
    """`reku feedback pull` copies what FEEDBACK stored on the board, over UART or I2C (where the board has a key,
    --clear needs it), and --clear removes exactly that from the board."""
    from reku.client import Client
    d = tmp_path / "board"
    populate(d, "pico", "home")
    args = []
    if link == "i2c":
        (d / "reku.json").write_text(json.dumps({"transports": ["i2c"]}))
        (d / "reku_key.bin").write_bytes(KEY)
        (tmp_path / "key.bin").write_bytes(KEY)
    out = tmp_path / "fb.jsonl"
    with VirtualBoard(runtime=runtime, state_dir=str(d)) as vb:
        args = ["--port", vb.port] if link == "uart" else ["--i2c", "sim:%s:0x42" % vb.port]
        with (Client.serial(vb.port, timeout=30) if link == "uart" else Client.i2c("sim:" + vb.port, 0x42,
                                                                                  timeout=30)) as c:
            _give_feedback(c)
        r = reku("feedback", "pull", *args, "--timeout", "20", "--out", str(out))
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("%s: 3 feedback lines (" % out) and "cleared" not in r.stdout
        _check_pulled(out)
        if link == "i2c":                           # clearing changes the board's state: the key is needed
            r = reku("feedback", "pull", *args, "--timeout", "20", "--out", str(out), "--clear")
            assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "key" in r.stderr
            args += ["--key", str(tmp_path / "key.bin")]
        r = reku("feedback", "pull", *args, "--timeout", "20", "--out", str(out), "--clear")
        assert r.returncode == 0, r.stderr
        assert "3 feedback lines" in r.stdout and "cleared on the board (0 bytes stored since)" in r.stdout
        _check_pulled(out)
        r = reku("feedback", "pull", *args, "--timeout", "20", "--out", str(out), "--append")
        assert r.returncode == 0 and r.stdout.startswith("%s: 0 feedback lines (0 bytes)" % out)
        assert len(out.read_text().splitlines()) == 3


def test_memory_teach_list_forget(runtime, tmp_path):
    """`reku memory teach` corrects the board's answer at once (docs/learning.md), `list` shows it, a bad correction
    is one line, `forget` undoes it."""
    d = tmp_path / "board"
    populate(d, "pico", "home")
    text = "make it dark in the bathroom"
    calls = '[{"name": "set_light", "arguments": {"room": "bathroom", "state": "off"}}]'
    with VirtualBoard(runtime=runtime, state_dir=str(d)) as vb:
        link = ["--port", vb.port, "--timeout", "30"]
        before = json.loads(reku("query", *link, text).stdout)["calls"]
        assert before != json.loads(calls)
        r = reku("memory", "teach", *link, text, "--calls", calls)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("learnt (") and 'now set_light(room="bathroom", state="off")' in r.stdout
        assert json.loads(reku("query", *link, text).stdout)["calls"] == json.loads(calls)
        r = reku("memory", "teach", *link, text, "--calls", calls)
        assert r.returncode == 0 and "already answers" in r.stdout
        for bad, why in (('[{"name": "set_light", "arguments": {"room": "attic", "state": "off"}}]', "not in enum"),
                         ("{not json", "--calls is not JSON"), ('[{"arguments": {}}]', "--calls must be a list")):
            r = reku("memory", "teach", *link, text, "--calls", bad)
            assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and why in r.stderr, r.stderr
        r = reku("memory", "list", *link)
        assert r.returncode == 0 and "1 of 32 entries" in r.stdout and '0  "make it dark in the bathroom"' in r.stdout
        assert json.loads(reku("memory", "list", *link, "--json").stdout)["entries"][0]["text"] == text
        r = reku("memory", "forget", *link, "3")
        assert r.returncode != 0 and "no entry 3" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        r = reku("memory", "forget", *link, "0")
        assert r.returncode == 0 and "0 entries left" in r.stdout
        assert json.loads(reku("query", *link, text).stdout)["calls"] == before
