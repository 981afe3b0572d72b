"""Service items and the plain-words search over them (pure, no I/O).

`synonyms` are what people say ("我要修房子"); `materials` marks which are core (never
容缺). `workflow` is the review configuration the approval workflow reads. The items
themselves are data in PostgreSQL (`service_items`); the demo catalogue is in testkit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel, Field


class ItemMaterial(BaseModel):
    """A material the item asks for; a core one can never be missing (容缺)."""

    name: str
    core: bool


class ServiceItem(BaseModel):
    code: str
    name: str
    plain_name: str
    synonyms: list[str] = Field(default_factory=list)
    category: str
    level: str  # village | town | district
    department: str
    materials: list[ItemMaterial]
    clerk_regions: list[str]
    workflow: dict[str, object] = Field(default_factory=dict)
    time_limit_days: int = 5
    guide: dict[str, object] = Field(default_factory=dict)  # 办事指南: steps, fees, notes



# Words that carry no meaning for search ("我要", "怎么办").
_FILLER = re.compile(r"我要|我想|想要|怎么|如何|办理|申请|一下|需要|可以|在哪|的|了|吗|呢|办|请问")


def _normal(text: str) -> str:
    return re.sub(r"\s+", "", text).lower()


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} or ({text} if text else set())


def score(item: ServiceItem, query: str) -> float:
    """How well a plain-words query names an item; 0 means not at all."""
    q = _FILLER.sub("", _normal(query))
    if not q:
        return 0.0
    best = 0.0
    for phrase in [item.name, item.plain_name, *item.synonyms]:
        p = _normal(phrase)
        if q == p:
            best = max(best, 10.0)
        elif q in p or p in q:
            best = max(best, 5.0 + min(len(q), len(p)) / max(len(q), len(p)))
        else:
            qb, pb = _bigrams(q), _bigrams(p)
            overlap = len(qb & pb) / len(qb) if qb else 0.0
            if overlap >= 0.5:
                best = max(best, 3.0 * overlap)
    return best


def search(items: Iterable[ServiceItem], query: str, limit: int = 5) -> list[ServiceItem]:
    """Items best named by `query`, best first; an empty query lists everything."""
    items = list(items)
    if not _FILLER.sub("", _normal(query)):
        return items[:limit] if limit else items
    scored = [(score(it, query), i, it) for i, it in enumerate(items)]
    hits = sorted((s for s in scored if s[0] > 0), key=lambda t: (-t[0], t[1]))
    return [it for _, _, it in hits[:limit]]

