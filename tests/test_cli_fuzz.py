"""Random text and random bytes for every CLI argument that takes text or a path: `reku` answers with its exit code
and at most one line on stderr, never a traceback (run in-process through reku.cli.main, as the console script)."""
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reku.cli import main

# text as a terminal hands it over: any Unicode, or bytes decoded the way Python decodes argv (surrogate escapes);
# never a NUL, which no process's argv can carry
ARG = st.one_of(st.text(max_size=40), st.binary(max_size=40).map(os.fsdecode)).filter(lambda s: "\x00" not in s)

# command line templates: {x} is the random argument, {d} a fresh folder; commands that would touch hardware or
# start a server get a target that cannot exist (a path in {d}), so each ends in its own error line
CASES = [
    ["inspect", "{x}"],
    ["eval", "--model", "{x}", "--data", "{d}/none.jsonl"],
    ["eval", "--model", "home", "--data", "{x}"],
    ["train", "--skill", "{x}", "--out", "{d}/m.rku", "--steps", "1"],
    ["train", "--skill", "{d}", "--out", "{x}", "--steps", "1"],
    ["quantize", "--checkpoint", "{x}", "--out", "{d}/m.rku"],
    ["query", "--port", "{d}/tty", "{x}"],
    ["query", "--port", "{x}", "lights on"],
    ["upload", "--port", "{d}/tty", "{x}"],
    ["wiring", "--board", "{x}", "--out", "{d}/w.svg"],
    ["flash", "--board", "{x}", "--firmware", "{d}/fw.bin"],
    ["flash", "--board", "pico", "--firmware", "{x}", "--dry-run"],
    ["deploy", "--board", "{x}", "--port", "{d}/tty"],
    ["deploy", "--board", "pico", "--port", "{d}/tty", "--model", "{x}"],
    ["doctor", "--board", "pico", "--port", "{x}"],
    ["info", "--port", "{x}"],
    ["info", "--i2c", "{x}"],
    ["train", "--skill", "{d}", "--out", "{d}/m.rku", "--steps", "1", "--dims", "{x}"],
    ["train", "--skill", "{d}", "--out", "{d}/m.rku", "--steps", "1", "--board", "{x}"],
    ["sim", "--runtime", "cpython", "--board", "{x}", "--model", "{d}"],
]


@pytest.mark.parametrize("case", CASES, ids=[" ".join(c) for c in CASES])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(x=ARG)
def test_any_argument_is_an_exit_code_and_one_line(case, x, tmp_path, capsys):
    argv = [a.replace("{x}", x).replace("{d}", str(tmp_path)) if "{" in a else a for a in case]
    try:
        code = main(argv)
    except SystemExit as e:                     # argparse's own refusals (usage errors) exit 2
        code = e.code
    out, err = capsys.readouterr()
    assert isinstance(code, int), (argv, code)
    assert "Traceback" not in err, (argv, err)
    if code != 0:           # one error line; or, for a command whose product is a report (doctor), the report
        assert (err.count("\n") == 1 and err.strip()) or (not err and out.strip()), (argv, out, err)
