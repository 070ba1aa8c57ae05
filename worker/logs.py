"""Logging setup shared by the CLI commands and the worker entry, with redaction of every record.

:func:`configure_logging` installs a :class:`RedactingFilter` on every handler of the root
logger (the one ``basicConfig`` creates, or the one Dramatiq's CLI created before importing
``worker.app``), so every record that reaches an output is redacted: its message with the
arguments merged in, its exception text and its stack. A handler added later must add
``RedactingFilter()`` itself.
"""

from __future__ import annotations

import logging

from worker.redact import redact_text

__all__ = ["RedactingFilter", "configure_logging"]


class RedactingFilter(logging.Filter):
    """Rewrites each record with :func:`worker.redact.redact_text` applied; drops nothing."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: keep both, as text
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = redact_text(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(processName)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    # One line per HTTP request drowns the job lines; errors still show.
    for noisy in ("httpx2", "httpcore2", "openai"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
