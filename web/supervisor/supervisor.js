// Supervisor page: login, then the live view pushed over /ws/supervisor (a snapshot, then
// only the parts that changed). The page never polls; it reconnects with back-off.

import { api, plain } from "/web/common/api.js";
import uPlot from "/web/vendor/uplot/uPlot.esm.js";

const $ = (s) => document.querySelector(s);
const STATES = { ready: "就绪", offered: "来电中", in_call: "通话中", wrap_up: "整理中", not_ready: "暂停", offline: "离线" };
const VERDICTS = { pass: "通过", review: "人工复核", fail: "不通过", "": "未核验" };
const LEVELS = { village: "村级", town: "镇级", district: "区县级" };
const view = { items: [], clerks: [], calls: [], day: null, at: 0 };
let skew = 0;  // server time minus ours, so durations tick between updates
let charts = {};
let attempt = 0;

function text(el, value) { el.textContent = value; }
function cell(row, value, cls) { const td = row.insertCell(); td.textContent = value; if (cls) td.className = cls; return td; }
function duration(s) {
  if (s == null || !isFinite(s)) return "–";
  s = Math.max(0, Math.round(s));
  if (s < 60) return `${s} 秒`;
  if (s < 3600) return `${Math.floor(s / 60)} 分 ${s % 60} 秒`;
  return `${Math.floor(s / 3600)} 小时 ${Math.floor((s % 3600) / 60)} 分`;
}
function share(x) { return x == null ? "–" : `${Math.round(x * 1000) / 10}%`; }
function now() { return Date.now() / 1000 + skew; }

function showError(err) {
  $("#error").hidden = !err;
  text($("#error"), err ? plain(err) : "");
}

function drawItems() {
  const body = $("#items tbody");
  body.replaceChildren();
  for (const it of view.items) {
    const row = body.insertRow();
    row.dataset.item = it.item_code;
    cell(row, it.item_name);
    cell(row, String(it.waiting)).className = "waiting";
    cell(row, it.waiting ? duration(it.longest_wait_s) : "–", it.longest_wait_s > 300 ? "late" : "");
  }
}

function drawClerks() {
  const body = $("#clerks tbody");
  body.replaceChildren();
  const counts = {};
  for (const c of view.clerks) {
    counts[c.state] = (counts[c.state] || 0) + 1;
    const row = body.insertRow();
    row.dataset.clerk = c.username;
    cell(row, c.display_name);
    cell(row, STATES[c.state] + (c.reason ? `（${c.reason}）` : ""), `state state-${c.state}`);
    cell(row, c.since ? duration(now() - c.since) : "–").dataset.since = c.since || "";
  }
  text($("#clerk-counts"), Object.entries(STATES).filter(([k]) => counts[k]).map(([k, w]) => `${w} ${counts[k]}`).join(" · "));
}

function drawCalls() {
  const body = $("#calls tbody");
  body.replaceChildren();
  for (const c of view.calls) {
    const row = body.insertRow();
    row.dataset.call = c.call_id;  // watch.js adds its 监看 button by it
    cell(row, view.items.find((it) => it.item_code === c.item_code)?.item_name || c.item_code);
    cell(row, c.terminal_name);
    cell(row, c.clerk_name || c.clerk);
    cell(row, duration(now() - c.started_at)).dataset.since = c.started_at;
    cell(row, VERDICTS[c.identity] ?? c.identity);
  }
  if (!view.calls.length) cell(body.insertRow(), "暂无通话").colSpan = 5;
}

function drawDay() {
  const d = view.day;
  if (!d) return;
  const f = d.calls;
  text($("#t-answered"), String(f.answered));
  text($("#t-abandoned"), String(f.abandoned));
  text($("#t-sl"), share(f.service_level));
  text($("#t-sl-label"), `服务水平（${d.answer_within_s} 秒内接通）`);
  text($("#t-asa"), duration(f.asa_s));
  text($("#t-aht"), duration(f.aht_s));
  text($("#t-sat"), d.satisfaction.ratings ? `${share(d.satisfaction.satisfied_share)}（${d.satisfaction.ratings} 条）` : "–");
  text($("#t-followups"), String(d.open_followups));
  const body = $("#steps tbody");
  body.replaceChildren();
  for (const s of d.steps) {
    const row = body.insertRow();
    cell(row, LEVELS[s.level] || s.level);
    cell(row, String(s.open));
    cell(row, String(s.overdue), s.overdue ? "late" : "");
    cell(row, String(s.ended));
    cell(row, duration(s.median_s));
    cell(row, duration(s.p90_s));
  }
  if (!d.steps.length) cell(body.insertRow(), "暂无办件").colSpan = 6;
  chart("day", $("#chart-day"), [...Array(24).keys()], d.hours, (u, v) => v.map((x) => `${x}时`));
  chart("month", $("#chart-month"), d.days.map((_, i) => i), d.by_day, (u, v) => v.map((i) => d.days[i] || ""));
}

function chart(name, el, xs, series, labels) {
  const data = [xs, series.answered, series.abandoned];
  if (charts[name]) { charts[name].setData(data); return; }
  charts[name] = new uPlot({
    width: Math.max(360, el.clientWidth || 480), height: 220,
    scales: { x: { time: false } },
    axes: [{ values: labels }, {}],
    series: [{ label: "时段" }, { label: "接通", stroke: "#1f4e79", width: 2 }, { label: "放弃", stroke: "#b3261e", width: 2 }],
  }, data, el);
}

function apply(msg) {
  if (msg.type !== "supervisor_snapshot" && msg.type !== "supervisor_update") return;
  skew = msg.at - Date.now() / 1000;
  for (const part of ["items", "clerks", "calls", "day"]) {
    if (msg[part] === undefined) continue;
    view[part] = msg[part];
    ({ items: drawItems, clerks: drawClerks, calls: drawCalls, day: drawDay })[part]();
  }
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
}

// Durations run on between pushes (the server sends only changes).
setInterval(() => {
  for (const td of document.querySelectorAll("td[data-since]")) {
    if (td.dataset.since) text(td, duration(now() - Number(td.dataset.since)));
  }
}, 1000);

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/supervisor`);
  ws.onopen = () => { attempt = 0; text($("#link"), "实时"); $("#link").classList.add("live"); };
  ws.onmessage = (ev) => { try { apply(JSON.parse(ev.data)); } catch (err) { console.error(err); } };
  ws.onclose = (ev) => {
    $("#link").classList.remove("live");
    if (ev.code === 4401) { text($("#link"), "已退出"); showLogin("登录已结束，请重新登录"); return; }
    text($("#link"), "连接中断，正在重连…");
    setTimeout(connect, Math.min(5000, 500 * 2 ** attempt++));
  };
}

function showLogin(message) {
  $("#login").hidden = false;
  $("#board").hidden = true;
  text($("#login-error"), message || "");
}

async function start() {
  let me;
  try {
    me = await api("/api/me");
  } catch (err) {
    if (err.status === 401) return showLogin("");
    return showError(err);
  }
  if (me.role !== "admin" && me.role !== "supervisor") return showLogin("此页面仅供管理员和值班长使用");
  $("#login").hidden = true;
  $("#board").hidden = false;
  text($("#who"), me.display_name);
  connect();
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await api("/api/login", { method: "POST", body: Object.fromEntries(new FormData(ev.target)) });
    await start();
  } catch (err) {
    text($("#login-error"), plain(err));
  }
});

start();
