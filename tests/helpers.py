"""Small builders shared by tests."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any


def job_doc(job_type: str = "noop", *, at: dt.datetime, **fields: Any) -> dict[str, Any]:
    """A hand-written ``scheduled_jobs`` document, as an upstream app would insert it."""
    doc: dict[str, Any] = {
        "job_id": f"job_{uuid.uuid4().hex[:12]}",
        "user_id": "user_1",
        "job_type": job_type,
        "payload": {},
        "schedule": {"execute_at": at, "recurring": False},
        "status": "pending",
        "attempts": 0,
        "max_attempts": 3,
        "created_at": at,
    }
    doc.update(fields)
    return doc
