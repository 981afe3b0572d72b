// One peer connection to the media worker, WHIP-like: a complete offer in, the answer out.
// The m-line order is the contract with the worker (media/slots.py PLANS).

const GATHER_LIMIT_MS = 3000;
// The browser never sends video below this, nor starts lower: after a cut link or a
// sudden delay its bandwidth estimate would otherwise fall to ~30 kbit/s and take tens of
// seconds to climb back (the worker's congestion feedback is REMB, not transport-cc).
const VIDEO_MIN_KBPS = 150;
const VIDEO_START_KBPS = 500;

// Chromium takes its sending limits from the remote description's fmtp of the codec.
export function withBitrateFloor(sdp) {
  const out = [];
  const video = new Set();
  for (const line of sdp.split("\r\n")) {
    const m = /^a=rtpmap:(\d+) (VP8|VP9|H264)\//i.exec(line);
    if (m) video.add(m[1]);
  }
  const hints = `x-google-min-bitrate=${VIDEO_MIN_KBPS};x-google-start-bitrate=${VIDEO_START_KBPS}`;
  for (const line of sdp.split("\r\n")) {
    const f = /^a=fmtp:(\d+) (.*)$/.exec(line);
    if (f && video.has(f[1]) && !f[2].includes("x-google-min-bitrate")) {
      out.push(`a=fmtp:${f[1]} ${f[2]};${hints}`);
      continue;
    }
    out.push(line);
    const r = /^a=rtpmap:(\d+) /.exec(line);
    if (r && video.has(r[1]) && !sdp.includes(`a=fmtp:${r[1]} `)) {
      out.push(`a=fmtp:${r[1]} ${hints}`);
    }
  }
  return out.join("\r\n");
}

function iceComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
    };
    const timer = setTimeout(resolve, GATHER_LIMIT_MS);
    pc.addEventListener("icegatheringstatechange", done);
  });
}

// lines: [{kind, track|null, priority?}] in the role's plan order; a null track means
// receive only. `priority` "high" / "low" tells the browser what to keep on a weak link
// (the face over the document camera); video keeps its frame rate and gives up resolution.
// Returns {pc, remotes: [MediaStreamTrack per line]}.
export async function joinCall(media, lines, { onState = () => {} } = {}) {
  const pc = new RTCPeerConnection({
    iceServers: (media.ice_servers || []).map((s) => ({
      urls: s.urls, username: s.username || undefined, credential: s.credential || undefined,
    })),
  });
  const remotes = lines.map((line) => {
    const encodings = line.track && line.priority
      ? [{ priority: line.priority, networkPriority: line.priority }] : undefined;
    const t = pc.addTransceiver(line.track || line.kind,
      { direction: line.track ? "sendrecv" : "recvonly", sendEncodings: encodings });
    if (line.track?.kind === "video") line.track.contentHint = line.hint || "motion";
    return t.receiver.track;
  });
  pc.addEventListener("connectionstatechange", () => onState(pc.connectionState));
  await pc.setLocalDescription(await pc.createOffer());
  await iceComplete(pc);
  let resp;
  try {
    resp = await fetch(`${media.worker_url}/calls/${encodeURIComponent(media.call_id)}/join`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: media.token, sdp: pc.localDescription.sdp }),
    });
  } catch {
    pc.close();
    throw new Error("视频服务连接不上");
  }
  const data = await resp.json().catch(() => null);
  if (!resp.ok || !data?.sdp) {
    pc.close();
    throw new Error(data?.error?.message || "视频服务暂时不可用");
  }
  await pc.setRemoteDescription({ type: "answer", sdp: withBitrateFloor(data.sdp) });
  return { pc, remotes };
}

// Calls onLost once when the media connection failed, or stayed "disconnected" for lostMs
// (a cut link: browsers wait ~30 s before "failed"; a rejoin is quicker than that wait).
export function whenLost(pc, onLost, lostMs = 4000) {
  let timer = 0;
  let done = false;
  const lost = () => { if (!done) { done = true; onLost(); } };
  pc.addEventListener("connectionstatechange", () => {
    clearTimeout(timer);
    if (pc.connectionState === "failed") lost();
    else if (pc.connectionState === "disconnected") timer = setTimeout(lost, lostMs);
  });
}

export async function leaveCall(media) {
  try {
    await fetch(`${media.worker_url}/calls/${encodeURIComponent(media.call_id)}/leave`, {
      method: "POST", headers: { Authorization: `Bearer ${media.token}` },
    });
  } catch { /* the worker ends the call on its own after its grace period */ }
}

// Shows a track in a <video> and counts decoded frames (tests and the benchmark read them).
export function showTrack(video, track, name) {
  video.srcObject = track ? new MediaStream([track]) : null;
  video.muted = true;
  video.play().catch(() => {});
  const stats = (window.__frames ||= {});
  const firstAt = (window.__firstFrameAt ||= {});
  stats[name] = 0;
  delete firstAt[name];
  const generation = (video.__generation = (video.__generation || 0) + 1);
  if (!("requestVideoFrameCallback" in video)) return;
  const tick = () => {
    if (video.__generation !== generation) return;
    stats[name] += 1;
    if (!(name in firstAt)) firstAt[name] = Date.now();
    video.requestVideoFrameCallback(tick);
  };
  video.requestVideoFrameCallback(tick);
}

// Remote audio plays from a separate element so videos can stay muted (autoplay rules).
export function playAudio(audio, track) {
  audio.srcObject = new MediaStream([track]);
  audio.play().catch(() => {});
}
