"""Retry-After parsing and the in-call retry decision."""

from __future__ import annotations

import datetime as dt

import pytest

from worker.agents.retrying import RetryStep, next_retry_step, retry_after_seconds

NOW = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # ms wins
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after": "Wed, 25 Nov 2026 12:00:30 GMT"}, 30.0),
        ({"retry-after": "Wed, 25 Nov 2026 11:00:00 GMT"}, 0.0),  # in the past
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": "whenever"}, None),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(headers, NOW) == expected


@pytest.mark.parametrize(
    ("attempt", "waited", "retry_after", "expected"),
    [
        (1, 0.0, None, RetryStep(0.5, False)),
        (2, 0.5, None, RetryStep(1.0, False)),
        (3, 1.5, None, RetryStep(2.0, True)),  # out of attempts (max 3)
        (1, 0.0, 2.0, RetryStep(2.0, False)),  # server's delay wins
        (1, 0.0, 45.0, RetryStep(45.0, True)),  # longer than the in-call budget
        (2, 9.0, 2.0, RetryStep(2.0, True)),  # budget spent
    ],
)
def test_next_retry_step(
    attempt: int, waited: float, retry_after: float | None, expected: RetryStep
) -> None:
    step = next_retry_step(
        attempt=attempt, max_attempts=3, waited=waited, max_wait=10.0, retry_after=retry_after
    )
    assert step == expected


def test_backoff_is_capped() -> None:
    step = next_retry_step(attempt=20, max_attempts=50, waited=0, max_wait=100, retry_after=None)
    assert step == RetryStep(8.0, False)
