"""`reku playground`: the server's routes, the JavaScript codec against the Python one, and the page itself in a real
browser (Playwright driving Debian's chromium, headless): the firmware on MicroPython WebAssembly in the page gives
the same calls as the firmware engine on the host, models are uploaded over the protocol (a damaged one refused,
the old one still serving), and Web Serial speaks to a `reku sim` pty through a test shim of navigator.serial.
A failing browser test leaves a screenshot in its temporary directory (printed in the failure)."""

import json
import os
import re
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest

from reku import deploy, paths, playground, sim
from reku.model.evaluate import predict
from rkfw import proto, rku

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("REKU_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
HOME = paths.SKILLS / "home" / "model.rku"
CAR = paths.SKILLS / "car" / "model.rku"


# ---- the server ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server():
    httpd = playground.serve(playground.Playground(), "127.0.0.1", 0)
    yield "http://localhost:%d" % httpd.server_address[1]
    httpd.shutdown()


def _get(url):
    with urlopen(url, timeout=10) as r:
        return r.headers.get("Content-Type"), r.read()


def test_routes_hand_out_page_runtime_firmware_profiles_and_models(server):
    ctype, page = _get(server + "/")
    assert ctype == "text/html" and b"/static/app.js" in page
    ctype, wasm = _get(server + "/mp/micropython.wasm")
    assert ctype == "application/wasm" and wasm[:4] == b"\0asm"
    # the firmware as `reku deploy` gives a board without a native emitter: main.py, rkfw as .mpy, viper as source
    man = json.loads(_get(server + "/fw/manifest.json")[1])
    srcs = sorted(p.relative_to(paths.FIRMWARE) for p in (paths.FIRMWARE / "rkfw").glob("*.py"))
    viper = {str(p) for p in srcs if deploy.NATIVE_DECORATOR.search((paths.FIRMWARE / p).read_text())}
    assert viper == {"rkfw/kernels_viper.py", "rkfw/fp4_viper.py"}
    want = sorted(["main.py"] + [str(p) if str(p) in viper else str(p)[:-3] + ".mpy" for p in srcs])
    assert man["files"] == want
    assert _get(server + "/fw/main.py")[1] == (paths.FIRMWARE / "main.py").read_bytes()
    assert _get(server + "/fw/rkfw/proto.mpy")[1][:2] == b"M\x06"
    assert man["bytes"] == sum(len(_get(server + "/fw/" + f)[1]) for f in man["files"])
    assert json.loads(_get(server + "/hw/pico.json")[1])["name"] == json.loads((paths.BOARDS / "pico.json").read_text())["name"]
    skills = json.loads(_get(server + "/api/skills")[1])
    assert skills["default"] == "home" and {s["name"] for s in skills["skills"]} >= {"home", "car"}
    assert _get(server + "/api/model/car")[1] == CAR.read_bytes()


@pytest.mark.parametrize("path", ["/static/../__init__.py", "/fw/../pyproject.toml", "/hw/../../setup.json",
                                  "/api/model/../../etc", "/mp/board.mjs", "/nothing"])
def test_nothing_outside_its_trees_is_served(server, path):
    with pytest.raises(HTTPError) as e:
        urlopen(server + path, timeout=10)
    assert e.value.code == 404


def test_inspect_gives_the_cli_facts_or_one_error(server):
    def post(body):
        with urlopen(Request(server + "/api/inspect", data=body, method="POST"), timeout=30) as r:
            return json.loads(r.read())
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "reku") if (ROOT / ".venv" / "bin" / "reku").exists()
                          else "reku", "inspect", str(CAR), "--json"], capture_output=True, text=True, check=True)
    assert post(CAR.read_bytes()) == json.loads(out.stdout)
    bad = bytearray(CAR.read_bytes())
    bad[5000] ^= 0x40
    err = post(bytes(bad))["error"]
    assert err.startswith("not a usable .rku model: checksum mismatch")
    assert post(b"")["error"].startswith("not a usable .rku model")


def test_playground_refuses_an_unknown_model_or_board_in_one_line(tmp_path):
    for argv, what in ((["--model", str(tmp_path / "none.rku")], "not found"), (["--board", "uno"], "no board profile")):
        r = subprocess.run([str(ROOT / ".venv" / "bin" / "reku"), "playground", "--port", "0"] + argv,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and what in r.stderr and len(r.stderr.strip().splitlines()) == 1


# ---- the JavaScript codec ---------------------------------------------------------------------------------------
def _node():
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing (`make test` installs it)")
    return node


def test_javascript_codec_passes_the_golden_frames():
    r = subprocess.run([_node(), "--test", str(ROOT / "tests" / "js")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert re.search(r"^# pass (\d+)", r.stdout, re.M) and "# fail 0" in r.stdout


def test_javascript_codec_constants_are_proto_py_constants():
    codec = ROOT / "host" / "reku" / "playground" / "static" / "codec.js"
    script = "import * as C from %s; const o = {}; for (const [k, v] of Object.entries(C)) " \
             "if (typeof v === 'number') o[k] = v; console.log(JSON.stringify(o));" % json.dumps(codec.as_uri())
    r = subprocess.run([_node(), "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30,
                       check=True)
    js = json.loads(r.stdout)
    py = {k: v for k, v in vars(proto).items() if k.isupper() and isinstance(v, int)}
    assert js == py


# ---- in the browser --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing (%s): `make test` installs it (.ci/provision)" % CHROMIUM)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


@pytest.fixture
def page(browser, server, request, tmp_path):
    ctx = browser.new_context()
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.base = server
    pg.errors = errors
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        shot = tmp_path / "failure.png"
        pg.screenshot(path=str(shot), full_page=True)
        print("screenshot of the failing page: %s" % shot)
    ctx.close()


def _ready(pg, timeout=90_000):
    pg.goto(pg.base + "/")
    pg.wait_for_function("document.body.dataset.ready", timeout=timeout)
    assert pg.evaluate("document.body.dataset.ready") == "1", pg.inner_text("#status")


def _ask(pg, text):
    pg.fill("#request", text)
    pg.click("#send")               # the page drops the previous result before its first await
    loc = pg.locator("#result [data-calls]")
    loc.wait_for(timeout=60_000)
    return json.loads(loc.get_attribute("data-calls"))


def _firmware_calls(model_path, queries):
    """What the firmware engine gives on the host (`reku eval --engine firmware`)."""
    return predict(rku.load(model_path.read_bytes()), queries, "firmware")


def test_page_answers_the_demo_requests_like_the_firmware_on_the_host(page):
    _ready(page)
    status = page.inner_text("#status")
    assert "Ready in" in status and "model home-" in status
    demos = [b.inner_text() for b in page.locator("#demos button").all()]
    from reku.demo import EXAMPLES
    assert demos == EXAMPLES
    want = _firmware_calls(HOME, demos)
    got = []
    for i, q in enumerate(demos):
        page.locator("#demos button").nth(i).click()
        page.wait_for_function("(q) => document.querySelector('#result [data-calls]') && "
                               "!document.querySelector('#send').disabled && document.querySelector('#request').value === q",
                               arg=q, timeout=60_000)
        got.append(json.loads(page.locator("#result [data-calls]").get_attribute("data-calls")))
    assert got == want
    assert any(got) and [] in got           # calls and a no-call among them
    # the first decision's alternatives: the chosen function first, then others the grammar allowed
    alts = json.loads(page.locator("#result [data-alts]").get_attribute("data-alts"))
    assert alts[0][0] == "<nocall>" and len(alts) > 1 and alts[0][1] >= alts[1][1]
    text = page.inner_text("#result")
    assert re.search(r"tokens\s+\d+ in, \d+ out", text) and "allocated while answering" in text
    fns = json.loads(page.locator("#functions [data-functions]").get_attribute("data-functions"))
    assert "set_brightness" in fns and len(fns) == 16
    assert not page.errors


def test_a_second_model_a_damaged_one_and_keyboard_only_use(page, tmp_path):
    _ready(page)
    # a .rku file chosen with the file input (keyboard reachable) goes to the board over the protocol's upload
    page.set_input_files("#file", str(CAR))
    page.wait_for_function("document.querySelector('#status').textContent.includes('is serving')", timeout=120_000)
    facts = page.inner_text("#model-facts")
    assert "car-" in facts and "{:,} B".format(CAR.stat().st_size) in facts
    q = "set the temp to 21"
    assert _ask(page, q) == _firmware_calls(CAR, [q])[0] != []
    # a damaged file: the board refuses it, says why, and the car model still answers
    bad = bytearray(CAR.read_bytes())
    bad[4000] ^= 0x10
    (tmp_path / "damaged.rku").write_bytes(bytes(bad))
    page.set_input_files("#file", str(tmp_path / "damaged.rku"))
    err = page.locator("[data-error=model]")
    err.wait_for(timeout=120_000)
    assert "damaged.rku" in err.inner_text() and "old model is still serving" in err.inner_text()
    assert "car-" in page.inner_text("#model-facts")         # the facts of the model that still serves
    assert not page.errors


def test_keyboard_only(page):
    _ready(page)
    page.keyboard.press("Tab")          # from the top of the page: the request field comes first
    assert page.evaluate("document.activeElement.id") == "request"
    q = "lock the front door"
    page.keyboard.type(q)
    page.keyboard.press("Enter")
    page.wait_for_function("!document.querySelector('#send').disabled && "
                           "document.querySelector('#result [data-calls]')", timeout=60_000)
    assert json.loads(page.locator("#result [data-calls]").get_attribute("data-calls")) == _firmware_calls(HOME, [q])[0]
    # Tab on to the example requests: Enter on one asks it
    for _ in range(4):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.parentElement.id") == "demos":
            break
    first = page.evaluate("document.activeElement.textContent")
    page.keyboard.press("Enter")
    page.wait_for_function("(q) => !document.querySelector('#send').disabled && "
                           "document.querySelector('#request').value === q && "
                           "document.querySelector('#result [data-calls]')", arg=first, timeout=60_000)
    got = json.loads(page.locator("#result [data-calls]").get_attribute("data-calls"))
    assert got == _firmware_calls(HOME, [first])[0]


def test_a_model_dropped_on_the_page(page):
    _ready(page)
    data = list(CAR.read_bytes())
    page.evaluate("""(bytes) => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], 'car.rku'));
        document.querySelector('#drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""", data)
    page.wait_for_function("document.querySelector('#status').textContent.includes('car.rku is serving')",
                           timeout=120_000)
    fns = json.loads(page.locator("#functions [data-functions]").get_attribute("data-functions"))
    assert "set_temperature" in fns and "set_brightness" not in fns
    # back to a bundled skill with the picker, then another board profile for the page's board (INFO says it)
    page.select_option("#skill", "home")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('home is serving')",
                           timeout=120_000)
    assert [b.inner_text() for b in page.locator("#demos button").all()][0] == "turn on the kitchen light"
    page.select_option("#profile", "esp32-s3-devkitc")
    page.wait_for_function("document.querySelector('#status').textContent.includes('restarted as esp32-s3-devkitc')",
                           timeout=120_000)
    page.click("#info")
    page.wait_for_function("document.querySelector('#board-out').textContent.startsWith('INFO:')")
    info = json.loads(page.inner_text("#board-out").split("\n", 1)[1])
    assert info["board"] == "esp32-s3-devkitc" and info["chip"] == "esp32s3" and info["model"]["id"].startswith("home-")


def test_readable_at_phone_width(browser, server):
    ctx = browser.new_context(viewport={"width": 360, "height": 740})
    pg = ctx.new_page()
    pg.base = server
    try:
        _ready(pg)
        assert pg.evaluate("document.documentElement.scrollWidth") <= 360
        box = pg.locator("#request").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 360
    finally:
        ctx.close()


# ---- Web Serial, to a virtual board on a pty ---------------------------------------------------------------------
class _Bridge:
    """HTTP <-> the pty of a `reku sim` board: POST /write (hex) sends bytes, GET /read returns what arrived (hex),
    waiting up to 200 ms for something."""

    def __init__(self, port):
        import serial
        self.ser = serial.Serial(port, 115200, timeout=0.2)
        self.lock = threading.Lock()
        bridge = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _ok(self, body):
                self.send_response(200)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                data = bridge.ser.read(4096)
                self._ok(data.hex().encode())

            def do_POST(self):
                n = int(self.headers["Content-Length"])
                with bridge.lock:
                    bridge.ser.write(bytes.fromhex(self.rfile.read(n).decode()))
                self._ok(b"")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]

    def close(self):
        self.httpd.shutdown()
        self.ser.close()


def test_web_serial_speaks_the_protocol_to_a_board_on_a_pty(page):
    with sim.VirtualBoard(runtime="cpython", board="pico2", model="car") as vb:
        bridge = _Bridge(vb.port)
        try:
            shim = (ROOT / "tests" / "helpers" / "serial_shim.js").read_text().replace("__BRIDGE__", bridge.url)
            page.add_init_script(shim)
            _ready(page)
            page.click("#connect")
            page.wait_for_function("document.querySelector('#status').textContent.startsWith('Connected')",
                                   timeout=60_000)
            name = page.inner_text("#board-name")
            assert name.startswith("pico2 (rp2350)") and "USB 2e8a:0005" in name, name
            info = json.loads(page.inner_text("#board-out").split("\n", 1)[1])
            assert info["model"]["id"].startswith("car-") and info["runtime"]
            fns = json.loads(page.locator("#functions [data-functions]").get_attribute("data-functions"))
            assert "set_temperature" in fns
            q = "set the temp to 21"
            calls = _ask(page, q)
            assert calls == _firmware_calls(CAR, [q])[0] != []
            assert page.locator("#result [data-alts]").count() == 0       # only the page's board shows those
            # STATS and FEEDBACK through the same panel
            page.click("#stats")
            page.wait_for_function("document.querySelector('#board-out').textContent.startsWith('STATS:')")
            stats = json.loads(page.inner_text("#board-out").split("\n", 1)[1])
            assert stats["queries"] == 1 and stats["calls"] == 1
            page.select_option("#outcome", "corrected")
            page.fill("#corrected", json.dumps([{"name": "set_temperature", "arguments": {"temperature": 22}}]))
            page.click("#feedback button[type=submit]")
            page.wait_for_function("document.querySelector('#board-out').textContent.startsWith('FEEDBACK:')")
            fb = json.loads(page.inner_text("#board-out").split("\n", 1)[1])
            assert fb["bytes"] > 0
            line = json.loads((vb.board_dir / "feedback.jsonl").read_text().splitlines()[-1])
            assert line["text"] == q and line["outcome"] == "corrected" and line["corrected"][0]["arguments"] == {"temperature": 22}
            # back to the page's board
            page.click("#use-page")
            page.wait_for_function("document.querySelector('#board-name').textContent.includes('in this page')")
            assert not page.errors
        finally:
            bridge.close()
