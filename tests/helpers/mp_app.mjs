// Run the firmware's request handler (rkfw.app.App) on the official MicroPython WebAssembly build.
// usage: node mp_app.mjs MICROPYTHON_MJS FIRMWARE_DIR WORK_DIR INPUT_FILE
// WORK_DIR's files (model.rku, reku_key.bin, reku.json, board.json) become the board's working directory.
// INPUT_FILE: one line per step: hex bytes to feed to the decoder, "#reboot" (a new App on the same files,
// as after a power cut), "#nomodel" (drop the model), "#nonce HEX" (set the auth nonce, so that the test
// can sign requests beforehand) or "#ls" (print the file names and sizes).
// Output: one JSON line per step: {"replies": [hex or null, ...]} (one entry per decoder event).
import fs from "fs";
import path from "path";
import { pathToFileURL } from "url";

const [mpPath, fwDir, workDir, inputFile] = process.argv.slice(2);
const { loadMicroPython } = await import(pathToFileURL(mpPath).href);
let out = [];
const mp = await loadMicroPython({
  stdout: (s) => { out.push(s); }, stderr: (s) => { process.stderr.write(s + "\n"); }, linebuffer: true,
});

function copyIn(src, dst, filter) {
  try { mp.FS.mkdir(dst); } catch (e) { /* exists */ }
  for (const name of fs.readdirSync(src)) {
    const s = path.join(src, name), d = dst + "/" + name;
    if (fs.statSync(s).isDirectory()) { if (name !== "__pycache__") copyIn(s, d, filter); }
    else if (filter(name)) mp.FS.writeFile(d, fs.readFileSync(s));
  }
}
copyIn(fwDir, "/fw", (n) => n.endsWith(".py"));
copyIn(workDir, "/work", () => true);
mp.FS.writeFile("/input.txt", fs.readFileSync(inputFile));
const code = `
import sys, os, json, binascii
sys.path.insert(0, '/fw')
os.chdir('/work')
from rkfw import app as A
from rkfw import proto

def boot():
    a = A.App(A._read_json('board.json'), A._read_json('reku.json'))
    a.load_model()
    return a

app = boot()
dec = proto.Decoder()
for line in open('/input.txt'):
    line = line.strip()
    if line == '#reboot':
        app = boot()
        dec = proto.Decoder()
        print(json.dumps({"replies": [], "model": app.model.sha256 if app.model else None}))
        continue
    if line == '#nomodel':
        app.model = app.engine = None
        print(json.dumps({"replies": []}))
        continue
    if line.startswith('#nonce '):
        app.nonce = binascii.unhexlify(line[7:])
        print(json.dumps({"replies": []}))
        continue
    if line == '#ls':
        print(json.dumps({"files": dict((n, os.stat(n)[6]) for n in os.listdir('.'))}))
        continue
    reps = []
    for ev in dec.feed(binascii.unhexlify(line)):
        r = app.handle(ev)
        reps.append(binascii.hexlify(r).decode() if r else None)
    print(json.dumps({"replies": reps}))
`;
try {
  mp.runPython(code);
} catch (e) {
  process.stdout.write(out.join("\n") + "\n");
  process.stderr.write(String(e.message || e) + "\n");
  process.exit(1);
}
process.stdout.write(out.join("\n") + "\n");
