// Camera set-up at enrolment: which camera films the face and which the papers, chosen by
// device label with a live preview of each, kept in this kiosk's storage across reboots
// ("vw.face_camera" / "vw.doc_camera", the labels kiosk.js already reads). Shown right
// after the kiosk is enrolled, or with ?setup=cameras. A separate module: kiosk.js is
// unchanged.

let streams = [];
let lastScreen = document.body?.dataset.screen || "";

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...kids);
  return e;
}

function stopAll() {
  for (const s of streams) for (const t of s.getTracks()) t.stop();
  streams = [];
}

async function open() {
  if (document.getElementById("camera-setup")) return;
  const css = "position:fixed;inset:0;z-index:60;background:#fff;overflow:auto;padding:24px;font-size:24px";
  const box = el("section", { id: "camera-setup", role: "dialog", "aria-label": "摄像头设置", style: css },
    el("h1", {}, "摄像头设置"), el("p", {}, "请选择对着人脸的摄像头和对着桌面材料的摄像头。"));
  document.body.append(box);
  let cams = [];
  try {
    streams.push(await navigator.mediaDevices.getUserMedia({ video: true }));  // labels need a grant
    cams = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
  } catch {
    box.append(el("p", { class: "error-text" }, "摄像头打不开，请检查连接后再试"));
  }
  stopAll();
  const grid = el("div", { style: "display:flex;flex-wrap:wrap;gap:16px" });
  for (const cam of cams) {
    const video = el("video", { autoplay: "", muted: "", playsinline: "", width: "320", height: "240",
      "data-label": cam.label });
    video.muted = true;
    grid.append(el("figure", { style: "margin:0" }, video, el("figcaption", {}, cam.label || "摄像头")));
    navigator.mediaDevices.getUserMedia({ video: { deviceId: { exact: cam.deviceId } } })
      .then((s) => { streams.push(s); video.srcObject = s; })
      .catch(() => { video.replaceWith(el("p", {}, "（这个摄像头打不开）")); });
  }
  const choice = (id, words, pick) => {
    const sel = el("select", { id, style: "font-size:24px" }, ...cams.map((c) => el("option", { value: c.label }, c.label || "摄像头")));
    const saved = localStorage.getItem(`vw.${id === "face-camera" ? "face_camera" : "doc_camera"}`);
    sel.value = saved && cams.some((c) => c.label === saved) ? saved : (cams[pick] || cams[0])?.label || "";
    return [el("label", { style: "display:block;margin:12px 0" }, words, sel), sel];
  };
  const [faceLabel, face] = choice("face-camera", "人脸摄像头：", 0);
  const [docLabel, doc] = choice("doc-camera", "材料摄像头：", 1);
  const save = el("button", { id: "camera-save", class: "btn primary", type: "button" }, "保存");
  save.addEventListener("click", () => {
    localStorage.setItem("vw.face_camera", face.value);
    localStorage.setItem("vw.doc_camera", doc.value);
    stopAll();
    box.remove();
  });
  box.append(grid, faceLabel, docLabel, save);
}

// Right after enrolment: the kiosk leaves its login screen for the start screen.
new MutationObserver(() => {
  const screen = document.body.dataset.screen;
  if (lastScreen === "login" && screen === "start") open();
  lastScreen = screen;
}).observe(document.body, { attributes: true, attributeFilter: ["data-screen"] });
if (new URLSearchParams(location.search).get("setup") === "cameras") open();
