"""Redis replies as text: clients decode responses, the typing does not know it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def strs(values: Iterable[Any]) -> list[str]:
    return [_s(v) for v in values]


def str_map(h: Mapping[Any, Any]) -> dict[str, str]:
    """A Redis hash as str → str, whatever the client's decode_responses setting."""
    return {_s(k): _s(v) for k, v in h.items()}


def pairs(flat: Sequence[Any]) -> dict[str, str]:
    """A hash returned flat by a script ([field, value, ...]) as a dict."""
    return {_s(flat[i]): _s(flat[i + 1]) for i in range(0, len(flat), 2)}
