"""Production refuses default secrets; demo data and the first administrator (issue 16:
items 1 and 5)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from approval.eseal import SealKeyMissing, SealKeys, write_key
from core import records
from core.hardening import problems
from core.migrate import upgrade
from core.settings import ROOT, Settings
from tests.conftest import Stack

GOOD = "a" * 64


def production(tmp_path: Path, **overrides: object) -> Settings:
    key = tmp_path / "pii.key"
    key.write_text("x")
    (tmp_path / "eseal").mkdir(exist_ok=True)
    (tmp_path / "eseal" / "seal-1.pem").write_text("x")
    base = replace(Settings.from_env({}), join_token_secret=GOOD, ops_token=GOOD,
                   public_url="https://window.example.lan", cookie_secure=True,
                   eseal_passphrase="p" * 20, pii_key_file=key, eseal_key_dir=tmp_path / "eseal")
    return replace(base, **overrides)  # type: ignore[arg-type]


def test_defaults_are_refused_outside_local_mode(tmp_path: Path) -> None:
    default = replace(Settings.from_env({}), pii_key_file=tmp_path / "absent.key",
                      eseal_key_dir=tmp_path / "absent")  # a fresh host: no keys made yet
    assert default.run_mode == "production"
    found = " ".join(problems(default, "signaling"))
    for name in ("JOIN_TOKEN_SECRET", "OPS_TOKEN", "PUBLIC_URL", "COOKIE_SECURE",
                 "ESEAL_PASSPHRASE", "PII_KEY_FILE"):
        assert name in found
    assert problems(replace(default, run_mode="local"), "signaling") == []
    assert problems(production(tmp_path), "signaling") == []
    short = production(tmp_path, join_token_secret="short-secret")
    assert any("JOIN_TOKEN_SECRET" in p for p in problems(short, "media"))
    turn = production(tmp_path, media_turn_urls=("turn:192.0.2.1",), media_turn_secret="x")
    assert any("MEDIA_TURN_SECRET" in p for p in problems(turn, "media"))


@pytest.mark.parametrize("process", ["signaling", "media", "approval"])
def test_a_production_process_will_not_start_with_the_demo_secret(process: str) -> None:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    out = subprocess.run([sys.executable, "-m", process], cwd=ROOT, env=env, timeout=60,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 2
    assert "拒绝启动" in out.stderr and "JOIN_TOKEN_SECRET" in out.stderr


def test_the_demo_seed_refuses_a_production_database() -> None:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env["DATABASE_URL"] = "postgresql+asyncpg://nobody@127.0.0.1:1/none"
    out = subprocess.run([sys.executable, "-m", "testkit.demo"], cwd=ROOT, env=env,
                         timeout=60, capture_output=True, text=True, check=False)
    assert out.returncode != 0 and "refusing to seed" in out.stderr


def _fresh_database(stack: Stack, name: str) -> str:
    async def create() -> None:
        engine = records.make_engine(stack.postgres.url)
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            await conn.execute(text(f"CREATE DATABASE {name}"))
        await engine.dispose()

    asyncio.run(create())
    return stack.postgres.url.rsplit("/", 1)[0] + f"/{name}"


def _accounts(url: str) -> list[tuple[str, str]]:
    async def read() -> list[tuple[str, str]]:
        engine = records.make_engine(url)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(records.accounts.c.username,
                                              records.accounts.c.role))).all()
            assert await conn.scalar(select(func.count()).select_from(records.terminals)) == 0
        await engine.dispose()
        return [(r[0], r[1]) for r in rows]

    return asyncio.run(read())


def test_a_new_deployment_has_no_account_until_the_one_time_first_admin(stack: Stack) -> None:
    url = _fresh_database(stack, "fresh_deploy")
    upgrade(url)  # what docker's migrate step runs: the schema and nothing else
    assert _accounts(url) == []
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env.update(DATABASE_URL=url, REDIS_URL=stack.redis.url)
    cmd = [sys.executable, "-m", "signaling.admin", "first-admin", "--username", "chief",
           "--display-name", "系统管理员"]
    first = subprocess.run(cmd, cwd=ROOT, env=env, input="Str0ng-passw0rd\n", timeout=60,
                           capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    assert _accounts(url) == [("chief", "admin")]
    again = subprocess.run([*cmd[:5], "other", *cmd[6:]], cwd=ROOT, env=env,
                           input="Str0ng-passw0rd\n", timeout=60, capture_output=True,
                           text=True, check=False)
    assert again.returncode == 1 and "只能创建一次" in again.stderr
    assert _accounts(url) == [("chief", "admin")]


def test_the_seal_key_is_never_made_silently_in_production_and_is_encrypted(
        tmp_path: Path) -> None:
    keys = SealKeys(tmp_path / "prod", "seal-1", "p" * 20, generate=False)
    with pytest.raises(SealKeyMissing):
        keys.sign("x")
    path = write_key(tmp_path / "prod", "seal-1", "p" * 20)
    assert b"ENCRYPTED" in path.read_bytes().split(b"\n", 1)[0]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    signature, key_id = keys.sign("content")
    assert SealKeys(tmp_path / "prod", "seal-1", "p" * 20, generate=False).check(
        "content", signature, key_id)
    with pytest.raises(ValueError):  # the wrong passphrase does not open it
        SealKeys(tmp_path / "prod", "seal-1", "wrong-passphrase!", generate=False).sign("x")
