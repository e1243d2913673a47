"""rkfw.status (watchdog + status LED) on CPython and on the MicroPython WebAssembly build, with a fake
`machine` (and `neopixel`) module injected. The same scenario runs on both runtimes and prints one JSON line;
the assertions below check it against the patterns documented in docs/firmware.md."""
import json
import subprocess

import pytest

from reku import paths, sim
from conftest import require_runtime

# Runs unchanged on CPython and MicroPython (no f-strings, no typing).
SCENARIO = r'''
import sys, json, gc
from rkfw import status as S

class FakeWDT:
    made = []
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.feeds = 0
        FakeWDT.made.append(self)
    def feed(self):
        self.feeds += 1

class FakePin:
    OUT = 1
    made = []
    def __init__(self, id, mode=-1, value=None):
        self.id = id
        self.writes = []
        FakePin.made.append(self)
    def value(self, v=None):
        if v is not None:
            self.writes.append(v)

class FakeTimer:
    PERIODIC = 1
    made = []
    def __init__(self, id=-1):
        FakeTimer.made.append(self)
    def init(self, period=0, mode=0, callback=None):
        self.period = period
        self.callback = callback

class Machine:
    Pin = FakePin
    WDT = FakeWDT
    Timer = FakeTimer

class NoWdtMachine:
    Pin = FakePin

class FakeNeoPixel:
    made = []
    def __init__(self, pin, n):
        self.pin = pin
        self.px = [(0, 0, 0)] * n
        self.shown = []
        FakeNeoPixel.made.append(self)
    def __setitem__(self, i, v):
        self.px[i] = v
    def write(self):
        self.shown.append(self.px[0])

class NeoModule:
    NeoPixel = FakeNeoPixel

now = [0]
def clock():
    return now[0]

def levels(st, state, t_end, step):
    now[0] = 1000
    st.set(state)
    out = []
    t = 0
    while t < t_end:
        out.append(st.tick(1000 + t))
        t += step
    return out

out = {"runtime": sys.implementation.name}
pico = {"name": "pico", "port": "rp2", "led": "LED", "led_type": "gpio"}
st = S.Status(pico, {"watchdog_ms": 20000}, machine=Machine, clock=clock)
pin = FakePin.made[-1]
out["pin_id"] = pin.id
out["boot_level"] = pin.writes[:]
out["wdt_before_arm"] = len(FakeWDT.made)
out["armed"] = st.arm()
out["wdt_timeout"] = FakeWDT.made[-1].timeout
for i in range(5):
    st.feed()
out["feeds"] = FakeWDT.made[-1].feeds
out["arm_again"] = st.arm()
out["wdts"] = len(FakeWDT.made)
out["booting"] = levels(st, S.BOOTING, 400, 10)
out["idle"] = levels(st, S.IDLE, 4000, 10)
out["model_error"] = levels(st, S.MODEL_ERROR, 4000, 100)
st.set(S.IDLE)
out["busy"] = levels(st, S.BUSY, 3000, 100)
# an error frame after a request: triple flash, then back to the base pattern (IDLE)
st.set(S.IDLE)
now[0] = 5000
st.busy()
now[0] = 5200
st.done(True)
seq = []
for t in range(5200, 5200 + 600, 10):
    seq.append(st.tick(t))
out["error_then_base"] = seq
out["state_after_error"] = st.name()
# writes only on a change of level: 2 s of IDLE ticked every ms = 3 edges
st.set(S.IDLE)
n0 = len(pin.writes)
for t in range(0, 2000):
    st.tick(st.t0 + t)
out["idle_writes_2s"] = len(pin.writes) - n0
# watchdog off (0), and on a port without machine.WDT: arm() is a no-op, feed() does nothing
off = S.Status(pico, {"watchdog_ms": 0}, machine=Machine, clock=clock)
out["off_armed"] = off.arm()
off.feed()
nowdt = S.Status(pico, {}, machine=NoWdtMachine, clock=clock)
out["nowdt_armed"] = nowdt.arm()
nowdt.feed()
out["wdts_after_noops"] = len(FakeWDT.made)
# esp32 (no clamp) with the default timeout
esp = S.Status({"port": "esp32", "led": None, "led_type": "none"}, {}, machine=Machine, clock=clock)
n_pins = len(FakePin.made)
esp.arm()
out["esp_timeout"] = FakeWDT.made[-1].timeout
esp.tick(12345)
out["pins_without_led"] = len(FakePin.made) - n_pins
# REPL maintenance: a timer feeds the armed watchdog
out["maintenance"] = st.maintenance()
FakeTimer.made[-1].callback(None)
out["maintenance_period"] = FakeTimer.made[-1].period
out["feeds_after_timer"] = FakeWDT.made[0].feeds
# machine imported by name (what the board does), LED as a GPIO number
sys.modules["machine"] = Machine
byname = S.Status({"port": "rp2", "led": 25, "led_type": "gpio"}, {"led": True}, clock=clock)
out["byname_pin"] = FakePin.made[-1].id
out["byname_armed"] = byname.arm()
disabled = S.Status({"port": "rp2", "led": 25, "led_type": "gpio"}, {"led": False}, clock=clock)
out["led_false_has_led"] = disabled.led is not None
# ws2812: colours per pattern
sys.modules["neopixel"] = NeoModule
px = S.Status({"port": "esp32", "led": 38, "led_type": "ws2812"}, {}, machine=Machine, clock=clock)
px.set(S.IDLE)
px.tick(px.t0)
px.set(S.MODEL_ERROR)
px.tick(px.t0)
px.tick(px.t0 + 1500)
out["pixel_pin"] = FakePin.made[-1].id
out["pixel_shown"] = [list(c) for c in FakeNeoPixel.made[-1].shown]
# no allocation in feed()/tick() (MicroPython only: gc.mem_alloc)
if hasattr(gc, "mem_alloc"):
    st.set(S.IDLE)
    t0 = st.t0
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    for t in range(3000):
        st.feed()
        st.tick(t0 + t)
    out["alloc_3000_ticks"] = gc.mem_alloc() - a0
    gc.enable()
else:
    out["alloc_3000_ticks"] = None
print("RESULT " + json.dumps(out))
'''

NODE_RUNNER = r'''
import fs from "fs";
import path from "path";
import { pathToFileURL } from "url";
const [mpPath, fwDir, codeFile] = process.argv.slice(2);
const { loadMicroPython } = await import(pathToFileURL(mpPath).href);
const mp = await loadMicroPython({ stdout: (s) => process.stdout.write(s + "\n"),
                                   stderr: (s) => process.stderr.write(s + "\n"), linebuffer: true });
for (const d of ["/fw", "/fw/rkfw"]) { try { mp.FS.mkdir(d); } catch (e) {} }
for (const name of fs.readdirSync(path.join(fwDir, "rkfw"))) {
  if (name.endsWith(".py")) mp.FS.writeFile("/fw/rkfw/" + name, fs.readFileSync(path.join(fwDir, "rkfw", name)));
}
try { mp.runPython("import sys\nsys.path.insert(0, '/fw')\n" + fs.readFileSync(codeFile, "utf8")); }
catch (e) { process.stderr.write(String(e.message || e) + "\n"); process.exit(1); }
'''


def run_scenario(runtime, tmp_path, code=SCENARIO):
    if runtime == "cpython":
        r = subprocess.run([str(paths.ROOT / ".venv" / "bin" / "python"), "-c", code], capture_output=True,
                           text=True, timeout=60, cwd=str(tmp_path))
    else:
        runner = tmp_path / "run.mjs"
        runner.write_text(NODE_RUNNER)
        src = tmp_path / "code.py"
        src.write_text(code)
        r = subprocess.run(["node", str(runner), str(sim.micropython_mjs()), str(paths.FIRMWARE), str(src)],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr + r.stdout
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, r.stdout + r.stderr
    return json.loads(lines[-1][7:])


@pytest.fixture(scope="module", params=["cpython", "micropython"])
def result(request, tmp_path_factory):
    require_runtime(request.param)
    return run_scenario(request.param, tmp_path_factory.mktemp(request.param))


def expected(pattern, t_end, step):
    """Levels sampled every `step` ms of a pattern given as on/off durations (docs/firmware.md)."""
    period = sum(pattern)
    out = []
    for t in range(0, t_end, step):
        u = t % period
        on = 1
        for d in pattern:
            if u < d:
                break
            u -= d
            on ^= 1
        out.append(on)
    return out


def test_runs_on_the_runtime(result, request):
    assert result["runtime"] == ("micropython" if "micropython" in request.node.name else "cpython")


def test_watchdog_armed_after_boot_clamped_and_fed(result):
    assert result["wdt_before_arm"] == 0, "the watchdog must not run during boot (model loading)"
    assert result["armed"] is True
    assert result["wdt_timeout"] == 8388, "rp2's WDT takes at most 8388 ms"
    assert result["feeds"] == 5
    assert result["arm_again"] is True and result["wdts"] == 1, "arm() twice made a second WDT"
    assert result["esp_timeout"] == 8000


def test_watchdog_off_or_absent_is_a_noop(result):
    assert result["off_armed"] is False
    assert result["nowdt_armed"] is False
    assert result["wdts_after_noops"] == 1


def test_led_pin_from_profile(result):
    assert result["pin_id"] == "LED"
    assert result["boot_level"] == [1], "booting starts with the LED on"
    assert result["byname_pin"] == 25
    assert result["byname_armed"] is True
    assert result["pins_without_led"] == 0
    assert result["led_false_has_led"] is False


def test_documented_patterns(result):
    assert result["booting"] == expected((100, 100), 400, 10)
    assert result["idle"] == expected((60, 140, 60, 1740), 4000, 10)
    assert sum(result["idle"]) == 2 * 2 * 6, "IDLE: two 60 ms blips every 2 s"
    assert result["model_error"] == expected((1000, 1000), 4000, 100)
    assert result["busy"] == [1] * 30


def test_error_flash_then_back_to_base(result):
    seq = result["error_then_base"]
    assert seq[:30] == expected((40, 60), 300, 10), "three 40 ms flashes after an error frame"
    assert seq[30:] == expected((60, 140, 60, 1740), 300, 10), "then the IDLE heartbeat again"
    assert result["state_after_error"] == "idle"


def test_led_written_only_on_change(result):
    assert result["idle_writes_2s"] == 3, "off at 60, on at 200, off at 260 ms"


def test_maintenance_keeps_feeding(result):
    assert result["maintenance"] is True
    assert result["maintenance_period"] == 8388 // 4
    assert result["feeds_after_timer"] == 6


def test_ws2812_colours(result):
    assert result["pixel_pin"] == 38
    shown = result["pixel_shown"]
    assert shown[0] == [0, 0, 24], "booting is blue"
    assert [0, 16, 0] in shown, "idle is green"
    assert shown[-1] == [0, 0, 0], "model error blinks (off half of the time)"
    assert [24, 8, 0] in shown, "model error is orange"


def test_no_allocation_in_the_loop(result):
    if result["runtime"] == "micropython":
        assert result["alloc_3000_ticks"] == 0
    else:
        assert result["alloc_3000_ticks"] is None
