"""Fixtures for the approval tests: a case store on the shared PostgreSQL, seal keys in tmp."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.store import CaseStore, CaseSubmission, make_store
from core import records
from core.settings import Settings
from verify.idnumber import with_check_digit

ID_NUMBER = with_check_digit("42011519800101123")
# No identity check ran in these calls: the clerk verified by hand, with a reason.
OVERRIDE = {"override": {"reason": "摄像头或光线条件差", "text": "测试：当面核对了身份证"}}


@pytest.fixture
def approval_settings(settings: Settings, tmp_path: Path) -> Settings:
    return replace(settings, eseal_key_dir=tmp_path / "eseal", approval_reclaim_idle_s=0.2,
                   approval_sweep_s=0.2, public_url="http://127.0.0.1:8080")


@pytest.fixture
async def engine(approval_settings: Settings) -> AsyncIterator[AsyncEngine]:
    eng = records.make_engine(approval_settings.database_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def store(engine: AsyncEngine, approval_settings: Settings) -> CaseStore:
    return make_store(engine, approval_settings)


def submission(item_code: str = "DB-SQ", missing: list[str] | None = None,
               promise: str | None = None) -> CaseSubmission:
    return CaseSubmission.model_validate({
        "terminal_id": "T-420115-001", "call_id": "call-1", "item_code": item_code,
        "applicant_name": "刘桂兰", "id_number": ID_NUMBER, "phone": "13800138000",
        "scans": ["scan-1", "scan-2"], "verification": OVERRIDE,
        "materials_provided": ["身份证", "户口簿"], "materials_missing": missing or [],
        "promise_date": promise, "outcome": "放心回家"})
