"""Run the social sandbox on its own: ``python -m worker.sandbox.social [--port N]``.

Prints the environment that points a worker (``mmw dev``) at it, and a token per platform for
account ``demo`` that it accepts without registration.
"""

from __future__ import annotations

import argparse
import threading

from worker.clock import wall_clock
from worker.sandbox.social import sandbox_token, start_social_sandbox


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--ig-processing-polls", type=int, default=1)
    args = parser.parse_args()
    server = start_social_sandbox(
        clock=wall_clock, port=args.port, ig_processing_polls=args.ig_processing_polls
    )
    for name, value in server.settings_overrides().items():
        print(f"MMW_{name.upper()}={value}")
    for platform in ("facebook", "instagram", "twitter", "linkedin"):
        print(f"# {platform} token for account 'demo': {sandbox_token(platform, 'demo')}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
