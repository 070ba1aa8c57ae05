"""Job statuses and the transitions between them (pure).

::

    pending ──claim──▶ processing ──success──▶ completed          (one-off)
       ▲                  │   │ └──success──▶ pending (next fire)  (recurring)
       │                  │   └──error, attempts left──▶ pending (backoff)
       │                  └──error, no attempts left / invalid / too late──▶ failed
       ├──retry (operator)── failed
       └──(any non-final)──cancel──▶ cancelled

A lost lease (crashed worker, message lost with Redis) takes ``processing`` back through a new
claim: the epoch increments, so the old message and the old worker can no longer change the job.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["FINAL", "JobStatus", "can_transition"]


class JobStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: Statuses that never change again on their own (an operator may retry a failed job).
FINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})

_ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset(
        {JobStatus.PROCESSING, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.PENDING}
    ),
    JobStatus.PROCESSING: frozenset(
        {
            JobStatus.COMPLETED,
            JobStatus.FAILED,
            JobStatus.PENDING,
            JobStatus.PROCESSING,
            JobStatus.CANCELLED,
        }
    ),
    JobStatus.FAILED: frozenset({JobStatus.PENDING}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


def can_transition(current: str, target: str) -> bool:
    """Whether a job in ``current`` may move to ``target`` (unknown statuses may only fail)."""
    try:
        source = JobStatus(current)
    except ValueError:
        return target == JobStatus.FAILED
    return JobStatus(target) in _ALLOWED[source]
