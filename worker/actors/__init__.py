"""Actors, one module per job family. Importing this package registers every handler."""

from worker.actors import analytics, noop, social
from worker.actors.lifecycle import HANDLERS, JobContext, job_actor

__all__ = ["HANDLERS", "JobContext", "analytics", "job_actor", "noop", "social"]
