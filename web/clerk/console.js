// Clerk console: login, ready / not ready, offers with a countdown, the call, scans, the
// case form and wrap-up. Plain ES module; the server's snapshot on (re)connect is the truth.

import { api, plain, readJson } from "/web/common/api.js";
import { checkIdNumber } from "/web/common/idnumber.js";
import { joinCall, leaveCall, playAudio, showTrack, whenLost } from "/web/common/media.js";
import { Signal } from "/web/common/socket.js";
import { identity } from "/web/clerk/identity.js";

const $ = (id) => document.getElementById(id);
const state = {
  me: null, clerk: null, offer: null, call: null, pc: null, local: null, scans: [],
  items: [], joining: false, caseFor: null, invite: null,
};
let signal = null;
let tick = 0;

function showError(text) {
  const el = $("error");
  el.textContent = text;
  el.hidden = !text;
  if (text) setTimeout(() => { if (el.textContent === text) el.hidden = true; }, 8000);
}

function render() {
  const c = state.clerk;
  const s = c?.state || "idle";
  $("status-box").hidden = !state.me;
  $("logout").hidden = !state.me;
  $("status").textContent = !c ? "" : c.status === "ready" ? "就绪" : `未就绪${c.reason ? `（${c.reason}）` : ""}`;
  $("status").className = `badge ${c?.status === "ready" ? "ready" : ""}`;
  // Each button says what it will do: 就绪 while paused, 暂停 (with its reason) while ready.
  const ready = c?.status === "ready";
  $("ready").hidden = ready;
  $("not-ready").hidden = !ready;
  $("reason").hidden = !ready;
  $("idle").hidden = !state.me || s !== "idle";
  $("idle-title").textContent = c?.status === "ready" ? "等待来电" : "暂停接听中";
  $("idle-text").textContent = c?.status === "ready" ? "有申请人时这里会提示。" : "点“就绪”开始接听。";
  $("offer").hidden = !(state.offer && s === "offered");
  $("call").hidden = !(state.call && s === "in_call") && !(state.call && state.call.second);
  $("wrapup").hidden = s !== "wrap_up";
  $("case").hidden = !state.caseFor;
  identity.call(state.call || state.caseFor);
  document.body.dataset.state = s;
}

// --- offers -----------------------------------------------------------------------------

function offer(msg) {
  state.offer = msg;
  $("offer-item").textContent = msg.item_name;
  $("offer-place").textContent = `${msg.terminal_name}（${msg.village}）`;
  $("offer-waited").textContent = String(msg.waited_s);
  $("offer-priority").hidden = !msg.priority;
  $("accept").disabled = false;
  countdown();  // the number is drawn with the offer, not a tick later
  render();
}

function countdown() {
  if (state.offer) {
    const left = Math.max(0, Math.ceil(state.offer.expires_at - Date.now() / 1000));
    $("offer-count").textContent = String(left);
  }
  // The other clerk's picture appears once its camera sends frames (三方连线).
  $("second-fig").hidden = !state.call || !((window.__frames || {}).second > 0);
  const until = state.clerk?.wrapup_until;
  if (until) $("wrapup-left").textContent = `还剩 ${Math.max(0, Math.ceil(until - Date.now() / 1000))} 秒`;
}

// --- the call ---------------------------------------------------------------------------

async function openCamera() {
  if (!state.local) {
    const s = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    state.local = { video: s.getVideoTracks()[0], mic: s.getAudioTracks()[0] || null };
  }
  return state.local;
}

async function callAssigned(msg) {
  const same = state.call?.call_id === msg.call_id;
  if (same && state.pc && ["connected", "connecting", "new"].includes(state.pc.connectionState)
      && !msg.rejoin) return;  // a snapshot of the call we are in (rejoin: it moved worker)
  state.call = { ...msg, second: msg.clerk_username !== state.me.who };
  if (!same) { state.scans = []; $("thumbs").replaceChildren(); }
  $("call-title").textContent = state.call.second
    ? `协同通话：${msg.terminal_name}（主办：${msg.clerk_name}）` : `通话中：${msg.terminal_name}`;
  $("other-caption").textContent = state.call.second ? "主办坐席" : "协同坐席";
  $("capture").hidden = state.call.second;
  $("invite-tools").hidden = state.call.second;
  if (!state.call.second) await prepareCase(msg);
  render();
  if (!msg.media) { $("media-state").textContent = "等待视频服务"; return; }
  await startMedia(msg);
}

async function startMedia(msg) {
  if (state.joining) return;
  state.joining = true;
  $("media-state").textContent = "正在接通视频";
  try {
    const local = await openCamera();
    if (state.pc) state.pc.close();
    const { pc, remotes } = await joinCall(msg.media, [
      { kind: "video", track: local.video },
      { kind: "video", track: null },
      { kind: "video", track: null },
      { kind: "audio", track: local.mic },
      { kind: "audio", track: null },
    ], { onState: (s) => mediaState(msg, s) });
    if (state.call?.call_id !== msg.call_id) { pc.close(); return; }
    state.pc = pc;
    // Lost (failed, or disconnected a while): a fresh snapshot rejoins with a fresh token.
    whenLost(pc, () => { if (state.call?.call_id === msg.call_id) signal.ws?.close(); });
    showTrack($("face-video"), remotes[0], "face");
    showTrack($("doc-video"), remotes[1], "document");
    showTrack($("second-video"), remotes[2], "second");
    showTrack($("self-video"), local.video, "self");
    playAudio($("face-audio"), remotes[3]);
    playAudio($("second-audio"), remotes[4]);
  } catch (err) {
    $("media-state").textContent = "视频未接通";
    showError(err.message && /[\u4e00-\u9fa5]/.test(err.message) ? err.message : "视频暂时没有接通");
  } finally { state.joining = false; }
}

function mediaState(msg, s) {
  $("media-state").textContent = { connected: "视频已接通", connecting: "正在接通视频",
    disconnected: "视频不稳定", failed: "视频断了", closed: "" }[s] || "";
}

function stopMedia() {
  if (state.pc) state.pc.close();
  state.pc = null;
  if (state.local) { state.local.video?.stop(); state.local.mic?.stop(); state.local = null; }
}

async function hangup() {
  if (!state.call) return;
  if (!state.call.second) {
    signal.send("end_call", { call_id: state.call.call_id });
    return;
  }
  // The invited clerk only leaves; the call goes on between the applicant and its clerk.
  const media = state.call.media;
  stopMedia();
  state.call = null;
  render();
  if (media) await leaveCall(media);
}

function callEnded(msg) {
  if (state.call?.call_id !== msg.call_id) return;
  if (state.call.media) leaveCall(state.call.media);
  stopMedia();
  state.call = null;
  render();
}

async function capture() {
  const media = state.call?.media;
  if (!media) return;
  $("capture").disabled = true;
  try {
    const resp = await fetch(`${media.worker_url}/calls/${encodeURIComponent(media.call_id)}/capture`,
      { method: "POST", headers: { Authorization: `Bearer ${media.token}` } });
    const scan = await readJson(resp);
    state.scans.push(scan.scan_id);
    // The thumbnail comes from the worker; a blob URL keeps the page's CSP at 'self'.
    const img = document.createElement("img");
    img.alt = `材料 ${state.scans.length}`;
    img.dataset.scan = scan.scan_id;
    // The join token goes in a header, never in the URL (nor the worker's access log).
    const blob = await (await fetch(scan.thumbnail_url,
      { headers: { Authorization: `Bearer ${media.token}` } })).blob();
    img.src = URL.createObjectURL(blob);
    $("thumbs").append(img);
  } catch (err) {
    showError(`拍照没有成功：${plain(err)}`);
  } finally { $("capture").disabled = false; }
}

// --- the case form ----------------------------------------------------------------------

async function prepareCase(msg) {
  if (state.caseFor?.call_id === msg.call_id) return;
  state.caseFor = { call_id: msg.call_id, terminal_id: msg.terminal_id, submitted: null };
  $("case-form").reset();
  $("case-result").textContent = "";
  $("case-id-check").textContent = "";
  $("case-submit").disabled = false;
  if (!state.items.length) {
    try { state.items = await api("/api/items"); } catch (err) { showError(plain(err)); }
  }
  $("case-item").replaceChildren(...state.items.map((it) => {
    const o = document.createElement("option");
    o.value = it.code;
    o.textContent = it.name;
    return o;
  }));
  $("case-item").value = msg.item_code;
  renderMaterials();
}

function renderMaterials() {
  const item = state.items.find((it) => it.code === $("case-item").value);
  $("case-materials").replaceChildren(...(item?.materials || []).map((m) => {
    const li = document.createElement("li");
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = m.name;
    box.dataset.core = String(m.core);
    box.addEventListener("change", materialsChanged);
    const tag = document.createElement("span");
    tag.className = m.core ? "tag core" : "tag";
    tag.textContent = m.core ? "核心材料" : "可容缺";
    label.append(box, ` ${m.name}`, tag);
    li.append(label);
    return li;
  }));
  materialsChanged();
}

function materials() {
  const boxes = [...$("case-materials").querySelectorAll("input")];
  return {
    provided: boxes.filter((b) => b.checked).map((b) => b.value),
    missing: boxes.filter((b) => !b.checked).map((b) => b.value),
    missingCore: boxes.filter((b) => !b.checked && b.dataset.core === "true").map((b) => b.value),
  };
}

function materialsChanged() {
  $("promise-row").hidden = materials().missing.length === 0;
}

function idChanged() {
  const raw = $("case-id").value;
  const el = $("case-id-check");
  if (!raw) { el.textContent = ""; return; }
  const r = checkIdNumber(raw);
  el.textContent = r.valid ? "号码有效" : r.reason;
  el.className = `hint ${r.valid ? "good" : "bad"}`;
}

async function submitCase(ev) {
  ev.preventDefault();
  const f = state.caseFor;
  if (!f) return;
  const id = checkIdNumber($("case-id").value);
  const outcome = document.querySelector("input[name=outcome]:checked")?.value;
  const m = materials();
  const problems = [];
  if (!$("case-name").value.trim()) problems.push("请填写申请人姓名");
  if (!id.valid) problems.push(`身份证号：${id.reason}`);
  if (!/^[0-9+\- ]{5,20}$/.test($("case-phone").value.trim())) problems.push("请填写正确的联系电话");
  if (!outcome) problems.push("请选择结果");
  if (m.missing.length && !$("case-promise").value) problems.push("有容缺材料，请填写承诺补交日期");
  if (problems.length) { $("case-result").textContent = problems.join("；"); $("case-result").className = "hint bad"; return; }
  $("case-submit").disabled = true;
  try {
    const res = await api("/api/cases", { method: "POST", body: {
      terminal_id: f.terminal_id, call_id: f.call_id, item_code: $("case-item").value,
      applicant_name: $("case-name").value.trim(), id_number: id.normalized,
      phone: $("case-phone").value.trim(), scans: state.scans, verification: identity.verification(),
      materials_provided: m.provided, materials_missing: m.missing,
      promise_date: m.missing.length ? $("case-promise").value : null, outcome,
    } });
    f.submitted = res.case_no;
    $("case-result").textContent = `已提交，办件编号 ${res.case_no}（${res.status_name}）`;
    $("case-result").className = "hint good";
  } catch (err) {
    $("case-submit").disabled = false;
    $("case-result").textContent = plain(err);
    $("case-result").className = "hint bad";
  }
}

// --- messages ---------------------------------------------------------------------------

function clerkState(msg) {
  state.clerk = msg;
  if (msg.state !== "offered") state.offer = null;
  if (msg.state === "idle" && state.caseFor?.submitted) state.caseFor = null;
  render();
}

function onMessage(msg) {
  document.dispatchEvent(new CustomEvent("signal:message", { detail: msg }));  // watching.js, capture.js
  switch (msg.type) {
    case "hello": $("who").textContent = msg.display_name; break;
    case "clerk_state": clerkState(msg); break;
    case "offer": offer(msg); break;
    case "offer_closed":
      if (state.offer?.offer_id === msg.offer_id) state.offer = null;
      if (msg.reason === "timeout") showError("来电超时未接听，已为您暂停接听");
      render();
      break;
    case "call_assigned": callAssigned(msg); break;
    case "call_invite":
      state.invite = msg;
      $("invite-from").textContent = msg.from_name;
      $("invite").hidden = false;
      break;
    case "call_ended": callEnded(msg); break;
    case "identity_step": case "identity_result": identity.message(msg); break;
    case "error": showError(msg.message); break;
    default: break;
  }
}

async function start() {
  $("login").hidden = true;
  try { state.items = await api("/api/items"); } catch { state.items = []; }
  signal = new Signal(onMessage, (s) => {
    if (s === "ended") { location.reload(); return; }  // logged out elsewhere or disabled
    $("netlost").hidden = s === "open";
  });
  signal.connect();
  setInterval(() => signal.send("ping"), 20000);
  render();
}

async function main() {
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const me = await api("/api/login", { method: "POST",
        body: { username: $("username").value.trim(), password: $("password").value } });
      if (me.role !== "clerk") { showError("这个账号不是坐席账号"); return; }
      state.me = me;
      await start();
    } catch (err) { showError(plain(err)); }
  });
  $("ready").addEventListener("click", () => signal.send("set_status", { status: "ready" }));
  $("not-ready").addEventListener("click", () =>
    signal.send("set_status", { status: "not_ready", reason: $("reason").value }));
  $("accept").addEventListener("click", () => {
    if (!state.offer) return;
    window.__acceptClickAt = Date.now();
    $("accept").disabled = true;
    signal.send("accept_offer", { offer_id: state.offer.offer_id });
  });
  $("reject").addEventListener("click", () => {
    if (state.offer) signal.send("reject_offer", { offer_id: state.offer.offer_id });
  });
  $("hangup").addEventListener("click", hangup);
  $("capture").addEventListener("click", capture);
  $("invite-send").addEventListener("click", () => {
    const u = $("invite-user").value.trim();
    if (u && state.call) signal.send("invite_clerk", { call_id: state.call.call_id, username: u });
  });
  $("invite-accept").addEventListener("click", () => {
    if (state.invite) signal.send("accept_invite", { call_id: state.invite.call_id });
    $("invite").hidden = true;
  });
  $("wrapup-done").addEventListener("click", () => signal.send("wrapup_done"));
  $("logout").addEventListener("click", async () => {
    signal?.close();
    stopMedia();
    try { await api("/api/logout", { method: "POST" }); } catch { /* reload anyway */ }
    location.reload();
  });
  $("case-form").addEventListener("submit", submitCase);
  $("case-item").addEventListener("change", renderMaterials);
  $("case-id").addEventListener("input", idChanged);
  tick = setInterval(countdown, 250);
  try {
    const me = await api("/api/me");
    if (me.role === "clerk") { state.me = me; await start(); return; }
  } catch { /* not logged in */ }
  $("login").hidden = false;
  render();
}

main();
window.__console = state;
