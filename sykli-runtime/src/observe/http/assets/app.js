// sykli's live page: the task graph of one run, its tasks coloured by state as events arrive
// (server-sent events from /api/runs/ID/events, resumed by the browser with Last-Event-ID),
// each task's log, and the run history. Plain script, no dependencies, no external address.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const params = new URLSearchParams(location.search);
const token = params.get("token");
const NODE_W = 180, NODE_H = 40, COL_W = 230, ROW_H = 56, PAD = 16, TOP = 48;
const LOG_LINES = 5000;

const page = {
  deps: {},          // task -> its dependencies (the pipeline's graph, when the server knows it)
  runId: null,       // the run shown
  live: false,       // shown from the hub's event stream (else from the journal)
  pinned: params.has("run"), // the user chose the run: do not follow newer ones
  done: false,       // the shown run ended
  tasks: new Map(),  // name -> { state, log: [] }
  order: [],         // task names in plan order
  selected: null,
  source: null,      // the EventSource of a live run
};

function api(path) {
  return token ? `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : path;
}

async function getJson(path) {
  const r = await fetch(api(path));
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
}

function setConnection(state, text) {
  const el = document.getElementById("connection");
  el.dataset.state = state;
  el.textContent = text;
}

function setRunState(state) {
  const el = document.getElementById("run-state");
  el.dataset.state = state;
  el.textContent = state;
}

// --- runs ----------------------------------------------------------------------------------

function runLabel(id) {
  return id.length > 24 ? id.slice(0, 24) + "…" : id;
}

function renderRuns(live, history) {
  const ul = document.getElementById("runs");
  ul.replaceChildren();
  const seen = new Set();
  const add = (id, outcome, isLive) => {
    if (seen.has(id)) return;
    seen.add(id);
    const li = document.createElement("li");
    li.dataset.run = id;
    li.dataset.outcome = outcome;
    if (id === page.runId) li.classList.add("current");
    const name = document.createElement("span");
    name.textContent = runLabel(id);
    name.title = id;
    const out = document.createElement("span");
    out.className = "outcome";
    out.textContent = outcome;
    li.append(name, out);
    li.addEventListener("click", () => {
      page.pinned = true;
      openRun(id, isLive);
    });
    ul.append(li);
  };
  for (const r of [...live].reverse()) add(r.run_id, r.state, true);
  for (const r of history) add(r.run_id, outcomeOf(r), false);
}

function outcomeOf(record) {
  const s = record.summary;
  if (!s) return record.parked ? "parked" : "running";
  if (s.interrupted) return "interrupted";
  return s.failed === 0 && s.errored === 0 ? "passed" : "failed";
}

async function refreshRuns() {
  let data;
  try {
    data = await getJson("/api/runs");
  } catch (e) {
    setConnection("error", String(e.message || e));
    return;
  }
  const live = data.live || [], history = data.history || [];
  renderRuns(live, history);
  if (page.pinned && page.runId) return;
  // Follow the newest live run that has not ended, else the newest run of any kind.
  const active = [...live].reverse().find((r) => r.state === "running" || r.state === "pending");
  if (active && active.run_id !== page.runId) {
    openRun(active.run_id, true);
  } else if (!page.runId) {
    if (live.length) openRun(live[live.length - 1].run_id, true);
    else if (history.length) openRun(history[0].run_id, false);
  }
}

function openRun(id, live) {
  if (page.source) page.source.close();
  page.source = null;
  page.runId = id;
  page.live = live;
  page.done = false;
  page.tasks = new Map();
  page.order = [];
  page.selected = null;
  document.getElementById("run-title").textContent = id;
  for (const li of document.querySelectorAll("#runs li")) {
    li.classList.toggle("current", li.dataset.run === id);
  }
  showLog();
  render();
  if (live) follow(id);
  else loadHistory(id);
}

// --- a live run ----------------------------------------------------------------------------

function follow(id) {
  setRunState("pending");
  setConnection("connecting", "connecting");
  const source = new EventSource(api(`/api/runs/${encodeURIComponent(id)}/events`));
  page.source = source;
  source.onopen = () => setConnection("live", "live");
  source.onmessage = (m) => {
    if (page.source !== source) return;
    apply(JSON.parse(m.data));
  };
  source.addEventListener("end", () => {
    source.close();
    setConnection("ended", "ended");
  });
  source.addEventListener("failure", (m) => {
    source.close();
    setConnection("error", m.data);
  });
  source.onerror = () => {
    // The browser reconnects by itself, sending Last-Event-ID: nothing is missed.
    if (source.readyState !== EventSource.CLOSED) setConnection("reconnecting", "reconnecting");
  };
}

// The task `name`, added (and the graph drawn again, unless `quiet`) when it is new.
function task(name, quiet) {
  let t = page.tasks.get(name);
  if (!t) {
    t = { state: "pending", log: [] };
    page.tasks.set(name, t);
    page.order.push(name);
    if (!quiet) render();
  }
  return t;
}

function apply(env) {
  const e = env.event;
  switch (e.event) {
    case "run_started":
      setRunState("running");
      for (const name of e.tasks) task(name, true);
      render();
      break;
    case "task_started":
      setState(e.task, "running");
      break;
    case "task_retrying":
      setState(e.task, "retrying");
      break;
    case "task_output": {
      const t = task(e.task);
      t.log.push(e.line);
      // A browser tab keeps the last lines; the full log is in `sykli logs`.
      if (t.log.length > LOG_LINES) t.log.splice(0, t.log.length - LOG_LINES);
      if (page.selected === e.task) appendLog(e.line);
      break;
    }
    case "task_resources": {
      const t = task(e.task);
      t.usage = `${Math.round(e.cpu_percent)}% · ${bytes(e.rss_bytes)}`;
      const g = document.querySelector(`#graph g.task[data-task="${CSS.escape(e.task)}"]`);
      if (g) g.querySelector("text.usage").textContent = t.usage;
      break;
    }
    case "task_finished":
      setState(e.task, e.status);
      break;
    case "run_finished": {
      const failed = e.failed + e.errored > 0;
      setRunState(e.interrupted ? "interrupted" : failed ? "failed" : "passed");
      page.done = true;
      break;
    }
    case "run_parked":
      setRunState("parked");
      page.done = true;
      break;
    default:
      break;
  }
}

function bytes(n) {
  const units = ["B", "K", "M", "G", "T"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n < 10 && i > 0 ? n.toFixed(1) : Math.round(n)}${units[i]}`;
}

function setState(name, state) {
  const t = task(name);
  t.state = state;
  const g = document.querySelector(`#graph g.task[data-task="${CSS.escape(name)}"]`);
  if (g) {
    g.dataset.state = state;
    g.querySelector("text.status").textContent = state;
    // CPU and memory are shown while the task runs (sampled by the executor).
    if (state !== "running") g.querySelector("text.usage").textContent = "";
  }
}

// --- a journalled run ----------------------------------------------------------------------

async function loadHistory(id) {
  setConnection("history", "from the journal");
  let record;
  try {
    record = await getJson(`/api/history/${encodeURIComponent(id)}`);
  } catch (e) {
    setConnection("error", String(e.message || e));
    return;
  }
  if (page.runId !== id) return;
  setRunState(outcomeOf(record));
  for (const t of record.tasks) {
    task(t.name);
    setState(t.name, t.status || "pending");
  }
  page.done = true;
}

// --- the graph -----------------------------------------------------------------------------

function layout() {
  const depth = new Map();
  const visiting = new Set();
  const depthOf = (name) => {
    if (depth.has(name)) return depth.get(name);
    if (visiting.has(name)) return 0; // a cycle cannot happen in a valid plan; stay finite
    visiting.add(name);
    let d = 0;
    for (const dep of page.deps[name] || []) {
      if (page.tasks.has(dep)) d = Math.max(d, depthOf(dep) + 1);
    }
    visiting.delete(name);
    depth.set(name, d);
    return d;
  };
  const rows = [];
  const pos = new Map();
  for (const name of page.order) {
    const d = depthOf(name);
    rows[d] = (rows[d] || 0) + 1;
    pos.set(name, { x: PAD + d * COL_W, y: TOP + (rows[d] - 1) * ROW_H });
  }
  return pos;
}

function render() {
  const svg = document.getElementById("graph");
  svg.replaceChildren();
  const defs = document.createElementNS(SVG, "defs");
  const marker = document.createElementNS(SVG, "marker");
  for (const [k, v] of Object.entries({ id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5",
    markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" })) marker.setAttribute(k, v);
  const tip = document.createElementNS(SVG, "path");
  tip.setAttribute("d", "M 0 0 L 10 5 L 0 10 z");
  tip.setAttribute("fill", "#9ca3af");
  marker.append(tip);
  defs.append(marker);
  svg.append(defs);
  const pos = layout();
  let w = 0, h = 0;
  for (const name of page.order) {
    const p = pos.get(name);
    for (const dep of page.deps[name] || []) {
      const q = pos.get(dep);
      if (!q) continue;
      const path = document.createElementNS(SVG, "path");
      const x1 = q.x + NODE_W, y1 = q.y + NODE_H / 2, x2 = p.x, y2 = p.y + NODE_H / 2;
      const span = Math.round((p.x - q.x) / COL_W);
      if (span > 1) {
        // Over the tasks in between: an arc above them.
        const lift = Math.min(NODE_H / 2 + 8 * span, TOP + NODE_H / 2 - 4);
        path.setAttribute("d", `M ${x1} ${y1} C ${x1 + 60} ${y1 - lift * 1.4}, ${x2 - 60} ${y2 - lift * 1.4}, ${x2} ${y2}`);
      } else {
        const mx = (x1 + x2) / 2;
        path.setAttribute("d", `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`);
      }
      path.setAttribute("class", "edge");
      path.dataset.from = dep;
      path.dataset.to = name;
      svg.append(path);
    }
  }
  for (const name of page.order) {
    const p = pos.get(name);
    const t = page.tasks.get(name);
    const g = document.createElementNS(SVG, "g");
    g.setAttribute("class", "task" + (page.selected === name ? " selected" : ""));
    g.setAttribute("transform", `translate(${p.x}, ${p.y})`);
    g.dataset.task = name;
    g.dataset.state = t.state;
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("width", NODE_W);
    rect.setAttribute("height", NODE_H);
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", 10);
    label.setAttribute("y", 14);
    label.textContent = name.length > 22 ? name.slice(0, 22) + "…" : name;
    const status = document.createElementNS(SVG, "text");
    status.setAttribute("class", "status");
    status.setAttribute("x", 10);
    status.setAttribute("y", 30);
    status.textContent = t.state;
    const usage = document.createElementNS(SVG, "text");
    usage.setAttribute("class", "usage");
    usage.setAttribute("x", NODE_W - 10);
    usage.setAttribute("y", 30);
    usage.setAttribute("text-anchor", "end");
    usage.textContent = t.state === "running" && t.usage ? t.usage : "";
    const title = document.createElementNS(SVG, "title");
    title.textContent = name;
    g.append(title, rect, label, status, usage);
    g.addEventListener("click", () => select(name));
    svg.append(g);
    w = Math.max(w, p.x + NODE_W + PAD);
    h = Math.max(h, p.y + NODE_H + PAD);
  }
  svg.setAttribute("width", w);
  svg.setAttribute("height", h);
}

// --- logs ----------------------------------------------------------------------------------

function select(name) {
  page.selected = name;
  for (const g of document.querySelectorAll("#graph g.task")) {
    g.classList.toggle("selected", g.dataset.task === name);
  }
  showLog();
}

function appendLog(line) {
  const pre = document.getElementById("log");
  const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.append(line + "\n");
  if (stick) pre.scrollTop = pre.scrollHeight;
}

async function showLog() {
  const title = document.getElementById("log-title");
  const pre = document.getElementById("log");
  pre.replaceChildren();
  pre.dataset.task = page.selected || "";
  if (!page.selected) {
    title.textContent = "Select a task to see its log";
    return;
  }
  const name = page.selected;
  title.textContent = `Log of ${name}`;
  const t = page.tasks.get(name);
  if (page.live || (t && t.log.length)) {
    pre.textContent = t && t.log.length ? t.log.join("\n") + "\n" : "";
    return;
  }
  try {
    const r = await fetch(api(`/api/history/${encodeURIComponent(page.runId)}/log/${encodeURIComponent(name)}`));
    const text = await r.text();
    if (page.selected === name) pre.textContent = text;
  } catch (e) {
    pre.textContent = String(e.message || e);
  }
}

// --- start ---------------------------------------------------------------------------------

async function start() {
  try {
    page.deps = await getJson("/api/graph");
  } catch (e) {
    setConnection("error", String(e.message || e));
  }
  if (params.has("run")) {
    const id = params.get("run");
    let live = false;
    try {
      const runs = await getJson("/api/runs");
      live = (runs.live || []).some((r) => r.run_id === id);
    } catch (_) { /* shown by refreshRuns */ }
    openRun(id, live);
  }
  await refreshRuns();
  setInterval(refreshRuns, 2000);
}

start();
