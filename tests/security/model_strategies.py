"""Hypothesis strategies for a pydantic model's JSON: each field drawn from its annotation
and its constraints (lengths, bounds, patterns, literals), optional fields sometimes left
out. Enough for the wire models here (no nested models)."""

from __future__ import annotations

import datetime as dt
import types
import typing
from typing import Any, Literal

from annotated_types import Ge, Le, MaxLen, MinLen
from hypothesis import strategies as st
from pydantic import BaseModel

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4), max_leaves=12)


def _bounds(metadata: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in metadata:
        if isinstance(m, MinLen):
            out["min_size"] = m.min_length
        elif isinstance(m, MaxLen):
            out["max_size"] = min(m.max_length, 300)
        elif isinstance(m, Ge):
            out["min_value"] = m.ge
        elif isinstance(m, Le):
            out["max_value"] = m.le
        elif getattr(m, "pattern", None):
            out["pattern"] = m.pattern
    return out


def _for(kind: Any, limits: dict[str, Any]) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(kind)
    if origin is Literal:
        return st.sampled_from(typing.get_args(kind))
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*[_for(a, limits) for a in typing.get_args(kind)])
    if kind is type(None):
        return st.none()
    if kind is bool:
        return st.booleans()
    if kind is int:
        return st.integers(limits.get("min_value"), limits.get("max_value"))
    if kind is float:
        return st.floats(limits.get("min_value"), limits.get("max_value"), allow_nan=False)
    if kind is str:
        if "pattern" in limits:
            return st.from_regex(limits["pattern"], fullmatch=True)
        return st.text(min_size=limits.get("min_size", 0), max_size=limits.get("max_size", 80))
    if kind is dt.date:
        return st.dates().map(lambda d: d.isoformat())
    if origin is list:
        (item,) = typing.get_args(kind)
        return st.lists(_for(item, {}), min_size=limits.get("min_size", 0),
                        max_size=min(limits.get("max_size", 6), 6))
    if origin is dict:
        return st.dictionaries(st.text(max_size=8), json_values, max_size=4)
    return json_values


def model_json(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects shaped like the model's JSON (valid or nearly: constraints as declared)."""
    hints = typing.get_type_hints(model)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, info in model.model_fields.items():
        strategy = _for(hints[name], _bounds(list(info.metadata)))
        (optional if not info.is_required() else fields)[name] = strategy
    return st.fixed_dictionaries(fields, optional=optional)
