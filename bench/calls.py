"""Benchmark: N concurrent two-party calls on one media worker process, recording on.

Starts private Redis + PostgreSQL, one worker (`python -m media`) and, per call, one peer
process holding that call's terminal (two 640x480 30 fps VP8 videos at 800 kbit/s + Opus
audio) and clerk (one video + audio). The peers replay pre-encoded clips whose frames carry
their index in the top rows; the peer process notes when it sent each index and measures
frame latency on one clock. With two or more cores the worker runs alone on CPU 0 and
everything else on the others, so "calls per core" is the worker's own. Reports per N:
worker CPU per call, delivered fps per video track, latency, recording fps and drops; the
largest N per worker core at which every track keeps >= 25 fps and the recording >= 15
fps. Last line: JSON.

    .venv/bin/python bench/calls.py --calls 1,2,3,4 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import fractions
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # type: ignore[import-untyped]  # noqa: E402

from core.jointoken import JoinClaims, JoinRole, mint  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from testkit.localstack import free_port, private_servers, wait_http  # noqa: E402

SECRET = "bench-join-secret"
WIDTH, HEIGHT, FPS = 640, 480, 30
CLIP_FRAMES, KEY_EVERY = 60, 30  # a 2 s loop with a key frame each second
BITRATE = 800_000  # a webcam picture at the browser's usual rate, not a tiny solid colour
BITS, BLOCK, CODE_ROWS = 6, 48, 32  # the frame's index in the loop, in big blocks on top


# --- peer process --------------------------------------------------------------------


def _encode_clip(seed: int) -> list[bytes]:
    """A 2 s loop of 640x480 VP8: moving texture, the frame index drawn on top.

    The peers send these encoded frames as they are, as a browser sends what its hardware
    or encoder made: the peer processes then cost little CPU, so what the bench measures
    is the worker, not the peers' encoders competing for the same two cores.
    """
    import av
    import cv2

    rng = np.random.default_rng(seed)
    # Blobs and edges at several scales, like a room behind a face, panning 8 px a frame.
    noise = rng.integers(0, 256, (HEIGHT, WIDTH * 2), dtype=np.uint8)
    texture = np.asarray(cv2.GaussianBlur(noise, (0, 0), 1.2) * 0.8
                         + cv2.GaussianBlur(noise, (0, 0), 12) * 2.0 - 128, dtype=np.float32)
    texture = np.clip(texture, 0, 255).astype(np.uint8)
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    codec.bit_rate = BITRATE
    codec.qmin, codec.qmax = 2, 56  # as aiortc's and the browsers' real-time encoders
    codec.gop_size = KEY_EVERY
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0",
                     "minrate": str(BITRATE), "maxrate": str(BITRATE),
                     "bufsize": str(BITRATE)}
    out: list[bytes] = []
    for n in range(CLIP_FRAMES):
        plane = np.full((HEIGHT * 3 // 2, WIDTH), 128, dtype=np.uint8)
        plane[:HEIGHT] = texture[:, n * 8 : n * 8 + WIDTH]
        for bit in range(BITS):
            plane[:CODE_ROWS, bit * BLOCK : (bit + 1) * BLOCK] = 255 if n >> bit & 1 else 0
        frame = av.VideoFrame.from_ndarray(plane, format="yuv420p")
        frame.pts = n
        frame.pict_type = (av.video.frame.PictureType.I if n % KEY_EVERY == 0
                           else av.video.frame.PictureType.NONE)
        out.append(b"".join(bytes(p) for p in codec.encode(frame)))
    return out


def _peer_tracks() -> tuple[Any, Any]:
    from aiortc import MediaStreamTrack
    from av.packet import Packet

    class ClipVideo(MediaStreamTrack):
        """Paced 30 fps replay of an encoded clip; notes when each index was sent."""

        kind = "video"

        def __init__(self, clip: list[bytes]) -> None:
            super().__init__()
            self._clip = clip
            self._start: float | None = None
            self._n = 0
            self.sent_at = [0.0] * len(clip)

        async def recv(self) -> Packet[Any]:
            if self._start is None:
                self._start = time.time()
            await asyncio.sleep(max(0.0, self._start + self._n / FPS - time.time()))
            index = self._n % len(self._clip)
            packet = Packet(self._clip[index])
            packet.pts = self._n * 90000 // FPS
            packet.time_base = fractions.Fraction(1, 90000)
            self.sent_at[index] = time.time()
            self._n += 1
            return packet

    from tests.media.peers import ToneTrack  # the same paced sine tone the tests send

    return ClipVideo, ToneTrack


def _decode_index(frame: Any) -> int:
    y = frame.to_ndarray(format="gray")[:CODE_ROWS, : BITS * BLOCK]
    centres = y[CODE_ROWS // 2, BLOCK // 2 :: BLOCK][:BITS]
    return int(sum(1 << i for i, v in enumerate(centres) if v > 128))


def _write_clips(path: Path) -> None:
    """Encode the three clips once, for every peer process to read."""
    clips = [[base64.b64encode(f).decode("ascii") for f in _encode_clip(seed)]
             for seed in range(3)]
    path.write_text(json.dumps(clips))


def _read_clips(path: Path) -> list[list[bytes]]:
    return [[base64.b64decode(f) for f in clip] for clip in json.loads(path.read_text())]


async def _peer_main(url: str, call_id: str, seconds: float, warmup: float,
                     clips_path: Path) -> dict[str, Any]:
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError

    from media.ice import announce_host_addresses, rtc_configuration

    announce_host_addresses(["127.0.0.1"])
    clip_video, tone = _peer_tracks()
    clips = _read_clips(clips_path)
    sources: dict[str, Any] = {}  # receiving track name -> the sending track
    measure_from = time.time() + warmup
    stats: dict[str, dict[str, Any]] = {}

    async def collect(name: str, track: Any) -> None:
        s = stats.setdefault(name, {"frames": 0, "latency_ms": []})
        try:
            while True:
                frame = await track.recv()
                now = time.time()
                if now < measure_from:
                    continue
                s["frames"] += 1
                if track.kind == "video" and s["frames"] % 3 == 0:
                    index = _decode_index(frame)
                    if index < CLIP_FRAMES:
                        lag = (now - sources[name].sent_at[index]) * 1000
                        if 0 <= lag < 2000:  # within the loop: the latest send of it
                            s["latency_ms"].append(lag)
        except MediaStreamError:
            pass

    async def join(role: JoinRole, lines: list[tuple[str, Any, bool]], names: list[str]) -> Any:
        pc = RTCPeerConnection(rtc_configuration([]))
        for kind, track, receive in lines:
            direction = ("sendrecv" if receive else "sendonly") if track else "recvonly"
            pc.addTransceiver(track or kind, direction=direction)
        await pc.setLocalDescription(await pc.createOffer())
        token = mint(SECRET, JoinClaims(call_id, f"{role}-{call_id}", role, time.time() + 600))
        async with aiohttp.ClientSession() as http, http.post(
            f"{url}/calls/{call_id}/join", json={"token": token, "sdp": pc.localDescription.sdp}
        ) as resp:
            body = await resp.json()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="answer"))
        for transceiver, name in zip(pc.getTransceivers(), names, strict=True):
            if name:
                tasks.append(asyncio.create_task(collect(name, transceiver.receiver.track)))
        return pc

    tasks: list[asyncio.Task[None]] = []
    face, document, camera = (clip_video(clip) for clip in clips)
    sources.update({"clerk<-terminal.face": face, "clerk<-terminal.document": document,
                    "terminal<-clerk.camera": camera})
    terminal = await join("terminal", [("video", face, True), ("video", document, False),
                                       ("audio", tone(440), True)],
                          ["terminal<-clerk.camera", "", "terminal<-clerk.mic"])
    clerk = await join("clerk", [("video", camera, True), ("video", None, True),
                                 ("audio", tone(1000), True)],
                       ["clerk<-terminal.face", "clerk<-terminal.document",
                        "clerk<-terminal.mic"])
    await asyncio.sleep(warmup + seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await terminal.close()
    await clerk.close()
    return {
        name: {"fps": round(s["frames"] / seconds, 2),
               "latency_ms_p50": statistics.median(s["latency_ms"]) if s["latency_ms"] else None,
               "latency_ms_p95": (sorted(s["latency_ms"])[int(len(s["latency_ms"]) * 0.95)]
                                  if s["latency_ms"] else None)}
        for name, s in stats.items()
    }


# --- driver --------------------------------------------------------------------------


async def _get_health(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/health") as resp:
        body: dict[str, Any] = await resp.json()
        return body


async def _stop(url: str, call_id: str) -> None:
    token = mint(SECRET, JoinClaims(call_id, "bench", "control", time.time() + 60))
    async with aiohttp.ClientSession() as http, http.post(
        f"{url}/calls/{call_id}/stop", headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        await resp.read()


async def _run_n(url: str, worker: Any, n: int, seconds: float, warmup: float,
                 clips: Path) -> dict[str, Any]:
    call_ids = [f"bench-{n}-{i}-{int(time.time())}" for i in range(n)]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--peer", url, call_id, str(seconds), str(warmup),
            str(clips), stdout=subprocess.PIPE, cwd=str(ROOT))
        for call_id in call_ids
    ]
    peers = [psutil.Process(p.pid) for p in procs]
    await asyncio.sleep(warmup + 1.0)
    cpu0, t0 = worker.cpu_times(), time.monotonic()
    peers0 = sum(sum(p.cpu_times()[:2]) for p in peers)
    health0 = await _get_health(url)
    await asyncio.sleep(seconds - 2.0)
    cpu1, t1 = worker.cpu_times(), time.monotonic()
    peers1 = sum(sum(p.cpu_times()[:2]) for p in peers)
    health1 = await _get_health(url)
    outputs = [await p.communicate() for p in procs]
    for call_id in call_ids:
        await _stop(url, call_id)
    cpu_s = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    span = t1 - t0
    tracks: dict[str, Any] = {}
    for call_id, (out, _) in zip(call_ids, outputs, strict=True):
        lines = out.decode().strip().splitlines()
        tracks[call_id] = json.loads(lines[-1]) if lines else {}
    video = [t for per in tracks.values() for name, t in per.items() if "mic" not in name]
    rec_fps, drops = [], 0
    for call_id in call_ids:
        r0 = health0["calls_detail"].get(call_id, {}).get("recording") or {}
        r1 = health1["calls_detail"].get(call_id, {}).get("recording") or {}
        rec_fps.append((r1.get("frames_written", 0) - r0.get("frames_written", 0)) / span)
        drops += r1.get("frames_dropped", 0) - r0.get("frames_dropped", 0)
    threads0, threads1 = health0.get("cpu_by_thread", {}), health1.get("cpu_by_thread", {})
    # Where the worker's CPU goes, as a fraction of one core per call, by kind of thread.
    where = {name: round((spent - threads0.get(name, 0.0)) / span / n, 3)
             for name, spent in sorted(threads1.items())
             if spent - threads0.get(name, 0.0) > 0.005 * span}
    lat = [t["latency_ms_p50"] for t in video if t["latency_ms_p50"] is not None]
    lat95 = [t["latency_ms_p95"] for t in video if t["latency_ms_p95"] is not None]
    return {
        "calls": n,
        "worker_cpu_per_call": round(cpu_s / span / n, 3),  # fraction of one core
        "worker_cpu_total": round(cpu_s / span, 3),
        "peers_cpu_total": round((peers1 - peers0) / span, 3),  # on the other cores
        "worker_cpu_per_call_by_thread": where,
        "video_fps_min": min((t["fps"] for t in video), default=0.0),
        "video_fps_mean": round(statistics.mean(t["fps"] for t in video), 2) if video else 0.0,
        "video_tracks": len(video),
        "latency_ms_p50": statistics.median(lat) if lat else None,
        "latency_ms_p95_max": max(lat95) if lat95 else None,
        "recording_fps_min": round(min(rec_fps), 2) if rec_fps else 0.0,
        "recording_frames_dropped": drops,
    }


def _driver(ns: list[int], seconds: float, warmup: float, record: bool,
            pin: bool) -> dict[str, Any]:
    cores = psutil.cpu_count() or 1
    worker_cpus: set[int] | None = None
    if pin:
        # The worker alone on CPU 0; this driver, its peers, Redis and PostgreSQL on the rest.
        worker_cpus = {0}
        os.sched_setaffinity(0, set(range(1, cores)))
    with tempfile.TemporaryDirectory(prefix="bench-calls-") as tmp:
        folder = Path(tmp)
        os.chmod(folder, 0o755)
        with private_servers(folder / "stack") as (redis, pg):
            upgrade(pg.url)
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            env = {**os.environ, "REDIS_URL": redis.url, "DATABASE_URL": pg.url,
                   "STORAGE_ROOT": str(folder / "storage"), "MEDIA_LISTEN_PORT": str(port),
                   "MEDIA_ICE_HOSTS": "127.0.0.1", "JOIN_TOKEN_SECRET": SECRET,
                   "MEDIA_CAPACITY": "64", "MEDIA_RECORD": "true" if record else "false",
                   "RUN_MODE": "local"}
            with (folder / "worker.log").open("wb") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "media"], cwd=ROOT, env=env, stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=(lambda: os.sched_setaffinity(0, worker_cpus))
                    if worker_cpus else None)
                try:
                    _write_clips(folder / "clips.json")
                    rows = asyncio.run(_measure(url, psutil.Process(proc.pid), ns, seconds,
                                                warmup, folder / "clips.json"))
                finally:
                    proc.terminate()
                    proc.wait(20)
    # 15 fps within measurement noise for the recording.
    ok = [r["calls"] for r in rows
          if r["video_fps_min"] >= 25 and (r["recording_fps_min"] >= 14.5 or not record)]
    best = max(ok, default=0)
    best_row = next((r for r in rows if r["calls"] == best), None)
    # Peers share this machine here; calls per core of worker CPU is the worker's own figure.
    per_worker_core = (round(1 / best_row["worker_cpu_per_call"], 2)
                       if best_row and best_row["worker_cpu_per_call"] > 0 else 0.0)
    worker_cores = len(worker_cpus) if worker_cpus else cores
    return {"bench": "calls", "cores": cores, "worker_cores": worker_cores,
            "worker_pinned": bool(worker_cpus), "seconds": seconds, "recording": record,
            "calls_per_worker_core": per_worker_core, "rows": rows,
            "max_calls_ok": best, "max_calls_per_core": round(best / worker_cores, 2)}


async def _measure(url: str, worker: Any, ns: list[int], seconds: float,
                   warmup: float, clips: Path) -> list[dict[str, Any]]:
    await asyncio.to_thread(wait_http, f"{url}/health", 30)
    rows = []
    for n in ns:
        row = await _run_n(url, worker, n, seconds, warmup, clips)
        rows.append(row)
        print(json.dumps(row), flush=True)
        await asyncio.sleep(1.0)
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--peer":
        url, call_id, seconds, warmup = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
        print(json.dumps(asyncio.run(_peer_main(url, call_id, float(seconds), float(warmup),
                                                Path(sys.argv[6])))))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", default="1,2,3", help="comma-separated N values")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per N")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--no-record", action="store_true", help="recording off (its cost)")
    parser.add_argument("--no-pin", action="store_true",
                        help="let the worker share every core with the peers")
    args = parser.parse_args()
    ns = [int(x) for x in args.calls.split(",") if x]
    pin = not args.no_pin and (psutil.cpu_count() or 1) >= 2
    result = _driver(ns, args.seconds, args.warmup, not args.no_record, pin)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
