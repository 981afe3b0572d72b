// QA page: login, recording search (paged on the server), the replay view, 问题件 board,
// per-clerk results, holds, the access log (admin), a case's whole history. No build step.

import { api, plain } from "/web/common/api.js";
import { closeReplay, setupReplay, showCall, when } from "/web/qa/replay.js";

const $ = (sel) => document.querySelector(sel);
const VIEWS = ["search", "call", "history", "flags", "results", "holds", "access"];
const KINDS = { replay: "回放", download: "下载副本", export: "导出证据包" };

let config = null;
let page = 1;

function text(el, value) { el.textContent = value ?? ""; return el; }
function node(tag, value, cls) { const el = document.createElement(tag); if (cls) el.className = cls; return text(el, value); }
function cells(tr, values) { for (const v of values) tr.append(node("td", v)); return tr; }
function minutes(s) { return s == null ? "—" : s < 60 ? `${Math.round(s)} 秒` : `${Math.floor(s / 60)} 分 ${Math.round(s % 60)} 秒`; }

function showError(err) {
  const banner = $("#error");
  banner.hidden = !err;
  text(banner, err ? plain(err) : "");
}

async function start() {
  try {
    config = await api("/api/qa/config");
  } catch (err) {
    if (err.status === 401 || err.status === 403) return showLogin(err.status === 403 ? "此页面仅供质检人员和管理员使用" : "");
    return showError(err);
  }
  $("#login").hidden = true;
  $("#tabs").hidden = false;
  $("#tab-access").hidden = config.me.role !== "admin";
  text($("#who"), `${config.me.display_name}（${config.me.role === "admin" ? "管理员" : "质检"}）`);
  setupReplay(config);
  window.addEventListener("hashchange", route);
  await route();
}

function showLogin(message) {
  $("#login").hidden = false;
  $("#tabs").hidden = true;
  for (const v of VIEWS) $(`#view-${v}`).hidden = true;
  text($("#login-error"), message || "");
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  try {
    await api("/api/login", { method: "POST", body: Object.fromEntries(form) });
    await start();
  } catch (err) {
    text($("#login-error"), plain(err));
  }
});

async function route() {
  const [name, arg] = (location.hash.slice(1) || "search").split("=");
  const view = VIEWS.includes(name) ? name : "search";
  if (view !== "call") closeReplay();
  for (const v of VIEWS) $(`#view-${v}`).hidden = v !== view;
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.hash === `#${view}`);
  showError(null);
  try {
    if (view === "search") await search();
    if (view === "call") await showCall(decodeURIComponent(arg || ""), config);
    if (view === "history") await history(decodeURIComponent(arg || ""));
    if (view === "flags") await flagBoard();
    if (view === "results") await results();
    if (view === "holds") await holds();
    if (view === "access") await accessLog();
  } catch (err) {
    showError(err);
  }
}

// --- search -------------------------------------------------------------------------------

function query() {
  const form = new FormData($("#search-form"));
  const q = new URLSearchParams();
  for (const [k, v] of form) {
    if (!v) continue;
    if (k === "from") q.set("from", new Date(`${v}T00:00:00`).toISOString());
    else if (k === "to") q.set("to", new Date(new Date(`${v}T00:00:00`).getTime() + 86400000).toISOString());
    else q.set(k, String(v).trim());
  }
  q.set("page", String(page));
  q.set("per_page", "20");
  return q;
}

async function search() {
  const r = await api(`/api/qa/calls?${query()}`);
  const body = $("#results-table tbody");
  body.replaceChildren();
  for (const row of r.rows) {
    const tr = cells(node("tr", "", "row"), [when(row.started_at), minutes(row.duration_s),
      `${row.village || "—"}（${row.terminal_name || row.terminal_id}）`, row.clerk_name,
      row.item_name || row.item_code || "—", row.outcome || "—", row.verdict_name]);
    const flag = node("td", row.open_flags ? `${row.open_flags} 件未关闭` : row.flags ? `${row.flags} 件` : "");
    if (row.open_flags) flag.className = "error";
    tr.append(flag);
    tr.dataset.callId = row.call_id;
    tr.addEventListener("click", () => { location.hash = `call=${encodeURIComponent(row.call_id)}`; });
    body.append(tr);
  }
  if (!r.rows.length) body.append(cells(document.createElement("tr"), ["没有符合条件的录像"]));
  text($("#page-info"), `第 ${r.page} / ${r.pages} 页，共 ${r.total} 条`);
  $("#prev").disabled = r.page <= 1;
  $("#next").disabled = r.page >= r.pages;
}

$("#search-form").addEventListener("submit", (ev) => { ev.preventDefault(); page = 1; search().catch(showError); });
$("#search-form").addEventListener("reset", () => { page = 1; setTimeout(() => search().catch(showError)); });
$("#prev").addEventListener("click", () => { page = Math.max(1, page - 1); search().catch(showError); });
$("#next").addEventListener("click", () => { page += 1; search().catch(showError); });

// --- a case's history ---------------------------------------------------------------------

function summary(e) {
  const a = e.after || {};
  const parts = [];
  if (a.purpose) parts.push(`用途：${a.purpose}${a.purpose_text ? "（" + a.purpose_text + "）" : ""}`);
  if (a.watched_s != null) parts.push(`观看 ${minutes(a.watched_s)}`);
  if (a.note) parts.push(a.note);
  if (a.category) parts.push(a.category);
  if (a.comment) parts.push(a.comment);
  if (a.total != null) parts.push(`${a.total} 分`);
  if (a.reason) parts.push(a.reason);
  if (a.status) parts.push(`状态：${a.status}`);
  if (e.reason) parts.push(e.reason);
  return parts.join("；");
}

async function history(caseNo) {
  const h = await api(`/api/qa/cases/${encodeURIComponent(caseNo)}/history`);
  text($("#history-title"), `办件 ${caseNo} 全程记录：${h.case.item_name} · ${h.case.applicant_name}`);
  const body = $("#history-table tbody");
  body.replaceChildren();
  for (const e of h.events) body.append(cells(document.createElement("tr"), [when(e.at), e.label, e.actor || "", summary(e)]));
}

// --- 问题件 ---------------------------------------------------------------------------------

function stepForm(flag) {
  const form = document.createElement("form");
  const actions = { marked: [["assign", "指派"], ["close", "关闭（无问题）"]], assigned: [["rectify", "登记整改"], ["assign", "改派"]],
    rectified: [["recheck-pass", "复核通过"], ["recheck-fail", "复核不通过"]], rechecked: [["close", "关闭"]] }[flag.state] || [];
  if (!actions.length) return form;
  const note = node("input", "");
  note.placeholder = flag.state === "marked" ? "责任人账号（指派）或关闭理由" : "说明";
  form.append(note);
  for (const [action, label] of actions) {
    const b = node("button", label);
    b.type = "submit";
    b.value = action;
    form.append(b);
  }
  const error = node("p", "", "error");
  form.append(error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const action = ev.submitter.value;
    const body = action.startsWith("recheck") ? { action: "recheck", passed: action === "recheck-pass", note: note.value }
      : action === "assign" ? { action, assignee: note.value.trim() } : { action, note: note.value };
    try {
      await api(`/api/qa/flags/${flag.flag_id}/steps`, { method: "POST", body });
      await flagBoard();
    } catch (err) {
      text(error, plain(err));
    }
  });
  return form;
}

async function flagBoard() {
  const r = await api(`/api/qa/flags?state=${$("#flag-state").value}`);
  const ul = $("#flag-list");
  ul.replaceChildren();
  for (const f of r.rows) {
    const li = document.createElement("li");
    li.append(node("h3", `#${f.flag_id} ${f.category}`), node("p", f.note));
    const where = node("p", "", "muted");
    where.append(document.createTextNode(`${f.case_no ? "办件 " + f.case_no : "录像 " + f.call_id}${f.at_s != null ? "，录像 " + minutes(f.at_s) + " 处" : ""} · `));
    const link = node("a", "查看录像");
    if (f.call_id) link.href = `#call=${encodeURIComponent(f.call_id)}`;
    where.append(link, node("span", ` · ${f.source === "review_return" ? "审批退回时登记" : "质检登记"}`));
    li.append(where, node("p", `当前：${f.state_name}${f.assignee ? "，责任人 " + f.assignee : ""}`, "badge open"));
    const steps = node("ol", "", "steps");
    for (const s of f.steps) steps.append(node("li", `${when(s.at)} ${s.state_name} · ${s.actor}${s.note ? "：" + s.note : ""}`));
    li.append(steps, stepForm(f));
    ul.append(li);
  }
  if (!r.rows.length) ul.append(node("li", "暂无问题件", "muted"));
}

$("#flag-state").addEventListener("change", () => flagBoard().catch(showError));

// --- results, holds, access log -----------------------------------------------------------

async function results() {
  const r = await api("/api/qa/evaluations/clerks");
  const head = $("#clerk-results thead");
  head.replaceChildren(cells(document.createElement("tr"), ["坐席", "月份", "评分次数", "平均得分", ...r.items.map((i) => `${i}（满分 ${r.max_points}）`)]));
  const body = $("#clerk-results tbody");
  body.replaceChildren();
  for (const row of r.rows) body.append(cells(document.createElement("tr"), [row.clerk_name, row.month, row.sheets, `${row.mean} 分`, ...r.items.map((i) => row.items[i])]));
  if (!r.rows.length) body.append(cells(document.createElement("tr"), ["暂无评分"]));
}

async function holds() {
  const r = await api("/api/qa/holds");
  const body = $("#hold-table tbody");
  body.replaceChildren();
  for (const h of r.holds) {
    const tr = cells(document.createElement("tr"), [h.hold_id, h.case_no || h.call_id, h.reason, h.placed_by, when(h.placed_at)]);
    const td = document.createElement("td");
    if (config.me.role === "admin") {
      const b = node("button", "解除冻结");
      b.addEventListener("click", async () => {
        try { await api(`/api/qa/holds/${h.hold_id}/release`, { method: "POST", body: {} }); await holds(); } catch (err) { showError(err); }
      });
      td.append(b);
    }
    tr.append(td);
    body.append(tr);
  }
  if (!r.holds.length) body.append(cells(document.createElement("tr"), ["暂无冻结"]));
}

async function accessLog() {
  const r = await api("/api/qa/access?per_page=200");
  const body = $("#access-table tbody");
  body.replaceChildren();
  for (const a of r.rows) {
    body.append(cells(document.createElement("tr"), [when(a.opened_at), `${a.viewer_name}（${a.viewer}）`, KINDS[a.kind] || a.kind,
      a.case_no || a.call_id, `${a.purpose}${a.purpose_text ? "：" + a.purpose_text : ""}`, a.kind === "replay" ? minutes(a.watched_s) : "—"]));
  }
}

start();
