// One peer connection to the media worker, WHIP-like: a complete offer in, the answer out.
// The m-line order is the contract with the worker (media/slots.py PLANS).

const GATHER_LIMIT_MS = 3000;

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

// lines: [{kind, track|null}] in the role's plan order; a null track means receive only.
// Returns {pc, remotes: [MediaStreamTrack per line]}.
export async function joinCall(media, lines, { onState = () => {} } = {}) {
  const pc = new RTCPeerConnection({
    iceServers: (media.ice_servers || []).map((s) => ({
      urls: s.urls, username: s.username || undefined, credential: s.credential || undefined,
    })),
  });
  const remotes = lines.map((line) => {
    const t = pc.addTransceiver(line.track || line.kind,
      { direction: line.track ? "sendrecv" : "recvonly" });
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
  await pc.setRemoteDescription({ type: "answer", sdp: data.sdp });
  return { pc, remotes };
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
