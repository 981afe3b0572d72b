// Reviewer desk: queue, case detail and decisions. Plain ES module, no build step.

import { showVerification } from "/web/reviewer/identity.js";

const $ = (sel) => document.querySelector(sel);
const LEVELS = { village: "村级", town: "乡镇（街道）", district: "区县" };
const MODES = { single: "单人审查", all: "会签（全部同意）", any: "或签（一人决定）" };
const OUTCOMES = { approved: "同意", rejected: "不予许可", returned: "退回补正" };
const DECISIONS = { approve: "同意", reject: "不予许可", return: "退回补正" };
const GROUPS = {
  "village-review": "村级初审", "town-natural-resources": "乡镇自然资源和规划所",
  "town-agriculture": "乡镇农业服务中心", "town-social-security": "乡镇人社服务中心",
  "town-medical-insurance": "乡镇医保服务站", "town-civil-affairs": "乡镇社会事务办（民政）",
  "town-health": "乡镇卫生健康办", "town-police": "派出所户籍室", "town-veterans": "乡镇退役军人服务站",
  "district-social-security": "区人社局", "district-medical-insurance": "区医疗保障局",
  "district-civil-affairs": "区民政局", "district-disabled-federation": "区残疾人联合会",
  "district-veterans": "区退役军人事务局", "district-market": "区市场监督管理局",
};
const groupName = (g) => GROUPS[g] || g;

let me = null;
let current = null; // { case_no, seq, group, message_id }
let heldKeys = new Set(); // "case_no|seq|group" of the tasks assigned to me

async function api(path, options = {}) {
  const resp = await fetch(path, { credentials: "same-origin", ...options,
    headers: { "Content-Type": "application/json", ...(options.headers || {}) } });
  const body = resp.headers.get("Content-Type")?.includes("json") ? await resp.json() : null;
  if (!resp.ok) {
    const err = new Error(body?.error?.message || `请求失败（${resp.status}）`);
    err.status = resp.status;
    throw err;
  }
  return body;
}

function text(el, value) { el.textContent = value ?? ""; return el; }
function item(tag, value, cls) { const el = document.createElement(tag); if (cls) el.className = cls; return text(el, value); }
function when(iso) { return iso ? new Date(iso).toLocaleString("zh-CN", { hour12: false }) : "—"; }
function duration(s) {
  if (s == null) return "进行中";
  if (s < 60) return `${Math.round(s)} 秒`;
  if (s < 3600) return `${Math.round(s / 60)} 分钟`;
  return `${(s / 3600).toFixed(1)} 小时`;
}

async function start() {
  try {
    me = await api("/api/me");
  } catch {
    me = null;
  }
  if (!me || me.role !== "reviewer") return showLogin();
  $("#login").hidden = true;
  $("#desk").hidden = false;
  loadFlagCategories();
  $("#logout").hidden = false;
  text($("#who"), `${me.display_name}（${me.review_groups.length} 个审查部门）`);
  await refresh();
  setInterval(refresh, 10000); // also keeps this reviewer "online" for random assignment
}

function showLogin() {
  $("#login").hidden = false;
  $("#desk").hidden = true;
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  try {
    await api("/api/login", { method: "POST", body: JSON.stringify(Object.fromEntries(form)) });
    await $("#logout").addEventListener("click", async () => {
  try { await api("/api/logout", { method: "POST" }); } catch { /* reload anyway */ }
  location.reload();
});

start();
  } catch (err) {
    text($("#login-error"), err.message);
  }
});

async function refresh() {
  const q = await api("/api/reviewer/queue");
  const held = $("#held");
  held.replaceChildren();
  heldKeys = new Set(q.held.map((t) => `${t.case_no}|${t.seq}|${t.group}`));
  for (const t of q.held) {
    const li = item("li", `${t.case_no} · ${groupName(t.group)}`);
    li.addEventListener("click", () => open(t));
    if (current && current.case_no === t.case_no) li.classList.add("active");
    held.append(li);
  }
  if (!q.held.length) held.append(item("li", "暂无", "muted"));
  const waiting = $("#waiting");
  waiting.replaceChildren();
  text($("#waiting-count"), q.waiting.length);
  for (const c of q.waiting) {
    const li = item("li", "");
    li.append(item("div", `${c.item_name} · ${c.applicant_name}`));
    li.append(item("div", `${c.case_no} · ${LEVELS[c.level] || ""} · ${c.groups.map(groupName).join("、")}`, "muted"));
    li.append(item("div", `办理时限：${when(c.step_due_at)}${c.overdue ? "（已超期）" : ""}`, "muted due"));
    if (c.overdue) li.classList.add("overdue");
    li.addEventListener("click", () => open({ case_no: c.case_no, seq: c.seq, group: c.groups[0] }));
    waiting.append(li);
  }
}

$("#claim").addEventListener("click", async () => {
  const r = await api("/api/reviewer/claim", { method: "POST" });
  if (!r.task) { alert("当前没有待领取的办件"); return; }
  await refresh();
  await open(r.task);
});

async function open(task) {
  current = task;
  text($("#decided"), "");
  text($("#decide-error"), "");
  const d = await api(`/api/cases/${encodeURIComponent(task.case_no)}`);
  const c = d.case;
  $("#detail-empty").hidden = true;
  $("#detail").hidden = false;
  text($("#d-title"), `${c.item_name}（${c.status_name}）`);
  const facts = $("#d-facts");
  facts.replaceChildren();
  for (const [k, v] of [["办件编号", c.case_no], ["申请人", c.applicant_name], ["身份证号", c.id_number],
    ["联系电话", c.phone], ["受理人", c.clerk], ["村级终端", c.terminal_id], ["办理方式", c.outcome],
    ["受理时间", when(c.submitted_at)], ["办结时限", when(c.due_at)]]) {
    facts.append(item("dt", k), item("dd", v));
  }
  showVerification($("#d-verification"), c.verification);
  const mats = $("#d-materials");
  mats.replaceChildren();
  for (const m of d.materials) {
    const note = m.provided ? "已提交" : `容缺，承诺 ${m.promised_date || ""} 前补齐`;
    mats.append(item("li", `${m.name}${m.core ? "（核心）" : ""}：${note}`, m.provided ? "" : "missing"));
  }
  const scans = $("#d-scans");
  scans.replaceChildren();
  for (const url of c.scan_urls) {
    const li = document.createElement("li");
    const a = item("a", url.split("/").pop());
    a.href = url; a.target = "_blank"; a.rel = "noopener";
    li.append(a);
    scans.append(li);
  }
  if (!c.scan_urls.length) scans.append(item("li", "无", "muted"));
  window.dispatchEvent(new CustomEvent("case-opened", { detail: c.case_no }));  // materials.js
  const rec = $("#d-recording");
  rec.hidden = !c.recording_url;
  if (c.recording_url) rec.href = c.recording_url;
  const steps = $("#d-steps tbody");
  steps.replaceChildren();
  for (const s of d.steps) {
    const tr = document.createElement("tr");
    for (const v of [s.seq, LEVELS[s.level], `${s.groups.map(groupName).join("、")}（${MODES[s.mode]}）`, when(s.started_at),
      duration(s.duration_s), s.outcome ? OUTCOMES[s.outcome] : (s.escalated ? "已超期，已督办" : "办理中")]) {
      tr.append(item("td", v));
    }
    steps.append(tr);
  }
  const dec = $("#d-decisions");
  dec.replaceChildren();
  for (const v of d.decisions) {
    dec.append(item("li", `${when(v.at)} ${v.reviewer}（${groupName(v.group_code)}）：${DECISIONS[v.decision]}${v.comment ? "，" + v.comment : ""}`));
  }
  if (!d.decisions.length) dec.append(item("li", "暂无", "muted"));
  const inMyGroups = (d.current?.open_groups || []).filter((g) => me.review_groups.includes(g));
  // 办件随机分配: only a step assigned to me (or claimed) can be decided here.
  const mine = inMyGroups.filter((g) => heldKeys.has(`${c.case_no}|${d.current.seq}|${g}`));
  const form = $("#decide");
  form.hidden = !mine.length;
  $("#decide-claim-hint").hidden = Boolean(mine.length) || !inMyGroups.length;
  const select = $("#decide-group");
  select.replaceChildren(...mine.map((g) => { const o = item("option", groupName(g)); o.value = g; return o; }));
  if (task.group && mine.includes(task.group)) select.value = task.group;
  current.seq = d.current?.seq;
}

$("#decide").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const decision = ev.submitter?.value || "approve";
  const form = new FormData(ev.target);
  const body = { case_no: current.case_no, seq: current.seq, group: form.get("group"),
    decision, comment: form.get("comment") || "" };
  if (current.message_id && current.group === body.group) body.message_id = current.message_id;
  const flag = decision === "return" && form.get("flag");
  try {
    const r = await api("/api/reviewer/decide", { method: "POST", body: JSON.stringify(body) });
    let flagged = "";
    if (flag) flagged = await flagReturned(body.case_no, form.get("flag_category"), body.comment);
    ev.target.reset();
    await refresh();
    await open({ case_no: current.case_no });
    text($("#decided"), `已提交：${DECISIONS[decision]}。办件状态：${r.status_name}${flagged}`);
  } catch (err) {
    text($("#decide-error"), err.message);
  }
});

// A case returned for a fault at reception may go to QA as a 问题件 in the same step.
async function flagReturned(caseNo, category, note) {
  try {
    const f = await api("/api/qa/flags", { method: "POST", body: JSON.stringify({ case_no: caseNo, category, note }) });
    return `；已登记问题件 #${f.flag_id}`;
  } catch (err) {
    return `；问题件未能登记：${err.message}`;
  }
}

async function loadFlagCategories() {
  try {
    const config = await api("/api/qa/config");
    const select = $("#decide-flag-category");
    select.replaceChildren(...config.flag_categories.map((c) => item("option", c)));
  } catch {
    for (const el of document.querySelectorAll(".flag-choice")) el.hidden = true;
  }
}

start();
