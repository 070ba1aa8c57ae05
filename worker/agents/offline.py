"""The offline LLM provider: deterministic, template-based answers, clearly labelled as such.

It is the default when no API key is configured, so ``mmw dev``, the tests and air-gapped
installs run the whole agent flow without a network. Each answer schema has a template
(:mod:`worker.agents.templates`) that builds the answer from the request's structured ``context``;
the same request always gives the same answer. Results carry ``provider="offline"`` and
``model="offline-template-v1"`` wherever they are recorded, so nobody mistakes them for a model's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from worker.agents.llm import LLMRequest, LLMResult, T, Usage
from worker.errors import PermanentFailure

__all__ = ["OFFLINE_MODEL", "OfflineLLM", "Template"]

OFFLINE_MODEL = "offline-template-v1"

Template = Callable[[LLMRequest[Any]], BaseModel]


def _word_count(text: str) -> int:
    return len(text.split())


class OfflineLLM:
    """Answers every known agent schema from templates; token usage is a word count."""

    provider = "offline"

    def __init__(self, templates: Mapping[type[BaseModel], Template] | None = None) -> None:
        if templates is None:
            from worker.agents.templates import TEMPLATES

            templates = TEMPLATES
        self._templates = dict(templates)

    def model_for(self, agent: str) -> str:
        return OFFLINE_MODEL

    def complete(self, request: LLMRequest[T]) -> LLMResult[T]:
        template = self._templates.get(request.schema)
        if template is None:
            raise PermanentFailure(
                f"the offline provider has no template for {request.schema.__name__}; "
                "configure an LLM server (OPENAI_API_KEY / MMW_OPENAI_BASE_URL)"
            )
        drafted = template(request)
        # Round-trip through JSON so the offline answer passes exactly the validation a
        # model's answer would.
        answer = drafted.model_dump_json()
        output = request.schema.model_validate_json(answer)
        prompt_tokens = _word_count(request.instructions) + _word_count(request.prompt)
        completion_tokens = _word_count(answer)
        usage = Usage(prompt_tokens, completion_tokens, prompt_tokens + completion_tokens)
        return LLMResult(output, self.provider, OFFLINE_MODEL, usage, attempts=1)
