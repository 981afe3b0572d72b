"""`python -m approval`: the approval worker process.

Runs the periodic sweep and the evidence jobs (daily retention, signed audit checkpoints;
`approval.evidence_jobs`); with `--auto GROUP,...` also runs automated reviewer consumers
(demo and bench). On SIGTERM it stops cleanly and prints its figures as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

import redis.asyncio as aioredis

from approval.evidence_jobs import evidence_forever
from approval.store import make_store
from approval.worker import AutoReviewer, sweep_forever
from core import records
from core.hardening import refuse_unsafe
from core.logs import setup_logging
from core.settings import Settings


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m approval")
    parser.add_argument("--auto", default="", help="review groups served by automated "
                        "reviewers (comma-separated); empty: none")
    parser.add_argument("--name", default="", help="consumer name of the automated reviewer")
    parser.add_argument("--consumers", type=int, default=1)
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--no-evidence", action="store_true",
                        help="run neither the daily retention nor the audit checkpoints")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    refuse_unsafe(settings, "approval")
    setup_logging()
    redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    engine = records.make_engine(settings.database_url)
    store = make_store(engine, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    groups = [g for g in args.auto.split(",") if g]
    base = args.name or f"auto-{settings.node_id}"
    reviewers = [AutoReviewer(redis, store, f"{base}-{i}", groups, settings.base_url,
                              int(settings.approval_reclaim_idle_s * 1000),
                              settings.approval_max_deliveries,
                              settings.reviewer_online_ttl_s)
                 for i in range(args.consumers if groups else 0)]
    jobs = [asyncio.create_task(r.run(stop)) for r in reviewers]
    if not args.no_sweep:
        jobs.append(asyncio.create_task(sweep_forever(redis, store, settings, stop)))
    if not args.no_evidence:
        jobs.append(asyncio.create_task(evidence_forever(redis, engine, settings, stop)))
    try:
        await asyncio.gather(*jobs)
    finally:
        await redis.aclose()
        await engine.dispose()
    print(json.dumps({"consumers": [{"name": r.name, "counts": r.counts, "timings": r.timings,
                                     "pickup_s": r.pickup_s, "picked_at": r.picked_at}
                                    for r in reviewers]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
