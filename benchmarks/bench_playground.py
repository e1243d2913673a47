"""Playground benchmark: the page of `reku playground` in Debian's chromium (headless, Playwright), against the
virtual board on the same MicroPython WebAssembly build, in the same run.

    .venv/bin/python benchmarks/bench_playground.py --out benchmarks/results [--quick]

Writes OUT/playground.json:
- page ready: from navigation to the page's board answering INFO with the model loaded (MicroPython loaded in a
  worker, the firmware files, profile and home model written into its filesystem, App built, model loaded), on the
  page's clock; a fresh browser context each time (nothing cached), median of 3 (1 with --quick).
- per query: bench_board.py's home queries, each typed into the page and answered by the firmware in the page:
  the board's own count (the reply's "us": engine.run() only) and the page's (worker round trip: framing, the
  handler, JSON), against the same queries on the virtual board (`reku sim`, MicroPython runtime, UART over a pty;
  bench_board.virtual_board). The calls must be the same on both.
- page weight: the bytes of the page's own files (static/: HTML, CSS, JavaScript, the worker's driver.py), which is
  what the 100 KB target counts, and what the page fetched by kind (MicroPython build, firmware sources, profile,
  model, API), measured from the browser's responses.
"""
import argparse
import json
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_board import QUERIES, summary, virtual_board  # noqa: E402

from reku import playground  # noqa: E402

PAGE_WEIGHT_LIMIT = 100 * 1024


def kind(url):
    path = "/" + url.split("/", 3)[3] if url.count("/") >= 3 else "/"
    for prefix, k in (("/mp/", "micropython"), ("/fw/", "firmware"), ("/hw/", "profile"), ("/api/model/", "model"),
                      ("/api/", "api"), ("/static/", "page"), ("/", "page")):
        if path.startswith(prefix):
            return k
    return "other"


def page_ready(browser, base):
    ctx = browser.new_context()
    got = {}

    def on_response(r):         # the server sends Content-Length with every body
        got[kind(r.url)] = got.get(kind(r.url), 0) + int(r.headers.get("content-length", 0))
    ctx.on("response", on_response)
    pg = ctx.new_page()
    pg.goto(base + "/")
    pg.wait_for_function("document.body.dataset.ready", timeout=120_000)
    assert pg.evaluate("document.body.dataset.ready") == "1", pg.inner_text("#status")
    ready = float(pg.evaluate("document.body.dataset.readyMs"))
    mp_ms = float(pg.evaluate("document.body.dataset.mpMs"))
    pg.wait_for_function("document.querySelector('#functions [data-functions]')", timeout=60_000)
    return ctx, pg, ready, mp_ms, got


def browser_queries(pg, queries, rounds):
    us, ms, calls = [], [], []
    for _ in range(rounds):
        for q in queries:
            pg.fill("#request", q)
            pg.click("#send")
            loc = pg.locator("#result [data-calls]")
            loc.wait_for(timeout=120_000)
            us.append(int(loc.get_attribute("data-us")))
            ms.append(float(loc.get_attribute("data-ms")))
            calls.append(json.loads(loc.get_attribute("data-calls")))
    return us, ms, calls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    rounds, loads = (1, 1) if args.quick else (3, 3)
    static = sum(p.stat().st_size for p in playground.STATIC.iterdir() if p.is_file())
    httpd = playground.serve(playground.Playground(), "127.0.0.1", 0)
    base = "http://localhost:%d" % httpd.server_address[1]
    res = {"name": "playground", "command": "python benchmarks/bench_playground.py --out benchmarks/results"
           + (" --quick" if args.quick else ""), "machine": platform.machine(), "queries": QUERIES, "rounds": rounds}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium)
            res["browser"] = "chromium " + browser.version
            readies, mps = [], []
            for i in range(loads):
                ctx, pg, ready, mp_ms, fetched = page_ready(browser, base)
                readies.append(ready)
                mps.append(mp_ms)
                if i < loads - 1:
                    ctx.close()
            us, ms, calls = browser_queries(pg, QUERIES, rounds)
            ctx.close()
            browser.close()
    finally:
        httpd.shutdown()
    res["page_ready_ms"] = {"median": statistics.median(readies), "all": readies,
                            "micropython_loaded_ms": statistics.median(mps)}
    res["page_weight"] = {"own_files_bytes": static, "fetched_bytes_by_kind": fetched}
    res["browser_query"] = summary(us, ms)
    vb = virtual_board("micropython", QUERIES, rounds)
    res["virtual_board_micropython"] = vb
    # the calls the virtual board gives, once per query (its on-board figures above)
    from reku.model.evaluate import predict
    from rkfw import rku
    want = predict(rku.load(playground.paths.model_file("home").read_bytes()), QUERIES, "firmware") * rounds
    same = sum(a == b for a, b in zip(calls, want)) / len(want)
    ratio = res["browser_query"]["on_board_ms"]["median"] / vb["on_board_ms"]["median"]
    res["browser_vs_virtual_board_on_board_ms"] = ratio
    res["targets"] = [
        {"what": "page weight excluding the MicroPython build (the page's own files), bytes", "value": static,
         "op": "<=", "limit": PAGE_WEIGHT_LIMIT, "ok": static <= PAGE_WEIGHT_LIMIT},
        {"what": "browser: calls equal to the firmware engine's on the host (fraction)", "value": same,
         "op": ">=", "limit": 1.0, "ok": same >= 1.0},
        {"what": "browser vs virtual board (WebAssembly under Node): on-board ms per query, median ratio",
         "value": round(ratio, 3), "op": "<=", "limit": 1.5, "ok": ratio <= 1.5},
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "playground.json").write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({k: res[k] for k in ("page_ready_ms", "page_weight", "browser_vs_virtual_board_on_board_ms")}, indent=1))
    print("browser on-board ms", res["browser_query"]["on_board_ms"], "virtual board", vb["on_board_ms"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
