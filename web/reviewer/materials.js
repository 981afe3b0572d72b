// The reviewer's materials block: each material of the case with its flattened pages
// (watermarked for this viewer by the server, zoomable), and one PDF of all of them.
// Images are fetched with the session cookie and shown as blob URLs (CSP stays 'self').

const $ = (sel) => document.querySelector(sel);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};

function block() {
  let box = $("#d-pages");
  if (box) return box;
  const scans = $("#d-scans");
  if (!scans) return null;
  box = el("div", { id: "d-pages", className: "pages" });
  scans.before(el("h3", { textContent: "材料页面" }), box);
  return box;
}

async function image(url) {
  const resp = await fetch(url, { credentials: "same-origin" });
  if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
  return URL.createObjectURL(await resp.blob());
}

function zoom(img) {
  img.classList.toggle("zoomed");
}

async function show(caseNo) {
  const box = block();
  if (!box) return;
  box.replaceChildren(el("p", { className: "muted", textContent: "正在载入材料……" }));
  const base = `/api/cases/${encodeURIComponent(caseNo)}/materials`;
  let listed;
  try {
    const resp = await fetch(base, { credentials: "same-origin" });
    listed = await resp.json();
    if (!resp.ok) throw new Error(listed.error?.message || `HTTP ${resp.status}`);
  } catch (err) {
    box.replaceChildren(el("p", { className: "muted", textContent: `材料载入失败：${err.message}` }));
    return;
  }
  if (!listed.materials.length) {
    box.replaceChildren(el("p", { className: "muted", textContent: "没有扫描的材料" }));
    return;
  }
  const pdf = el("a", { href: `${base}.pdf`, target: "_blank", rel: "noopener", className: "pdf",
    textContent: "全部材料 PDF" });
  const parts = [pdf];
  for (const m of listed.materials) {
    const pages = el("div", { className: "material-pages" });
    parts.push(el("h4", { textContent: `${m.name}（${m.pages.length} 页）` }), pages);
    for (const p of m.pages) {
      const img = el("img", { alt: `${m.name} 第 ${p.page} 页`, className: "page", title: "点击放大" });
      img.addEventListener("click", () => zoom(img));
      const note = `第 ${p.page} 页 · ${p.flat_width}×${p.flat_height}${p.from_video ? " · 取自视频" : ""}`
        + `${p.reused_from ? " · 重复使用" : ""}`;
      pages.append(el("figure", {}, img, el("figcaption", { textContent: note })));
      image(`${base}/${encodeURIComponent(p.scan_id)}`).then((u) => { img.src = u; })
        .catch(() => { img.alt = "页面载入失败"; });
    }
  }
  box.replaceChildren(...parts);
  window.__reviewerPages = listed.materials.reduce((n, m) => n + m.pages.length, 0);
}

window.addEventListener("case-opened", (ev) => { show(ev.detail); });
