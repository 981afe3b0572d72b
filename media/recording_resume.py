"""Taking over a call's recording from a worker that died: the chain goes on.

The new worker continues the segment numbers and the hash chain from what is indexed in
PostgreSQL, after first indexing the segments the dead worker wrote but never closed
(fragmented MP4: every complete fragment on disk plays). Storage is shared between the
workers (one host, or NFS: docs/scaling.md), so the files are there.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.evidence import GENESIS, chain_hash, file_sha256
from core.media_tables import media_calls, recording_segments

log = logging.getLogger("media.recording_resume")


@dataclass(frozen=True)
class Resume:
    next_seq: int
    chain: str  # the chain hash the next segment links to


def _duration_s(path: Path) -> float:
    """Seconds of video a possibly cut-off fragmented MP4 holds (0 when unreadable)."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            last: float | None = None
            for packet in container.demux(stream):
                if packet.pts is not None and packet.time_base is not None:
                    last = max(last or 0.0, float(packet.pts * packet.time_base))
            if last is None:
                return 0.0  # only the header: killed before its first fragment was complete
            return last + (1.0 / float(stream.average_rate or 15))
    except (av.FFmpegError, IndexError, ValueError) as exc:
        log.warning("unreadable segment left by a dead worker", extra={
            "path": str(path), "error": repr(exc)})
        return 0.0


async def resume(engine: AsyncEngine, storage_root: Path, call_id: str) -> Resume:
    """Index the orphaned segments of `call_id`, and where its recording goes on."""
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(recording_segments.c.seq, recording_segments.c.chain_hash,
                   recording_segments.c.started_at, recording_segments.c.duration_s)
            .where(recording_segments.c.call_id == call_id)
            .order_by(recording_segments.c.seq))).all()
        started = (await conn.execute(select(media_calls.c.recording_started_at).where(
            media_calls.c.call_id == call_id))).scalar_one_or_none()
    next_seq = rows[-1].seq + 1 if rows else 0
    chain = rows[-1].chain_hash if rows else GENESIS
    at: datetime = (rows[-1].started_at + timedelta(seconds=rows[-1].duration_s) if rows
                    else started or datetime.now(UTC))
    folder = storage_root / "recordings" / call_id
    orphans = sorted(p for p in folder.glob("*.mp4")
                     if p.stem.isdigit() and int(p.stem) >= next_seq) if folder.is_dir() else []
    for path in orphans:
        seq = int(path.stem)
        duration = await asyncio.to_thread(_duration_s, path)
        if duration == 0.0:
            # Less than a fragment was written: nothing plays, the next segment takes its
            # number (the crash lost under `MEDIA_FRAGMENT_S` of the call, by design).
            path.unlink()
            log.warning("removed an empty segment a dead worker left",
                        extra={"call": call_id, "seq": seq})
            break
        sha = await asyncio.to_thread(file_sha256, path)
        chained = chain_hash(chain, sha)
        async with engine.begin() as conn:
            await conn.execute(insert(recording_segments).values(
                call_id=call_id, seq=seq, path=str(path.relative_to(storage_root)),
                started_at=at, duration_s=duration, size_bytes=path.stat().st_size,
                sha256=sha, prev_hash=chain, chain_hash=chained))
        log.warning("indexed a segment a dead worker left", extra={
            "call": call_id, "seq": seq, "duration_s": round(duration, 2)})
        chain, next_seq, at = chained, seq + 1, at + timedelta(seconds=duration)
    return Resume(next_seq, chain)
