"""Extra modules named in ``MMW_PLUGINS`` that register job types and actors.

Every process (scheduler, workers, ``mmw dev``) imports them, so a job type a plugin registers is
validated by the scheduler and run by the workers alike.
"""

from __future__ import annotations

import importlib

from worker.settings import Settings

__all__ = ["load_plugins"]


def load_plugins(settings: Settings) -> list[str]:
    for name in settings.plugins:
        importlib.import_module(name)
    return list(settings.plugins)
