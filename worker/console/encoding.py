"""Console data as JSON: one encoding for the JSON API and ``mmw ... --json``."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any

from bson import ObjectId

__all__ = ["to_json"]


def to_json(value: Any) -> Any:
    """Documents as JSON: times in ISO 8601, ObjectIds as strings, dataclasses as objects."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    if isinstance(value, ObjectId):
        return str(value)
    if hasattr(value, "__dataclass_fields__"):
        return to_json(asdict(value))
    return value
