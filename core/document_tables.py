"""PostgreSQL table of document scans: which call, material and page a scan is, and its
files (created by migration 0008_documents).

Every page also has a row in `core.media_tables.scans` (same `scan_id`, the flattened page
as `path`), so the case binding, the watermarked copies and retention treat it like any
scan; this table adds what a reviewer and the reuse offer need.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Float, Integer, String, Table, Text, func

from core.records import metadata

document_scans = Table(
    "document_scans",
    metadata,
    Column("scan_id", String(64), primary_key=True),
    Column("call_id", String(64), nullable=False),
    Column("terminal_id", String(64), nullable=False, server_default=""),
    Column("material_code", String(32), nullable=False),  # the item's material, or "other"
    Column("material_name", String(64), nullable=False),
    Column("page", Integer, nullable=False),  # 1-based within the material
    Column("taken_by", String(64), nullable=False),  # who pressed 拍照 (or "auto")
    Column("uploaded_by", String(64), nullable=False),  # the participant that sent the still
    Column("original_path", Text, nullable=False),
    Column("original_sha256", String(64), nullable=False),
    Column("flat_path", Text, nullable=False),
    Column("flat_sha256", String(64), nullable=False),
    Column("source_width", Integer, nullable=False),
    Column("source_height", Integer, nullable=False),
    Column("flat_width", Integer, nullable=False),
    Column("flat_height", Integer, nullable=False),
    Column("source_dpi", Float, nullable=True),
    Column("kind", String(16), nullable=False),  # a4 | id_card | booklet
    Column("verdict", String(16), nullable=False),  # the quality verdict ("ok" or a defect)
    Column("similarity", Float, nullable=True),  # to the live view (None from video)
    Column("from_video", Boolean, nullable=False, server_default="false"),
    Column("reused_from", String(64), nullable=True),  # the earlier scan this one re-attaches
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
