"""docs/protocol.md cannot drift from the wire models: examples validate, every type has one."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from approval import messages as approval_messages
from core import messages

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "protocol.md"
FENCE = re.compile(r"^```json\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _type_of(model: type[BaseModel]) -> str:
    (literal,) = get_args(model.model_fields["type"].annotation)
    return str(literal)


def _client_types() -> set[str]:
    (union, _) = get_args(messages.ClientMessage)
    return {_type_of(m) for m in get_args(union)}


def _server_models() -> dict[str, type[BaseModel]]:
    models: list[type[BaseModel]] = list(get_args(messages.ServerMessage))
    models += [m for m in vars(approval_messages).values()
               if isinstance(m, type) and issubclass(m, BaseModel) and m is not BaseModel
               and m.__module__ == approval_messages.__name__ and "type" in m.model_fields]
    return {_type_of(m): m for m in models}


def _examples() -> list[dict[str, Any]]:
    blocks = [json.loads(b) for b in FENCE.findall(DOC.read_text(encoding="utf-8"))]
    return [b for b in blocks if isinstance(b, dict) and "type" in b]


def _split() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    client = _client_types()
    return ([e for e in _examples() if e["type"] in client],
            [e for e in _examples() if e["type"] not in client])


def test_client_and_server_types_do_not_overlap() -> None:
    assert not _client_types() & set(_server_models())


@pytest.mark.parametrize("example", _split()[0], ids=lambda e: str(e["type"]))
def test_client_example_is_accepted_by_the_server(example: dict[str, Any]) -> None:
    msg = messages.client_message.validate_python(example)
    assert msg.type == example["type"]


@pytest.mark.parametrize("example", _split()[1], ids=lambda e: str(e["type"]))
def test_server_example_is_what_the_server_sends(example: dict[str, Any]) -> None:
    models = _server_models()
    assert example["type"] in models, f"no server model for type {example['type']!r}"
    model = models[example["type"]]
    # Every field shown, none invented: the example is exactly what the model serialises.
    assert model.model_validate(example).model_dump(mode="json") == example


def test_every_message_type_has_an_example() -> None:
    shown = {e["type"] for e in _examples()}
    missing = (_client_types() | set(_server_models())) - shown
    assert not missing, f"docs/protocol.md lacks examples of {sorted(missing)}"


def test_every_error_code_the_server_sends_is_listed() -> None:
    sources = sorted((ROOT / "signaling").glob("*.py"))
    codes: set[str] = set()
    for src in sources:
        text = src.read_text(encoding="utf-8")
        codes |= set(re.findall(r'ClientError\(\s*"([a-z_]+)"', text))
        codes |= set(re.findall(r'ErrorMessage\(\s*code="([a-z_]+)"', text))
        codes |= {c for c, _ in re.findall(r'return "([a-z_]+)", "([^"]*)"', text)}
    assert {"rate_limited", "too_large", "offer_gone", "invalid_json"} <= codes
    doc = DOC.read_text(encoding="utf-8")
    table = {m for m in re.findall(r"^\| `([a-z_]+)` \|", doc, re.MULTILINE)}
    assert codes - table == set(), "error codes missing from the Errors table"
