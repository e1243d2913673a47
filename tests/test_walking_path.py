"""One query travelling the whole path, on both runtimes of the virtual board:
model file -> firmware loader -> framed protocol over a real pty opened with pyserial -> client."""
import json
import subprocess
import sys
import time

import pytest
import serial

from reku import paths
from reku.client import BoardError, Call, Client
from reku.sim import VirtualBoard
from rkfw import proto

TOOLS = {t["function"]["name"]: t["function"]["parameters"]
         for t in json.loads((paths.SKILLS / "home" / "tools.json").read_text())}


def assert_valid(call):
    """A call that names a home function and whose arguments satisfy its schema."""
    assert isinstance(call, Call)
    assert call.name in TOOLS, call
    schema = TOOLS[call.name]
    props = schema["properties"]
    assert set(schema.get("required", [])) <= set(call.arguments), call
    for k, v in call.arguments.items():
        assert k in props, (call, k)
        p = props[k]
        if "enum" in p:
            assert v in p["enum"], (call, k)
        if p["type"] == "integer":
            assert isinstance(v, int) and p.get("minimum", v) <= v <= p.get("maximum", v), (call, k)
        if p["type"] == "string":
            assert isinstance(v, str)


def test_query_in_call_out(board):
    with Client.serial(board.port, timeout=10) as c:
        info = c.info()
        assert info["runtime"].startswith(board.runtime)
        assert info["model"] is not None, info["model_error"]
        assert len(info["model"]["sha256"]) == 64
        r = c.query("turn on the kitchen light")
        assert r.calls, "the home model made no call of a plain light request"
        for call in r.calls:
            assert_valid(call)
        assert r.tokens_in > 0 and r.tokens_out > 0 and r.us > 0


def test_no_call_request_gives_valid_output(board):
    with Client.serial(board.port, timeout=10) as c:
        for call in c.call("what is the capital of france"):
            assert_valid(call)


def test_board_resynchronises_after_line_noise(board):
    with serial.Serial(board.port, timeout=5) as s:
        s.write(b"\xff\x13garbage\x00" + proto.encode(proto.QUERY, 1, b"lock the front")[:7] + b"\x00")
        s.write(proto.encode(proto.PING, 42, b"still there?"))
        dec = proto.Decoder()
        events = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(isinstance(e, tuple) and e[1] == 42 for e in events):
            events += dec.feed(s.read(1) + s.read(s.in_waiting))
    replies = [e for e in events if isinstance(e, tuple)]
    errors = [e for e in replies if e[0] == proto.ERROR]
    assert (proto.PING | proto.REPLY, 42, b"still there?") in replies
    assert errors, "garbage got no error frame"


def test_board_without_model_still_answers_info(runtime):
    with VirtualBoard(runtime=runtime, model=None) as vb:
        with Client.serial(vb.port, timeout=10) as c:
            info = c.info()
            assert info["model"] is None and "no model file" in info["model_error"]
            with pytest.raises(BoardError) as e:
                c.call("turn on the light")
            assert e.value.code == proto.E_NO_MODEL


def test_cli_query_prints_calls_as_json(runtime):
    with VirtualBoard(runtime=runtime, model="home") as vb:
        r = subprocess.run([sys.executable, "-m", "reku.cli", "query", "--port", vb.port,
                            "set the thermostat to 21 degrees"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for c in out["calls"]:
        assert_valid(Call(c["name"], c["arguments"]))
