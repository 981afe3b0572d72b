"""A worker taking over a call from a dead one continues its recording's chain."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from sqlalchemy import insert, select

from core.evidence import GENESIS, chain_hash, file_sha256
from core.media_tables import media_calls, recording_segments
from core.records import make_engine
from core.settings import Settings
from media.recording import verify_chain
from media.recording_resume import resume


def fragmented_mp4(path: Path, frames: int) -> None:
    """A segment as the recorder writes it (0 frames: only the header, as a worker killed
    before its first fragment leaves it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = av.open(str(path), "w", format="mp4", options={
        "movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"})
    video = out.add_stream("libx264", rate=15)
    video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
    video.time_base = Fraction(1, 15)
    video.codec_context.gop_size = 15
    video.options = {"preset": "ultrafast", "tune": "zerolatency", "keyint_min": "15"}
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), i * 5, np.uint8),
                                           format="rgb24")
        frame.pts, frame.time_base = i, Fraction(1, 15)
        for packet in video.encode(frame):
            out.mux(packet)
    out.close()


async def test_the_orphans_of_a_dead_worker_are_chained_and_an_empty_one_removed(
        settings: Settings) -> None:
    call_id = "call-resume-1"
    root = settings.storage_root
    folder = root / "recordings" / call_id
    fragmented_mp4(folder / "0000.mp4", 30)  # closed and indexed by the dead worker
    fragmented_mp4(folder / "0001.mp4", 40)  # closed on disk, never indexed (killed)
    header_only = folder / "0002.mp4"
    fragmented_mp4(header_only, 0)  # killed before its first fragment
    engine = make_engine(settings.database_url)
    try:
        first = file_sha256(folder / "0000.mp4")
        async with engine.begin() as conn:
            await conn.execute(insert(media_calls).values(
                call_id=call_id, worker_id="media-dead", terminal_id="T-1",
                clerk_username="clerk1", recording_started_at=datetime.now(UTC)))
            await conn.execute(insert(recording_segments).values(
                call_id=call_id, seq=0, path=f"recordings/{call_id}/0000.mp4",
                started_at=datetime.now(UTC), duration_s=2.0, size_bytes=1, sha256=first,
                prev_hash=GENESIS, chain_hash=chain_hash(GENESIS, first)))
        resumed = await resume(engine, root, call_id)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(recording_segments).where(
                recording_segments.c.call_id == call_id).order_by(recording_segments.c.seq))
                ).all()
    finally:
        await engine.dispose()
    assert [r.seq for r in rows] == [0, 1]
    assert verify_chain([(r.sha256, r.prev_hash, r.chain_hash) for r in rows])
    assert 2.0 < rows[1].duration_s < 3.5  # its 40 frames at 15 fps
    assert resumed.next_seq == 2 and resumed.chain == rows[1].chain_hash
    assert not header_only.exists()  # nothing of it played: its number is taken again
