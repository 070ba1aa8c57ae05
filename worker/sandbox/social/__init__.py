"""One loopback server emulating Facebook, Instagram, X and LinkedIn for tests and ``mmw dev``.

    server = start_social_sandbox(Faults(server_error=0.2), clock=wall_clock)
    settings = Settings(**social_settings_overrides(server.url))
    server.state.add_account("twitter", "42", "token-1")
    ...
    server.posts("twitter")          # every post the sandbox accepted

Each platform lives under its own prefix (``/graph/v21.0``, ``/x``, ``/linkedin``) and answers
injected faults (:class:`~worker.sandbox.server.Faults`) with that platform's error bodies.
"""

from __future__ import annotations

from typing import Any

from worker.clock import Clock
from worker.sandbox.server import Faults, Request, Response, SandboxServer
from worker.sandbox.social.graph import (
    GRAPH_PREFIX,
    GRAPH_VERSION,
    graph_error_response,
    graph_router,
)
from worker.sandbox.social.linkedin import LINKEDIN_PREFIX, linkedin_router
from worker.sandbox.social.state import SandboxPost, SocialState, sandbox_token
from worker.sandbox.social.x import X_PREFIX, problem, x_router

__all__ = [
    "SandboxPost",
    "SocialSandboxServer",
    "SocialState",
    "sandbox_token",
    "social_settings_overrides",
    "start_social_sandbox",
]


def social_settings_overrides(url: str) -> dict[str, str]:
    """Settings fields that point the social clients at a sandbox served at ``url``."""
    return {
        "graph_base_url": f"{url}{GRAPH_PREFIX}/{GRAPH_VERSION}",
        "x_base_url": f"{url}{X_PREFIX}",
        "linkedin_base_url": f"{url}{LINKEDIN_PREFIX}",
    }


def _injected_rate_limit(request: Request) -> Response:
    """A 429-class answer in the shape of the platform the request was meant for."""
    if request.path.startswith(X_PREFIX):
        response = problem(429, "Too Many Requests", "Too Many Requests")
        response.headers.update({"x-rate-limit-remaining": "0", "x-rate-limit-reset": "0"})
        return response
    if request.path.startswith(LINKEDIN_PREFIX):
        return Response.json({"message": "Too many requests", "status": 429}, 429)
    return graph_error_response(4, "(#4) Application request limit reached", status=400)


def _injected_server_error(request: Request) -> Response:
    if request.path.startswith(X_PREFIX):
        return problem(503, "Service Unavailable", "Service Unavailable")
    if request.path.startswith(LINKEDIN_PREFIX):
        return Response.json({"message": "Internal Server Error", "status": 500}, 500)
    return graph_error_response(
        2, "An unexpected error has occurred. Please retry your request later.", status=500
    )


class SocialSandboxServer(SandboxServer):
    """A :class:`SandboxServer` serving the four platforms around one :class:`SocialState`."""

    def __init__(self, state: SocialState, *, faults: Faults | None = None, port: int = 0) -> None:
        self.state = state
        super().__init__(
            graph_router(self.state),
            x_router(self.state),
            linkedin_router(self.state),
            faults=faults,
            on_rate_limit=_injected_rate_limit,
            on_server_error=_injected_server_error,
            port=port,
        )

    def posts(self, platform: str | None = None) -> list[SandboxPost]:
        """Every post accepted so far (of one platform), in acceptance order."""
        return self.state.posts(platform)

    def settings_overrides(self) -> dict[str, str]:
        return social_settings_overrides(self.url)


def start_social_sandbox(
    faults: Faults | None = None, *, clock: Clock, port: int = 0, **state_options: Any
) -> SocialSandboxServer:
    """Start the social sandbox on ``clock`` in a background thread; stop it with ``.stop()``."""
    state = SocialState(clock=clock, **state_options)
    return SocialSandboxServer(state, faults=faults, port=port).start()
