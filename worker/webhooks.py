"""Events to outbound webhooks: :func:`emit_event` enqueues one ``deliver_webhook`` job per hook.

Any code with a database handle can emit (actors, the lifecycle's finish listeners, the API).
Delivery happens later in ``worker.actors.webhooks``; emitting never calls the network, so it is
cheap and safe inside an actor. Each (event, webhook) pair is one job, created idempotently: the
same ``event_id`` emitted twice enqueues nothing new.

Each job carries the platform's seal of its event (see ``integrations.webhooks.signing``): the
actor signs only sealed events, so a ``deliver_webhook`` document written by anyone else, with
data of their choosing, is refused instead of being signed with the customer's secret. The data
is redacted and reduced to JSON values before it is sealed and stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import uuid
from typing import Any

from worker.api import submit_platform_job
from worker.db import names
from worker.integrations.webhooks import InvalidSecret, event_seal
from worker.redact import redact

__all__ = [
    "JOB_EVENT_TYPES",
    "emit_event",
    "event_data",
    "job_event_listener",
    "subscribed",
    "webhook_secret",
]

JOB_EVENT_TYPES = {"completed": "job.completed", "failed": "job.failed"}

#: Job types whose own completion emits nothing (a delivery must not trigger deliveries).
_SILENT_JOB_TYPES = {"deliver_webhook"}


def subscribed(events: list[str] | None, event: str) -> bool:
    """A hook listens to ``event`` if it lists it, its family (``job.*``) or ``*``."""
    family = event.split(".", 1)[0] + ".*"
    return bool(events) and any(e in (event, family, "*") for e in events or [])


def webhook_secret(hook: dict[str, Any]) -> str:
    """The signing secret of a ``webhooks`` document: the one place it is read from storage."""
    return hook.get("secret") or ""


def event_data(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as it is sealed, stored and sent: redacted, plain JSON values only."""
    return json.loads(json.dumps(redact(data), sort_keys=True, default=str))


def _seal(hook: dict[str, Any], event: str, event_id: str, data: dict[str, Any]) -> str:
    """The event's seal for this hook; empty if its secret is invalid (the actor says why)."""
    try:
        return event_seal(webhook_secret(hook), hook["webhook_id"], event, event_id, data)
    except InvalidSecret:
        return ""


def emit_event(
    db: Any,
    user_id: str,
    event: str,
    data: dict[str, Any],
    *,
    event_id: str | None = None,
    now: dt.datetime | None = None,
) -> list[str]:
    """Enqueue ``event`` for every active webhook of ``user_id`` subscribed to it.

    Returns the ids of the ``deliver_webhook`` jobs (existing ones for a repeated ``event_id``).
    ``event_id`` becomes the ``webhook-id`` header: pass a deterministic one when the same
    event may be emitted twice (e.g. from a retried run).
    """
    event_id = event_id or f"evt_{uuid.uuid4().hex}"
    data = event_data(data)
    hooks = db[names.WEBHOOKS].find(
        {"user_id": user_id, "active": True},
        projection={"webhook_id": 1, "user_id": 1, "events": 1, "secret": 1},
    )
    job_ids = []
    for hook in hooks:
        if not subscribed(hook.get("events"), event):
            continue
        job = submit_platform_job(
            db,
            job_type="deliver_webhook",
            user_id=user_id,
            payload={
                "webhook_id": hook["webhook_id"],
                "event": event,
                "event_id": event_id,
                "data": data,
                "seal": _seal(hook, event, event_id, data),
            },
            idempotency_key=f"webhook:{event_id}:{hook['webhook_id']}",
            now=now,
        )
        job_ids.append(job["job_id"])
    return job_ids


def job_event_listener(db: Any, *, cache_seconds: float = 10.0) -> Any:
    """A ``Runner.finish_listeners`` entry emitting ``job.completed`` / ``job.failed``.

    The event id is derived from (job, run, status), so a listener called twice for one run
    enqueues one delivery. The data carries ids, type, status and the (already redacted) error.
    Users without an active webhook are remembered for ``cache_seconds``, so a burst of
    finished jobs costs no MongoDB round trip per job for them (a new webhook is seen after
    at most that long).
    """
    without_hooks: dict[str, float] = {}

    def listener(job: dict[str, Any], status: str, result: Any, error: str | None) -> None:
        event = JOB_EVENT_TYPES.get(status)
        if event is None or job.get("job_type") in _SILENT_JOB_TYPES or not job.get("user_id"):
            return
        user_id = job["user_id"]
        if without_hooks.get(user_id, 0.0) > time.monotonic():
            return
        run_at = job.get("run_at") or (job.get("schedule") or {}).get("execute_at")
        seed = f"{job.get('job_id')}|{run_at}|{status}"
        event_id = "evt_" + hashlib.sha256(seed.encode()).hexdigest()[:24]
        data = {"job_id": job.get("job_id"), "job_type": job.get("job_type"), "status": status}
        if error:
            data["error"] = error
        if not emit_event(db, user_id, event, data, event_id=event_id):
            without_hooks[user_id] = time.monotonic() + cache_seconds

    return listener
