"""Validation of a ``scheduled_jobs`` document into a :class:`JobSpec` (pure).

The submission API and the scheduler share this, so a document that an app wrote by hand is held
to the same rules as one submitted through ``worker.api``. Every problem becomes an
:class:`InvalidJob` whose message is written to the job's ``error`` as it is: say what is wrong and
where (the field's name), in words a person reading ``mmw jobs show`` understands. Nothing else
escapes: a document of any shape (wrong types, huge or non-finite numbers, values BSON cannot
store) is judged, never crashes the judge.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import bson
from pydantic import ValidationError

from worker.jobtypes import JOB_TYPES, JobType, Payload, get_job_type
from worker.schedule import CatchUp, Overlap, validate_cron, validate_timezone

__all__ = [
    "MAX_ATTEMPTS_LIMIT",
    "MAX_ID_LENGTH",
    "MAX_PAYLOAD_BYTES",
    "MAX_SCHEDULE_SECONDS",
    "PLATFORM_ORIGIN",
    "PLATFORM_USER",
    "InvalidJob",
    "JobSpec",
    "require_id",
    "validate_job",
]

#: Larger payloads belong in their own collection (e.g. social_posts), referenced by id.
MAX_PAYLOAD_BYTES = 256 * 1024
#: ``max_attempts`` above this is a typo, not a retry policy.
MAX_ATTEMPTS_LIMIT = 100
#: ``job_id``, ``user_id``, ``idempotency_key``: at most this many characters.
MAX_ID_LENGTH = 200
#: ``max_lateness_seconds`` / ``catch_up_window_seconds``: at most a year (366 days).
MAX_SCHEDULE_SECONDS = 366 * 24 * 3600
#: ``origin`` of documents the platform itself creates (``worker.api.submit_platform_job``); only
#: these may be of an internal job type (``JobType.internal``). Apps never write this field.
PLATFORM_ORIGIN = "platform"
#: The ``user_id`` of the platform's own jobs that act on every user (``api.PLATFORM_JOBS``);
#: an internal job of any other user acts on that user only.
PLATFORM_USER = "platform"
_MAX_TIMEZONE_LENGTH = 64
_MAX_CRON_LENGTH = 200
_MAX_COUNTER = 2**31 - 1


class InvalidJob(ValueError):
    """A job document that cannot run; the message is the job's ``error``."""


@dataclass(frozen=True)
class JobSpec:
    """A validated job: everything the scheduler and the lifecycle need to run it."""

    job_id: str
    user_id: str
    job_type: JobType
    payload: Payload
    execute_at: dt.datetime | None
    cron: str | None
    timezone: str | None
    catch_up: CatchUp
    catch_up_window: dt.timedelta
    overlap: Overlap
    max_lateness: dt.timedelta | None
    max_attempts: int

    @property
    def recurring(self) -> bool:
        return self.cron is not None


def _shown(value: Any) -> str:
    """A value as an error message shows it: type and a short repr."""
    if value is None:
        return "missing"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def require_id(value: Any, field: str) -> str:
    """A non-empty identifier string of at most :data:`MAX_ID_LENGTH` characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidJob(f"field '{field}' must be a non-empty string, got {_shown(value)}")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidJob(
            f"field '{field}' is {len(value):,} characters; the limit is {MAX_ID_LENGTH}"
        )
    return value


def _aware(value: Any, field: str) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise InvalidJob(f"field '{field}' must be a date (BSON datetime), got {_shown(value)}")
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _seconds(schedule: dict[str, Any], field: str) -> dt.timedelta | None:
    value = schedule.get(field)
    if value is None:
        return None
    in_range = _number(value) and 0 <= value <= MAX_SCHEDULE_SECONDS  # nan compares False
    if not in_range:
        raise InvalidJob(
            f"field 'schedule.{field}' must be a number of seconds from 0 to "
            f"{MAX_SCHEDULE_SECONDS:,} (366 days), got {_shown(value)}"
        )
    return dt.timedelta(seconds=value)


def _choice(schedule: dict[str, Any], field: str, enum: type, default: Any) -> Any:
    value = schedule.get(field)
    if value is None:
        return default
    allowed = [m.value for m in enum]
    if not isinstance(value, str) or value not in allowed:
        raise InvalidJob(
            f"field 'schedule.{field}' must be one of {', '.join(allowed)}, got {_shown(value)}"
        )
    return enum(value)


def _counter(doc: dict[str, Any], field: str, low: int, high: int, default: int) -> int:
    value = doc.get(field)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a BSON double written by a JavaScript client
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidJob(
            f"field '{field}' must be a whole number from {low} to {high}, got {_shown(value)}"
        )
    return value


def _bson_size(payload: dict[str, Any]) -> int:
    try:
        return len(bson.encode(payload))
    except Exception as exc:  # InvalidDocument, OverflowError, RecursionError...: any means "no"
        raise InvalidJob(
            f"field 'payload' cannot be stored in MongoDB: {type(exc).__name__}: {str(exc)[:200]}"
        ) from None


def _payload(job_type: JobType, payload: Any) -> Payload:
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise InvalidJob(f"field 'payload' must be an object, got {type(payload).__name__}")
    size = _bson_size(payload)
    if size > MAX_PAYLOAD_BYTES:
        raise InvalidJob(
            f"field 'payload' too large: payload is {size:,} bytes; the limit is "
            f"{MAX_PAYLOAD_BYTES:,} "
            "(store large content in its collection and pass its id)"
        )
    try:
        return job_type.payload.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"payload.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidJob(f"invalid payload for job_type '{job_type.name}': {problems}") from None


def _job_type(doc: dict[str, Any]) -> JobType:
    type_name = doc.get("job_type")
    if not isinstance(type_name, str) or not type_name.strip():
        raise InvalidJob(f"field 'job_type' must be a non-empty string, got {_shown(type_name)}")
    job_type = get_job_type(type_name)
    if job_type is None:
        known = ", ".join(sorted(JOB_TYPES))
        raise InvalidJob(f"unknown job_type {type_name[:100]!r} (known: {known})")
    if job_type.internal and doc.get("origin") != PLATFORM_ORIGIN:
        raise InvalidJob(
            f"job_type '{job_type.name}' is internal: only the platform creates it "
            "(it cannot be submitted or written for a user)"
        )
    return job_type


def _cron(schedule: dict[str, Any]) -> str:
    cron = schedule.get("cron_expression")
    if not isinstance(cron, str):
        raise InvalidJob(
            "a recurring job needs 'schedule.cron_expression' (a string), got " + _shown(cron)
        )
    if len(cron) > _MAX_CRON_LENGTH:
        raise InvalidJob(
            f"field 'schedule.cron_expression' is {len(cron):,} characters; "
            f"the limit is {_MAX_CRON_LENGTH}"
        )
    try:
        return validate_cron(cron)
    except ValueError as exc:
        raise InvalidJob(f"field 'schedule.cron_expression': {exc}") from None


def _timezone(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_TIMEZONE_LENGTH:
        raise InvalidJob(
            f"field 'schedule.timezone' must be a time zone name (e.g. Europe/Berlin), "
            f"got {_shown(value)}"
        )
    try:
        validate_timezone(value)
    except (ValueError, OSError) as exc:
        raise InvalidJob(f"field 'schedule.timezone': {exc}") from None
    return value


def validate_job(doc: dict[str, Any], *, default_timezone: str | None = None) -> JobSpec:
    """Check a job document; raise :class:`InvalidJob` with a readable message if it cannot run.

    ``default_timezone`` is the user's ``preferences.timezone`` for recurring jobs that name none.
    """
    if not isinstance(doc, dict):
        raise InvalidJob(f"a job document must be an object, got {type(doc).__name__}")
    job_id = require_id(doc.get("job_id"), "job_id")
    user_id = require_id(doc.get("user_id"), "user_id")
    job_type = _job_type(doc)
    payload = _payload(job_type, doc.get("payload"))

    schedule = doc.get("schedule")
    if not isinstance(schedule, dict):
        raise InvalidJob("field 'schedule' must be an object with execute_at or cron_expression")
    cron: str | None = None
    timezone: str | None = None
    execute_at = schedule.get("execute_at")
    if schedule.get("cron_expression") is not None or schedule.get("recurring"):
        cron = _cron(schedule)
        zone = schedule.get("timezone")
        timezone = _timezone(zone if zone not in (None, "") else default_timezone or "UTC")
        execute_at = _aware(execute_at, "schedule.execute_at") if execute_at is not None else None
    else:
        execute_at = _aware(execute_at, "schedule.execute_at")

    max_attempts = _counter(doc, "max_attempts", 1, MAX_ATTEMPTS_LIMIT, job_type.max_attempts)
    _counter(doc, "attempts", 0, _MAX_COUNTER, 0)
    _counter(doc, "epoch", 0, _MAX_COUNTER, 0)

    lateness = _seconds(schedule, "max_lateness_seconds")
    if lateness is None and job_type.max_lateness_seconds is not None:
        lateness = dt.timedelta(seconds=job_type.max_lateness_seconds)
    return JobSpec(
        job_id=job_id,
        user_id=user_id,
        job_type=job_type,
        payload=payload,
        execute_at=execute_at,
        cron=cron,
        timezone=timezone,
        catch_up=_choice(schedule, "catch_up", CatchUp, CatchUp.ONCE),
        catch_up_window=_seconds(schedule, "catch_up_window_seconds") or dt.timedelta(hours=24),
        overlap=_choice(schedule, "overlap", Overlap, Overlap.SKIP),
        max_lateness=lateness,
        max_attempts=max_attempts,
    )
