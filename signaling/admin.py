"""`python -m signaling.admin`: the operator's one-off commands (settings from the environment).

  first-admin --username U --display-name NAME   the first administrator (once; password on stdin)
  enrol-terminal ID [--name N --village V --region R --partner 43 ...]
                                                 a one-time enrolment code (registers a new ID)
  rotate-terminal ID                             a new device credential at its next session
  revoke-terminal ID                             the credential stops now, sessions end
  set-terminal-pin ID                            the village staff's PIN (on stdin)
  new-pii-key | add-pii-key                      make / rotate the personal-data key file
  new-seal-key                                   the e-seal key, encrypted with ESEAL_PASSPHRASE
  create-account USER --name N --role R [--region R --skill S ... --jurisdiction J ...]
                                                 a staff account (password on stdin)
  disable-account | enable-account USER          out now (sessions end) / back in
  reset-password USER                            a new password (on stdin)
  set-role USER ROLE                             clerk | reviewer | qa | supervisor | admin
  rename-terminal ID --name N [--village V]      a terminal's shown name
  set-item ITEM [--time-limit DAYS --plain-name W --active yes|no]
                                                 edit a service item
  add-holiday DAY [--makeup] [--name N] | remove-holiday DAY
                                                 holidays and 调休 working days
(the account, terminal, item and holiday commands write the same audited before/after
entries as the admin page, `signaling.admin_api`)
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import UTC, date, datetime
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.eseal import write_key
from core import pii, records
from core.settings import Settings
from signaling import accounts, admin_api, terminal_enrolment
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
    _ops_commands(sub)
    return p


def _ops_commands(sub: Any) -> None:
    ca = sub.add_parser("create-account")
    ca.add_argument("username")
    ca.add_argument("--name", required=True)
    ca.add_argument("--role", required=True, choices=accounts.ROLES)
    ca.add_argument("--region", default="")
    ca.add_argument("--skill", action="append", default=[])
    ca.add_argument("--jurisdiction", action="append", default=[])
    ca.add_argument("--review-group", action="append", default=[])
    for name in ("disable-account", "enable-account", "reset-password"):
        sub.add_parser(name).add_argument("username")
    sr = sub.add_parser("set-role")
    sr.add_argument("username")
    sr.add_argument("role", choices=accounts.ROLES)
    rt = sub.add_parser("rename-terminal")
    rt.add_argument("terminal_id")
    rt.add_argument("--name", required=True)
    rt.add_argument("--village")
    si = sub.add_parser("set-item")
    si.add_argument("item_code")
    si.add_argument("--time-limit", type=int)
    si.add_argument("--plain-name")
    si.add_argument("--active", choices=("yes", "no"))
    ah = sub.add_parser("add-holiday")
    ah.add_argument("day", type=date.fromisoformat)
    ah.add_argument("--makeup", action="store_true", help="a weekend day worked (调休)")
    ah.add_argument("--name", default="")
    sub.add_parser("remove-holiday").add_argument("day", type=date.fromisoformat)


async def _run_ops(args: argparse.Namespace, engine: AsyncEngine, redis: aioredis.Redis,
                   passwords: PasswordChecks) -> str | None:
    """The administration commands (as the admin page does them); None: not one of them."""
    cmd = args.command
    if cmd == "create-account":
        await accounts.create_account(engine, passwords, ACTOR, accounts.NewAccount(
            args.username, args.name, args.role, args.region, tuple(args.skill),
            tuple(args.jurisdiction), tuple(args.review_group)), _secret("初始密码: "))
        await admin_api.audited(engine, ACTOR, "admin.account.create", args.username, None,
                                {"username": args.username, "role": args.role})
        return f"账号 {args.username} 已创建"
    changes = {"disable-account": ("disable", "已停用（会话已结束）"),
               "enable-account": ("enable", "已启用"),
               "reset-password": ("password", "密码已重置"), "set-role": ("role", "角色已修改")}
    if cmd in changes:
        action, done = changes[cmd]
        password = _secret("新密码: ") if action == "password" else None
        change = admin_api.AccountChange.model_validate(
            {"action": action, "password": password, "role": getattr(args, "role", None)})
        await admin_api.change_account(engine, redis, passwords, ACTOR, args.username, change)
        return f"{args.username} {done}"
    if cmd == "rename-terminal":
        await admin_api.change_terminal(engine, redis, ACTOR, args.terminal_id,
                                        admin_api.TerminalChange(
                                            action="rename", name=args.name,
                                            village=args.village), datetime.now(UTC))
        return "终端名称已修改"
    if cmd == "set-item":
        active = None if args.active is None else args.active == "yes"
        try:
            await admin_api.change_item(engine, ACTOR, args.item_code, admin_api.ItemChange(
                time_limit_days=args.time_limit, plain_name=args.plain_name, active=active))
        except LookupError as exc:
            raise accounts.AccountError("没有这个事项") from exc
        return "事项已修改（各服务节点 30 秒内生效）"
    if cmd == "add-holiday":
        await admin_api.set_day(engine, ACTOR, admin_api.CalendarBody(
            day=args.day, kind="makeup" if args.makeup else "holiday", name=args.name))
        return f"{args.day} 已登记为{'调休上班' if args.makeup else '放假'}"
    if cmd == "remove-holiday":
        if not await admin_api.remove_day(engine, ACTOR, args.day):
            raise accounts.AccountError("没有登记这一天")
        return f"{args.day} 已删除"
    return None


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
        done = await _run_ops(args, engine, redis, passwords)
        if done is None:
            raise AssertionError(args.command)
        return done
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
