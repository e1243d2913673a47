// The in-browser board: the official MicroPython WebAssembly build in a module worker (so that a query of a few
// seconds does not freeze the page). boot writes the unchanged firmware files, the board profile and the model into
// MicroPython's filesystem at /board and starts driver.py; frames passes protocol bytes to the firmware and returns
// its reply bytes. Messages: {id, op, ...} in, {id, ok, ...} or {id, ok: false, error} out.
let mp = null;

// Run Python code that leaves a JSON string in _out, and return it parsed.
function py(code) {
  mp.runPython("_out = " + code);
  return JSON.parse(mp.globals.get("_out"));
}

async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

function mkdirs(FS, path) {
  let p = "";
  for (const part of path.split("/").slice(1, -1)) {
    p += "/" + part;
    try { FS.mkdir(p); } catch (e) { /* exists */ }
  }
}

const ops = {
  async boot({ board, model }) {
    const t0 = performance.now();
    const log = [];
    const { loadMicroPython } = await import("/mp/micropython.mjs");
    mp = await loadMicroPython({ stdout: (s) => log.push(s), stderr: (s) => log.push(s) });
    const tLoaded = performance.now();
    const manifest = await (await fetch("/fw/manifest.json")).json();
    for (const f of manifest.files) {
      const dst = "/board/" + f;
      mkdirs(mp.FS, dst);
      mp.FS.writeFile(dst, await fetchBytes("/fw/" + f));
    }
    mp.FS.writeFile("/board/board.json", await fetchBytes(`/hw/${board}.json`));
    if (model) mp.FS.writeFile("/board/model.rku", new Uint8Array(model));
    mp.runPython(await (await fetch("/static/driver.py")).text());
    mp.runPython("reboot()");
    const heap = py("json.dumps(heap())");
    return { ms: performance.now() - t0, mp_ms: tLoaded - t0, heap: heap[0], heap_free: heap[1], log,
             firmware_bytes: manifest.bytes };
  },

  async frames({ hex }) {
    if (mp === null) throw new Error("the board has not booted");
    const t0 = performance.now();
    const r = py(`board.frames(${JSON.stringify(hex)})`);
    const ms = performance.now() - t0;
    const heap = py("json.dumps(heap())");      // after the collection frames() asked for
    return { reply: r.reply, alts: r.alts, allocated: r.allocated, ms, heap: heap[0], heap_free: heap[1] };
  },
};

onmessage = async (ev) => {
  const { id, op, ...args } = ev.data;
  try {
    postMessage({ id, ok: true, ...(await ops[op](args)) });
  } catch (e) {
    postMessage({ id, ok: false, error: String((e && e.message) || e) });
  }
};
