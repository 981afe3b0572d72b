// Kiosk: the identity check's big, plain steps over the call screen. The worker decides;
// this only shows what it asks (第一步 the card, 第二步 the face and the moves with a time
// limit, 核验完成). Never a score: the kiosk is told only whether the check finished.

const $ = (id) => document.getElementById(id);
const ARROWS = { left: "⬅", right: "➡", nod: "⬇" };
const MOVE_WORDS = { left: "请慢慢向左转头", right: "请慢慢向右转头", nod: "请点点头", blink: "请眨眨眼" };
// A blink has no arrow: an eye that closes and opens again, drawn large.
const BLINK_SVG = `<svg viewBox="0 0 160 80" width="240" height="120" aria-hidden="true"><g class="eye-open"><path d="M10 40 Q80 -6 150 40 Q80 86 10 40 Z" fill="#fff" stroke="#111" stroke-width="6"/><circle cx="80" cy="40" r="18" fill="#0b4fa8"/><circle cx="80" cy="40" r="8" fill="#111"/></g><g class="eye-shut"><path d="M10 40 Q80 78 150 40" fill="none" stroke="#111" stroke-width="6"/><path d="M40 58 l-6 12 M80 64 v13 M120 58 l6 12" stroke="#111" stroke-width="5"/></g></svg>`;
// A picture per step (inline SVG: the kiosk loads nothing from outside).
const CARD_SVG = `<svg viewBox="0 0 120 80" aria-hidden="true"><rect x="4" y="8" width="112" height="68" rx="8" fill="#fff" stroke="#111" stroke-width="4"/><rect x="74" y="18" width="32" height="40" fill="#bcd" stroke="#111" stroke-width="2"/><circle cx="90" cy="32" r="8" fill="#789"/><rect x="14" y="22" width="48" height="6" fill="#111"/><rect x="14" y="36" width="40" height="6" fill="#111"/><rect x="14" y="58" width="54" height="8" fill="#111"/></svg>`;
const FACE_SVG = `<svg viewBox="0 0 120 80" aria-hidden="true"><rect x="40" y="2" width="40" height="10" rx="4" fill="#111"/><circle cx="60" cy="7" r="3" fill="#f0a400"/><ellipse cx="60" cy="48" rx="22" ry="27" fill="#f2d2b6" stroke="#111" stroke-width="3"/><circle cx="52" cy="44" r="3"/><circle cx="68" cy="44" r="3"/><path d="M52 60 Q60 66 68 60" stroke="#111" stroke-width="3" fill="none"/></svg>`;

let overlay = null;
let timer = null;
let deadline = 0;
let doneTimer = null;

function build() {
  if (overlay) return overlay;
  overlay = document.createElement("div");
  overlay.id = "identity-overlay";
  overlay.className = "identity-overlay";
  overlay.hidden = true;
  overlay.innerHTML = `<div class="id-picture" id="id-picture"></div>
    <h1 id="id-prompt"></h1>
    <div class="id-arrow" id="id-arrow" aria-hidden="true"></div>
    <p class="id-guidance" id="id-guidance" role="status" aria-live="polite"></p>
    <div class="id-time" id="id-time" hidden><div class="id-bar" id="id-bar"></div><span id="id-seconds"></span></div>`;
  ($("screen-call") || document.body).append(overlay);
  return overlay;
}

function countdown(total) {
  clearInterval(timer);
  if (total == null) { $("id-time").hidden = true; return; }
  deadline = Date.now() + total * 1000;
  const full = Math.max(total, 1);
  const draw = () => {
    const left = Math.max(0, (deadline - Date.now()) / 1000);
    $("id-time").hidden = false;
    $("id-seconds").textContent = `还剩 ${Math.ceil(left)} 秒`;
    $("id-bar").style.width = `${Math.min(100, (left / full) * 100)}%`;
    if (left <= 0) clearInterval(timer);
  };
  draw();
  timer = setInterval(draw, 250);
}

function step(msg) {
  build();
  clearTimeout(doneTimer);
  overlay.hidden = false;
  overlay.dataset.step = msg.step;
  $("id-picture").innerHTML = msg.step === "card" ? CARD_SVG : FACE_SVG;
  $("id-prompt").textContent = msg.step === "match" ? "请稍候" : msg.prompt;
  if (msg.move === "blink") $("id-arrow").innerHTML = BLINK_SVG;
  else $("id-arrow").textContent = msg.move ? ARROWS[msg.move] : "";
  $("id-arrow").className = `id-arrow ${msg.move || ""}`;
  const words = msg.move ? MOVE_WORDS[msg.move] : msg.guidance;
  $("id-guidance").textContent = words;
  $("id-guidance").className = `id-guidance ${msg.guidance === "拍好了" ? "taken" : ""}`;
  // The time limit is shown for the moves; the card step has no clock to worry about.
  if (msg.step === "face" && msg.time_left_s != null) {
    if (!timer || Math.abs((deadline - Date.now()) / 1000 - msg.time_left_s) > 1.5) countdown(msg.time_left_s);
  } else { countdown(null); }
}

function done(msg) {
  build();
  countdown(null);
  overlay.hidden = false;
  overlay.dataset.step = "done";
  $("id-picture").innerHTML = "";
  $("id-arrow").textContent = msg.finished ? "✔" : "";
  $("id-arrow").className = "id-arrow done";
  $("id-prompt").textContent = msg.finished ? "核验完成" : "这次没有完成";
  $("id-guidance").textContent = msg.finished ? "谢谢您，请继续和工作人员通话" : msg.message;
  doneTimer = setTimeout(() => { overlay.hidden = true; }, msg.finished ? 4000 : 8000);
}

export const identity = {
  message(msg) {
    if (msg.type === "identity_step") step(msg);
    if (msg.type === "identity_done") done(msg);
  },
  reset() {
    clearInterval(timer);
    timer = null;
    if (overlay) overlay.hidden = true;
  },
};
