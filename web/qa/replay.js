// One recorded call: purpose first, then the per-viewer replay beside the case, the
// verification, the scans, the time line, the integrity line, 问题件, score sheet, hold.

import { api, plain } from "/web/common/api.js";
import { ReplayPlayer, WatchClock } from "/web/qa/player.js";

const $ = (sel) => document.querySelector(sel);
const STATUS = { intact: "ok", broken: "bad", unsealed: "warn", deleted: "warn", empty: "warn" };

function text(el, value) { el.textContent = value ?? ""; return el; }
function node(tag, value, cls) { const el = document.createElement(tag); if (cls) el.className = cls; return text(el, value); }
export function when(iso) { return iso ? new Date(iso).toLocaleString("zh-CN", { hour12: false }) : "—"; }
function clock(s) {
  if (s == null) return "";
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, "0")}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
}

let state = null; // { detail, player, watch, access_id }

async function report(accessId, watched, ended) {
  try {
    await fetch(`/api/qa/replays/${accessId}/progress`, {
      method: "POST", credentials: "same-origin", keepalive: true,
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ watched_s: watched, ended }),
    });
  } catch { /* the next report or the close carries it */ }
}

export function closeReplay() {
  if (!state) return;
  if (state.player) state.player.stop();
  if (state.watch) state.watch.flush(true);
  state = null;
}

window.addEventListener("pagehide", closeReplay);

export async function showCall(callId, config) {
  closeReplay();
  const detail = await api(`/api/qa/calls/${encodeURIComponent(callId)}`);
  state = { detail };
  window.__replay = { clickedAt: null, frames: 0, firstFrameAt: null, accessId: null };
  const c = detail.case;
  text($("#call-title"), c ? `${c.item_name} · ${c.applicant_name}（${c.case_no}）` : `通话 ${callId}（无办件）`);
  const line = $("#integrity");
  text(line, detail.integrity.message);
  line.className = `integrity ${STATUS[detail.integrity.state] || "warn"}`;
  $("#purpose").hidden = false;
  $("#player").hidden = true;
  text($("#purpose-error"), "");
  $("#play").disabled = detail.recording.segments === 0;
  facts(detail);
  timeline(detail);
  flags(detail);
  evaluations(detail, config);
  $("#history-link").hidden = !c;
  if (c) $("#history-link").href = `#history=${c.case_no}`;
  $("#export").hidden = !c || !(config.me.role === "admin" || config.me.role === "qa");
}

// The case's identity result in words: decision, the machine's verdict, distance against the
// thresholds, and who decided by hand and why.
function verificationText(v) {
  if (!v || (!v.decision && !v.verdict)) return "无核验记录";
  const lines = [`结论：${v.decision || v.verdict}`];
  if (v.verdict) lines.push(`机器核验：${v.verdict}`);
  if (v.distance != null) {
    const t = v.thresholds || {};
    lines.push(`人脸距离：${Number(v.distance).toFixed(3)}（通过线 ${t.pass_below ?? "—"}，不通过线 ${t.fail_above ?? "—"}）`);
  }
  if (v.override) lines.push(`人工核验：${v.override.reason}，${v.override.text}（${v.override.by}）`);
  if (v.id_number_matches_card === false) lines.push("注意：办件上的身份证号与证件上读出的不一致");
  return lines.join("\n");
}

function facts(d) {
  const dl = $("#case-facts");
  dl.replaceChildren();
  const c = d.case;
  const rows = [["通话时间", when(d.call.started_at)], ["时长", clock(d.recording.duration_s)],
    ["村级终端", d.terminal ? `${d.terminal.village}（${d.terminal.name}）` : d.call.terminal_id],
    ["坐席", d.clerk_name]];
  if (c) {
    rows.push(["办件编号", c.case_no], ["事项", c.item_name], ["申请人", c.applicant_name],
      ["办理结果", c.outcome], ["办件状态", c.status_name]);
  }
  for (const [k, v] of rows) dl.append(node("dt", k), node("dd", v));
  text($("#verification"), verificationText(d.verification));
  const scans = $("#scans");
  scans.replaceChildren();
  for (const s of d.scans) {
    const a = document.createElement("a");
    a.href = s.url; a.target = "_blank"; a.rel = "noopener";
    const img = document.createElement("img");
    img.src = s.url; img.alt = `扫描件 ${when(s.created_at)}`;
    a.append(img);
    scans.append(a);
  }
  if (!d.scans.length) scans.append(node("span", "无", "muted"));
}

function timeline(d) {
  const ol = $("#timeline");
  ol.replaceChildren();
  for (const e of d.timeline) {
    const li = document.createElement("li");
    li.dataset.kind = e.kind;
    const b = node("button", "");
    b.type = "button";
    b.append(node("span", clock(e.offset_s), "at"), document.createTextNode(e.label));
    b.disabled = e.offset_s == null;
    b.addEventListener("click", () => seekTo(e.offset_s));
    li.append(b);
    ol.append(li);
  }
}

function seekTo(t) {
  if (!state || !state.player) { text($("#purpose-error"), "请先选择调阅用途并开始回放"); return; }
  state.player.seek(Math.max(0, t));
}

function flags(d) {
  const ul = $("#call-flags");
  ul.replaceChildren();
  for (const f of d.flags) {
    ul.append(node("li", `${f.category}：${f.note}（${f.state_name}${f.assignee ? "，责任人 " + f.assignee : ""}）`));
  }
  if (!d.flags.length) ul.append(node("li", "暂无", "muted"));
}

function evaluations(d, config) {
  const box = $("#score-items");
  box.replaceChildren();
  for (const item of config.score_items) {
    const row = node("label", "", "score-row");
    row.append(node("span", item));
    const select = document.createElement("select");
    select.name = item;
    for (let p = config.max_points; p >= 0; p -= 1) {
      const option = node("option", `${p} 分`);
      option.value = String(p);
      select.append(option);
    }
    row.append(select);
    box.append(row);
  }
  const ul = $("#call-evaluations");
  ul.replaceChildren();
  for (const e of d.evaluations) ul.append(node("li", `${when(e.created_at)} ${e.evaluator}：${e.total} 分${e.comment ? "，" + e.comment : ""}`));
  text($("#score-result"), "");
  text($("#hold-result"), "");
}

function purposeGiven() {
  const form = new FormData($("#purpose"));
  return { purpose: form.get("purpose"), purpose_text: form.get("purpose_text") || "" };
}

async function startReplay(ev) {
  ev.preventDefault();
  if (!state) return;
  window.__replay.clickedAt = performance.timeOrigin + performance.now();
  window.__replay.clickedMark = Math.round(performance.now());
  const given = purposeGiven();
  text($("#purpose-error"), "");
  let opened;
  try {
    opened = await api("/api/qa/replays", { method: "POST", body: { call_id: state.detail.call.call_id, ...given } });
  } catch (err) {
    text($("#purpose-error"), plain(err));
    return;
  }
  state.access_id = opened.access_id;
  window.__replay.accessId = opened.access_id;
  $("#purpose").hidden = true;
  $("#player").hidden = false;
  const video = $("#video");
  const player = new ReplayPlayer(video, {
    streamUrl: opened.stream_url, ticket: opened.ticket, duration: state.detail.recording.duration_s,
    onState: (msg, bad) => { const p = text($("#player-state"), msg); p.className = bad ? "error" : "muted"; },
  });
  state.player = player;
  state.watch = new WatchClock(video, (watched, ended) => report(opened.access_id, watched, ended));
  const stats = setInterval(() => {
    if (!state || state.player !== player) { clearInterval(stats); return; }
    window.__replay.frames = player.stats.frames;
    window.__replay.firstFrameAt = player.stats.firstFrameAt;
    window.__replay.marks = player.stats.marks;
  }, 100);
  await player.open(0);
}

async function download() {
  if (!state) return;
  try {
    const opened = await api("/api/qa/replays", { method: "POST", body: { call_id: state.detail.call.call_id, kind: "download", ...purposeGiven() } });
    const resp = await fetch(`${opened.stream_url}?from=0`, { headers: { Authorization: `Bearer ${opened.ticket}` } });
    if (!resp.ok) throw new Error(`下载失败（${resp.status}）`);
    save(await resp.blob(), `回放-${state.detail.call.call_id}.mp4`);
    await report(opened.access_id, 0, true);
  } catch (err) {
    text($("#player-state"), plain(err));
  }
}

async function exportCase() {
  const c = state?.detail.case;
  if (!c) return;
  const resp = await fetch("/api/qa/exports", {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ case_no: c.case_no, ...purposeGiven() }),
  });
  if (!resp.ok) {
    const body = await resp.json().catch(() => null);
    text($("#player-state"), body?.error?.message || `导出失败（${resp.status}）`);
    return;
  }
  save(await resp.blob(), `证据包-${c.case_no}.zip`);
  text($("#player-state"), `证据包已导出（SHA-256 ${resp.headers.get("X-Archive-SHA256")?.slice(0, 16)}…）`);
}

function save(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
}

async function addFlag(ev) {
  ev.preventDefault();
  const form = new FormData(ev.target);
  const body = { call_id: state.detail.call.call_id, category: form.get("category"), note: form.get("note") };
  if (form.get("at_now") && state.player) body.at_s = Math.round($("#video").currentTime * 10) / 10;
  try {
    await api("/api/qa/flags", { method: "POST", body });
    ev.target.reset();
    text($("#flag-error"), "");
    const detail = await api(`/api/qa/calls/${encodeURIComponent(body.call_id)}`);
    state.detail = detail;
    flags(detail);
    timeline(detail);
  } catch (err) {
    text($("#flag-error"), plain(err));
  }
}

async function score(ev) {
  ev.preventDefault();
  const form = new FormData(ev.target);
  const scores = {};
  for (const select of ev.target.querySelectorAll("#score-items select")) scores[select.name] = Number(select.value);
  try {
    const r = await api("/api/qa/evaluations", { method: "POST", body: { call_id: state.detail.call.call_id, scores, comment: form.get("comment") || "" } });
    text($("#score-result"), `已提交：${r.total} 分`);
  } catch (err) {
    text($("#score-result"), plain(err));
  }
}

async function hold(ev) {
  ev.preventDefault();
  const c = state.detail.case;
  const body = { reason: new FormData(ev.target).get("reason") };
  if (c) body.case_no = c.case_no; else body.call_id = state.detail.call.call_id;
  try {
    await api("/api/qa/holds", { method: "POST", body });
    text($("#hold-result"), "已冻结：到期也不会删除，直至管理员解除");
  } catch (err) {
    text($("#hold-result"), plain(err));
  }
}

export function setupReplay(config) {
  $("#purpose").addEventListener("submit", startReplay);
  $("#download").addEventListener("click", download);
  $("#export").addEventListener("click", exportCase);
  $("#flag-form").addEventListener("submit", addFlag);
  $("#score-form").addEventListener("submit", score);
  $("#hold-form").addEventListener("submit", hold);
  const select = $("#flag-category");
  select.replaceChildren(...config.flag_categories.map((c) => node("option", c)));
}
