"""The one outcome hierarchy every actor and integration raises.

The execution lifecycle (``worker.actors.lifecycle``) maps these onto the job record:

    JobError
    ├── RetryLater          transient: rate limit, 5xx, timeout. Retried with backoff
    │                       (``delay`` overrides the computed backoff, e.g. from Retry-After).
    ├── PermanentFailure    retrying cannot help: bad content, validation. Job fails now.
    │   └── TokenExpired    credentials expired or revoked; the caller marks the account.
    └── OutcomeUnknown      the request may have taken effect (crash/timeout after sending) and
                            could not be reconciled. Never retried blindly: needs a person.

Interrupts (Dramatiq's TimeLimitExceeded, Shutdown) stay BaseException, as in Dramatiq.
"""

from __future__ import annotations

__all__ = [
    "JobError",
    "OutcomeUnknown",
    "PermanentFailure",
    "RetryLater",
    "TokenExpired",
]


class JobError(Exception):
    """Base of the outcomes an actor may raise on purpose."""


class RetryLater(JobError):
    """Transient failure; try again after ``delay`` seconds (None: use the job's backoff)."""

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentFailure(JobError):
    """Retrying cannot succeed; the job fails with this message."""


class TokenExpired(PermanentFailure):
    """The credentials of a connected account are expired or revoked."""


class OutcomeUnknown(JobError):
    """A side effect may or may not have happened; a person must decide."""
