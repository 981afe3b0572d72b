"""Everything a browser test needs, started inside the caller's (private) network namespace.

Private Redis and PostgreSQL (migrated, seeded), one signaling node and one media worker
as subprocesses, the fake camera y4m, and Chromium with the flags from DESIGN.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.migrate import allow_app_login, app_url, upgrade
from core.settings import ROOT
from testkit.demo import seed_demo
from testkit.localstack import LocalStackError, free_port, private_servers, wait_http

FACES = ROOT.parent / "shared" / "testdata" / "faces"
CHROMIUM = "/usr/bin/chromium"
TERMINAL_TOKEN = "demo-terminal-tzl-7f3a"  # testkit.demo DEMO_TERMINALS[0]
TERMINAL_ID = "T-420115-001"


class StackError(RuntimeError):
    """A part of the test stack did not come up."""


def in_private_netns() -> None:
    """Bring up loopback in a namespace made by `unshare -n` (only loopback exists)."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    links = subprocess.run(["ip", "-o", "link"], check=True, capture_output=True, text=True)
    names = [line.split(":")[1].strip() for line in links.stdout.splitlines()]
    if names != ["lo"]:
        raise StackError(f"not in a loopback-only network namespace: {names}")


def make_y4m(out: Path, width: int = 640, height: int = 480, frames: int = 30,
             fps: int = 15) -> Path:
    """A fake camera feed: a face photo drifting slowly, so every frame differs."""
    photo = Image.open(FACES / "obama.jpg").convert("RGB")
    photo.thumbnail((width - 80, height - 40))
    with out.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            canvas = Image.new("RGB", (width, height), (90, 110, 130))
            dx = int(20 * np.sin(2 * np.pi * i / frames))
            canvas.paste(photo, ((width - photo.width) // 2 + dx, (height - photo.height) // 2))
            y, u, v = canvas.convert("YCbCr").split()
            f.write(b"FRAME\n")
            f.write(np.asarray(y, dtype=np.uint8).tobytes())
            for plane in (u, v):
                small = plane.resize((width // 2, height // 2), Image.Resampling.BILINEAR)
                f.write(np.asarray(small, dtype=np.uint8).tobytes())
    return out


def chromium_args(y4m: Path) -> list[str]:
    return [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={y4m}",
        "--allow-loopback-in-peer-connection", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--autoplay-policy=no-user-gesture-required",
    ]


@dataclass
class Stack:
    base_url: str
    media_url: str
    storage_root: Path
    folder: Path
    offer_timeout_s: float
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]]

    def start(self, name: str) -> None:
        """Start (or restart) `python -m <name>` ("media" or "signaling") and wait for it."""
        old = self.procs.get(name)
        if old is not None:
            _stop(old)
        log = (self.folder / f"{name}.log").open("ab")
        proc = subprocess.Popen([sys.executable, "-m", name], cwd=ROOT, env=self.env,
                                stdout=log, stderr=subprocess.STDOUT)
        log.close()  # the child holds its own descriptor
        self.procs[name] = proc
        url = (f"{self.media_url}/health" if name == "media"
               else f"{self.base_url}/healthz")
        try:
            wait_http(url, 30, proc, name)
        except LocalStackError as exc:
            raise StackError(str(exc)) from exc

    def stop_all(self) -> None:
        for name in ("signaling", "media"):
            proc = self.procs.pop(name, None)
            if proc is not None:
                _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def running_stack(folder: Path, offer_timeout_s: float = 4.0) -> Iterator[Stack]:
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o755)
    for parent in folder.parents:
        if str(parent).startswith("/tmp/"):
            os.chmod(parent, 0o755)  # the postgres account must reach its data folder
    with private_servers(folder / "servers") as (redis, pg):
        upgrade(pg.url)
        asyncio.run(seed_demo(pg.url))
        allow_app_login(pg.url)  # the processes run as the least-privileged role
        port, media_port = free_port(), free_port()
        storage = folder / "storage"
        env = {
            **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")},
            "REDIS_URL": redis.url, "DATABASE_URL": app_url(pg.url), "LISTEN_HOST": "127.0.0.1",
            "LISTEN_PORT": str(port), "STORAGE_ROOT": str(storage),
            "MEDIA_LISTEN_HOST": "127.0.0.1", "MEDIA_LISTEN_PORT": str(media_port),
            "MEDIA_ICE_HOSTS": "127.0.0.1", "MEDIA_SEGMENT_S": "2", "MEDIA_GRACE_S": "15",
            "OFFER_TIMEOUT_S": str(offer_timeout_s), "WRAPUP_S": "60",
            "SESSION_SECRET": "e2e-session", "JOIN_TOKEN_SECRET": "e2e-join",
            "ESEAL_KEY_DIR": str(folder / "eseal"), "EVIDENCE_KEY_DIR": str(folder / "evidence"),
            "PYTHONUNBUFFERED": "1", "RUN_MODE": "local", "PII_KEY_FILE": str(folder / "pii.key"),
        }
        stack = Stack(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{media_port}", storage,
                      folder, offer_timeout_s, env, {})
        try:
            stack.start("media")
            stack.start("signaling")
            yield stack
        finally:
            stack.stop_all()


def scenario_main(run: Callable[[Path, dict[str, Any]], None]) -> int:
    """`python -m tests.e2e.NAME --out DIR`: `run(out, result)` in this process's private
    network namespace, then DIR/result.json for the pytest side: what the scenario saw
    (filled in as it goes), `ok`, or the error and its trace."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    out: Path = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"ok": False}
    started = time.monotonic()
    try:
        in_private_netns()
        run(out, result)
        result["ok"] = True
    except Exception as exc:  # the pytest side shows this message
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["trace"] = traceback.format_exc()
        print(result["error"], file=sys.stderr)
    result["wall_s"] = round(time.monotonic() - started, 1)
    (out / "result.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))
    return 0 if result["ok"] else 1
