"""Table tests of the publish-once decisions (worker.integrations.social.publishing)."""

from __future__ import annotations

import datetime as dt

import pytest

from worker.errors import OutcomeUnknown, PermanentFailure, RetryLater, TokenExpired
from worker.integrations.social.base import DuplicateContent
from worker.integrations.social.publishing import (
    Step,
    TargetStatus,
    final_status,
    job_outcome,
    next_step,
    settle_duplicate,
    settle_lookup,
    settle_lookup_failure,
    summarize,
)

T0 = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("target", "step"),
    [
        ({}, Step.PUBLISH),  # never tried
        ({"status": "scheduled"}, Step.PUBLISH),
        ({"status": "something-an-app-wrote"}, Step.PUBLISH),
        ({"status": "retrying", "error": "429"}, Step.PUBLISH),  # certainly refused
        ({"status": "publishing", "attempt": {"run_key": "k"}}, Step.RECONCILE),  # intent only
        ({"status": "published", "platform_post_id": "1"}, Step.DONE),
        ({"status": "failed"}, Step.DONE),
        ({"status": "needs_review"}, Step.DONE),
    ],
)
def test_next_step(target, step):
    assert next_step(target) is step


@pytest.mark.parametrize(
    ("found", "elapsed", "kind", "delay"),
    [
        ("p1", 0, "published", None),
        ("p1", 999, "published", None),
        (None, 10, "wait", 50.0),  # too early to call it absent
        (None, 60, "republish", None),
        (None, 600, "republish", None),
    ],
)
def test_settle_lookup(found, elapsed, kind, delay):
    now = T0 + dt.timedelta(seconds=elapsed)
    settlement = settle_lookup(found=found, started_at=T0, now=now, grace_seconds=60)
    assert settlement.kind == kind
    assert settlement.delay == delay
    assert settlement.post_id == found


@pytest.mark.parametrize(
    ("error", "lookups", "kind"),
    [
        (RetryLater("503", delay=30), 1, "wait"),
        (RetryLater("503"), 2, "wait"),
        (RetryLater("503"), 3, "review"),  # gave the platform enough chances
        (OutcomeUnknown("?"), 1, "wait"),
        (TokenExpired("401"), 1, "review"),  # cannot look without a token
        (PermanentFailure("403"), 1, "review"),
    ],
)
def test_settle_lookup_failure(error, lookups, kind):
    settlement = settle_lookup_failure(error, lookups=lookups, max_lookups=3)
    assert settlement.kind == kind
    if kind == "wait" and isinstance(error, RetryLater):
        assert settlement.delay == error.delay


@pytest.mark.parametrize(
    ("found", "earlier", "kind"),
    [
        ("p9", False, "published"),
        ("p9", True, "published"),
        (None, True, "review"),  # our earlier attempt may be it
        (None, False, "fail"),  # someone else posted the same text
    ],
)
def test_settle_duplicate(found, earlier, kind):
    error = DuplicateContent("twitter: duplicate content")
    settlement = settle_duplicate(found=found, error=error, earlier_intent=earlier)
    assert settlement.kind == kind
    assert (settlement.post_id == found) if found else settlement.post_id is None


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (TargetStatus.PUBLISHING, TargetStatus.NEEDS_REVIEW),
        (TargetStatus.RETRYING, TargetStatus.FAILED),
        (TargetStatus.SCHEDULED, TargetStatus.FAILED),
        (TargetStatus.PUBLISHED, None),
        (TargetStatus.FAILED, None),
        (TargetStatus.NEEDS_REVIEW, None),
    ],
)
def test_final_status(status, expected):
    ending = final_status(status)
    assert (ending[0] if ending else None) == expected


PLATFORM_ORDER = ["facebook", "twitter", "linkedin", "instagram"]


def _targets(*statuses: str) -> list[dict]:
    return [
        {"platform": p, "account_id": f"a{i}", "status": s, "credentials": "never copied"}
        for i, (p, s) in enumerate(zip(PLATFORM_ORDER, statuses, strict=False))
    ]


@pytest.mark.parametrize(
    ("statuses", "overall", "outcome"),
    [
        (("published", "published"), "published", "complete"),
        (("published", "failed"), "partial", "complete"),
        (("failed", "failed"), "failed", "fail"),
        (("published", "needs_review"), "needs_review", "complete"),
        (("published", "retrying"), "partial", "retry"),
        (("publishing", "failed"), "pending", "retry"),
        (("scheduled",), "pending", "retry"),
    ],
)
def test_summary_and_job_outcome(statuses, overall, outcome):
    targets = _targets(*statuses)
    summary = summarize(targets)
    assert summary["status"] == overall
    assert sum(summary["counts"].values()) == len(statuses)
    assert all("credentials" not in row for row in summary["targets"])
    assert job_outcome(targets) == outcome
