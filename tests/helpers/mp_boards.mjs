// Run the board-profile reader (firmware/rkfw/boards.py) on the official MicroPython WebAssembly build.
// usage: node mp_boards.mjs MICROPYTHON_MJS FIRMWARE_DIR BOARDS_DIR CODE_FILE
// The firmware package is at /fw, the profiles at /hw/boards; CODE_FILE runs with /fw on sys.path.
import fs from "fs";
import path from "path";
import { pathToFileURL } from "url";

const [mpPath, fwDir, boardsDir, codeFile] = process.argv.slice(2);
const { loadMicroPython } = await import(pathToFileURL(mpPath).href);
const mp = await loadMicroPython({
  stdout: (s) => process.stdout.write(s + "\n"),
  stderr: (s) => process.stderr.write(s + "\n"),
  linebuffer: true,
});

function mkdirs(p) {
  let cur = "";
  for (const part of p.split("/").filter(Boolean)) {
    cur += "/" + part;
    try { mp.FS.mkdir(cur); } catch (e) { /* exists */ }
  }
}
mkdirs("/fw/rkfw");
for (const name of ["__init__.py", "boards.py"]) {
  mp.FS.writeFile("/fw/rkfw/" + name, fs.readFileSync(path.join(fwDir, "rkfw", name)));
}
mkdirs("/hw/boards");
for (const name of fs.readdirSync(boardsDir)) {
  if (name.endsWith(".json")) mp.FS.writeFile("/hw/boards/" + name, fs.readFileSync(path.join(boardsDir, name)));
}
try {
  mp.runPython("import sys\nsys.path.insert(0, '/fw')\n" + fs.readFileSync(codeFile, "utf8"));
} catch (e) {
  process.stderr.write(String(e) + "\n");
  process.exit(1);
}
