// Run the firmware's inference engine on the official MicroPython WebAssembly build.
// usage: node mp_infer.mjs MICROPYTHON_MJS FIRMWARE_DIR MODEL_FILE QUERIES_JSON
// Prints one JSON line per query: {"calls": [...], "stats": {...}, "tier": "...", "mem": peak-ish heap use}.
import fs from "fs";
import path from "path";
import { pathToFileURL } from "url";

const [mpPath, fwDir, modelFile, queriesFile] = process.argv.slice(2);
const { loadMicroPython } = await import(pathToFileURL(mpPath).href);
let out = "";
const mp = await loadMicroPython({ stdout: (s) => { out += s + "\n"; }, stderr: (s) => { process.stderr.write(s + "\n"); }, linebuffer: true });

function copyIn(src, dst) {
  try { mp.FS.mkdir(dst); } catch (e) { /* exists */ }
  for (const name of fs.readdirSync(src)) {
    const s = path.join(src, name), d = dst + "/" + name;
    if (fs.statSync(s).isDirectory()) { if (name !== "__pycache__") copyIn(s, d); }
    else if (name.endsWith(".py") || name.endsWith(".mpy")) mp.FS.writeFile(d, fs.readFileSync(s));
  }
}
copyIn(fwDir, "/fw");
mp.FS.writeFile("/model.rku", fs.readFileSync(modelFile));
mp.FS.writeFile("/queries.json", fs.readFileSync(queriesFile));
// FIRMWARE_DIR may hold .mpy files (mpy-cross) instead of sources. REKU_IMPORT_APP=1 imports the firmware
// app modules first, so heap_base counts them.
// heap_model: bytes allocated by the runtime + model + engine after loading (gc.mem_alloc after a collect);
// heap_query: bytes allocated during one query with the collector disabled (an upper bound of its peak);
// step_alloc_20: bytes allocated by 20 engine steps (0 expected: no allocation per token).
const importApp = process.env.REKU_IMPORT_APP ? "from rkfw import app, proto, transport, port, boards" : "";
const code = `
import sys, json, gc
sys.path.insert(0, '/fw')
${importApp}
gc.collect()
base = gc.mem_alloc()
from rkfw import rku, infer
f = open('/model.rku', 'rb'); buf = f.read(); f.close()
m = rku.load(buf)
e = infer.Engine(m)
gc.collect()
heap_model = gc.mem_alloc()
# step_alloc: bytes 20 recurrent steps allocate (the per-token loop must allocate nothing)
e.run('warm up')
t = 0              # every global the measurement writes exists before it (a new one grows the module dict)
step_alloc = 0
gc.collect()
gc.disable()
a0 = gc.mem_alloc()
for t in range(20):
    e.step(t + 1)
step_alloc = gc.mem_alloc() - a0
gc.enable()
e._reset()
qs = json.load(open('/queries.json'))
for q in qs:
    try:
        gc.collect()
        gc.disable()
        a0 = gc.mem_alloc()
        calls, st = e.run(q)
        used = gc.mem_alloc() - a0
        gc.enable()
        print(json.dumps({"calls": calls, "stats": st, "tier": e.tier, "sha": m.sha256, "heap_base": base,
                          "heap_model": heap_model, "heap_query": used,
                          "step_alloc_20": step_alloc}))
    except Exception as ex:
        gc.enable()
        print(json.dumps({"error": "%s: %s" % (type(ex).__name__, ex)}))
`;
try {
  mp.runPython(code);
} catch (e) {
  process.stderr.write(String(e.message || e) + "\n");
  process.stdout.write(out);
  process.exit(1);
}
process.stdout.write(out);
