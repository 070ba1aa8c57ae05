"""Bounded inputs: user text of 100k characters costs linear time in every function that reads it.

Each function that processes user text (brief fields, post messages, payload values, error
texts) gets adversarial 100k-character inputs: long digit runs, digits separated by dots, long
whitespace, repeated prefixes of the patterns. A quadratic regex needs minutes on these (the old
duration pattern took 4.5 s at 5k characters); the bound below is a generous one-second ceiling
per call, not a benchmark. The brief limits themselves are checked too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from worker.agents.brief import BRIEF_TEXT_LIMITS, MAX_CHANNELS, brief_problems
from worker.agents.embeddings import HashingEmbedder
from worker.agents.llm import LLMRequest, render_context
from worker.agents.offline import OfflineLLM
from worker.agents.team import brief_text
from worker.agents.templates import MAX_DURATION_DAYS, TEMPLATES, parse_duration_days
from worker.errors import PermanentFailure
from worker.integrations.social.base import PostContent, same_text
from worker.integrations.social.linkedin import escape_little_text
from worker.redact import redact_text
from worker.validation import InvalidJob, validate_job

N = 100_000
CEILING_SECONDS = 1.0

ADVERSARIAL = {
    "digits": "1" * N,
    "decimal": "1." + "1" * N,
    "dotted": "1." * (N // 2),
    "spaces": "1" + " " * N,
    "digit-space": "1 " * (N // 2),
    "units": "9 dayz " * (N // 7),
    "bearer": "bearer " + " " * N,
    "tokens": "access_token=" * (N // 13),
    "urls": "http://" * (N // 7),
    "hashes": "#" * N,
    "letters": "a" * N,
    "newlines": "\n\n" * (N // 2),
}


def within_ceiling(call: Callable[[], Any]) -> Any:
    began = time.perf_counter()
    try:
        result = call()
    except (ValidationError, PermanentFailure, InvalidJob):
        result = None  # refusing an oversized value is fine; hanging on it is not
    elapsed = time.perf_counter() - began
    assert elapsed < CEILING_SECONDS, f"{elapsed:.2f} s"
    return result


@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_text_functions_are_linear_on_100k_characters(text: str) -> None:
    within_ceiling(lambda: parse_duration_days(text))
    within_ceiling(lambda: redact_text(text))
    within_ceiling(lambda: escape_little_text(text))
    within_ceiling(lambda: same_text(text, text + " "))
    within_ceiling(lambda: PostContent(message=text, hashtags=(text[:50],) * 200).text())
    within_ceiling(lambda: HashingEmbedder(384).embed([text]))
    brief = {key: text for key in BRIEF_TEXT_LIMITS} | {"channels": [text]}
    within_ceiling(lambda: brief_problems(brief))
    within_ceiling(lambda: brief_text(brief))
    within_ceiling(lambda: render_context({"brief": brief}))
    for schema in TEMPLATES:
        request = LLMRequest(
            agent="any",
            schema=schema,
            instructions="sys",
            prompt="p",
            context={
                "brief": brief,
                "branding": {"company_name": text, "tone_of_voice": text},
                "memories": [text],
                "content": [{"content_type": "email", "title": text, "text": text}],
            },
        )
        within_ceiling(lambda request=request: OfflineLLM().complete(request))
    job = {
        "job_id": text,
        "user_id": "u1",
        "job_type": text,
        "schedule": {"execute_at": None, "cron_expression": text, "timezone": text},
    }
    within_ceiling(lambda: validate_job(job))
    within_ceiling(lambda: validate_job({**job, "job_id": "j", "job_type": "post_social",
                                         "payload": {"post_id": text}}))  # fmt: skip


def test_durations_are_read_as_before_and_capped() -> None:
    assert parse_duration_days("run it for 6 weeks") == 42
    assert parse_duration_days("x12 days") == 12
    assert parse_duration_days("1.5 weeks") == 10
    assert parse_duration_days("9" * 500 + " days") == MAX_DURATION_DAYS


def test_brief_limits() -> None:
    fine = {"product": "p" * 200, "timeline": "6 weeks", "budget": 5000, "channels": ["email"]}
    assert brief_problems(fine) == []
    problems = brief_problems(
        {
            "product": "p" * 201,
            "objective": ["leads"],
            "channels": ["x"] * (MAX_CHANNELS + 1),
            "notes": "n" * 1_001,
        }
    )
    assert problems == [
        "brief.product is 201 characters (limit 200)",
        "brief.objective must be text, got list",
        "brief.notes is 1,001 characters (limit 1,000)",
        f"brief.channels has {MAX_CHANNELS + 1} entries (limit {MAX_CHANNELS})",
    ]
    assert brief_problems("a brief") == ["brief must be an object, got str"]


def test_a_campaign_with_an_oversized_brief_fails_at_planning(db: Any, settings: Any) -> None:
    import worker.actors  # noqa: F401 - registers the handlers
    from worker.actors.lifecycle import HANDLERS, Runner

    from .zoho_support import submit_and_run

    db.campaigns.insert_one(
        {"campaign_id": "c1", "user_id": "u1", "status": "draft",
         "brief": {"product": "shoes", "timeline": "1" * N, "channels": ["email"]}}
    )  # fmt: skip
    runner = Runner(db, settings.model_copy(update={"openai_api_key": None}), handlers=HANDLERS)
    try:
        done = submit_and_run(runner, "run_campaign", "u1", {"campaign_id": "c1"})
    finally:
        runner.close()
    assert done["status"] == "failed" and done["attempts"] == 1
    assert "brief.timeline is 100,000 characters (limit 200)" in done["error"]
    campaign = db.campaigns.find_one({"campaign_id": "c1"})
    assert campaign["status"] == "failed" and "over the limits" in campaign["error"]
    assert db.agent_tasks.count_documents({}) == 0
