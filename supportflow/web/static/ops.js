// The ops dashboard: GET /v1/ops/overview every 5 s, GET /v1/ops/timeseries?minutes=60 every 15 s,
// drawn as tiles, tables and two inline SVG charts.
import { ApiError, Session, clock, duration, explain, h, signInAgain } from "./common.js";

const session = new Session();
const $ = (id) => document.getElementById(id);
const el = {
  dashboard: $("dashboard"), updated: $("updated"), alert: $("alert"),
  tiles: $("tiles"), states: $("states"), counters: $("counters"), workers: $("workers"),
  failures: $("failures"), latency: $("latency-chart"), queue: $("queue-chart"),
};
const OVERVIEW_MS = 5000;
const SERIES_MS = 15000;
let overviewTimer = null;
let seriesTimer = null;
let failing = 0;
let loaded = false;
let stopped = false;
const problems = {};  // what failed, by source: shown together, cleared when that source works

function showProblems() {
  const texts = Object.values(problems);
  el.alert.replaceChildren(...texts.flatMap((text, i) => (i ? [h("br"), text] : [text])));
  el.updated.classList.toggle("off", texts.length > 0);
  if (texts.length) el.updated.textContent = "Not up to date";
}

function problem(error, what) {
  if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
    signOut(explain(error, "ops"));
    return;
  }
  let text = explain(error, "ops");
  if (error.status === 404) text = `The ${what} isn't available on this server yet (404) — retrying`;
  else if (error.status >= 500) text = `The server failed to give the ${what} (${error.status}) — retrying`;
  problems[what] = text;
  showProblems();
  if (what === "overview" && !loaded) {
    table(el.states, ["State", "Conversations"], [], "Not available");
    table(el.counters, ["Counter", "Total"], [], "Not available");
    table(el.workers, ["Worker", "Last seen"], [], "Not available");
    table(el.failures, ["Conversation", "Reason", "At"], [], "Not available");
  }
}

// ---- overview -------------------------------------------------------------------------------------
const num = (value) => (value === null || value === undefined ? "—" : String(value));

function tile(label, value, sub, bad) {
  return h("div", { class: `tile${bad ? " bad" : ""}` }, [
    h("span", { class: "label", text: label }), h("span", { class: "value", text: value }),
    sub ? h("span", { class: "sub", text: sub }) : ""]);
}

function table(node, head, rows, empty) {
  const thead = h("thead", {}, [h("tr", {}, head.map((text, i) =>
    h("th", { scope: "col", class: i ? "num" : "", text })))]);
  const body = rows.length
    ? rows.map((cells) => h("tr", {}, cells.map((text, i) => h("td", { class: i ? "num" : "", text: String(text) }))))
    : [h("tr", {}, [h("td", { colspan: String(head.length), class: "muted", text: empty })])];
  node.replaceChildren(thead, h("tbody", {}, body));
}

function renderOverview(data) {
  const handoff = data.handoff_queue || {};
  const polls = data.polls || {};
  const schedule = data.schedule || {};
  const queues = data.queues || {};
  const celery = queues.supportflow || Object.values(queues)[0] || {};
  const latency = data.reply_latency || {};
  const counters = data.counters || {};
  const dead = (data.deliveries || {}).dead_letters || 0;
  const workers = data.workers || [];
  el.tiles.replaceChildren(
    tile("Waiting for an agent", num(handoff.length),
      handoff.oldest_wait_s == null ? "nobody waiting" : `oldest ${duration(handoff.oldest_wait_s)}`),
    tile("Pending polls", num(polls.pending), `${num(polls.overdue)} overdue`, polls.overdue > 0),
    tile("Schedule", schedule.behind ? `behind ${duration(schedule.lag_s)}` : "on time",
      `${num(schedule.due)} wake-ups due now`, Boolean(schedule.behind)),
    tile("Task queue", num(celery.ready), `${num(celery.reserved)} reserved by workers`),
    tile("Reply latency p50", duration(latency.p50_s), `p95 ${duration(latency.p95_s)}`),
    tile("Workers", String(workers.length), workers.length ? "" : "no worker seen", workers.length === 0),
    tile("Dead letters", num(dead), "undelivered webhooks", dead > 0),
  );
  const states = Object.entries(data.conversations_by_state || {});
  table(el.states, ["State", "Conversations"], states.map(([state, n]) => [state.replace(/_/g, " "), n]),
    "No conversations yet");
  const rows = [
    ["Customer messages in", num(counters.messages_in)],
    ["Messages out", num(counters.messages_out)],
    ["Handoffs", num(counters.handoffs)],
    ...Object.entries(counters.runs || {}).map(([outcome, n]) => [`Runs ${outcome}`, n]),
    ...Object.entries(counters.assistant_errors || {}).map(([status, n]) => [`Assistant errors ${status}`, n]),
  ];
  table(el.counters, ["Counter", "Total"], rows, "Nothing counted yet");
  table(el.workers, ["Worker", "Last seen"], workers.map((w) => [w.name, `${duration(w.last_seen_s_ago)} ago`]),
    "No worker has reported");
  table(el.failures, ["Conversation", "Reason", "At"],
    (data.failures || []).slice(0, 20).map((f) => [f.conversation_id, f.reason, f.at ? clock(f.at) : "—"]),
    "No failures");
  el.failures.querySelectorAll("td:nth-child(2)").forEach((td) => { td.className = ""; });
}

async function refreshOverview() {
  clearTimeout(overviewTimer);
  try {
    const data = await session.api("GET", "/v1/ops/overview");
    renderOverview(data);
    loaded = true;
    failing = 0;
    delete problems.overview;
    el.updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    showProblems();
  } catch (error) {
    failing += 1;
    problem(error, "overview");
    if (stopped) return;
  }
  overviewTimer = setTimeout(refreshOverview, failing ? Math.min(OVERVIEW_MS * (failing + 1), 30000) : OVERVIEW_MS);
}

// ---- charts -----------------------------------------------------------------------------------------
const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

/** A line chart of series [{key, label, values: [[at, y|null]]}] over the last hour. */
function chart(figure, series, unit, format, integers = false) {
  // Drawn at the box's own width, so the labels keep their size on a phone.
  const width = Math.max(280, Math.round(figure.querySelector(".plot").clientWidth || 480));
  const height = width < 420 ? 170 : 190;
  const pad = { left: 44, right: 14, top: 10, bottom: 24 };
  const now = Date.now() / 1000;
  const from = now - 3600;
  const all = series.flatMap((line) => line.values.map(([, y]) => y)).filter((y) => y !== null && y !== undefined);
  const top = integers ? Math.max(4, Math.ceil(Math.max(0, ...all) / 4) * 4) : niceMax(Math.max(0, ...all));
  const x = (at) => pad.left + ((at - from) / 3600) * (width - pad.left - pad.right);
  const y = (v) => height - pad.bottom - (v / top) * (height - pad.top - pad.bottom);
  const summary = series.map((line) => {
    const values = line.values.map(([, v]) => v).filter((v) => v !== null && v !== undefined);
    const latest = values.length ? format(values[values.length - 1]) : "no data";
    const max = values.length ? format(Math.max(...values)) : "no data";
    return `${line.label}: latest ${latest}, highest ${max}`;
  }).join("; ");
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `Last hour. ${summary}` });
  for (let i = 0; i <= 4; i += 1) {
    const value = (top * i) / 4;
    svg.append(s("line", { class: i ? "grid" : "axis", x1: pad.left, x2: width - pad.right, y1: y(value), y2: y(value) }));
    svg.append(s("text", { x: pad.left - 6, y: y(value) + 4, "text-anchor": "end" }, format(value)));
  }
  for (let minutes = 60; minutes >= 0; minutes -= 15) {
    const at = now - minutes * 60;
    svg.append(s("text", { x: x(at), y: height - 6, "text-anchor": "middle" }, minutes ? `-${minutes} min` : "now"));
  }
  series.forEach((line, index) => {
    let d = "";
    let pen = false;
    for (const [at, v] of line.values) {
      if (v === null || v === undefined || at < from) { pen = false; continue; }
      d += `${pen ? "L" : "M"}${x(at).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    if (d) svg.append(s("path", { class: `line${index ? " second" : ""}`, d }));
    const last = line.values.filter(([at, v]) => v !== null && v !== undefined && at >= from).pop();
    if (last) svg.append(s("circle", { class: `dot${index ? " second" : ""}`, cx: x(last[0]), cy: y(last[1]), r: 3.5 }));
  });
  if (!all.length) {
    svg.append(s("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "No data in the last hour"));
  }
  figure.querySelector(".plot").replaceChildren(svg);
  const legend = figure.querySelector(".legend");
  legend.replaceChildren(...series.flatMap((line, index) => [
    h("span", { class: index ? "k2" : "k1", text: "— " }), `${line.label} (${unit}) `]));
}

let lastPoints = [];
let resizing = null;
window.addEventListener("resize", () => {
  clearTimeout(resizing);
  resizing = setTimeout(() => { if (!el.dashboard.hidden) renderSeries(lastPoints); }, 150);
});

function renderSeries(points) {
  lastPoints = points;
  const at = (p) => p.at;
  chart(el.latency, [{ label: "p50 reply latency", values: points.map((p) => [at(p), p.reply_latency_p50_s]) }],
    "seconds", (v) => (v === 0 ? "0" : v < 1 ? v.toFixed(2) : v < 10 ? v.toFixed(1) : String(Math.round(v))));
  chart(el.queue, [
    { label: "task queue", values: points.map((p) => [at(p), p.queue_depth]) },
    { label: "waiting for an agent", values: points.map((p) => [at(p), p.handoff_queue]) },
  ], "count", (v) => String(Math.round(v)), true);
}

async function refreshSeries() {
  clearTimeout(seriesTimer);
  try {
    const data = await session.api("GET", "/v1/ops/timeseries?minutes=60");
    renderSeries(data.points || []);
    delete problems["time series"];
    showProblems();
  } catch (error) {
    problem(error, "time series");
    if (stopped) return;
    renderSeries([]);
  }
  seriesTimer = setTimeout(refreshSeries, SERIES_MS);
}

// ---- starting and stopping -----------------------------------------------------------------------------
function enter() {
  el.alert.textContent = "";
  $("dashboard-title").focus();
  loaded = false;
  renderSeries([]);
  table(el.states, ["State", "Conversations"], [], "Loading…");
  table(el.counters, ["Counter", "Total"], [], "Loading…");
  table(el.workers, ["Worker", "Last seen"], [], "Loading…");
  table(el.failures, ["Conversation", "Reason", "At"], [], "Loading…");
  refreshOverview();
  refreshSeries();
}

function signOut(message) {
  // The session ended (or the account lost its rights): stop polling and sign in again.
  stopped = true;
  clearTimeout(overviewTimer);
  clearTimeout(seriesTimer);
  el.alert.textContent = message || "";
  signInAgain();
}

enter();
