"""Child process of the SIGKILL test: run one post_social message and die right after the
platform accepted a post, before the worker could write the result.

    python -m tests.social_crash_child <db folder> <settings json> <job_id> <run_key> <epoch>
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import worker.actors  # noqa: F401 - registers handlers
from worker.actors import social
from worker.actors.lifecycle import Runner
from worker.db.client import open_embedded
from worker.settings import Settings


def main(folder: str, settings_json: str, job_id: str, run_key: str, epoch: str) -> None:
    settings = Settings.model_validate_json(settings_json)
    real_build = social.build_client

    def build(platform: str, config: Settings, **kwargs: Any) -> Any:
        client = real_build(platform, config, **kwargs)
        publish = client.publish

        def publish_then_die(content: Any, account: Any) -> Any:
            publish(content, account)
            os.kill(os.getpid(), signal.SIGKILL)

        client.publish = publish_then_die  # type: ignore[method-assign]
        return client

    social.build_client = build  # type: ignore[assignment]
    runner = Runner(open_embedded(folder, "mmw_test"), settings)
    runner.execute("post_social", job_id, run_key, int(epoch))


if __name__ == "__main__":
    main(*sys.argv[1:6])
