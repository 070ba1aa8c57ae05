"""JSON Schema helpers for the OpenAI sandbox: strict-mode checks and example instances (pure).

:func:`strict_schema_problem` applies the Structured Outputs rules the real API enforces with
``strict: true`` (every object lists all its properties in ``required`` and sets
``additionalProperties: false``). :func:`example_instance` builds a deterministic instance of a
schema, seeded by text, so an unscripted sandbox answer always matches the requested format.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["example_instance", "strict_schema_problem"]


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"unsupported $ref {ref!r}")
        node: Any = root
        for part in ref[2:].split("/"):
            node = node[part]
        schema = node
        seen += 1
        if seen > 32:
            raise ValueError("$ref loop")
    return schema


def strict_schema_problem(schema: dict[str, Any], path: str = "()") -> str | None:
    """The first violation of the strict-mode rules in ``schema``, worded like the API; None if
    the schema is acceptable."""
    for key in ("$defs", "definitions"):
        for name, sub in (schema.get(key) or {}).items():
            problem = strict_schema_problem(sub, f"{path}, {key}, {name}")
            if problem:
                return problem
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False:
            return (
                f"In context={path}, 'additionalProperties' is required to be supplied "
                "and to be false."
            )
        missing = [k for k in properties if k not in (schema.get("required") or [])]
        if missing:
            return (
                f"In context={path}, 'required' is required to be supplied and to be an array "
                f"including every key in properties. Missing '{missing[0]}'."
            )
        for name, sub in properties.items():
            problem = strict_schema_problem(sub, f"{path}, 'properties', '{name}'")
            if problem:
                return problem
    if isinstance(schema.get("items"), dict):
        return strict_schema_problem(schema["items"], f"{path}, 'items'")
    for key in ("anyOf", "oneOf", "allOf"):
        for index, sub in enumerate(schema.get(key) or []):
            problem = strict_schema_problem(sub, f"{path}, '{key}', {index}")
            if problem:
                return problem
    return None


def _number(seed: str, name: str, low: float, high: float) -> int:
    digest = hashlib.blake2b(f"{seed}|{name}".encode(), digest_size=4).digest()
    span = max(0, int(high - low))
    return int(low) + int.from_bytes(digest, "big") % (span + 1)


def example_instance(
    schema: dict[str, Any], *, seed: str, root: dict[str, Any] | None = None, name: str = "value"
) -> Any:
    """A value that validates against ``schema``, the same for the same ``seed``."""
    root = root if root is not None else schema
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        options = schema["enum"]
        return options[_number(seed, name, 0, len(options) - 1)]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            options = [o for o in schema[key] if _resolve(o, root).get("type") != "null"]
            return example_instance((options or schema[key])[0], seed=seed, root=root, name=name)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties") or {}
        required = schema.get("required")
        return {
            key: example_instance(sub, seed=seed, root=root, name=key)
            for key, sub in properties.items()
            if required is None or key in required
        }
    if kind == "array":
        low = int(schema.get("minItems", 1))
        count = min(max(low, 1), int(schema.get("maxItems", max(low, 1))))
        item = schema.get("items") or {}
        return [
            example_instance(item, seed=f"{seed}|{name}|{i}", root=root, name=name)
            for i in range(count)
        ]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1)
        high = schema.get("maximum", schema.get("exclusiveMaximum", low + 101) - 1)
        return _number(seed, name, low, high)
    if kind == "boolean":
        return _number(seed, name, 0, 1) == 1
    if kind == "null":
        return None
    text = f"{name} {_number(seed, name, 0, 9999)}"
    if schema.get("format") == "date-time":
        text = "2026-01-01T00:00:00Z"
    elif schema.get("format") == "date":
        text = "2026-01-01"
    min_length = int(schema.get("minLength", 0))
    text = text.ljust(min_length, "x")
    return text[: int(schema["maxLength"])] if "maxLength" in schema else text
