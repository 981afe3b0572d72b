// Reviewer desk: the case's identity check as a small block — verdict, distance and the
// thresholds, the card portrait beside the live frames, the liveness moves, and any
// override with its reason and who decided. The record is read from the server.

const MOVES = { left: "向左转头", right: "向右转头", nod: "点头", blink: "眨眼" };
const KINDS = { card: "证件", portrait: "证件照片", live: "现场画面" };

function el(tag, text = "", cls = "") {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

export async function showVerification(box, verification) {
  box.replaceChildren();
  const v = verification || {};
  const decision = v.decision || (v.verdict ? v.verdict : "无核验记录");
  const head = el("p");
  head.append(el("span", decision, `verdict ${decision === "通过" ? "pass" : decision === "人工核验" ? "manual" : "review"}`));
  if (v.override) {
    head.append(` 人工核验：${v.override.reason}（${v.override.by}）— ${v.override.text}`);
  }
  if (v.id_number_matches_card === false) head.append(el("span", " 注意：填写的身份证号与证件不一致", "bad"));
  box.append(head);
  if (!v.verification_id) return;
  let r;
  try {
    const resp = await fetch(`/api/identity/${encodeURIComponent(v.verification_id)}`, { credentials: "same-origin" });
    if (!resp.ok) { box.append(el("p", "核验记录暂时无法读取")); return; }
    r = await resp.json();
  } catch { box.append(el("p", "核验记录暂时无法读取")); return; }
  const th = r.thresholds || {};
  const facts = el("ul");
  facts.append(el("li", `机器结论：${r.verdict || "未完成"}（第 ${r.attempt} 次核验）`));
  if (r.distance != null) {
    facts.append(el("li", `人脸距离 ${Number(r.distance).toFixed(3)}；通过 < ${th.pass_below}，不通过 > ${th.fail_above}（小照片 ${th.small_portrait_fail_above}）；模型 ${r.model_version}`));
  }
  const moves = (r.challenge || []).map((m) => MOVES[m] || m).join("、");
  if (moves) facts.append(el("li", `活体动作：${moves} — ${r.liveness?.reason || ""}`));
  if (r.liveness?.blink_replaced) facts.append(el("li", "眼睛看不清，眨眼已换成头部动作"));
  for (const reason of r.reasons || []) facts.append(el("li", reason));
  box.append(facts);
  const frames = el("div", "", "id-frames");
  for (const e of r.evidence || []) {
    const fig = el("figure");
    const img = el("img");
    img.src = `/api/identity/${encodeURIComponent(r.verification_id)}/evidence/${e.index}`;
    img.alt = KINDS[e.kind] || e.kind;
    img.style.height = "110px";
    fig.append(img, el("figcaption", `${KINDS[e.kind] || e.kind}${e.scan_id ? "（取自扫描件）" : ""}`));
    frames.append(fig);
  }
  box.append(frames);
}
