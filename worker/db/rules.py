"""MongoDB's update rules as pure functions, so the embedded engine can refuse what a server does.

litemongo applies updates a real server rejects (it silently ignores ``$set: {"a.b": 1}`` when
``a`` is null and lets ``$set: {"a": 1, "a.b": 2}`` through). The database wrapper
(:mod:`worker.db.engine`) asks these functions about every update on the embedded engine and
raises pymongo's own ``WriteError`` with the server's code, so tests catch the whole class on
every machine. The rules, as documented by MongoDB (update operators, error codes):

* **40 ConflictingUpdateOperators**: two paths of one update (any operators, ``$setOnInsert``
  included) are equal or one is a prefix of the other (``a`` and ``a.b``); ``$rename`` counts
  its source and its target.
* **28 PathNotViable**: an operator that creates a path (``$set``, ``$inc``, ``$push``, …) meets a
  parent that is neither an object nor an array (null, a string, a number, …), or a non-numeric
  field under an array. ``$unset``, ``$pull``, ``$pullAll`` and ``$pop`` are no-ops there.
* **14 TypeMismatch**: ``$inc`` / ``$mul`` on an existing non-numeric value.
* **2 BadValue**: ``$push`` / ``$addToSet`` on an existing non-array value.

Positional paths (``$``, ``$[]``, ``$[id]``) are checked up to the positional component: what
lies below depends on the query's match.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bson.decimal128 import Decimal128

__all__ = [
    "BAD_VALUE",
    "CONFLICTING_UPDATE_OPERATORS",
    "PATH_NOT_VIABLE",
    "TYPE_MISMATCH",
    "Violation",
    "check_document",
    "check_update",
    "conflict",
    "creating_steps",
    "needs_document",
    "type_name",
    "update_paths",
    "upsert_seed",
]

BAD_VALUE = 2
TYPE_MISMATCH = 14
PATH_NOT_VIABLE = 28
CONFLICTING_UPDATE_OPERATORS = 40

#: Operators that create their path when it is missing (and so need viable parents).
_CREATING = frozenset(
    {"$set", "$setOnInsert", "$inc", "$mul", "$min", "$max", "$push", "$addToSet", "$bit"}
    | {"$currentDate"}
)
#: Operators that leave a missing or non-viable path alone.
_TOLERANT = frozenset({"$unset", "$pull", "$pullAll", "$pop"})
_OPERATORS = _CREATING | _TOLERANT | {"$rename"}
_NUMERIC = {"$inc", "$mul"}
_ARRAY = {"$push", "$addToSet"}


@dataclass(frozen=True)
class Violation:
    """Why a server would refuse the update: its error ``code`` and message."""

    code: int
    message: str


def update_paths(update: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(operator, path)`` for every path the update touches; ``$rename`` yields its source
    (as ``$rename``) and its target (as ``$set``, which is how it writes)."""
    for operator, fields in update.items():
        if not isinstance(fields, Mapping):
            continue
        for path, value in fields.items():
            if operator == "$rename":
                yield "$rename", str(path)
                if isinstance(value, str):
                    yield "$set", value
            else:
                yield operator, str(path)


def conflict(update: Mapping[str, Any]) -> Violation | None:
    """Code 40 when two paths of the update overlap (equal, or one a prefix of the other)."""
    seen: dict[tuple[str, ...], str] = {}
    prefixes: dict[tuple[str, ...], str] = {}
    for _, path in update_paths(update):
        parts = tuple(path.split("."))
        clash = seen.get(parts) or prefixes.get(parts)
        if clash is None:
            clash = next((seen[parts[:i]] for i in range(1, len(parts)) if parts[:i] in seen), None)
        if clash is not None:
            return Violation(
                CONFLICTING_UPDATE_OPERATORS,
                f"Updating the path '{path}' would create a conflict at '{_common(path, clash)}'",
            )
        seen[parts] = path
        for i in range(1, len(parts)):
            prefixes.setdefault(parts[:i], path)
    return None


def _common(a: str, b: str) -> str:
    left, right = a.split("."), b.split(".")
    n = min(len(left), len(right))
    return ".".join(left[:n])


def needs_document(update: Mapping[str, Any]) -> bool:
    """Whether checking the update needs the matched document (a nested creating path, or a
    type-checked operator); flat ``$set``/``$unset`` of top-level fields never does."""
    return any(
        operator in _NUMERIC or operator in _ARRAY or (operator in _CREATING and "." in path)
        for operator, path in update_paths(update)
    )


def _is_positional(part: str) -> bool:
    return part == "$" or (part.startswith("$[") and part.endswith("]"))


def type_name(value: Any) -> str:
    """The BSON type a value is stored as, in MongoDB's words (``null``, ``string``, …)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float | Decimal128):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dt.datetime):
        return "date"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _walk(document: Mapping[str, Any], path: str) -> tuple[bool, Any, str | None]:
    """Follow ``path``: ``(exists, value, problem)``; ``problem`` names a non-viable parent."""
    current: Any = document
    parts = path.split(".")
    for depth, part in enumerate(parts):
        if _is_positional(part):
            return False, None, None
        if isinstance(current, Mapping):
            if part not in current:
                return False, None, None
            current = current[part]
        elif isinstance(current, list):
            if not part.isdigit():
                return False, None, _not_viable(part, parts[:depth], current)
            index = int(part)
            if index >= len(current):
                return False, None, None
            current = current[index]
        else:
            return False, None, _not_viable(part, parts[:depth], current)
    return True, current, None


def _not_viable(part: str, parent: list[str], value: Any) -> str:
    where = ".".join(parent)
    return f"Cannot create field '{part}' in element {{{where}: {type_name(value)}}}"


def check_document(
    update: Mapping[str, Any], document: Mapping[str, Any], *, inserting: bool = False
) -> Violation | None:
    """Codes 28 / 14 / 2 for ``update`` applied to ``document`` (``inserting``: the document
    an upsert creates, where ``$setOnInsert`` applies too)."""
    for operator, path in update_paths(update):
        if operator == "$setOnInsert" and not inserting:
            continue
        exists, value, problem = _walk(document, path)
        if problem is not None and operator not in _TOLERANT and operator != "$rename":
            return Violation(PATH_NOT_VIABLE, problem)
        if not exists:
            continue
        if operator in _NUMERIC and type_name(value) != "number":
            return Violation(
                TYPE_MISMATCH,
                f"Cannot apply {operator} to a value of non-numeric type. "
                f"{{{path}: {type_name(value)}}}",
            )
        if operator in _ARRAY and not isinstance(value, list):
            return Violation(
                BAD_VALUE,
                f"The field '{path}' must be an array but is of type {type_name(value)}",
            )
    return None


def check_update(update: Any) -> Violation | None:
    """What can be said without a document: unknown operators, conflicting paths.

    Aggregation-pipeline updates (a list) and replacement documents (pymongo refuses those in
    ``update_*`` itself, with ValueError) are left to the driver and the engine.
    """
    if not isinstance(update, Mapping):
        return None
    for operator in update:
        if str(operator).startswith("$") and operator not in _OPERATORS:
            return Violation(BAD_VALUE, f"Unknown modifier: {operator}")
    return conflict(update)


def upsert_seed(query: Mapping[str, Any]) -> dict[str, Any]:
    """The document an upsert starts from: the query's equality fields (``a``, ``a.b``,
    ``{"$eq": v}``, inside ``$and``), nested by their dots."""
    seed: dict[str, Any] = {}
    for key, value in _equalities(query):
        target = seed
        *parents, leaf = key.split(".")
        for part in parents:
            nxt = target.setdefault(part, {})
            if not isinstance(nxt, dict):
                break
            target = nxt
        else:
            target[leaf] = value
    return seed


def _equalities(query: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for key, value in query.items():
        if key == "$and" and isinstance(value, list):
            for clause in value:
                if isinstance(clause, Mapping):
                    yield from _equalities(clause)
        elif key.startswith("$"):
            continue
        elif isinstance(value, Mapping) and any(str(k).startswith("$") for k in value):
            if "$eq" in value:
                yield key, value["$eq"]
        else:
            yield key, value


def creating_steps(path: str, value: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """How to ``$set`` a nested ``path`` whatever its parents hold, as ``(guard, set)`` pairs.

    MongoDB refuses ``$set: {"a.b.c": v}`` when ``a`` or ``a.b`` is null or not an object
    (code 28). Each pair is one guarded update: add ``guard`` to the query and ``$set`` the
    fields. The first pair sets the path under an object parent; each next one replaces the
    first non-object ancestor with the nested value (``a.b`` null → ``{"a.b": {"c": v}}``).
    Exactly one guard matches a given document, so applying them in order until one matches
    is safe with concurrent writers.
    """
    parts = path.split(".")
    steps: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for depth in range(len(parts) - 1, 0, -1):
        parent, rest = ".".join(parts[:depth]), parts[depth:]
        nested: Any = value
        for part in reversed(rest[1:]):
            nested = {part: nested}
        guard: dict[str, Any] = {parent: {"$type": "object"}}
        child = ".".join(parts[: depth + 1])
        if depth < len(parts) - 1:
            guard[child] = {"$not": {"$type": "object"}}
        steps.append((guard, {child: nested}))
    nested = value
    for part in reversed(parts[1:]):
        nested = {part: nested}
    root_guard = {parts[0]: {"$not": {"$type": "object"}}} if len(parts) > 1 else {}
    steps.append((root_guard, {parts[0]: nested}))
    return steps
