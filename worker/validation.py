"""Validation of a ``scheduled_jobs`` document into a :class:`JobSpec` (pure).

The submission API and the scheduler share this, so a document that an app wrote by hand is held
to the same rules as one submitted through ``worker.api``. Every problem becomes an
:class:`InvalidJob` whose message is written to the job's ``error`` as it is: say what is wrong and
where, in words a person reading ``mmw jobs show`` understands.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import bson
from pydantic import ValidationError

from worker.jobtypes import JOB_TYPES, JobType, Payload, get_job_type
from worker.schedule import CatchUp, Overlap, validate_cron, validate_timezone

__all__ = ["MAX_PAYLOAD_BYTES", "InvalidJob", "JobSpec", "validate_job"]

#: Larger payloads belong in their own collection (e.g. social_posts), referenced by id.
MAX_PAYLOAD_BYTES = 256 * 1024


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


def _require_str(doc: dict[str, Any], field: str) -> str:
    value = doc.get(field)
    if not isinstance(value, str) or not value.strip():
        shown = "missing" if value is None else f"{type(value).__name__} {value!r}"
        raise InvalidJob(f"field '{field}' must be a non-empty string, got {shown}")
    return value


def _aware(value: Any, field: str) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        shown = "missing" if value is None else f"{type(value).__name__} {value!r}"
        raise InvalidJob(f"field '{field}' must be a date (BSON datetime), got {shown}")
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _seconds(schedule: dict[str, Any], field: str) -> dt.timedelta | None:
    value = schedule.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidJob(
            f"field 'schedule.{field}' must be a number of seconds >= 0, got {value!r}"
        )
    return dt.timedelta(seconds=value)


def _choice(schedule: dict[str, Any], field: str, enum: type, default: Any) -> Any:
    value = schedule.get(field)
    if value is None:
        return default
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise InvalidJob(
            f"field 'schedule.{field}' must be one of {allowed}, got {value!r}"
        ) from None


def _payload(job_type: JobType, payload: Any) -> Payload:
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise InvalidJob(f"field 'payload' must be an object, got {type(payload).__name__}")
    size = len(bson.encode(payload))
    if size > MAX_PAYLOAD_BYTES:
        raise InvalidJob(
            f"payload is {size:,} bytes; the limit is {MAX_PAYLOAD_BYTES:,} "
            "(store large content in its collection and pass its id)"
        )
    try:
        return job_type.payload.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"payload.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidJob(f"invalid payload for job_type '{job_type.name}': {problems}") from None


def validate_job(doc: dict[str, Any], *, default_timezone: str | None = None) -> JobSpec:
    """Check a job document; raise :class:`InvalidJob` with a readable message if it cannot run.

    ``default_timezone`` is the user's ``preferences.timezone`` for recurring jobs that name none.
    """
    job_id = _require_str(doc, "job_id")
    user_id = _require_str(doc, "user_id")
    type_name = _require_str(doc, "job_type")
    job_type = get_job_type(type_name)
    if job_type is None:
        known = ", ".join(sorted(JOB_TYPES))
        raise InvalidJob(f"unknown job_type '{type_name}' (known: {known})")
    payload = _payload(job_type, doc.get("payload"))

    schedule = doc.get("schedule")
    if not isinstance(schedule, dict):
        raise InvalidJob("field 'schedule' must be an object with execute_at or cron_expression")
    cron = schedule.get("cron_expression")
    timezone = schedule.get("timezone") or None
    if cron is not None or schedule.get("recurring"):
        if not isinstance(cron, str):
            raise InvalidJob("a recurring job needs 'schedule.cron_expression' (a string)")
        try:
            cron = validate_cron(cron)
            timezone = timezone or default_timezone or "UTC"
            validate_timezone(timezone)
        except ValueError as exc:
            raise InvalidJob(str(exc)) from None
        execute_at = schedule.get("execute_at")
        execute_at = _aware(execute_at, "schedule.execute_at") if execute_at is not None else None
    else:
        execute_at = _aware(schedule.get("execute_at"), "schedule.execute_at")

    max_attempts = doc.get("max_attempts", job_type.max_attempts)
    if max_attempts is None:
        max_attempts = job_type.max_attempts
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise InvalidJob(f"field 'max_attempts' must be a whole number >= 1, got {max_attempts!r}")

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
