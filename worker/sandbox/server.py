"""A small threaded HTTP server with a router, JSON helpers and fault injection.

Built on the standard library so that sandboxes start in milliseconds in any test and need no
extra dependency. Platform emulators register handlers on a :class:`Router`; handlers receive a
:class:`Request` and return a :class:`Response`. :class:`Faults` injects 429 / 500 / slow responses
at a configurable rate with a seeded random generator, so fault runs are reproducible.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Faults", "Request", "Response", "Router", "SandboxServer"]


@dataclass
class Request:
    """One incoming request, decoded."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        """Form fields (urlencoded body) merged over query parameters, as Graph/Zoho accept."""
        merged = dict(self.query)
        ctype = self.headers.get("content-type", "")
        if self.body and "json" not in ctype:
            merged.update({k: v[-1] for k, v in parse_qs(self.body.decode()).items()})
        return merged

    def bearer(self) -> str | None:
        """The token of an ``Authorization: Bearer``/``Zoho-oauthtoken`` header, if any."""
        value = self.headers.get("authorization", "")
        for scheme in ("Bearer ", "Zoho-oauthtoken "):
            if value.startswith(scheme):
                return value[len(scheme) :]
        return None


@dataclass
class Response:
    """What a handler returns."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, body: Any, status: int = 200, **headers: str) -> Response:
        return cls(status=status, body=body, headers=dict(headers))


Handler = Callable[[Request], Response]


class Router:
    """Maps (method, path pattern) to handlers; ``{name}`` in a pattern captures a segment."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix.rstrip("/")
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        regex = re.compile(
            "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.prefix + pattern) + "/?$"
        )

        def register(handler: Handler) -> Handler:
            self._routes.append((method.upper(), regex, handler))
            return handler

        return register

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        for route_method, regex, handler in self._routes:
            found = regex.match(path)
            if found and route_method == method:
                return handler, found.groupdict()
        return None


@dataclass
class Faults:
    """Injected failures, each a probability per request (0 disables it).

    ``rate_limit``: answer 429 (the platform decides the body through ``on_rate_limit``);
    ``server_error``: answer 500; ``timeout``: sleep ``timeout_seconds`` before answering, which
    a client with a shorter timeout sees as a timeout; ``after_effect_timeout``: perform the
    request, then sleep, so the client times out *after* the side effect (an unknown outcome).
    """

    rate_limit: float = 0.0
    server_error: float = 0.0
    timeout: float = 0.0
    after_effect_timeout: float = 0.0
    timeout_seconds: float = 2.0
    seed: int = 0
    _random: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def roll(self, probability: float) -> bool:
        if probability <= 0:
            return False
        with self._lock:
            return self._random.random() < probability


class SandboxServer:
    """Serves routers on 127.0.0.1 in a background thread; use as a context manager.

    ``url`` is the base URL (``http://127.0.0.1:<port>``). Unmatched paths answer 404 JSON.
    ``faults`` applies to every route; ``on_rate_limit`` / ``on_server_error`` let a platform
    shape the injected error bodies like the real API does.
    """

    def __init__(
        self,
        *routers: Router,
        faults: Faults | None = None,
        on_rate_limit: Callable[[Request], Response] | None = None,
        on_server_error: Callable[[Request], Response] | None = None,
        port: int = 0,
    ) -> None:
        self.routers = list(routers)
        self.faults = faults or Faults()
        self.on_rate_limit = on_rate_limit or (
            lambda _req: Response.json({"error": "rate limited"}, 429, **{"Retry-After": "1"})
        )
        self.on_server_error = on_server_error or (
            lambda _req: Response.json({"error": "internal error"}, 500)
        )
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(  # a short poll makes stop() (every test) fast
            target=self._httpd.serve_forever, args=(0.05,), name="sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def dispatch(self, request: Request) -> Response:
        """Route one request, applying injected faults first."""
        with self._lock:
            self.requests.append(request)
        faults = self.faults
        if faults.roll(faults.rate_limit):
            return self.on_rate_limit(request)
        if faults.roll(faults.server_error):
            return self.on_server_error(request)
        if faults.roll(faults.timeout):
            time.sleep(faults.timeout_seconds)
        for router in self.routers:
            found = router.match(request.method, request.path)
            if found:
                handler, params = found
                request.params = params
                response = handler(request)
                if faults.roll(faults.after_effect_timeout):
                    time.sleep(faults.timeout_seconds)
                return response
        return Response.json({"error": f"no route for {request.method} {request.path}"}, 404)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                response = server.dispatch(request)
                payload = (
                    response.body
                    if isinstance(response.body, bytes)
                    else json.dumps(response.body).encode()
                )
                try:
                    self.send_response(response.status)
                    headers = {"Content-Type": "application/json", **response.headers}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): nothing to answer

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, format: str, *args: object) -> None:
                pass

        return _Handler
