"""A scheduler plugin for the crash tests: the first non-empty send blocks forever.

Loaded through ``MMW_PLUGINS`` with ``MMW_TEST_BLOCK_SEND=<file>``: the scheduler claims a batch,
then, inside ``dispatch_many``, writes ``<file>`` and never returns, so a test can SIGKILL it
between claim and send (claims recorded in MongoDB, no message in the broker).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import worker.scheduler

_real_dispatch = worker.scheduler.dispatch_many


def _blocking_dispatch(broker: Any, batch: list[Any]) -> None:
    if batch:
        Path(os.environ["MMW_TEST_BLOCK_SEND"]).write_text(str(len(batch)))
        threading.Event().wait()  # killed here
    _real_dispatch(broker, batch)


if os.environ.get("MMW_TEST_BLOCK_SEND"):
    worker.scheduler.dispatch_many = _blocking_dispatch
