// The kiosk's side of 「拍材料」: while the clerk's capture panel is open, the guidance in
// large words over the applicant's own document-camera preview (so they can aim it); when
// the worker asks for a page, a full-resolution still (ImageCapture.takePhoto, else the
// camera's frame drawn to a canvas at its own size) is uploaded with this kiosk's join
// token; a short sound and 「拍好了」 when the page is kept. Messages arrive as "kiosk-message".

const $ = (id) => document.getElementById(id);
const view = { open: false, busy: false };

function kiosk() { return window.__kiosk || {}; }

function build() {
  const screen = $("screen-call");
  if (!screen || $("doc-guide")) return;
  const box = document.createElement("div");
  box.id = "doc-guide";
  box.className = "doc-guide";
  box.hidden = true;
  box.innerHTML = '<video id="doc-preview" playsinline muted autoplay></video>'
    + '<canvas id="doc-preview-outline"></canvas>'
    + '<div id="doc-guide-words" class="doc-guide-words"></div>'
    + '<div id="doc-guide-done" class="doc-guide-done" hidden>拍好了</div>';
  screen.append(box);
}

function openGuide(msg) {
  build();
  const track = kiosk().local?.doc;
  if (!view.open && track) $("doc-preview").srcObject = new MediaStream([track]);
  view.open = true;
  $("doc-guide").hidden = false;
  $("doc-guide-words").textContent = msg.kiosk_words;
  $("doc-guide-words").className = `doc-guide-words ${msg.ready ? "good" : ""}`;
  window.__docWordsAt = Date.now() / 1000;
  window.__docWords = msg.kiosk_words;
  const canvas = $("doc-preview-outline"), video = $("doc-preview");
  canvas.width = video.clientWidth;
  canvas.height = video.clientHeight;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (msg.outline) {
    ctx.strokeStyle = msg.ready ? "#1a9c3c" : "#e08a00";
    ctx.lineWidth = 6;
    ctx.beginPath();
    for (let i = 0; i < 4; i += 1) {
      const x = msg.outline[i * 2] * canvas.width, y = msg.outline[i * 2 + 1] * canvas.height;
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    }
    ctx.closePath();
    ctx.stroke();
  }
}

function closeGuide() {
  view.open = false;
  if ($("doc-guide")) $("doc-guide").hidden = true;
}

async function still(track) {
  // A real still at the camera's full resolution where the browser can take one.
  if (window.ImageCapture) {
    try {
      const blob = await new ImageCapture(track).takePhoto();
      if (blob && blob.size) return { blob, full: true };
    } catch { /* fall back to the frame */ }
  }
  const video = $("doc-preview");
  const w = video.videoWidth, h = video.videoHeight;
  const caps = track.getCapabilities ? track.getCapabilities() : {};
  if (!w || (caps.width?.max && caps.width.max > w)) return { blob: null, full: false };
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  canvas.getContext("2d").drawImage(video, 0, 0, w, h);
  const blob = await new Promise((ok) => canvas.toBlob(ok, "image/jpeg", 0.92));
  // The frame is all this camera gives: the video size says so to the worker.
  return { blob, full: w >= 1920 || h >= 1080 };
}

async function takeStill(msg) {
  const m = kiosk().call?.media;
  const track = kiosk().local?.doc;
  if (!m || !track || view.busy) return;
  view.busy = true;
  const base = `${m.worker_url}/calls/${encodeURIComponent(m.call_id)}/documents`;
  const auth = { Authorization: `Bearer ${m.token}` };
  try {
    const shot = await still(track);
    const q = `?take_id=${encodeURIComponent(msg.take_id)}`;
    if (shot.blob && shot.full) {
      await fetch(`${base}/still${q}`, { method: "POST", body: shot.blob,
        headers: { ...auth, "Content-Type": shot.blob.type || "image/jpeg" } });
    } else {
      await fetch(`${base}/video-frame${q}`, { method: "POST", headers: auth });
    }
  } catch { $("doc-guide-words").textContent = "没有拍成，请工作人员再拍一次"; }
  finally { view.busy = false; }
}

function beep() {
  try {
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 880;
    gain.gain.value = 0.15;
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.15);
    osc.onended = () => ctx.close();
  } catch { /* no sound device: the words still say it */ }
}

function scanResult(msg) {
  if (!msg.accepted) { $("doc-guide-words").textContent = "请按工作人员的提示再拍一次"; return; }
  beep();
  const done = $("doc-guide-done");
  if (!done) return;
  done.hidden = false;
  window.__docDone = (window.__docDone || 0) + 1;
  setTimeout(() => { done.hidden = true; }, 1500);
}

window.addEventListener("kiosk-message", (ev) => {
  const msg = ev.detail;
  switch (msg.type) {
    case "doc_guidance": openGuide(msg); break;
    case "doc_take_still": takeStill(msg); break;
    case "doc_scan_result": scanResult(msg); break;
    case "doc_panel_closed": case "call_ended": closeGuide(); break;
    default: break;
  }
});
