// Village terminal kiosk: pick a service, see the materials, queue, talk, get the slip.
// Plain ES module; all state that matters lives on the server, which sends a snapshot on
// every (re)connect, so a reload or a lost network resumes where the applicant was.
//
// The kiosk's credential is an HttpOnly cookie set at enrolment (enrol.js); only a
// `make run` stack still takes the demo `?token=` URL. Certificates: certificates.js.
// Configuration (query parameter, remembered in localStorage as "vw.<name>"):
//   face_camera  part of the face camera's label; doc_camera: of the document camera's.
//                Without them, or with one camera only, one camera serves both tracks.
//   idle         seconds before browsing screens return to the start (default 90)
//   done_idle    seconds the outcome screen stays (default 120)

import { api, plain } from "/web/common/api.js";
import { joinCall, leaveCall, playAudio, showTrack, whenLost } from "/web/common/media.js";
import { Signal } from "/web/common/socket.js";
import { Certificates } from "/web/terminal/certificates.js";
import { kioskSession } from "/web/terminal/enrol.js";
import { identity } from "/web/terminal/identity.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const setting = (name, fallback) => params.get(name) || localStorage.getItem(`vw.${name}`) || fallback;
const IDLE_S = Number(setting("idle", "90"));  // back to the start screen after this
const DONE_IDLE_S = Number(setting("done_idle", "120"));

const OUTCOME_TEXT = {
  "稍等片刻": "请在这里稍等一会儿，工作人员正在为您办理，结果很快出来。",
  "现场开单": "已经为您开好单子。下面这些材料请在约定日期前补交。",
  "当面说清": "工作人员已经当面向您说明了情况，请按照说明去办。",
  "放心回家": "事情已经交给工作人员办理，结果会通知您，您可以放心回家。",
};
const CATEGORY_GLYPH = (name) => (name || "办").slice(0, 1);

const state = {
  items: [], item: null, screen: "", call: null, pc: null, local: null, joining: false,
  ticket: null, idleTimer: 0, hasResult: false,
};
let signal = null;

function show(screen) {
  state.screen = screen;
  for (const el of document.querySelectorAll(".screen")) el.hidden = el.id !== `screen-${screen}`;
  const step = { start: 1, materials: 2, queue: 3 }[screen] || 0;
  for (const s of document.querySelectorAll("#steps span")) {
    s.classList.toggle("on", Number(s.dataset.step) === step);
  }
  document.body.dataset.screen = screen;
  armIdle();
}

function showError(text) {
  const el = $("error");
  el.textContent = text;
  el.hidden = !text;
  if (text) setTimeout(() => { if (el.textContent === text) el.hidden = true; }, 8000);
}

// Inactivity returns browsing screens (never the queue or a call) to the start screen.
function armIdle() {
  clearTimeout(state.idleTimer);
  const limit = state.screen === "done" || state.screen === "ended" ? DONE_IDLE_S
    : ["materials", "start", "certs"].includes(state.screen) ? IDLE_S : 0;
  if (!limit) return;
  state.idleTimer = setTimeout(goHome, limit * 1000);
}

function goHome() {
  // Opened certificates close with the screen: the next person proves again.
  if (state.screen === "certs") api("/api/terminal/lock", { method: "POST" }).catch(() => {});
  $("search").value = "";
  $("results").replaceChildren();
  state.item = null;
  state.hasResult = false;
  show("start");
}

// --- step 1: find the service -----------------------------------------------------------

function tile(text, sub, cls, onClick) {
  const b = document.createElement("button");
  b.className = `tile ${cls}`;
  const icon = document.createElement("span");
  icon.className = "icon";
  icon.textContent = CATEGORY_GLYPH(text);
  const name = document.createElement("span");
  name.textContent = text;
  b.append(icon, name);
  if (sub) {
    const s = document.createElement("span");
    s.className = "sub";
    s.textContent = sub;
    b.append(s);
  }
  b.addEventListener("click", onClick);
  return b;
}

function itemTiles(items) {
  return items.map((it) => tile(it.plain_name || it.name, it.name, "item", () => pickItem(it)));
}

function renderCategories() {
  const cats = [...new Set(state.items.map((it) => it.category))];
  $("categories").replaceChildren(...cats.map((c) => tile(c, "", "category", () => {
    $("results").replaceChildren(...itemTiles(state.items.filter((it) => it.category === c)));
  })));
}

async function search(ev) {
  ev.preventDefault();
  const q = $("search").value.trim();
  if (!q) return;
  try {
    const found = await api(`/api/items?q=${encodeURIComponent(q)}`);
    if (!found.length) {
      const p = document.createElement("p");
      p.className = "big";
      p.textContent = "没有找到，请换个说法，或者按下面的类别找。";
      $("results").replaceChildren(p);
    } else {
      $("results").replaceChildren(...itemTiles(found));
    }
  } catch (err) { showError(plain(err)); }
}

// --- step 2: the materials --------------------------------------------------------------

function pickItem(item) {
  state.item = item;
  $("item-name").textContent = item.plain_name || item.name;
  $("materials").replaceChildren(...item.materials.map((m) => {
    const li = document.createElement("li");
    li.textContent = m.name;
    const tag = document.createElement("span");
    tag.className = m.core ? "tag" : "tag later";
    tag.textContent = m.core ? "必须带" : "可以以后补";
    li.append(tag);
    return li;
  }));
  $("priority").checked = false;
  show("materials");
}

// --- step 3: the queue ------------------------------------------------------------------

function joinQueue() {
  if (!state.item) return;
  if (!signal.send("join_queue", { item_code: state.item.code, priority: $("priority").checked })) {
    showError("网络还没有连上，请稍等几秒再按");
    return;
  }
  $("queue-item").textContent = state.item.plain_name || state.item.name;
  $("position").textContent = "–";
  $("wait").textContent = "–";
  show("queue");
  openCameras().catch(() => {});
}

function queueStatus(msg) {
  state.ticket = msg.ticket_id;
  const item = state.items.find((it) => it.code === msg.item_code);
  if (item) { state.item = item; $("queue-item").textContent = item.plain_name || item.name; }
  $("position").textContent = String(Math.max(0, msg.position - 1));
  const mins = Math.ceil(msg.estimated_wait_s / 60);
  $("wait").textContent = msg.estimated_wait_s < 60 ? "不到1" : String(mins);
  $("queue-note").textContent = msg.state === "offered"
    ? "马上轮到您了，工作人员正在接通……" : "工作人员接通后，屏幕上会出现他的画面。请不要走开。";
  if (state.screen !== "queue") show("queue");
  openCameras().catch(() => {});
}

// --- cameras: picked by configured labels, one camera serves both when only one exists --

async function openCameras() {
  if (state.local) return state.local;
  if (state.opening) return state.opening;
  state.opening = (async () => {
    const first = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    const cams = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
    const byLabel = (label) => label && cams.find((d) => d.label.includes(label));
    const faceDev = byLabel(setting("face_camera", "")), docDev = byLabel(setting("doc_camera", ""));
    let face = first.getVideoTracks()[0];
    const mic = first.getAudioTracks()[0] || null;
    if (faceDev && face.getSettings().deviceId !== faceDev.deviceId) {
      face.stop();
      face = (await navigator.mediaDevices.getUserMedia({ video: { deviceId: { exact: faceDev.deviceId } } })).getVideoTracks()[0];
    }
    let doc = null;
    const other = docDev || cams.find((d) => d.deviceId !== face.getSettings().deviceId);
    if (other && cams.length > 1) {
      try {
        doc = (await navigator.mediaDevices.getUserMedia({ video: { deviceId: { exact: other.deviceId } } })).getVideoTracks()[0];
      } catch { doc = null; }
    }
    if (!doc) doc = face.clone();  // one camera for both: the clerk still sees the papers
    state.local = { face, doc, mic };
    showTrack($("preview"), face, "preview");
    return state.local;
  })();
  try { return await state.opening; } catch (err) {
    showError("摄像头打不开，请联系村里的管理员");
    throw err;
  } finally { state.opening = null; }
}

// --- the call ---------------------------------------------------------------------------

async function callAssigned(msg) {
  if (state.call && state.call.call_id === msg.call_id && state.pc
      && ["connected", "connecting", "new"].includes(state.pc.connectionState) && !msg.rejoin) {
    return;  // a snapshot of the call we are already in
  }
  state.call = msg;
  state.hasResult = false;
  $("call-title").textContent = `正在和工作人员通话：${msg.clerk_name}`;
  show("call");
  if (!msg.media) { $("call-note").textContent = "正在准备视频，请稍等……"; return; }
  await startMedia(msg);
}

async function startMedia(msg) {
  if (state.joining) return;
  state.joining = true;
  try {
    const local = await openCameras();
    if (state.pc) state.pc.close();
    const { pc, remotes } = await joinCall(msg.media, [
      { kind: "video", track: local.face, priority: "high" },
      { kind: "video", track: local.doc, priority: "low", hint: "detail" },
      { kind: "audio", track: local.mic },
      { kind: "audio", track: null },
    ]);
    if (state.call?.call_id !== msg.call_id) { pc.close(); return; }
    state.pc = pc;
    whenLost(pc, () => mediaLost(msg));
    showTrack($("clerk-video"), remotes[0], "clerk");
    showTrack($("second-video"), remotes[1], "second");
    showTrack($("self-video"), local.face, "self");
    playAudio($("clerk-audio"), remotes[2]);
    playAudio($("second-audio"), remotes[3]);
    $("call-note").textContent = "请把身份证和材料放在下方摄像头下面。";
  } catch (err) {
    $("call-note").textContent = "视频暂时没有接通，正在重试……";
    setTimeout(() => { if (state.call?.call_id === msg.call_id) signal.ws?.close(); }, 2000);
  } finally { state.joining = false; }
}

function mediaLost(msg) {
  if (state.call?.call_id !== msg.call_id) return;
  $("call-note").textContent = "视频断了，正在重新连接……";
  // A fresh snapshot brings a fresh join token; the worker replaces the old connection.
  signal.ws?.close();
}

function stopCall() {
  if (state.pc) state.pc.close();
  state.pc = null;
  if (state.local) {
    for (const t of [state.local.face, state.local.doc, state.local.mic]) t?.stop();
    state.local = null;
  }
}

function callEnded(msg) {
  if (state.call && msg.call_id !== state.call.call_id) return;
  stopCall();
  state.call = null;
  if (state.hasResult) return;  // the outcome screen stays
  $("ended-title").textContent = "通话已结束";
  $("ended-text").textContent = "谢谢您！如果还有事，请回到首页重新办理。";
  show("ended");
}

function caseSubmitted(msg) {
  state.hasResult = true;
  $("outcome").textContent = msg.outcome;
  $("outcome-text").textContent = OUTCOME_TEXT[msg.outcome] || "";
  const missing = msg.missing_materials || [];
  $("missing-box").hidden = !missing.length;
  $("missing").replaceChildren(...missing.map((m) => {
    const li = document.createElement("li");
    li.textContent = m;
    return li;
  }));
  $("promise").textContent = msg.promise_date ? `请在 ${msg.promise_date} 前补交。` : "";
  $("slip-item").textContent = msg.item_name;
  $("slip-no").textContent = msg.case_no;
  $("slip-date").textContent = msg.date;
  $("slip-outcome").textContent = msg.outcome;
  $("slip-qr").src = msg.qr_url;
  $("slip-missing-row").hidden = !missing.length;
  $("slip-missing").textContent = missing.join("、");
  $("slip-promise").textContent = msg.promise_date ? `（${msg.promise_date} 前补交）` : "";
  show("done");
}

let certificates = null;  // the start screen's ready count and the proof screens

function onMessage(msg) {
  window.dispatchEvent(new CustomEvent("kiosk-message", { detail: msg }));  // capture.js …
  switch (msg.type) {
    case "hello": $("place").textContent = msg.display_name; break;
    case "queue_status": queueStatus(msg); break;
    case "left_queue":
      stopCall();
      if (msg.reason === "abandoned") showError("您离开太久，排队已取消，请重新排队");
      if (state.screen === "queue") goHome();
      break;
    case "call_assigned": callAssigned(msg); break;
    case "call_ended": identity.reset(); callEnded(msg); break;
    case "identity_step": case "identity_done": identity.message(msg); break;
    case "case_submitted": caseSubmitted(msg); break;
    case "case_result": certificates.caseResult(msg); break;
    case "error": showError(msg.message); break;
    default: break;
  }
}

let signalEnded = () => {};

function onSocket(s) {
  if (s === "ended") { signalEnded(); return; }  // the session was ended (revoked)
  $("netlost").hidden = s === "open";
  if (s === "lost") window.__netLost = (window.__netLost || 0) + 1;
}

async function login() {
  for (const name of ["face_camera", "doc_camera"]) {
    if (params.get(name)) localStorage.setItem(`vw.${name}`, params.get(name));
  }
  localStorage.removeItem("vw.terminal_token");  // an old kiosk's token: never kept again
  return kioskSession(show);
}

async function main() {
  $("search-form").addEventListener("submit", search);
  $("back").addEventListener("click", goHome);
  $("join").addEventListener("click", joinQueue);
  $("leave").addEventListener("click", () => { signal.send("leave_queue"); stopCall(); goHome(); });
  $("print").addEventListener("click", () => window.print());
  $("home").addEventListener("click", goHome);
  $("ended-home").addEventListener("click", goHome);
  for (const ev of ["pointerdown", "keydown", "input"]) document.addEventListener(ev, armIdle, true);
  let ok = false;
  try { ok = await login(); } catch (err) { showError(plain(err)); }
  if (!ok) { show("login"); return; }
  signalEnded = () => { show("login"); location.reload(); };
  try {
    state.items = await api("/api/items");
    renderCategories();
  } catch (err) { showError(plain(err)); }
  certificates = new Certificates(show, goHome, showError);
  show("start");
  certificates.load();
  signal = new Signal(onMessage, onSocket);
  signal.connect();
  setInterval(() => signal.send("ping"), 20000);
  // A second clerk's picture appears once its camera sends frames (三方连线).
  setInterval(() => { $("second-video").hidden = !((window.__frames || {}).second > 0); }, 500);
  window.__kiosk = state;
}

main();
