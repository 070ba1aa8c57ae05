"""Loopback servers that emulate the external APIs (social platforms, Zoho, OpenAI).

Tests, ``mmw dev`` and the benchmarks talk to these instead of the internet. Each platform module
builds a :class:`~worker.sandbox.server.Router`; :class:`~worker.sandbox.server.SandboxServer`
serves one or more routers on 127.0.0.1.
"""

from worker.sandbox.server import Faults, Request, Response, Router, SandboxServer

__all__ = ["Faults", "Request", "Response", "Router", "SandboxServer"]
