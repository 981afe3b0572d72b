// Admin page: accounts, terminals (enrol with a one-time code), the service catalogue,
// holidays and 调休, and reports. Every change goes through /api/admin/… (audited there).

import { api, plain, PlainError } from "/web/common/api.js";

const $ = (s) => document.querySelector(s);
const VIEWS = ["accounts", "terminals", "items", "calendar", "reports"];
const ROLES = { clerk: "坐席", reviewer: "审批人员", qa: "质检", supervisor: "值班长", admin: "管理员" };
const list = (v) => (v || "").split(/[,，\s]+/).map((x) => x.trim()).filter(Boolean);
let items = [];

function text(el, v) { el.textContent = v; }
function cell(row, v) { const td = row.insertCell(); td.textContent = v; return td; }
function button(td, label, run) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", () => act(run));
  td.append(b);
  return b;
}
function showError(err) { $("#error").hidden = !err; text($("#error"), err ? plain(err) : ""); }
function notice(words) { $("#notice").hidden = !words; text($("#notice"), words || ""); }
async function act(run) {
  showError(null);
  notice("");
  try { await run(); } catch (err) { showError(err); }
}

async function accounts() {
  const { accounts: rows } = await api("/api/admin/accounts");
  const body = $("#accounts tbody");
  body.replaceChildren();
  for (const a of rows) {
    const row = body.insertRow();
    row.dataset.username = a.username;
    cell(row, a.username); cell(row, a.display_name); cell(row, ROLES[a.role] || a.role);
    cell(row, (a.skills || []).join("、")); cell(row, a.active ? "正常" : "已停用");
    const td = row.insertCell();
    const change = (body) => api(`/api/admin/accounts/${encodeURIComponent(a.username)}`, { method: "POST", body });
    button(td, a.active ? "停用" : "启用", async () => { await change({ action: a.active ? "disable" : "enable" }); await accounts(); });
    button(td, "重置密码", async () => {
      const password = prompt(`${a.display_name} 的新密码（至少 10 位，含字母和数字）`);
      if (password) { await change({ action: "password", password }); notice("密码已重置，该账号需重新登录"); }
    });
    button(td, "可办事项", async () => {
      const skills = prompt("可办事项编码（逗号分隔）", (a.skills || []).join(","));
      if (skills !== null) { await change({ action: "scope", skills: list(skills) }); await accounts(); }
    });
  }
}

$("#account-form").addEventListener("submit", (ev) => act(async () => {
  ev.preventDefault();
  const f = Object.fromEntries(new FormData(ev.target));
  await api("/api/admin/accounts", { method: "POST", body: {
    ...f, skills: list(f.skills), jurisdictions: list(f.jurisdictions), review_groups: list(f.review_groups) } });
  notice(`账号 ${f.username} 已创建`);
  ev.target.reset();
  await accounts();
}));

async function terminals() {
  const { terminals: rows } = await api("/api/admin/terminals");
  const body = $("#terminals tbody");
  body.replaceChildren();
  for (const t of rows) {
    const row = body.insertRow();
    row.dataset.terminal = t.terminal_id;
    cell(row, t.terminal_id); cell(row, t.name); cell(row, t.village);
    cell(row, !t.active ? "已吊销" : t.enrol_pending ? "等待登记" : "正常");
    const td = row.insertCell();
    const change = (body) => api(`/api/admin/terminals/${encodeURIComponent(t.terminal_id)}`, { method: "POST", body });
    button(td, "登记码", async () => { showCode((await change({ action: "code" })).code); await terminals(); });
    button(td, "改名", async () => {
      const name = prompt("新的名称", t.name);
      if (name) { await change({ action: "rename", name }); await terminals(); }
    });
    button(td, "换发凭证", async () => { await change({ action: "rotate" }); notice("终端下次登录时换发新的设备凭证"); });
    button(td, "吊销", async () => { if (confirm(`吊销 ${t.name} 的设备凭证？`)) { await change({ action: "revoke" }); await terminals(); } });
  }
}

function showCode(code) {
  $("#enrol-code").hidden = false;
  text($("#enrol-code"), `登记码（24 小时内有效，只能用一次）：${code}`);
}

$("#terminal-form").addEventListener("submit", (ev) => act(async () => {
  ev.preventDefault();
  const f = Object.fromEntries(new FormData(ev.target));
  showCode((await api("/api/admin/terminals", { method: "POST", body: f })).code);
  ev.target.reset();
  await terminals();
}));

async function itemList() {
  items = (await api("/api/admin/items")).items;
  const body = $("#items tbody");
  body.replaceChildren();
  for (const it of items) {
    const row = body.insertRow();
    row.dataset.item = it.code;
    cell(row, it.code); cell(row, it.name); cell(row, it.plain_name); cell(row, String(it.time_limit_days));
    cell(row, it.materials.map((m) => m.name + (m.core ? "" : "（可容缺）")).join("、"));
    button(row.insertCell(), "修改", async () => editItem(it));
  }
}

function editItem(it) {
  const f = $("#item-form");
  $("#item-edit").hidden = false;
  text($("#item-code"), it.code);
  f.dataset.code = it.code;
  f.name.value = it.name; f.plain_name.value = it.plain_name; f.synonyms.value = it.synonyms.join(",");
  f.category.value = it.category; f.time_limit_days.value = it.time_limit_days;
  f.materials.value = it.materials.map((m) => m.name + (m.core ? "" : "（可容缺）")).join("\n");
  f.workflow.value = JSON.stringify(it.workflow, null, 1);
  f.guide_steps.value = (it.guide?.steps || []).join("\n");
  f.guide_fees.value = it.guide?.fees || "";
  f.guide_notes.value = it.guide?.notes || "";
}

$("#item-form").addEventListener("submit", (ev) => act(async () => {
  ev.preventDefault();
  const f = ev.target;
  let workflow;
  try { workflow = JSON.parse(f.workflow.value || "{}"); } catch { throw new PlainError("审批流程不是有效的 JSON"); }
  const materials = f.materials.value.split("\n").map((x) => x.trim()).filter(Boolean)
    .map((x) => ({ name: x.replace("（可容缺）", ""), core: !x.endsWith("（可容缺）") }));
  await api(`/api/admin/items/${encodeURIComponent(f.dataset.code)}`, { method: "POST", body: {
    name: f.name.value, plain_name: f.plain_name.value, synonyms: list(f.synonyms.value), category: f.category.value,
    time_limit_days: Number(f.time_limit_days.value), materials, workflow,
    guide: { steps: f.guide_steps.value.split("\n").map((x) => x.trim()).filter(Boolean), fees: f.guide_fees.value, notes: f.guide_notes.value } } });
  notice(`事项 ${f.dataset.code} 已保存`);
  await itemList();
}));

async function calendar() {
  const { days } = await api("/api/admin/calendar");
  const body = $("#calendar tbody");
  body.replaceChildren();
  for (const d of days) {
    const row = body.insertRow();
    cell(row, d.day); cell(row, d.kind === "holiday" ? "放假" : "调休上班"); cell(row, d.name);
    button(row.insertCell(), "删除", async () => { await api(`/api/admin/calendar/${d.day}/delete`, { method: "POST" }); await calendar(); });
  }
}

$("#calendar-form").addEventListener("submit", (ev) => act(async () => {
  ev.preventDefault();
  await api("/api/admin/calendar", { method: "POST", body: Object.fromEntries(new FormData(ev.target)) });
  await calendar();
}));

function reportQuery() {
  const f = Object.fromEntries(new FormData($("#report-form")));
  if (!f.date) delete f.date;
  return new URLSearchParams(f).toString();
}

async function report() {
  const q = reportQuery();
  $("#report-csv").href = `/api/reports.csv?${q}`;
  $("#report-xlsx").href = `/api/reports.xlsx?${q}`;
  const data = await api(`/api/reports?${q}`);
  const head = $("#report thead");
  head.replaceChildren();
  const hr = head.insertRow();
  for (const c of data.columns) cell(hr, c);
  const body = $("#report tbody");
  body.replaceChildren();
  for (const r of data.rows) {
    const row = body.insertRow();
    for (const v of r) cell(row, v == null ? "–" : String(v));
  }
  if (!data.rows.length) cell(body.insertRow(), "这段时间没有数据").colSpan = data.columns.length;
}

$("#report-form").addEventListener("submit", (ev) => { ev.preventDefault(); act(report); });

async function route() {
  const view = VIEWS.includes(location.hash.slice(1)) ? location.hash.slice(1) : "accounts";
  for (const v of VIEWS) $(`#view-${v}`).hidden = v !== view;
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.hash === `#${view}`);
  await act({ accounts, terminals, items: itemList, calendar, reports: report }[view]);
}

function showLogin(message) {
  $("#login").hidden = false;
  $("#tabs").hidden = true;
  for (const v of VIEWS) $(`#view-${v}`).hidden = true;
  text($("#login-error"), message || "");
}

async function start() {
  let me;
  try { me = await api("/api/me"); } catch (err) { return err.status === 401 ? showLogin("") : showError(err); }
  if (me.role !== "admin") return showLogin("此页面仅供管理员使用");
  $("#login").hidden = true;
  $("#tabs").hidden = false;
  text($("#who"), me.display_name);
  window.addEventListener("hashchange", route);
  await route();
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await api("/api/login", { method: "POST", body: Object.fromEntries(new FormData(ev.target)) });
    await start();
  } catch (err) { text($("#login-error"), plain(err)); }
});

start();
