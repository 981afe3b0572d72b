"""`python -m signaling.admin` for an operator without a browser: accounts, roles,
terminals, items and holidays, with the same audited entries as the admin page."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

from sqlalchemy import select

from core import records
from core.ops_tables import calendar_days
from core.settings import ROOT
from tests.conftest import Stack


def admin(stack: Stack, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env.update(DATABASE_URL=stack.postgres.url, REDIS_URL=stack.redis.url)
    return subprocess.run([sys.executable, "-m", "signaling.admin", *args], cwd=ROOT, env=env,
                          input=stdin, timeout=60, capture_output=True, text=True, check=False)


def query(stack: Stack, stmt: Any) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        engine = records.make_engine(stack.postgres.url)
        try:
            async with engine.connect() as conn:
                return [dict(r) for r in (await conn.execute(stmt)).mappings()]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_an_operator_manages_accounts_and_holidays_from_the_shell(stack: Stack) -> None:
    a = records.accounts
    made = admin(stack, "create-account", "cli_clerk", "--name", "坐席 陈静", "--role", "clerk",
                 "--region", "420115", "--skill", "DB-SQ", "--jurisdiction", "42",
                 stdin="Cl1-password-2026\n")
    assert made.returncode == 0, made.stderr
    assert "已创建" in made.stdout
    (row,) = query(stack, select(a.c.role, a.c.skills, a.c.active).where(
        a.c.username == "cli_clerk"))
    assert row == {"role": "clerk", "skills": ["DB-SQ"], "active": True}
    assert admin(stack, "set-role", "cli_clerk", "supervisor").returncode == 0
    assert admin(stack, "disable-account", "cli_clerk").returncode == 0
    (row,) = query(stack, select(a.c.role, a.c.active).where(a.c.username == "cli_clerk"))
    assert row == {"role": "supervisor", "active": False}
    log = query(stack, select(records.audit_log.c.action, records.audit_log.c.before)
                .where(records.audit_log.c.subject == "cli_clerk",
                       records.audit_log.c.action.like("admin.%")))
    assert {"admin.account.create", "admin.account.role", "admin.account.disable"} <= {
        r["action"] for r in log}
    assert any(r["before"] and r["before"]["role"] == "clerk" for r in log)

    assert admin(stack, "add-holiday", "2026-10-02", "--name", "国庆节").returncode == 0
    assert admin(stack, "add-holiday", "2026-10-10", "--makeup").returncode == 0
    days = {r["day"].isoformat(): r["kind"] for r in query(stack, select(calendar_days))}
    assert days.get("2026-10-02") == "holiday" and days.get("2026-10-10") == "makeup"
    assert admin(stack, "remove-holiday", "2026-10-02").returncode == 0
    missing = admin(stack, "remove-holiday", "2026-10-02")
    assert missing.returncode == 1 and "没有登记这一天" in missing.stderr
    assert admin(stack, "remove-holiday", "2026-10-10").returncode == 0

    assert admin(stack, "set-item", "DB-SQ", "--active", "yes").returncode == 0
    assert admin(stack, "set-item", "NOPE", "--time-limit", "3").returncode == 1
    code = admin(stack, "enrol-terminal", "T-CLI-001", "--name", "一号点", "--village", "测试村",
                 "--region", "420115")
    assert code.returncode == 0 and "登记码" in code.stdout
    assert admin(stack, "rename-terminal", "T-CLI-001", "--name", "二号点").returncode == 0
    (t,) = query(stack, select(records.terminals.c.name).where(
        records.terminals.c.terminal_id == "T-CLI-001"))
    assert t["name"] == "二号点"
