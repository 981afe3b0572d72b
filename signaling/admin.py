"""`python -m signaling.admin`: the operator's one-off commands (settings from the environment).

  first-admin --username U --display-name NAME   the first administrator (once; password on stdin)
  enrol-terminal ID [--name N --village V --region R --partner 43 ...]
                                                 a one-time enrolment code (registers a new ID)
  rotate-terminal ID                             a new device credential at its next session
  revoke-terminal ID                             the credential stops now, sessions end
  set-terminal-pin ID                            the village staff's PIN (on stdin)
  new-pii-key | add-pii-key                      make / rotate the personal-data key file
  new-seal-key                                   the e-seal key, encrypted with ESEAL_PASSPHRASE
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import UTC, datetime

import redis.asyncio as aioredis

from approval.eseal import write_key
from core import pii, records
from core.settings import Settings
from signaling import accounts, terminal_enrolment
from signaling.password_checks import PasswordChecks

ACTOR = "admin-cli"


def _secret(prompt: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("再输入一次: ") != first:
            raise SystemExit("两次输入不一致")
        return first
    return sys.stdin.readline().rstrip("\n")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m signaling.admin")
    sub = p.add_subparsers(dest="command", required=True)
    fa = sub.add_parser("first-admin")
    fa.add_argument("--username", required=True)
    fa.add_argument("--display-name", required=True)
    en = sub.add_parser("enrol-terminal")
    en.add_argument("terminal_id")
    en.add_argument("--name")
    en.add_argument("--village")
    en.add_argument("--region")
    en.add_argument("--partner", action="append", default=[],
                    help="another region-code prefix it may route to (跨省通办)")
    for name in ("rotate-terminal", "revoke-terminal", "set-terminal-pin"):
        sub.add_parser(name).add_argument("terminal_id")
    for name in ("new-pii-key", "add-pii-key", "new-seal-key"):
        sub.add_parser(name)
    return p


async def _run(args: argparse.Namespace, settings: Settings) -> str:
    engine = records.make_engine(settings.database_url)
    redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    passwords = PasswordChecks(1)
    now = datetime.now(UTC)
    try:
        if args.command == "first-admin":
            await accounts.first_admin(engine, passwords, args.username, args.display_name,
                                       _secret("管理员密码: "))
            return f"管理员 {args.username} 已创建"
        if args.command == "enrol-terminal":
            if args.name:
                await terminal_enrolment.register_terminal(engine, ACTOR, (
                    terminal_enrolment.NewTerminal(args.terminal_id, args.name,
                                                   args.village or args.name,
                                                   args.region or "", tuple(args.partner))))
            code = await terminal_enrolment.issue_enrolment_code(engine, ACTOR,
                                                                 args.terminal_id, now)
            return f"登记码（24 小时内有效，只能用一次）：{code}"
        if args.command == "rotate-terminal":
            await terminal_enrolment.request_rotation(engine, ACTOR, args.terminal_id)
            return "终端下次登录时换发新的设备凭证"
        if args.command == "revoke-terminal":
            n = await terminal_enrolment.revoke_terminal(engine, redis, ACTOR, args.terminal_id)
            return f"设备凭证已吊销，结束了 {n} 个会话"
        if args.command == "set-terminal-pin":
            await terminal_enrolment.set_staff_pin(engine, passwords, ACTOR, args.terminal_id,
                                                   _secret("村工作人员 PIN: "))
            return "PIN 已设置"
        raise AssertionError(args.command)
    finally:
        await redis.aclose()
        await engine.dispose()


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    settings = Settings.from_env()
    try:
        if args.command == "new-pii-key":
            pii.new_key_file(settings.pii_key_file)
            print(f"已生成 {settings.pii_key_file}（请与数据库一起备份）")
        elif args.command == "add-pii-key":
            print(f"新的加密密钥 {pii.add_enc_key(settings.pii_key_file)} 已加入")
        elif args.command == "new-seal-key":
            if not settings.eseal_passphrase:
                raise SystemExit("请先设置 ESEAL_PASSPHRASE")
            path = write_key(settings.eseal_key_dir, settings.eseal_key_id,
                             settings.eseal_passphrase)
            print(f"已生成电子签章密钥 {path}")
        else:
            print(asyncio.run(_run(args, settings)))
    except (accounts.AccountError, terminal_enrolment.TerminalError) as exc:
        print(f"没有完成：{exc}", file=sys.stderr)
        return 1
    except FileExistsError as exc:
        print(f"没有完成：{exc.filename} 已存在，不会覆盖", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
