// 办事指南 QR code on the kiosk's materials screen: the applicant scans it with a phone and
// takes the list home. A separate module: it watches the kiosk's screen and chosen item
// (window.__kiosk.item), so kiosk.js is unchanged.

let shown = "";

function place(code) {
  let box = document.getElementById("guide-qr");
  if (!box) {
    box = document.createElement("figure");
    box.id = "guide-qr";
    box.style.cssText = "display:flex;align-items:center;gap:16px;margin:12px 0;font-size:24px";
    const img = document.createElement("img");
    img.width = 160;
    img.height = 160;
    img.alt = "办事指南二维码";
    const caption = document.createElement("figcaption");
    caption.textContent = "用手机扫一扫，把材料清单和办事指南带回家";
    box.append(img, caption);
    document.getElementById("materials")?.after(box);
  }
  box.querySelector("img").src = `/api/guide/${encodeURIComponent(code)}/qr.svg`;
  box.hidden = false;
}

new MutationObserver(() => {
  const code = window.__kiosk?.item?.code;
  if (document.body.dataset.screen === "materials" && code && code !== shown) {
    shown = code;
    place(code);
  } else if (document.body.dataset.screen !== "materials") {
    shown = "";
  }
}).observe(document.body, { attributes: true, attributeFilter: ["data-screen"] });
