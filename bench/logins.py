"""A burst of wrong logins against one signaling node: does the event loop keep running?

Argon2id costs tens of milliseconds of CPU per check; on the event loop a burst of them
stalled every websocket of the node. Now the checks run in threads (bounded) and the
burst is throttled. This starts a private Redis and PostgreSQL, one app in-process, fires
`--burst` concurrent wrong logins (distinct usernames, several client addresses would
only help the attacker less) and measures the loop's largest stall with a 10 ms ticker.

    .venv/bin/python bench/logins.py --burst 40
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from core.migrate import upgrade
from core.settings import Settings
from signaling.app import create_app
from testkit.demo import seed_demo
from testkit.localstack import private_servers

TICK_S = 0.01


async def run(burst: int, redis_url: str, pg_url: str, folder: Path) -> dict[str, float]:
    settings = replace(Settings.from_env({}), redis_url=redis_url, database_url=pg_url,
                       port=0, run_mode="local", pii_key_file=folder / "pii.key",
                       storage_root=folder / "storage", eseal_key_dir=folder / "eseal")
    server = TestServer(create_app(settings))
    await server.start_server()
    stalls: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(TICK_S)
            now = time.perf_counter()
            stalls.append(now - last - TICK_S)
            last = now

    tick = asyncio.create_task(ticker())
    statuses: dict[int, int] = {}
    async with ClientSession(base_url=str(server.make_url("/"))) as http:
        async def attempt(i: int) -> None:
            resp = await http.post("/api/login", json={"username": f"guess{i}",
                                                       "password": "wrong-password"})
            statuses[resp.status] = statuses.get(resp.status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*[attempt(i) for i in range(burst)])
        took = time.perf_counter() - started
    stop.set()
    await tick
    await server.close()
    stalls.sort()
    print(f"{burst} wrong logins in {took:.2f} s; answers {statuses}")
    print(f"event loop stall: max {max(stalls) * 1000:.0f} ms, "
          f"p99 {stalls[int(len(stalls) * 0.99)] * 1000:.0f} ms over {len(stalls)} ticks")
    return {"burst": burst, "seconds": round(took, 2), "locked": statuses.get(429, 0),
            "refused": statuses.get(401, 0), "stall_max_ms": round(max(stalls) * 1000, 1),
            "stall_p99_ms": round(stalls[int(len(stalls) * 0.99)] * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-logins-") as tmp:
        folder = Path(tmp)
        os.chmod(folder, 0o755)
        with private_servers(folder / "stack") as (redis, pg):
            upgrade(pg.url)
            asyncio.run(seed_demo(pg.url))
            result = asyncio.run(run(args.burst, redis.url, pg.url, folder))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
