"""All the thresholds of the image checks in one picklable value.

The CLI reads them from a JSON file (`--thresholds FILE`, fields as in the dataclasses);
the services fill them from their settings and hand them to the verification pool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from typing import Any

from verify.document_config import DocumentThresholds
from verify.face_config import FaceMatchConfig, LivenessConfig


@dataclass(frozen=True)
class Thresholds:
    face_match: FaceMatchConfig = field(default_factory=FaceMatchConfig)
    liveness: LivenessConfig = field(default_factory=LivenessConfig)
    document: DocumentThresholds = field(default_factory=DocumentThresholds)

    @classmethod
    def from_json(cls, text: str) -> Thresholds:
        """`{"face_match": {"pass_below": 0.5}, ...}` over the defaults; unknown names fail."""
        raw: Any = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("thresholds: expected a JSON object")
        base = cls()
        parts: dict[str, Any] = {}
        for part in fields(cls):
            given = raw.pop(part.name, {})
            current = getattr(base, part.name)
            known = {f.name for f in fields(current)}
            if not isinstance(given, dict):
                raise ValueError(f"thresholds: {part.name} must be an object")
            if set(given) - known:
                raise ValueError(f"thresholds: unknown fields in {part.name}: "
                                 f"{sorted(set(given) - known)}")
            parts[part.name] = replace(current, **given)
        if raw:
            raise ValueError(f"thresholds: unknown sections {sorted(raw)}")
        return cls(**parts)
