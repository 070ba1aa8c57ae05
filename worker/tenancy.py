"""Who may act on what: a job of one user touches only that user's documents (pure).

Every actor that loads a resource named in a payload (a post, a campaign, a webhook...) checks it
with :func:`require_owner` before acting: the resource must carry the job's ``user_id``, exactly.
A resource without ``user_id`` belongs to nobody, so no job acts on it. The refusal is permanent
(another attempt would find the same owner) and says the same thing whether the resource is
missing or someone else's, so a job cannot probe other users' ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from worker.errors import PermanentFailure

__all__ = ["belongs_to", "require_owner"]

D = TypeVar("D", bound=Mapping[str, Any])


def belongs_to(doc: Mapping[str, Any] | None, user_id: str | None) -> bool:
    """Whether ``doc`` is owned by ``user_id`` (both present, non-empty and equal)."""
    if doc is None or not isinstance(user_id, str) or not user_id:
        return False
    owner = doc.get("user_id")
    return isinstance(owner, str) and owner == user_id


def require_owner(doc: D | None, user_id: str | None, what: str) -> D:
    """``doc`` if it belongs to ``user_id``; else a permanent failure naming ``what``."""
    if doc is None or not belongs_to(doc, user_id):
        raise PermanentFailure(f"{what} does not exist or belongs to another user")
    return doc
