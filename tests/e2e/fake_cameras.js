// Chromium's fake camera for the identity visit: two canvas cameras in place of the
// devices. The face camera shows a person who follows the kiosk's own challenge (the move
// its arrow asks for, played once out and back); the document camera shows the ID card.
// Frames come from the test as data URLs in window.__FAKE_FRAMES (set before this runs).
(() => {
  // Only pages that can have cameras (the init script also runs in about:blank).
  if (!navigator.mediaDevices || !window.__FAKE_FRAMES) return;
  const F = window.__FAKE_FRAMES;
  const load = (src) => { const img = new Image(); img.src = src; return img; };
  const neutral = F.neutral.map(load);
  const moves = Object.fromEntries(Object.entries(F.moves).map(([k, v]) => [k, v.map(load)]));
  const card = load(F.card);
  const state = { played: [], seen: [], queue: [], last: "", lastAt: 0, tick: 0 };
  window.__fakeCam = state;

  function canvas(w, h) {
    const c = document.createElement("canvas");
    c.width = w; c.height = h;
    return c;
  }
  const face = canvas(640, 480);
  const doc = canvas(1280, 720);
  // A camera exposes a white card below clipping; Chromium's canvas-to-video path would
  // otherwise push the synthetic card's paper white to 255 everywhere (read as glare).
  doc.getContext("2d").filter = "brightness(0.85)";

  function askedMove() {
    const overlay = document.getElementById("identity-overlay");
    const arrow = document.getElementById("id-arrow");
    if (!overlay || overlay.hidden || overlay.dataset.step !== "face" || !arrow) return "";
    return arrow.className.split(" ").find((c) => c in moves) || "";
  }

  function note() {  // every prompt and guidance line the kiosk showed, in order, once
    const words = ["id-prompt", "id-guidance"].map((id) => document.getElementById(id)?.textContent || "");
    for (const w of words) if (w && state.seen[state.seen.length - 1] !== w && !state.seen.includes(w)) state.seen.push(w);
  }

  setInterval(() => {
    note();
    const move = askedMove();
    // A person turns when asked, and tries again if the worker still asks after a while.
    if (move && !state.queue.length && (move !== state.last || Date.now() - state.lastAt > 3000)) {
      state.last = move; state.lastAt = Date.now(); state.played.push(move);
      state.queue = moves[move].flatMap((img) => [img, img, img]);
    }
    const img = state.queue.length ? state.queue.shift() : neutral[state.tick % neutral.length];
    if (img.complete) face.getContext("2d").drawImage(img, 0, 0, face.width, face.height);
    if (card.complete) doc.getContext("2d").drawImage(card, 0, 0, doc.width, doc.height);
    state.tick += 1;
  }, 40);

  const devices = [
    { deviceId: "fake-face", groupId: "fake-face", kind: "videoinput", label: "Fake face camera" },
    { deviceId: "fake-doc", groupId: "fake-doc", kind: "videoinput", label: "Fake document camera" },
  ];
  function track(id) {
    const t = (id === "fake-doc" ? doc : face).captureStream(25).getVideoTracks()[0];
    const settings = t.getSettings.bind(t);
    t.getSettings = () => ({ ...settings(), deviceId: id });
    return t;
  }
  const md = navigator.mediaDevices;
  const getUserMedia = md.getUserMedia.bind(md);
  const enumerate = md.enumerateDevices.bind(md);
  md.enumerateDevices = async () => [
    ...(await enumerate()).filter((d) => d.kind !== "videoinput"),
    ...devices.map((d) => ({ ...d, toJSON() { return d; } })),
  ];
  md.getUserMedia = async (constraints) => {
    const tracks = [];
    if (constraints.audio) tracks.push(...(await getUserMedia({ audio: constraints.audio })).getAudioTracks());
    if (constraints.video) {
      const v = constraints.video;
      const wanted = (v && v.deviceId && (v.deviceId.exact || v.deviceId)) || "fake-face";
      tracks.push(track(wanted));
    }
    return new MediaStream(tracks);
  };
})();
