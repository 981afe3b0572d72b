// 好差评 after the call: 「您对这次办事满意吗？」 with four big faces, one tap, gone after 30 s;
// 不满意 offers a few reasons as big buttons. A separate module: it watches the kiosk's
// call (window.__kiosk.call), so kiosk.js is unchanged.

const SHOW_MS = 30000;
const MOUTH = { very_satisfied: "M30 62 Q50 82 70 62", satisfied: "M32 64 Q50 74 68 64",
  fairly_satisfied: "M32 66 L68 66", dissatisfied: "M30 72 Q50 56 70 72" };
const COLOR = { very_satisfied: "#1f7a35", satisfied: "#4c9a2a", fairly_satisfied: "#b08900", dissatisfied: "#b3261e" };
let config = null;
let lastCall = null;
let rated = new Set();
let timer = 0;

const css = document.createElement("style");
css.textContent = `
#rating { position: fixed; inset: 0; background: rgba(255,255,255,.97); z-index: 50; display: flex;
  flex-direction: column; align-items: center; justify-content: center; gap: 28px; font-size: 30px; }
#rating h1 { font-size: 44px; margin: 0; }
#rating .faces, #rating .reasons { display: flex; flex-wrap: wrap; gap: 24px; justify-content: center; }
#rating .face { display: flex; flex-direction: column; align-items: center; gap: 8px; min-width: 190px;
  padding: 16px; border: 3px solid #222; border-radius: 18px; background: #fff; font: inherit; cursor: pointer; }
#rating .reason { min-height: 80px; min-width: 260px; font: inherit; font-size: 28px; border: 3px solid #222;
  border-radius: 14px; background: #fff; cursor: pointer; }
#rating .reason[aria-pressed=true] { background: #1f4e79; color: #fff; }
#rating .send { min-height: 80px; min-width: 220px; font: inherit; font-weight: 700; border-radius: 14px;
  border: 3px solid #1f4e79; background: #1f4e79; color: #fff; cursor: pointer; }`;
document.head.append(css);

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...kids);
  return e;
}

function face(value) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 100 100");
  svg.setAttribute("width", "120");
  svg.setAttribute("height", "120");
  const parts = [["circle", { cx: 50, cy: 50, r: 46, fill: COLOR[value] }],
    ["circle", { cx: 35, cy: 40, r: 6, fill: "#fff" }], ["circle", { cx: 65, cy: 40, r: 6, fill: "#fff" }],
    ["path", { d: MOUTH[value], stroke: "#fff", "stroke-width": 7, fill: "none", "stroke-linecap": "round" }]];
  for (const [tag, attrs] of parts) {
    const p = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) p.setAttribute(k, String(v));
    svg.append(p);
  }
  return svg;
}

function close() {
  clearTimeout(timer);
  document.getElementById("rating")?.remove();
}

async function send(callId, rating, reasons) {
  rated.add(callId);
  try {
    const resp = await fetch("/api/terminal/rating", {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ call_id: callId, rating, reasons }),
    });
    if (!resp.ok && resp.status !== 409) throw new Error(String(resp.status));
    thanks("谢谢您的评价！");
  } catch {
    thanks("评价没有送出，谢谢您！");
  }
}

function thanks(words) {
  const box = document.getElementById("rating");
  if (!box) return;
  box.replaceChildren(el("h1", {}, words));
  clearTimeout(timer);
  timer = setTimeout(close, 2500);
}

function reasonsFor(callId) {
  const box = document.getElementById("rating");
  const chosen = new Set();
  const buttons = config.reasons.map((r) => {
    const b = el("button", { class: "reason", "aria-pressed": "false", type: "button" }, r);
    b.addEventListener("click", () => {
      if (chosen.has(r)) chosen.delete(r); else chosen.add(r);
      b.setAttribute("aria-pressed", String(chosen.has(r)));
    });
    return b;
  });
  const go = el("button", { class: "send", id: "rating-send", type: "button" }, "提交");
  go.addEventListener("click", () => send(callId, "dissatisfied", [...chosen]));
  box.replaceChildren(el("h1", {}, "很抱歉！哪里让您不满意？"), el("p", {}, "可以选几项，也可以直接提交，我们会给您回电话。"),
    el("div", { class: "reasons" }, ...buttons), go);
}

async function ask(callId) {
  if (rated.has(callId) || document.getElementById("rating")) return;
  if (!config) {
    try {
      const resp = await fetch("/api/terminal/rating", { credentials: "same-origin" });
      if (!resp.ok) return;
      config = await resp.json();
    } catch { return; }
  }
  const faces = config.ratings.map(({ value, words }) => {
    const b = el("button", { class: "face", "data-rating": value, type: "button" }, face(value), words);
    b.addEventListener("click", () => {
      clearTimeout(timer);
      timer = setTimeout(close, SHOW_MS);
      if (value === "dissatisfied") reasonsFor(callId); else send(callId, value, []);
    });
    return b;
  });
  const box = el("section", { id: "rating", role: "dialog", "aria-label": "满意度评价" },
    el("h1", {}, "您对这次办事满意吗？"), el("div", { class: "faces" }, ...faces));
  document.body.append(box);
  timer = setTimeout(close, SHOW_MS);
}

// The kiosk holds its call in window.__kiosk.call and clears it when the call ends (a case
// result may already be on screen during the call, so the screen alone does not say).
setInterval(() => {
  const id = window.__kiosk?.call?.call_id || null;
  if (id) { lastCall = id; return; }
  if (lastCall) {
    const ended = lastCall;
    lastCall = null;
    ask(ended);
  }
}, 300);
