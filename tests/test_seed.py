from __future__ import annotations

from sqlalchemy import func, select

from core import records
from core.credentials import check_password
from testkit.demo import DEMO_PASSWORD, seed_demo
from tests.conftest import Stack


async def test_seed_loads_catalogue_and_accounts_idempotently(stack: Stack) -> None:
    await seed_demo(stack.postgres.url)  # a second run changes nothing
    engine = records.make_engine(stack.postgres.url)
    try:
        async with engine.connect() as conn:
            n_items = await conn.scalar(select(func.count()).select_from(records.service_items))
            levels = set((await conn.execute(select(records.service_items.c.level))).scalars())
            pw = await conn.scalar(
                select(records.accounts.c.password_hash)
                .where(records.accounts.c.username == "clerk1"))
    finally:
        await engine.dispose()
    assert n_items is not None and n_items >= 18
    assert levels == {"village", "town", "district"}
    assert pw is not None and pw.startswith("$argon2")
    assert check_password(pw, DEMO_PASSWORD)
    assert not check_password(pw, "wrong")
