"""Sandbox JSON-schema helpers: examples validate; strict-mode rules enforced."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from worker.agents.llm import response_format_for
from worker.agents.templates import TEMPLATES
from worker.sandbox.schema_example import example_instance, strict_schema_problem


@pytest.mark.parametrize("schema", list(TEMPLATES), ids=lambda s: s.__name__)
@pytest.mark.parametrize("seed", ["a", "b", "c"])
def test_examples_validate_against_every_agent_schema(schema: type[BaseModel], seed: str) -> None:
    json_schema = response_format_for(schema)["json_schema"]["schema"]
    assert strict_schema_problem(json_schema) is None
    value = example_instance(json_schema, seed=seed)
    schema.model_validate(value)
    assert example_instance(json_schema, seed=seed) == value


def test_example_honours_keywords() -> None:
    schema = {
        "type": "object",
        "properties": {
            "kind": {"enum": ["x", "y"]},
            "fixed": {"const": 3},
            "n": {"type": "integer", "minimum": 5, "maximum": 6},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 3},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "boolean"}]},
            "short": {"type": "string", "maxLength": 2},
            "long": {"type": "string", "minLength": 40},
            "when": {"type": "string", "format": "date-time"},
        },
        "required": ["kind", "fixed", "n", "tags", "maybe", "short", "long", "when"],
    }
    value = example_instance(schema, seed="s")
    assert value["kind"] in ("x", "y") and value["fixed"] == 3 and value["n"] in (5, 6)
    assert len(value["tags"]) == 3 and isinstance(value["maybe"], bool)
    assert len(value["short"]) <= 2 and len(value["long"]) >= 40
    assert value["when"] == "2026-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({"type": "object", "properties": {}}, "'additionalProperties' is required"),
        (
            {"type": "object", "properties": {"a": {}}, "additionalProperties": False},
            "Missing 'a'",
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"$ref": "#/$defs/A"}},
                "required": ["a"],
                "additionalProperties": False,
                "$defs": {"A": {"type": "object", "properties": {"b": {"type": "string"}}}},
            },
            "In context=(), $defs, A, 'additionalProperties'",
        ),
    ],
)
def test_strict_problems(schema: dict, problem: str) -> None:
    found = strict_schema_problem(schema)
    assert found is not None and problem in found
