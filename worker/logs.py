"""Logging setup shared by the CLI commands and the worker entry."""

from __future__ import annotations

import logging

__all__ = ["configure_logging"]


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(processName)s %(name)s: %(message)s",
    )
    # One line per HTTP request drowns the job lines; errors still show.
    for noisy in ("httpx2", "httpcore2", "openai"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
