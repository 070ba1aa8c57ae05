"""One-line messages for the failures an operator meets at the command line.

A command that cannot reach MongoDB or Redis, finds its port taken, or runs away from the
embedded database's folder says so in one line (naming the setting to check) instead of a
traceback. URLs are shown without their credentials.
"""

from __future__ import annotations

import errno
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pymongo.errors import ConfigurationError, ConnectionFailure, PyMongoError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from worker.settings import Settings

__all__ = ["describe", "missing_embedded_folder", "safe_url"]


def safe_url(url: str | None) -> str:
    """``url`` without user name and password (they must never reach a terminal or a log)."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def describe(exc: BaseException, settings: Settings | None) -> str | None:
    """The one-line message for a failure an operator can fix, or None for a real bug."""
    if isinstance(exc, ConnectionFailure | ConfigurationError):
        where = safe_url(settings.mongodb_url) if settings else "MONGODB_URL"
        return (
            f"cannot reach MongoDB at {where} ({type(exc).__name__}: {_first_line(exc)}); "
            "is the server running and MONGODB_URL right?"
        )
    if isinstance(exc, PyMongoError):
        return f"MongoDB refused the operation: {_first_line(exc)}"
    if isinstance(exc, RedisConnectionError):
        where = safe_url(settings.broker_url) if settings and settings.broker_url else "Redis"
        return (
            f"cannot reach Redis at {where} ({_first_line(exc)}); is it running and "
            "BROKER_URL right?"
        )
    if isinstance(exc, RedisError):
        return f"Redis refused the operation: {_first_line(exc)}"
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return (
            f"a port is already in use ({_first_line(exc)}): stop the other process or give "
            "this one its own port (MMW_METRICS_PORT, MMW_WORKER_METRICS_PORT, MMW_WEB_PORT)"
        )
    return None


def missing_embedded_folder(settings: Settings) -> str | None:
    """Why a command that only reads or operates must not create an empty embedded database."""
    if settings.mongodb_url:
        return None
    folder = Path(settings.embedded_path).absolute()
    if folder.is_dir():
        return None
    return (
        f"no embedded database at {folder}: run this command in the folder where `mmw dev` runs "
        "(or `mmw db init` to create one here), or set MMW_EMBEDDED_PATH / MONGODB_URL"
    )
