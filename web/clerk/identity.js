// Clerk console: the 「核验身份」 panel of a call. The worker runs the check; this page starts
// it, shows each step as it happens (card → portrait and ID number → liveness → verdict),
// fills the ID number into the case form, and offers the audited override. The case gets
// only the verification id: the server copies the record (the browser never sends content).

import { api, plain } from "/web/common/api.js";

const $ = (id) => document.getElementById(id);
const VERDICT_CLASS = { "通过": "pass", "人工复核": "review", "不通过": "fail" };
const MOVES = { left: "向左转头", right: "向右转头", nod: "点头", blink: "眨眼" };
const KINDS = { card: "证件", portrait: "证件照片", live: "现场画面" };

const view = { call: null, second: false, attempts: [], step: null, reasons: null, manual: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

function panel() {
  let root = $("identity-panel");
  if (root.dataset.built) return root;
  root.dataset.built = "1";
  root.append(
    el("div", { class: "id-head" },
      el("h3", { text: "身份核验" }),
      el("button", { id: "id-start", class: "btn primary", type: "button", text: "核验身份" }),
      el("span", { id: "id-attempts", class: "hint" })),
    el("ol", { id: "id-steps", class: "id-steps" }),
    el("div", { id: "id-verdict", class: "id-verdict", hidden: "" }),
    el("div", { id: "id-frames", class: "id-frames" }),
    el("p", { id: "id-number", class: "hint" }),
    el("form", { id: "id-override", class: "id-override", hidden: "" },
      el("label", { text: "人工核验原因 " }, el("select", { id: "id-reason" })),
      el("textarea", { id: "id-text", rows: "2", maxlength: "500",
        placeholder: "请说明当面核对的情况（必填）", "aria-label": "说明" }),
      el("button", { class: "btn", type: "submit", text: "确认人工核验" })),
    el("button", { id: "id-manual", class: "btn link", type: "button",
      text: "无法进行核验？人工核验" }),
  );
  $("id-start").addEventListener("click", start);
  $("id-override").addEventListener("submit", override);
  $("id-manual").addEventListener("click", () => openOverride(null));
  $("case-id")?.addEventListener("input", compareNumber);
  return root;
}

// A card taken from the call's ID-card scan says so: it is not the live document camera.
function caption(e) { return `${KINDS[e.kind] || e.kind}${e.scan_id ? "（取自扫描件）" : ""}`; }

function latest() { return view.attempts[view.attempts.length - 1] || null; }

function renderSteps() {
  const s = view.step;
  const last = latest();
  const rows = [
    ["card", "找到证件并拍好", s?.step === "card" ? s.guidance : last ? "已完成" : ""],
    ["portrait", "证件照片和身份证号", s && s.step !== "card" ? "已读取" : ""],
    ["face", "活体动作", s?.step === "face"
      ? `${s.guidance}（${s.completed}/${s.moves}，剩余 ${Math.ceil(s.time_left_s ?? 0)} 秒）` : ""],
    ["match", "人证比对", s?.step === "match" ? "正在比对" : ""],
  ];
  $("id-steps").replaceChildren(...rows.map(([key, title, note]) => el("li",
    { class: s?.step === key ? "current" : "" }, el("b", { text: title }), " ",
    el("span", { class: "hint", text: note }))));
  $("id-steps").hidden = !s;
}

function renderResult() {
  const r = latest();
  const box = $("id-verdict");
  $("id-attempts").textContent = r ? `第 ${r.attempt} 次，还可核验 ${r.attempts_left} 次` : "";
  $("id-start").disabled = Boolean(view.step) || (r && r.attempts_left <= 0);
  $("id-start").hidden = view.second;
  if (!r) { box.hidden = true; $("id-frames").replaceChildren(); return; }
  box.hidden = false;
  const verdict = r.state === "aborted" ? "未完成" : r.verdict;
  const lines = [el("span", { class: `verdict ${VERDICT_CLASS[verdict] || "aborted"}`, text: verdict })];
  if (r.override_by || r.overridden) lines.push(el("span", { class: "verdict manual", text: "人工核验" }));
  if (r.distance != null) {
    lines.push(el("span", { class: "hint", text:
      `距离 ${r.distance.toFixed(3)}（通过 < ${r.thresholds.pass_below}，不通过 > ${r.thresholds.fail_above}）` }));
  }
  lines.push(el("span", { class: "hint", text: `用时 ${r.elapsed_s.toFixed(1)} 秒` }));
  const moves = (r.liveness?.challenge || []).map((m) => MOVES[m] || m).join("、");
  const reasons = el("ul", { class: "reasons" }, ...r.reasons.map((t) => el("li", { text: t })));
  if (moves) reasons.append(el("li", { text: `活体动作：${moves}（${r.liveness.reason}）` }));
  if (r.liveness?.blink_replaced) reasons.append(el("li", { text: "眼睛看不清，眨眼已换成头部动作" }));
  box.replaceChildren(el("div", { class: "line" }, ...lines), reasons);
  $("id-frames").replaceChildren(...(r.evidence || []).map((e) => el("figure", {},
    el("img", { src: `/api/identity/${encodeURIComponent(r.verification_id)}/evidence/${e.index}`,
      alt: KINDS[e.kind] || e.kind, loading: "lazy" }),
    el("figcaption", { text: caption(e) }))));
  const needs = !view.second && !r.overridden && !r.override_by
    && (r.state === "aborted" || r.verdict === "人工复核" || r.verdict === "不通过");
  if (needs) openOverride(r); else $("id-override").hidden = true;
  if (r.id_number) fillNumber(r.id_number);
  else $("id-number").textContent = r.id_read_reason || "";
}

function fillNumber(number) {
  const input = $("case-id");
  view.cardNumber = number;
  if (input && !input.value) {
    input.value = number;
    input.dispatchEvent(new Event("input"));
  }
  compareNumber();
}

function compareNumber() {
  const out = $("id-number");
  if (!view.cardNumber || !out) return;
  const typed = ($("case-id")?.value || "").trim().toUpperCase();
  const same = !typed || typed === view.cardNumber;
  out.textContent = same ? `证件上的身份证号：${view.cardNumber}（已填入办件，请核对）`
    : `注意：填写的身份证号与证件上的 ${view.cardNumber} 不一致`;
  out.className = `hint ${same ? "good" : "bad"}`;
}

async function openOverride(attempt) {
  view.overrideFor = attempt;
  if (!view.reasons) {
    try { view.reasons = (await api("/api/identity/reasons")).reasons; } catch (err) { return; }
  }
  $("id-reason").replaceChildren(...view.reasons.map((r) => el("option", { value: r, text: r })));
  $("id-override").hidden = false;
}

async function override(ev) {
  ev.preventDefault();
  const reason = $("id-reason").value;
  const text = $("id-text").value.trim();
  if (text.length < 2) { $("id-number").textContent = "请写明人工核验的情况"; return; }
  const r = view.overrideFor;
  if (!r) {  // no attempt could finish: the case carries the clerk's reason instead
    view.manual = { reason, text };
    $("id-override").hidden = true;
    $("id-number").textContent = `已人工核验（${reason}），提交办件时一并记录`;
    return;
  }
  try {
    await api(`/api/identity/${encodeURIComponent(r.verification_id)}/override`,
      { method: "POST", body: { reason, text } });
    r.overridden = true;
    renderResult();
  } catch (err) { $("id-number").textContent = plain(err); }
}

async function start() {
  if (!view.call) return;
  $("id-start").disabled = true;
  try {
    await api(`/api/calls/${encodeURIComponent(view.call.call_id)}/identity`, { method: "POST", body: {} });
  } catch (err) {
    $("id-number").textContent = plain(err);
    $("id-start").disabled = false;
  }
}

async function restore(callId) {
  try {
    const { attempts } = await api(`/api/calls/${encodeURIComponent(callId)}/identity`);
    if (view.call?.call_id !== callId) return;
    view.attempts = attempts.filter((a) => a.state !== "running").map((a) => ({
      ...a, attempts_left: 3 - a.attempt, elapsed_s: a.timings?.total_s || 0,
      liveness: a.liveness, id_number: null, id_read_reason: "",
      thresholds: a.thresholds, overridden: Boolean(a.override_by) }));
    renderResult();
  } catch (err) { /* the panel still works from the live messages */ }
}

// --- what console.js calls ---------------------------------------------------------------

export const identity = {
  call(call) {
    const root = panel();
    root.hidden = !call;
    if (!call) return;
    if (view.call?.call_id !== call.call_id) {
      Object.assign(view, { call, attempts: [], step: null, manual: null, cardNumber: null });
      view.second = Boolean(call.second);
      renderSteps();
      renderResult();
      restore(call.call_id);
    }
  },
  message(msg) {
    if (!view.call || msg.call_id !== view.call.call_id) return;
    if (msg.type === "identity_step") view.step = msg;
    if (msg.type === "identity_result") {
      view.step = null;
      view.attempts = view.attempts.filter((a) => a.verification_id !== msg.verification_id);
      view.attempts.push(msg);
      renderResult();
    }
    renderSteps();
  },
  // The case's `verification`: the accepted attempt's id, else the latest (the server says
  // why it cannot take it), else the clerk's manual override.
  verification() {
    const ok = view.attempts.find((a) => a.verdict === "通过" || a.overridden || a.override_by);
    const pick = ok || latest();
    if (pick) return { verification_id: pick.verification_id };
    return view.manual ? { override: view.manual } : {};
  },
};
