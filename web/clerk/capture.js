// The clerk's capture panel 「拍材料」: pick the material, watch the document camera with the
// outline the worker found and its verdict in words, 拍照 or 自动拍, see the flattened page at
// once, 重拍 / 下一页; a material with a good page is ticked in the case form. The worker
// is called with this clerk's own join token (a header, never the URL); its notices
// (doc_guidance, doc_scan_result …) arrive on the signaling socket as the document's "signal:message" event.

import { api, plain, readJson } from "/web/common/api.js";

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};
const panel = { open: false, materials: [], code: "", name: "", page: 1, auto: false,
  pages: {}, lastResult: null, outline: null };

function consoleState() { return window.__console || {}; }
function media() { return consoleState().call?.media || null; }

async function worker(path, body) {
  const m = media();
  if (!m) throw new Error("还没有接通视频");
  const resp = await fetch(`${m.worker_url}/calls/${encodeURIComponent(m.call_id)}/documents/${path}`, {
    method: "POST", headers: { Authorization: `Bearer ${m.token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body || {}) });
  return readJson(resp);
}

function build() {
  const tools = document.querySelector("#call .tools");
  if (!tools || $("doc-open")) return;
  tools.prepend(el("button", { id: "doc-open", className: "btn primary", textContent: "拍材料" }));
  const box = el("section", { id: "doc-panel", className: "doc-panel", hidden: true },
    el("div", { className: "doc-head" },
      el("h3", { textContent: "拍材料" }),
      el("select", { id: "doc-material", ariaLabel: "材料" }),
      el("input", { id: "doc-other", placeholder: "材料名称", maxLength: 32, hidden: true }),
      el("span", { id: "doc-page", className: "badge" }),
      el("button", { id: "doc-close", className: "btn", textContent: "关闭" })),
    el("div", { className: "doc-body" },
      el("div", { className: "doc-live" },
        el("video", { id: "doc-live", playsInline: true, muted: true, autoplay: true }),
        el("canvas", { id: "doc-outline" }),
        el("div", { id: "doc-words", className: "doc-words", textContent: "正在查看材料……" })),
      el("div", { className: "doc-result" },
        el("img", { id: "doc-flat", alt: "拍好的材料", hidden: true }),
        el("p", { id: "doc-result-words", className: "hint" }))),
    el("div", { className: "doc-actions" },
      el("button", { id: "doc-take", className: "btn primary", textContent: "拍照" }),
      el("label", { className: "inline" }, el("input", { id: "doc-auto", type: "checkbox" }), " 自动拍"),
      el("button", { id: "doc-retake", className: "btn", textContent: "重拍", hidden: true }),
      el("button", { id: "doc-next", className: "btn", textContent: "下一页", hidden: true }),
      el("button", { id: "doc-reuse", className: "btn", textContent: "查找可重复使用的证照" })),
    el("ul", { id: "doc-offers", className: "doc-offers" }));
  $("call").append(box);
  $("doc-open").addEventListener("click", openPanel);
  $("doc-close").addEventListener("click", closePanel);
  $("doc-take").addEventListener("click", () => take().catch(showProblem));
  $("doc-auto").addEventListener("change", () => { panel.auto = $("doc-auto").checked; steer(); });
  $("doc-retake").addEventListener("click", () => { resetResult(); take().catch(showProblem); });
  $("doc-next").addEventListener("click", () => { panel.page += 1; resetResult(); steer(); });
  $("doc-material").addEventListener("change", pickMaterial);
  $("doc-other").addEventListener("change", pickMaterial);
  $("doc-reuse").addEventListener("click", () => reuseOffers().catch(showProblem));
}

function showProblem(err) { $("doc-result-words").textContent = plain(err); }

async function openPanel() {
  const call = consoleState().call;
  if (!call) return;
  try {
    const listed = await api(`/api/calls/${encodeURIComponent(call.call_id)}/materials`);
    panel.materials = listed.materials;
  } catch { panel.materials = []; }
  const options = panel.materials.map((m) => el("option", { value: m.code,
    textContent: `${m.ticked ? "✓ " : ""}${m.name}` }));
  options.push(el("option", { value: "other", textContent: "其他" }));
  $("doc-material").replaceChildren(...options);
  const first = panel.materials.find((m) => !m.ticked) || panel.materials[0];
  $("doc-material").value = first ? first.code : "other";
  $("doc-live").srcObject = $("doc-video").srcObject;
  $("doc-panel").hidden = false;
  panel.open = true;
  pickMaterial();
}

function pickMaterial() {
  const code = $("doc-material").value;
  $("doc-other").hidden = code !== "other";
  const m = panel.materials.find((x) => x.code === code);
  panel.code = code;
  panel.name = code === "other" ? ($("doc-other").value.trim() || "其他材料") : m.name;
  panel.page = (m?.pages?.length || 0) + 1;
  if (m?.pages?.length && m.ticked) panel.page = m.pages.length;  // open on the last page
  resetResult();
  steer();
}

function resetResult() {
  $("doc-flat").hidden = true;
  $("doc-result-words").textContent = "";
  $("doc-retake").hidden = true;
  $("doc-next").hidden = true;
  $("doc-page").textContent = `第 ${panel.page} 页`;
}

async function steer() {
  if (!panel.open) return;
  $("doc-page").textContent = `第 ${panel.page} 页`;
  try {
    await worker("panel", { open: true, material_code: panel.code, material_name: panel.name,
      page: panel.page, auto: panel.auto });
  } catch (err) { showProblem(err); }
}

async function closePanel() {
  panel.open = false;
  $("doc-panel").hidden = true;
  try { await worker("panel", { open: false }); } catch { /* the call may be over */ }
}

async function take() {
  $("doc-take").disabled = true;
  window.__docTakeAt = performance.now();
  try { await worker("take"); $("doc-result-words").textContent = "正在拍……"; }
  finally { setTimeout(() => { $("doc-take").disabled = false; }, 800); }
}

function drawOutline(outline) {
  const video = $("doc-live"), canvas = $("doc-outline");
  canvas.width = video.clientWidth;
  canvas.height = video.clientHeight;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!outline) return;
  ctx.strokeStyle = panel.ready ? "#1a9c3c" : "#e08a00";
  ctx.lineWidth = 3;
  ctx.beginPath();
  for (let i = 0; i < 4; i += 1) {
    const x = outline[i * 2] * canvas.width, y = outline[i * 2 + 1] * canvas.height;
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  }
  ctx.closePath();
  ctx.stroke();
}

function guidance(msg) {
  if (!panel.open) return;
  panel.ready = msg.ready;
  $("doc-words").textContent = msg.words;
  $("doc-words").className = `doc-words ${msg.ready ? "good" : "bad"}`;
  drawOutline(msg.outline);
}

async function showFlat(msg) {
  const m = media();
  if (!m || !msg.scan_id) return;
  const url = `${m.worker_url}/calls/${encodeURIComponent(m.call_id)}/documents/${msg.scan_id}/page`;
  const blob = await (await fetch(url, { headers: { Authorization: `Bearer ${m.token}` } })).blob();
  const img = $("doc-flat");
  img.src = URL.createObjectURL(blob);
  img.hidden = false;
  window.__docShownAt = performance.now();
}

function keepScan(msg) {
  const scans = consoleState().scans;
  if (!scans) return;
  const key = `${msg.material_code}#${msg.page}`;
  const i = panel.pages[key] ? scans.indexOf(panel.pages[key]) : -1;
  if (i >= 0) scans.splice(i, 1);  // 重拍: the new page replaces the old one in the case
  panel.pages[key] = msg.scan_id;
  scans.push(msg.scan_id);
  if (msg.verdict === "ok") tick(msg.material_name);
}

function tick(name) {
  for (const box of document.querySelectorAll("#case-materials input")) {
    if (box.value === name && !box.checked) {
      box.checked = true;
      box.dispatchEvent(new Event("change"));
    }
  }
  const m = panel.materials.find((x) => x.name === name);
  if (m) m.ticked = true;
}

async function result(msg) {
  $("doc-result-words").textContent = msg.accepted
    ? `${msg.material_name} 第 ${msg.page} 页：${msg.words}${msg.from_video ? "（视频画面，清晰度有限）" : ""}`
    : `没有拍成：${msg.words}`;
  $("doc-result-words").className = `hint ${msg.accepted && msg.verdict === "ok" ? "good" : "bad"}`;
  $("doc-retake").hidden = false;
  $("doc-next").hidden = !msg.accepted;
  if (msg.accepted) {
    keepScan(msg);
    await showFlat(msg);
  }
}

async function reuseOffers() {
  const call = consoleState().call;
  const id = ($("case-id")?.value || "").trim();
  if (!call || id.length < 15) { showProblem("请先在办件登记里填写身份证号"); return; }
  const { offers } = await api(`/api/calls/${encodeURIComponent(call.call_id)}/materials/reuse-offers`,
    { method: "POST", body: { id_number: id } });
  $("doc-offers").replaceChildren(...(offers.length ? offers.map((o) => {
    const use = el("button", { className: "btn", textContent: "使用这份" });
    use.addEventListener("click", async () => {
      try {
        const got = await api(`/api/calls/${encodeURIComponent(call.call_id)}/materials/reuse`,
          { method: "POST", body: { scan_id: o.scan_id } });
        consoleState().scans?.push(got.scan_id);
        tick(o.material_name);
        use.disabled = true;
        use.textContent = "已使用";
      } catch (err) { showProblem(err); }
    });
    return el("li", {}, `${o.material_name} 第 ${o.page} 页（办件 ${o.case_no}，${o.taken_at.slice(0, 10)}） `, use);
  }) : [el("li", { textContent: "没有可以重复使用的证照" })]));
}

document.addEventListener("signal:message", (ev) => {
  const msg = ev.detail;
  switch (msg.type) {
    case "doc_guidance": guidance(msg); break;
    case "doc_scan_result": result(msg).catch(showProblem); break;
    case "doc_panel_closed": if (panel.open) { panel.open = false; $("doc-panel").hidden = true; } break;
    case "call_ended": panel.open = false; if ($("doc-panel")) $("doc-panel").hidden = true; break;
    default: break;
  }
});

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", build);
else build();
window.__docPanel = panel;
