// The playground page: boots the firmware in a worker (worker.js), then drives whichever board is selected -- that
// one, or a real board over Web Serial -- through the same protocol client (client.js). No framework.
import { BoardError, Client, SerialLink, WasmLink } from "./client.js";

const $ = (id) => document.getElementById(id);
const state = { client: null, page: null, serial: null, model: null, modelName: null, last: null, skills: null };

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const k of kids) e.append(k);
  return e;
}

function status(text, cls = "") {
  $("status").textContent = text;
  $("status").className = cls;
}

function fmtCall(c) {
  const args = Object.entries(c.arguments || {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return `${c.name}(${args.join(", ")})`;
}

function fmtBytes(n) { return n.toLocaleString("en-US") + " B"; }

function table(rows) {
  return el("table", {}, el("tbody", {}, ...rows.map(([k, v]) => el("tr", {}, el("th", { scope: "row" }, k),
    el("td", {}, v)))));
}

function busy(on) {
  for (const id of ["send", "request", "skill", "file", "profile", "info", "stats", "connect"]) $(id).disabled = on;
  $("use-page").disabled = on || state.client === null || state.client.link === state.page;
  for (const b of $("demos").querySelectorAll("button")) b.disabled = on;
}

// ---- the board in the page ---------------------------------------------------------------------------------
async function bootPage(board, model) {
  if (state.page) state.page.worker.terminate();
  const link = new WasmLink(new Worker("/static/worker.js", { type: "module" }));
  const r = await link.boot(board, model);
  state.page = link;
  return r;
}

async function usePage() {
  if (state.serial) { await state.serial.close(); state.serial = null; }
  state.client = new Client(state.page);
  $("board-name").textContent = state.page.name;
  $("profile").disabled = false;
}

// ---- model facts ---------------------------------------------------------------------------------------------
async function showFacts(bytes, label) {
  const box = $("model-facts");
  box.replaceChildren(el("p", {}, `Reading ${label}…`));
  const r = await fetch("/api/inspect", { method: "POST", body: bytes });
  const f = await r.json();
  if (f.error) {
    box.replaceChildren(el("p", { class: "error", role: "alert" }, `${label}: ${f.error}`));
    return false;
  }
  const a = f.arch;
  const fits = Object.entries(f.boards).map(([n, b]) => el("span", { class: b.fits ? "fits" : "error" },
    `${n} ${b.fits ? "fits" : "does not fit"}`));
  const boards = el("span", {});
  fits.forEach((s, i) => boards.append(...(i ? [", ", s] : [s])));
  box.replaceChildren(el("h3", {}, label), table([
    ["model", f.model_id || "—"],
    ["shape", `d ${a.d}, f ${a.f}, ${a.layers} layers, dk ${a.dk}, max_in ${a.max_in}, acts ${a.acts.join("/")}`],
    ["file", fmtBytes(f.file_bytes)],
    ["ternary weights", `${f.ternary_params.toLocaleString("en-US")} (${f.bits_per_ternary_weight.toFixed(3)} bits each)`],
    ["engine buffers", fmtBytes(f.ram_buffers_bytes)],
    ["boards (stock MicroPython, estimate)", boards],
  ]));
  return true;
}

async function showFunctions() {
  const box = $("functions");
  try {
    const schema = await state.client.schema();
    const names = Object.keys(schema).sort();
    box.replaceChildren(el("h3", {}, "Functions"), el("ul", { "data-functions": JSON.stringify(names) },
      ...names.map((fn) => [fn, schema[fn]]).map(([fn, params]) => el("li", {}, el("code", {}, `${fn}(${params.join(", ")})`)))));
  } catch (e) {
    box.replaceChildren(el("p", { class: "error" }, `Functions: ${e.message}`));
  }
}

async function loadModel(bytes, label) {
  busy(true);
  try {
    await showFacts(bytes, label);
    status(`Uploading ${label} to ${state.client.link.name}…`);
    try {
      const r = await state.client.upload(new Uint8Array(bytes), (off, n) =>
        status(`Uploading ${label}: ${Math.round(100 * off / n)}%`));
      state.model = bytes;
      state.modelName = label;
      status(`${label} is serving (${fmtBytes(r.bytes)}, id ${r.id}).`, "fits");
      await showFunctions();
    } catch (e) {
      const msg = e instanceof BoardError ? `the board refused ${label}: ${e.message}` : `${label}: ${e.message}`;
      status(msg, "error");
      $("result").replaceChildren(el("p", { class: "error", role: "alert", "data-error": "model" }, msg));
      await showFacts(state.model, state.modelName);     // the facts of the model that still serves
    }
  } finally {
    busy(false);
  }
}

// ---- asking ---------------------------------------------------------------------------------------------------
async function ask(text) {
  if (!text.trim()) return;
  busy(true);
  const box = $("result");
  box.replaceChildren(el("p", {}, `Asking: ${text}`));
  const t0 = performance.now();
  try {
    const r = await state.client.query(text);
    const ms = performance.now() - t0;
    const x = state.client.extra;
    state.last = { text, calls: r.calls };
    const call = r.calls.length
      ? el("div", { class: "call" }, r.calls.map(fmtCall).join("\n"))
      : el("div", { class: "call nocall" }, "no call (the request matches none of the functions)");
    const rows = [
      ["JSON", el("code", {}, JSON.stringify(r.calls))],
      ["tokens", `${r.tokens_in} in, ${r.tokens_out} out`],
      ["time", `${ms.toFixed(0)} ms in this page (the board's own count: ${(r.us / 1000).toFixed(1)} ms)`],
    ];
    if (x) {
      rows.push(["heap", `${fmtBytes(x.heap)} in use after the reply; ${fmtBytes(x.allocated)} allocated while answering`]);
    }
    const parts = [el("div", { "data-calls": JSON.stringify(r.calls), "data-ms": ms.toFixed(1), "data-us": String(r.us) }, call), table(rows)];
    if (x && x.alts) {
      parts.push(el("h3", {}, "First decision: what the grammar allowed, best first"),
        el("table", { "data-alts": JSON.stringify(x.alts) },
          el("thead", {}, el("tr", {}, el("th", {}, "token"), el("th", {}, "logit"))),
          el("tbody", {}, ...x.alts.map(([t, v]) => el("tr", {}, el("td", {}, el("code", {}, t)), el("td", {}, String(v)))))));
    }
    box.replaceChildren(...parts);
    $("feedback").hidden = false;
    $("corrected").value = JSON.stringify(r.calls);
  } catch (e) {
    box.replaceChildren(el("p", { class: "error", role: "alert" }, e.message));
  } finally {
    busy(false);
    $("request").focus();
  }
}

function showDemos(list) {
  $("demos").replaceChildren(...list.map((q) => {
    const b = el("button", { type: "button" }, q);
    b.addEventListener("click", () => { $("request").value = q; ask(q); });
    return b;
  }));
}

async function boardOut(what, fn) {
  busy(true);
  try {
    $("board-out").textContent = `${what}:\n` + JSON.stringify(await fn(), null, 1);
  } catch (e) {
    $("board-out").textContent = `${what} failed: ${e.message}`;
  } finally {
    busy(false);
  }
}

// ---- Web Serial ------------------------------------------------------------------------------------------------
async function connectSerial() {
  if (!("serial" in navigator)) {
    $("serial-note").textContent = "This browser has no Web Serial (Chrome, Edge and Opera on a desktop have it).";
    return;
  }
  let port;
  try {
    port = await navigator.serial.requestPort();
  } catch (e) {
    $("serial-note").textContent = "No port chosen.";
    return;
  }
  busy(true);
  try {
    const link = new SerialLink(port);
    await link.open(115200);
    state.serial = link;
    state.client = new Client(link);
    const info = await state.client.hello();
    $("board-name").textContent = `${info.board} (${info.chip}), firmware ${info.fw}, on ${link.name}`;
    $("board-out").textContent = "INFO:\n" + JSON.stringify(info, null, 1);
    $("profile").disabled = true;
    await showFunctions();
    status(`Connected: ${info.board}` + (info.model ? `, model ${info.model.id}` : `, no model (${info.model_error})`), "fits");
  } catch (e) {
    status(`Could not talk to the board: ${e.message}`, "error");
    if (state.serial) { await state.serial.close(); state.serial = null; }
    await usePage();
  } finally {
    busy(false);
  }
}

// ---- start -----------------------------------------------------------------------------------------------------
async function start() {
  const t0 = performance.now();
  const skills = state.skills = await (await fetch("/api/skills")).json();
  $("skill").replaceChildren(...skills.skills.map((s) =>
    el("option", { value: s.name, selected: s.name === skills.default }, `${s.name} (${fmtBytes(s.bytes)})`)));
  $("profile").replaceChildren(...skills.boards.map((b) => el("option", { value: b, selected: b === skills.board }, b)));
  const model = await (await fetch(`/api/model/${skills.default}`)).arrayBuffer();
  state.model = model;
  state.modelName = skills.default;
  const r = await bootPage(skills.board, model);
  await usePage();
  const ready = performance.now() - t0;
  const info = await state.client.hello();
  if (!info.model) throw new Error(`the model did not load: ${info.model_error}`);
  document.body.dataset.ready = "1";
  document.body.dataset.readyMs = ready.toFixed(0);
  document.body.dataset.mpMs = r.mp_ms.toFixed(0);
  status(`Ready in ${(ready / 1000).toFixed(1)} s (MicroPython ${(r.mp_ms / 1000).toFixed(1)} s); ` +
         `firmware ${info.fw} on ${info.board}, model ${info.model.id}, heap in use ${fmtBytes(r.heap)}.`);
  showDemos(skills.skills.find((s) => s.name === skills.default).demo);
  busy(false);
  await showFacts(model, skills.default);
  await showFunctions();
}

$("ask").addEventListener("submit", (ev) => { ev.preventDefault(); ask($("request").value); });
$("skill").addEventListener("change", async () => {
  const name = $("skill").value;
  const bytes = await (await fetch(`/api/model/${name}`)).arrayBuffer();
  await loadModel(bytes, name);
  showDemos(state.skills.skills.find((s) => s.name === name).demo);
});
$("file").addEventListener("change", async () => {
  const f = $("file").files[0];
  if (f) await loadModel(await f.arrayBuffer(), f.name);
});
const drop = $("drop");
drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", async (ev) => {
  ev.preventDefault();
  drop.classList.remove("over");
  const f = ev.dataTransfer.files[0];
  if (f) await loadModel(await f.arrayBuffer(), f.name);
});
$("profile").addEventListener("change", async () => {
  busy(true);
  try {
    await bootPage($("profile").value, state.model);
    await usePage();
    status(`The page's board restarted as ${$("profile").value}.`);
  } catch (e) {
    status(e.message, "error");
  } finally {
    busy(false);
  }
});
$("connect").addEventListener("click", connectSerial);
$("use-page").addEventListener("click", async () => {
  await usePage();
  busy(false);
  status("Talking to the board in this page.");
  await showFunctions();
});
$("info").addEventListener("click", () => boardOut("INFO", () => state.client.hello()));
$("stats").addEventListener("click", () => boardOut("STATS", () => state.client.stats()));
$("feedback").addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (!state.last) return;
  const outcome = $("outcome").value;
  const entry = { text: state.last.text, outcome, calls: state.last.calls };
  if (outcome === "corrected") {
    try {
      entry.corrected = JSON.parse($("corrected").value);
    } catch (e) {
      $("board-out").textContent = `Corrected calls are not JSON: ${e.message}`;
      return;
    }
  }
  boardOut("FEEDBACK", () => state.client.feedback(entry));
});

start().catch((e) => {
  status(`The page's board did not start: ${e.message}`, "error");
  document.body.dataset.ready = "error";
});
