"""Validation: every problem is an InvalidJob naming the field, for any document shape.

The property tests feed arbitrary JSON-ish documents (biased towards the real field names, so
they reach deep into the checks) to ``validate_job`` and arbitrary arguments to ``api.submit``;
nothing but ``InvalidJob`` may come out, and what is accepted is really storable.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker import api
from worker.jobtypes import JOB_TYPES
from worker.validation import (
    MAX_ATTEMPTS_LIMIT,
    MAX_ID_LENGTH,
    PLATFORM_ORIGIN,
    InvalidJob,
    validate_job,
)

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def doc(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "job_id": "j1",
        "user_id": "u1",
        "job_type": "noop",
        "payload": {},
        "schedule": {"execute_at": NOW, "recurring": False},
        "status": "pending",
        "attempts": 0,
    }
    base.update(fields)
    return base


def schedule(**fields: Any) -> dict[str, Any]:
    return {"execute_at": NOW, "recurring": False, **fields}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"schedule": schedule(max_lateness_seconds=1e300)}, "schedule.max_lateness_seconds"),
        ({"schedule": schedule(max_lateness_seconds=math.inf)}, "schedule.max_lateness_seconds"),
        ({"schedule": schedule(max_lateness_seconds=math.nan)}, "schedule.max_lateness_seconds"),
        ({"schedule": schedule(max_lateness_seconds=10**400)}, "schedule.max_lateness_seconds"),
        ({"schedule": schedule(max_lateness_seconds=-1)}, "schedule.max_lateness_seconds"),
        ({"schedule": schedule(catch_up_window_seconds=1e300)}, "schedule.catch_up_window_seconds"),
        ({"schedule": schedule(catch_up=["once"])}, "schedule.catch_up"),
        ({"schedule": schedule(overlap={"a": 1})}, "schedule.overlap"),
        ({"schedule": schedule(execute_at="2026-12-01T09:00:00Z")}, "schedule.execute_at"),
        ({"schedule": {"cron_expression": 5}}, "schedule.cron_expression"),
        ({"schedule": {"cron_expression": "* * * * *", "timezone": 5}}, "schedule.timezone"),
        ({"schedule": {"cron_expression": "* * * * *", "timezone": "x" * 10_000}}, "timezone"),
        ({"attempts": -1}, "attempts"),
        ({"attempts": "0"}, "attempts"),
        ({"attempts": 10**30}, "attempts"),
        ({"epoch": "1"}, "epoch"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": MAX_ATTEMPTS_LIMIT + 1}, "max_attempts"),
        ({"max_attempts": 2.5}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"job_id": ""}, "job_id"),
        ({"job_id": "   "}, "job_id"),
        ({"job_id": "j" * (MAX_ID_LENGTH + 1)}, "job_id"),
        ({"user_id": {"$ne": None}}, "user_id"),
        ({"job_type": ["noop"]}, "job_type"),
        ({"payload": {"sleep_seconds": {1, 2}}}, "payload"),
        ({"payload": {1: "non-string key"}}, "payload"),
        ({"payload": {"sleep_seconds": 10**30}}, "payload"),
        ({"payload": []}, "payload"),
        ({"job_type": "post_social", "payload": {"post_id": "p" * 201}}, "payload.post_id"),
    ],
)
def test_bad_fields_are_invalid_job_naming_the_field(fields, field):
    with pytest.raises(InvalidJob) as raised:
        validate_job(doc(**fields))
    assert field in str(raised.value)
    assert "\n" not in str(raised.value) and len(str(raised.value)) < 600


def test_a_whole_float_from_javascript_is_a_count():
    assert validate_job(doc(max_attempts=4.0, attempts=1.0)).max_attempts == 4


def test_limits_are_inclusive():
    spec = validate_job(
        doc(
            max_attempts=MAX_ATTEMPTS_LIMIT,
            schedule=schedule(max_lateness_seconds=366 * 86400),
            job_id="j" * MAX_ID_LENGTH,
        )
    )
    assert spec.max_attempts == MAX_ATTEMPTS_LIMIT
    assert spec.max_lateness == dt.timedelta(days=366)


@pytest.mark.parametrize("job_type", ["refresh_zoho_tokens", "deliver_webhook"])
def test_internal_types_need_the_platform_origin(job_type):
    payload = (
        {"webhook_id": "w", "event": "e", "event_id": "x"} if job_type == "deliver_webhook" else {}
    )
    with pytest.raises(InvalidJob, match=f"job_type '{job_type}' is internal"):
        validate_job(doc(job_type=job_type, payload=payload))
    with pytest.raises(InvalidJob, match="internal"):
        validate_job(doc(job_type=job_type, payload=payload, origin="app"))
    assert validate_job(doc(job_type=job_type, payload=payload, origin=PLATFORM_ORIGIN))


# --- property tests --------------------------------------------------------------------------
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.datetimes(timezones=st.none() | st.just(dt.UTC))
    | st.sampled_from(["", " ", "noop", "* * * * *", "0 9 * * MON", "UTC", "Mars/Base", "once"])
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=10), inner, max_size=4)
        | st.frozensets(st.integers(), max_size=3)
    ),
    max_leaves=12,
)
_payload_keys = sorted({f for t in JOB_TYPES.values() for f in t.payload.model_fields})
_schedule = st.fixed_dictionaries(
    {},
    optional={
        "execute_at": _json,
        "recurring": _json,
        "cron_expression": _json,
        "timezone": _json,
        "catch_up": _json,
        "overlap": _json,
        "max_lateness_seconds": _json,
        "catch_up_window_seconds": _json,
    },
)
_documents = st.fixed_dictionaries(
    {},
    optional={
        "job_id": _json,
        "user_id": _json,
        "job_type": st.sampled_from(sorted(JOB_TYPES)) | _json,
        "payload": st.dictionaries(st.sampled_from(_payload_keys), _json, max_size=4) | _json,
        "schedule": _schedule | _json,
        "status": _json,
        "attempts": _json,
        "max_attempts": _json,
        "epoch": _json,
        "origin": st.just(PLATFORM_ORIGIN) | _json,
    },
)


@settings(max_examples=250, deadline=None)
@given(_documents, st.none() | st.text(max_size=20))
def test_any_document_is_judged_without_crashing(document, default_timezone):
    try:
        spec = validate_job(document, default_timezone=default_timezone)
    except InvalidJob as exc:
        assert str(exc)
    else:
        assert spec.job_id == document["job_id"] and 1 <= spec.max_attempts <= 100


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.fixed_dictionaries(
        {
            "job_type": st.sampled_from(sorted(JOB_TYPES)) | _json,
            "user_id": st.sampled_from(["u1", "u2"]) | _json,
        },
        optional={
            "payload": st.dictionaries(st.sampled_from(_payload_keys), _json, max_size=3) | _json,
            "execute_at": _json,
            "cron": _json,
            "timezone": _json,
            "catch_up": _json,
            "overlap": _json,
            "max_lateness_seconds": _json,
            "max_attempts": _json,
            "idempotency_key": _json,
            "job_id": _json,
        },
    )
)
def test_any_submit_is_judged_without_crashing(db, kwargs):
    try:
        job = api.submit(db, now=NOW, **kwargs)
    except InvalidJob as exc:
        assert str(exc)
    except api.JobConflict:
        pass  # the same job_id drawn twice: a conflict, not a validation problem
    else:
        stored = api.get(db, job["job_id"])
        assert stored is not None and not JOB_TYPES[stored["job_type"]].internal
        validate_job(stored)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"execute_at": "2026-12-01T09:00:00Z"}, "schedule.execute_at"),
        ({"payload": {"sleep_seconds": {1}}}, "payload"),
        ({"payload": []}, "payload"),
        ({"payload": ""}, "payload"),
        ({"payload": 0}, "payload"),
        ({"job_id": ""}, "job_id"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": {"$ne": None}, "cron": "* * * * *"}, "user_id"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": 5}, "idempotency_key"),
        ({"max_attempts": 1000}, "max_attempts"),
        ({"max_attempts": -3}, "max_attempts"),
        ({"max_lateness_seconds": 1e300}, "schedule.max_lateness_seconds"),
        ({"cron": "* * * * *", "timezone": ["UTC"]}, "schedule.timezone"),
        ({"cron": 7}, "schedule.cron_expression"),
    ],
)
def test_submit_refuses_wrong_types_naming_the_field(db, kwargs, field):
    arguments = {"job_type": "noop", "user_id": "u1", **kwargs}
    with pytest.raises(InvalidJob) as raised:
        api.submit(db, now=NOW, **arguments)
    assert field in str(raised.value)
    assert db.scheduled_jobs.count_documents({}) == 0


@pytest.mark.parametrize(
    ("job_type", "payload"),
    [
        ("refresh_zoho_tokens", {}),
        ("deliver_webhook", {"webhook_id": "w1", "event": "job.completed", "event_id": "e1"}),
    ],
)
def test_internal_job_types_cannot_be_submitted_for_a_user(db, job_type, payload):
    with pytest.raises(InvalidJob, match="internal"):
        api.submit(db, job_type=job_type, user_id="u1", payload=payload, now=NOW)
    assert db.scheduled_jobs.count_documents({}) == 0
    job = api.submit_platform_job(db, job_type=job_type, user_id="u1", payload=payload, now=NOW)
    assert api.get(db, job["job_id"])["origin"] == PLATFORM_ORIGIN
