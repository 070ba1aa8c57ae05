"""Actors, one module per job family. Importing this package registers every handler."""

from worker.actors import agents, analytics, email, noop, social, webhooks, zoho
from worker.actors.lifecycle import HANDLERS, JobContext, job_actor

__all__ = [
    "HANDLERS",
    "JobContext",
    "agents",
    "analytics",
    "email",
    "job_actor",
    "noop",
    "social",
    "webhooks",
    "zoho",
]
