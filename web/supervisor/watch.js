// 监看: each live call on the supervisor page gets a 「监看」 button (admin, supervisor). It
// asks signaling for a receive-only join and shows the call in a panel (the applicant's
// face and document camera, the clerk's camera, and all voices) until 「结束监看」 or the call
// ends. The clerks see that someone watches. A separate module: it finds the calls by the
// rows' data-call and never changes the live view itself.

import { api, plain } from "/web/common/api.js";
import { joinCall, leaveCall, playAudio, showTrack, whenLost } from "/web/common/media.js";

const $ = (s) => document.querySelector(s);
// The worker's "watcher" plan (media/slots.py): four video, then three audio m-lines.
const VIDEO = [["terminal.face", "申请人"], ["terminal.document", "材料摄像头"], ["clerk.camera", "坐席"], ["second_clerk.camera", "第二坐席"]];
const AUDIO = 3;
let allowed = false;
let watch = null;  // {callId, media, pc}

function panel() {
  let el = $("#watch");
  if (el) return el;
  el = document.createElement("section");
  el.id = "watch";
  el.hidden = true;
  el.innerHTML = `<h2>监看 <small id="watch-what"></small></h2>
    <p class="error" id="watch-error" role="alert"></p>
    <div class="watch-videos" id="watch-videos"></div>
    <button type="button" id="watch-stop">结束监看</button>`;
  ($("#calls")?.closest("section") || document.body).after(el);
  for (const [slot, label] of VIDEO) {
    const fig = document.createElement("figure");
    fig.innerHTML = `<video autoplay playsinline muted data-slot="${slot}" width="320" height="240"></video><figcaption>${label}</figcaption>`;
    el.querySelector("#watch-videos").append(fig);
  }
  for (let i = 0; i < AUDIO; i += 1) el.append(Object.assign(document.createElement("audio"), { autoplay: true, hidden: true }));
  el.querySelector("#watch-stop").addEventListener("click", stop);
  return el;
}

async function stop() {
  const w = watch;
  watch = null;
  if (w) {
    await leaveCall(w.media);
    w.pc.close();
  }
  const el = panel();
  el.hidden = true;
  for (const v of el.querySelectorAll("video, audio")) v.srcObject = null;
  delete document.body.dataset.watching;
  buttons();
}

async function start(callId) {
  if (watch) await stop();
  const el = panel();
  el.hidden = false;
  el.querySelector("#watch-error").textContent = "";
  el.querySelector("#watch-what").textContent = "正在连接…";
  try {
    const granted = await api(`/api/supervisor/calls/${encodeURIComponent(callId)}/watch`, { method: "POST", body: {} });
    const lines = [...VIDEO.map(() => ({ kind: "video", track: null })), ...Array.from({ length: AUDIO }, () => ({ kind: "audio", track: null }))];
    const { pc, remotes } = await joinCall(granted.media, lines);
    watch = { callId, media: granted.media, pc };
    whenLost(pc, () => { if (watch?.pc === pc) { stop(); showError("监看连接中断"); } });
    el.querySelector("#watch-what").textContent = `${granted.terminal_name} · ${granted.clerk_name}`;
    el.querySelectorAll("video").forEach((v, i) => showTrack(v, remotes[i], `watch:${VIDEO[i][0]}`));
    el.querySelectorAll("audio").forEach((a, i) => playAudio(a, remotes[VIDEO.length + i]));
    document.body.dataset.watching = callId;
  } catch (err) {
    el.querySelector("#watch-what").textContent = "";
    // joinCall's errors are already in plain words; anything else gets the plain fallback.
    showError(/[\u4e00-\u9fff]/.test(err?.message || "") ? err.message : plain(err));
  }
  buttons();
}

function showError(text) {
  const el = panel();
  el.hidden = false;
  el.querySelector("#watch-error").textContent = text;
}

// Adds the button to every call row the live view drew; ends a watch whose call is gone.
function buttons() {
  const table = $("#calls");
  if (!table || !allowed) return;
  const head = table.tHead?.rows[0];
  if (head && !head.querySelector(".watch-col")) head.append(Object.assign(document.createElement("th"), { className: "watch-col", textContent: "监看" }));
  const live = new Set();
  for (const row of table.tBodies[0].rows) {
    const id = row.dataset.call;
    if (!id) continue;
    live.add(id);
    let btn = row.querySelector("button.watch");
    if (!btn) {
      btn = Object.assign(document.createElement("button"), { type: "button", className: "watch" });
      btn.addEventListener("click", () => start(id));
      row.insertCell().append(btn);
    }
    const on = watch?.callId === id;
    btn.textContent = on ? "监看中" : "监看";
    btn.disabled = on;
  }
  if (watch && !live.has(watch.callId)) {
    stop().then(() => showError("通话已结束，监看随之结束"));
  }
}

let initing = false;
async function init() {
  if (initing) return;
  initing = true;
  try {
    const me = await api("/api/me");
    allowed = me.role === "admin" || me.role === "supervisor";
  } catch { allowed = false; }
  initing = false;
  if (!allowed) return;
  const body = $("#calls tbody");
  if (body) new MutationObserver(buttons).observe(body, { childList: true });
  buttons();
}

// The page logs in after load; look again once the board shows.
new MutationObserver(() => { if ($("#board") && !$("#board").hidden && !allowed) init(); })
  .observe(document.body, { attributes: true, subtree: true, attributeFilter: ["hidden"] });
init();
