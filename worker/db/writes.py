"""Writes that a real MongoDB accepts and that stay right with two processes doing them at once.

* :func:`upsert_retrying`: two upserts of the same key racing on a server both miss, both
  insert, and the unique index makes one of them fail with DuplicateKeyError. Running the loser
  again matches the winner's document and updates it.
* :func:`set_nested`: ``$set`` of ``a.b`` when ``a`` may be null or not an object (a document
  written by another app, an older version, by hand), which MongoDB refuses (code 28). The
  rules are pure (:func:`worker.db.rules.creating_steps`); this applies them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pymongo.errors import DuplicateKeyError

from worker.db.engine import Collection
from worker.db.rules import creating_steps

__all__ = ["UPSERT_ATTEMPTS", "set_nested", "upsert_retrying"]

T = TypeVar("T")

#: A second attempt matches the winner's document; a third covers a delete in between.
UPSERT_ATTEMPTS = 3


def upsert_retrying(operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``operation(*args, **kwargs)`` (an upsert), again when a concurrent upsert inserted the
    same unique key first: the next attempt matches the winner's document and updates it.

    A DuplicateKeyError on every attempt is a real conflict, raised: a document holds the key
    but does not match the upsert's filter (a filter wider than the unique key, such as
    ``{content_id, user_id}`` when another user's document has that ``content_id``).
    """
    for attempt in range(1, UPSERT_ATTEMPTS + 1):
        try:
            return operation(*args, **kwargs)
        except DuplicateKeyError:
            if attempt == UPSERT_ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _with(query: Mapping[str, Any], guard: Mapping[str, Any]) -> dict[str, Any]:
    if any(key in query for key in guard):
        return {"$and": [dict(query), dict(guard)]}
    return {**query, **guard}


def set_nested(
    collection: Collection,
    query: Mapping[str, Any],
    path: str,
    value: Any,
    *,
    also: Mapping[str, Any] | None = None,
    upsert: bool = False,
) -> bool:
    """``$set`` ``path`` to ``value`` (plus the flat fields ``also``) on the one document
    matching ``query``, replacing parents on the path that are null or not objects.

    Each step is one guarded ``update_one`` (usually the first matches: one round trip). With
    ``upsert`` a missing document is created (DuplicateKeyError retried). True when a document
    matched.
    """
    extra = dict(also or {})
    for _ in range(UPSERT_ATTEMPTS):
        for guard, fields in creating_steps(path, value):
            result = collection.update_one(_with(query, guard), {"$set": {**fields, **extra}})
            if result.matched_count:
                return True
        if not upsert:
            return False
        try:
            collection.update_one(query, {"$set": {path: value, **extra}}, upsert=True)
            return True
        except DuplicateKeyError:
            continue  # inserted meanwhile by someone else: its parents decide the step
    raise DuplicateKeyError(f"set_nested {path!r}: the document kept changing")
