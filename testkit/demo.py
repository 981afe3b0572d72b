"""The demo data: demo accounts (password `demo1234`), demo terminals, the demo catalogue.

For `make run`, the tests and the benchmarks only; a production deployment never runs
it: `python -m testkit.demo` refuses unless `RUN_MODE=local` or `--demo` is given. It is
idempotent: rows are upserted. One account never holds two groups of one 会签 step.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.dialects.postgresql import insert

from core import records
from core.credentials import hash_password, hash_token
from core.settings import Settings
from testkit.demo_catalogue import DEMO_ITEMS

DEMO_PASSWORD = "demo1234"
DEMO_STAFF_PIN = "246810"  # the village staff's PIN at the demo kiosks (certificates)


@dataclass(frozen=True)
class DemoAccount:
    username: str
    display_name: str
    role: str
    region_code: str
    skills: tuple[str, ...] = ()
    jurisdictions: tuple[str, ...] = ()
    review_groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class DemoTerminal:
    terminal_id: str
    name: str
    village: str
    region_code: str
    token: str
    partners: tuple[str, ...] = ()  # region prefixes it may route to besides its province


_ALL = tuple(it.code for it in DEMO_ITEMS)
_PARTNER = tuple(it.code for it in DEMO_ITEMS if "43" in it.clerk_regions)

DEMO_ACCOUNTS = [
    DemoAccount("clerk1", "张敏（江夏区政务中心）", "clerk", "420115", _ALL, ("42",)),
    DemoAccount("clerk2", "李强（江夏区政务中心）", "clerk", "420115", _ALL, ("4201",)),
    DemoAccount("clerk_hn", "王芳（长沙市岳麓区政务中心）", "clerk", "430104", _PARTNER, ("43",)),
    DemoAccount("reviewer_village", "童周岭村代办员", "reviewer", "420115",
                review_groups=("village-review",)),
    DemoAccount("reviewer_town", "五里界街道审核员", "reviewer", "420115",
                review_groups=("town-natural-resources", "town-social-security",
                               "town-medical-insurance",
                               "town-civil-affairs", "town-health", "town-police",
                               "town-veterans")),
    DemoAccount("reviewer_district", "江夏区审批员", "reviewer", "420115",
                review_groups=("district-social-security", "district-medical-insurance",
                               "district-civil-affairs", "district-veterans",
                               "district-market")),
    # 会签 steps need one account per department (ZJD-JF in town, CJ-BT in the district).
    DemoAccount("reviewer_agri", "五里界街道农业服务中心审核员", "reviewer", "420115",
                review_groups=("town-agriculture",)),
    DemoAccount("reviewer_dpf", "江夏区残联审核员", "reviewer", "420115",
                review_groups=("district-disabled-federation",)),
    DemoAccount("qa1", "质检员 赵磊", "qa", "420115"),
    DemoAccount("admin", "系统管理员", "admin", "420115"),
    DemoAccount("duty1", "值班长 孙敏", "supervisor", "420115"),
]

DEMO_TERMINALS = [
    DemoTerminal("T-420115-001", "童周岭村便民服务点", "江夏区五里界街道童周岭村", "420115",
                 "demo-terminal-tzl-7f3a", ("43",)),
    DemoTerminal("T-420115-002", "小朱湾村便民服务点", "江夏区五里界街道小朱湾村", "420115",
                 "demo-terminal-xzw-91c2"),
    DemoTerminal("T-430104-001", "岳麓区政务服务大厅跨省通办窗口", "长沙市岳麓区", "430104",
                 "demo-terminal-ylq-4d8e"),
]


async def seed_demo(database_url: str) -> None:
    engine = records.make_engine(database_url)
    pw = hash_password(DEMO_PASSWORD)
    pin = hash_password(DEMO_STAFF_PIN)
    try:
        async with engine.begin() as conn:
            for a in DEMO_ACCOUNTS:
                row = {
                    "username": a.username, "display_name": a.display_name, "role": a.role,
                    "password_hash": pw, "region_code": a.region_code,
                    "skills": list(a.skills), "jurisdictions": list(a.jurisdictions),
                    "review_groups": list(a.review_groups),
                }
                stmt = insert(records.accounts).values(row)
                await conn.execute(stmt.on_conflict_do_update(
                    index_elements=["username"],
                    set_={k: v for k, v in row.items() if k != "password_hash"}))
            for t in DEMO_TERMINALS:
                row = {"terminal_id": t.terminal_id, "name": t.name, "village": t.village,
                       "region_code": t.region_code, "token_hash": hash_token(t.token),
                       "handling_regions": list(t.partners), "staff_pin_hash": pin}
                stmt = insert(records.terminals).values(row)
                await conn.execute(stmt.on_conflict_do_update(
                    index_elements=["terminal_id"], set_=row))
            for it in DEMO_ITEMS:
                row = it.model_dump()  # materials dump as plain dicts for the JSONB column
                stmt = insert(records.service_items).values(row)
                await conn.execute(stmt.on_conflict_do_update(index_elements=["code"], set_=row))
    finally:
        await engine.dispose()


if __name__ == "__main__":
    import sys

    env = Settings.from_env()
    if env.run_mode != "local" and "--demo" not in sys.argv[1:]:
        sys.exit("refusing to seed demo accounts outside RUN_MODE=local (or pass --demo)")
    asyncio.run(seed_demo(env.database_url))
    print("seeded demo accounts, terminals and service items")
