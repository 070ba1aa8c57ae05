"""The public surfaces of the Zoho and webhook packages name only what exists."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "worker.integrations.zoho",
        "worker.integrations.zoho.tokens",
        "worker.integrations.webhooks",
        "worker.sandbox.zoho",
        "worker.webhooks",
        "worker.actors.zoho",
        "worker.actors.email",
        "worker.actors.webhooks",
    ],
)
def test_all_names_exist(module: str) -> None:
    loaded = importlib.import_module(module)
    missing = [name for name in loaded.__all__ if not hasattr(loaded, name)]
    assert missing == []
    assert len(set(loaded.__all__)) == len(loaded.__all__)
