"""The active service items, loaded from PostgreSQL when the node starts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core import records
from core.catalogue import ItemMaterial, ServiceItem


class Catalogue:
    def __init__(self, items: dict[str, ServiceItem] | None = None) -> None:
        self.items: dict[str, ServiceItem] = items or {}

    async def load(self, engine: AsyncEngine) -> None:
        async with engine.connect() as conn:
            rows = (await conn.execute(
                select(records.service_items).where(records.service_items.c.active)
            )).mappings().all()
        self.items = {
            r["code"]: ServiceItem(
                code=r["code"], name=r["name"], plain_name=r["plain_name"],
                synonyms=list(r["synonyms"]), category=r["category"], level=r["level"],
                department=r["department"],
                materials=[ItemMaterial.model_validate(m) for m in r["materials"]],
                clerk_regions=list(r["clerk_regions"]), workflow=dict(r["workflow"]),
                time_limit_days=r["time_limit_days"], guide=dict(r["guide"] or {}),
            )
            for r in rows
        }

    def get(self, code: str) -> ServiceItem | None:
        return self.items.get(code)

    def name_of(self, code: str) -> str:
        item = self.items.get(code)
        return item.name if item is not None else code

    def codes(self) -> list[str]:
        return sorted(self.items)

    def regions(self) -> dict[str, list[str]]:
        """Per item, the region-code prefixes whose clerks may handle it."""
        return {code: it.clerk_regions for code, it in self.items.items()}
