"""Limits of a campaign brief (``campaigns.brief``), checked before any agent reads it (pure).

The brief is user text that reaches every prompt, the offline templates and the embedder, so it is
bounded field by field: a brief over a limit fails the campaign at planning with every problem
named, instead of costing tokens, memory or CPU. Limits (characters unless said otherwise):

=====================  ==========================================================
``product``            200
``target_audience``    500
``objective``          500
``budget``             100 (a string or a number)
``timeline``           200
``additional_context`` 5,000
``channels``           at most 20 entries of at most 50 characters each
any other key          a string of at most 1,000 or a number; at most 20 other keys
=====================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["BRIEF_TEXT_LIMITS", "MAX_CHANNELS", "brief_problems"]

BRIEF_TEXT_LIMITS: dict[str, int] = {
    "product": 200,
    "target_audience": 500,
    "objective": 500,
    "budget": 100,
    "timeline": 200,
    "additional_context": 5_000,
}
MAX_CHANNELS = 20
_MAX_CHANNEL_CHARS = 50
_MAX_OTHER_CHARS = 1_000
_MAX_OTHER_KEYS = 20


def _text_problem(key: str, value: Any, limit: int) -> str | None:
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return None
    if not isinstance(value, str):
        return f"brief.{key} must be text, got {type(value).__name__}"
    if len(value) > limit:
        return f"brief.{key} is {len(value):,} characters (limit {limit:,})"
    return None


def brief_problems(brief: Any) -> list[str]:
    """Every way ``brief`` exceeds the limits above; empty when it is fine."""
    if not isinstance(brief, Mapping):
        return [f"brief must be an object, got {type(brief).__name__}"]
    problems = []
    others = [k for k in brief if k not in BRIEF_TEXT_LIMITS and k != "channels"]
    if len(others) > _MAX_OTHER_KEYS:
        problems.append(f"brief has {len(others)} extra fields (limit {_MAX_OTHER_KEYS})")
    for key, value in brief.items():
        if key == "channels":
            continue
        limit = BRIEF_TEXT_LIMITS.get(str(key), _MAX_OTHER_CHARS)
        problem = _text_problem(str(key)[:50], value, limit)
        if problem:
            problems.append(problem)
    channels = brief.get("channels")
    if channels is not None:
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            problems.append("brief.channels must be a list of strings")
        elif len(channels) > MAX_CHANNELS:
            problems.append(f"brief.channels has {len(channels)} entries (limit {MAX_CHANNELS})")
        elif any(len(c) > _MAX_CHANNEL_CHARS for c in channels):
            problems.append(f"brief.channels entries are at most {_MAX_CHANNEL_CHARS} characters")
    return problems
