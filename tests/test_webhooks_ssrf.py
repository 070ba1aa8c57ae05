"""The SSRF guard: one parse (IDNA 2008), one resolution, public addresses only, pinned connections.

Nothing here leaves loopback: names are answered by fake resolvers, public and private
addresses appear only as strings, and a connection to anything but 127.0.0.1 is refused by a
recording network backend before a socket is opened.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import httpcore2
import httpx2
import pytest

from worker.integrations.webhooks import (
    Deadline,
    Network,
    PinnedBackend,
    Target,
    TargetRefused,
    TargetUnresolved,
    attempt_delivery,
    check_target,
    generate_secret,
    is_public_address,
    parse_target,
)
from worker.sandbox import Request, Response, Router, SandboxServer

PUBLIC = "93.184.216.34"


class FakeResolver:
    """Answers from a script, one answer per call (the last one repeats); records the names."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        return self.answers[min(len(self.asked), len(self.answers)) - 1]


class LoopbackOnly(httpcore2.NetworkBackend):
    """The test network: records every connect, opens sockets to 127.0.0.1 only."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []
        self._real = httpcore2.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        self.connects.append((host, port))
        if host != "127.0.0.1":
            raise httpcore2.ConnectError(f"test network: {host} is not reachable")
        return self._real.connect_tcp(host, port, timeout, local_address, socket_options)


class RawServer:
    """A loopback TCP server that counts connections and runs ``serve(conn)`` for each."""

    def __init__(self, serve: Callable[[socket.socket], None] | None = None) -> None:
        self.serve = serve or (lambda conn: None)
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the client went away: tests want that
            self.serve(conn)

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._listener.close()


def send(target: Target, *, timeout: float = 2.0, network: Network | None = None, **kw: Any):
    return attempt_delivery(
        target, secret=generate_secret(), msg_id="m", body=b"{}", now=datetime.now(UTC),
        timeout=timeout, network=network, **kw,
    )  # fmt: skip


# ---------------------------------------------------------------------------- address policy
@pytest.mark.parametrize(
    ("address", "public"),
    [
        (PUBLIC, True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False),
        ("192.168.1.1", False), ("169.254.169.254", False), ("100.64.0.1", False),
        ("0.0.0.0", False), ("192.0.2.1", False), ("198.18.0.1", False), ("240.0.0.1", False),
        ("255.255.255.255", False), ("224.0.0.1", False),
        ("::1", False), ("::", False), ("fe80::1", False), ("fe80::1%eth0", False),
        ("fc00::1", False), ("fd12:3456::1", False), ("ff02::1", False), ("2001:db8::1", False),
        ("fec0::1", False), ("feff::1", False),  # site-local (deprecated) fec0::/10
        ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False), (f"::ffff:{PUBLIC}", True),
        ("::127.0.0.1", False),  # IPv4-compatible (deprecated)
        ("2002:a9fe:a9fe::", False), ("2002:7f00:1::1", False), ("2002:0a00:0001::", False),
        ("2002:5db8:d822::1", True),  # 6to4 embedding 93.184.216.34
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo, client 192.0.2.45
        ("2001:0:5db8:d822:0:0:a246:27dd", True),  # Teredo, server and client public
        ("2001:0:5db8:d822:0:0:80ff:fffe", False),  # Teredo, client 127.0.0.1
        ("64:ff9b::7f00:1", False), ("64:ff9b::a9fe:a9fe", False), ("64:ff9b::5db8:d822", True),
        ("64:ff9b:1::5db8:d822", False),  # local-use NAT64
        ("not an address", False), ("", False),
    ],
)  # fmt: skip
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public_address(address) is public


@pytest.mark.parametrize(
    "addresses", [["127.0.0.1"], [PUBLIC, "10.0.0.1"], ["2002:a9fe:a9fe::"], ["fec0::1"]]
)
def test_any_non_public_address_refuses_the_target(addresses: list[str]) -> None:
    resolve = FakeResolver(addresses)
    with pytest.raises(TargetRefused, match="non-public address"):
        check_target("https://hooks.example.com/in", allow_private=False, resolve=resolve)
    allowed = check_target("https://hooks.example.com/in", allow_private=True, resolve=resolve)
    assert allowed.addresses == tuple(addresses)


def test_literal_addresses_are_checked_without_dns() -> None:
    resolve = FakeResolver()
    for url in ("http://127.0.0.1/", "http://[::1]/", "http://[::ffff:7f00:1]/"):
        with pytest.raises(TargetRefused, match="non-public"):
            check_target(url, allow_private=False, resolve=resolve)
    assert check_target(f"http://{PUBLIC}/", allow_private=False, resolve=resolve).addresses == (
        PUBLIC,
    )
    assert resolve.asked == []


# --------------------------------------------------------------------- parsing, once, IDNA 2008
def test_the_name_checked_is_the_name_httpx2_connects_to() -> None:
    """IDNA 2003 maps ß to ss (``fass.test``); httpx2 connects with IDNA 2008."""
    resolve = FakeResolver([PUBLIC])
    target = check_target("http://faß.test/hook", allow_private=False, resolve=resolve)
    assert resolve.asked == [("xn--fa-hia.test", 80)]
    assert target.host == "xn--fa-hia.test" == httpx2.URL("http://faß.test/").raw_host.decode()
    assert target.url.raw_host == b"xn--fa-hia.test" and target.addresses == (PUBLIC,)


def test_resolved_once() -> None:
    resolve = FakeResolver([PUBLIC], ["127.0.0.1"])
    target = check_target("https://Hooks.Example.com/in", allow_private=False, resolve=resolve)
    assert resolve.asked == [("hooks.example.com", 443)] and target.addresses == (PUBLIC,)


@pytest.mark.parametrize(
    ("url", "port"),
    [("https://h.example/", 443), ("http://h.example/", 80), ("https://h.example:80/", 80),
     ("http://h.example:443/", 443)],
)  # fmt: skip
def test_default_ports(url: str, port: int) -> None:
    assert parse_target(url)[1] == port


@pytest.mark.parametrize(
    "url", ["https://h.example:22/", "http://h.example:6379/", "https://h.example:8443/",
            "http://h.example:0/", "http://h.example:99999/"],
)  # fmt: skip
def test_other_ports_need_the_setting(url: str) -> None:
    with pytest.raises(TargetRefused, match="port"):
        parse_target(url)
    if "8443" in url:
        assert parse_target(url, ports={443, 8443})[1] == 8443


@pytest.mark.parametrize(
    "char", ["\t", "\n", "\r", "\x00", "\x7f", " ", "\x85", "\xa0", "\u200b", "\u2028", "\ufeff"]
)
def test_control_and_whitespace_characters_are_refused(char: str) -> None:
    for url in (f"https://h.example/{char}x", f"https://h{char}.example/", f"{char}https://h.ex/"):
        with pytest.raises(TargetRefused, match="control or whitespace character"):
            parse_target(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/x", "absolute http"), ("/relative", "absolute http"),
        ("//example.com/x", "absolute http"), ("http:///x", "absolute http"),
        ("https://user:pw@example.com/", "credentials"), ("https://token@example.com/", "cred"),
        ("http://☃.net/", "invalid"), ("http://%65xample.com/", "invalid host"),
        ("http://[::1/", "invalid"), ("http://[fe80::zz]/", "invalid"),
        ("https://example.com/" + "a" * 3000, "longer than"), ("", "missing"),
    ],
)  # fmt: skip
def test_malformed_targets_are_refused_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(TargetRefused, match=reason):
        check_target(url, allow_private=True, resolve=FakeResolver([PUBLIC]))


def test_unresolvable_host_is_retryable() -> None:
    def fails(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(TargetUnresolved, match="does not resolve"):
        check_target("http://no-such-host.invalid/", allow_private=True, resolve=fails)
    with pytest.raises(TargetUnresolved, match="does not resolve"):
        check_target("http://empty.example/", allow_private=True, resolve=FakeResolver([]))


def test_real_resolution_of_localhost() -> None:
    with pytest.raises(TargetRefused):
        check_target("http://localhost/hook", allow_private=False)
    assert "127.0.0.1" in check_target("http://localhost/hook", allow_private=True).addresses


# ------------------------------------------------------------------------- pinned connections
def test_rebinding_resolver_never_reaches_loopback() -> None:
    """Public to the check, 127.0.0.1 afterwards: the connection goes to the checked address.

    ``localhost`` is also what the system resolver answers 127.0.0.1 for, so a transport that
    resolved the name again (itself or through the OS) would reach the counting server.
    """
    network = Network(resolve=FakeResolver([PUBLIC], ["127.0.0.1"]), backend=LoopbackOnly())
    with RawServer() as server:
        url = f"http://localhost:{server.port}/hook"
        target = check_target(
            url, allow_private=False, ports={server.port}, resolve=network.resolve
        )
        attempt = send(target, network=network)
    assert attempt.status is None and "not reachable" in str(attempt.error)
    assert network.backend.connects == [(PUBLIC, server.port)]  # type: ignore[union-attr]
    assert network.resolve.asked == [("localhost", server.port)]  # type: ignore[attr-defined]
    assert server.connections == 0


def test_connection_goes_to_the_checked_address_with_the_original_host() -> None:
    seen: list[Request] = []
    router = Router()
    router.route("POST", "/hook")(lambda r: seen.append(r) or Response.json({}, 204))
    resolve = FakeResolver(["127.0.0.1"], ["10.255.255.1"])
    with SandboxServer(router) as server:
        port = httpx2.URL(server.url).port
        url = f"http://hooks.example:{port}/hook"
        target = check_target(url, allow_private=True, ports={port}, resolve=resolve)
        attempt = send(target, network=Network(resolve=resolve, backend=LoopbackOnly()))
    assert attempt.status == 204 and len(resolve.asked) == 1
    assert seen[0].headers["host"] == f"hooks.example:{port}"


def test_tls_server_name_is_the_idna_2008_host() -> None:
    """The TLS handshake to the pinned address names the URL's host (SNI and certificate)."""
    names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # no certificate: the handshake fails
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)

    def handshake(conn: socket.socket) -> None:
        with contextlib.suppress(ssl.SSLError):
            context.wrap_socket(conn, server_side=True)

    with RawServer(handshake) as server:
        url = f"https://faß.test:{server.port}/hook"
        resolve = FakeResolver(["127.0.0.1"])
        target = check_target(url, allow_private=True, ports={server.port}, resolve=resolve)
        attempt = send(target, network=Network(resolve=resolve, backend=LoopbackOnly()))
    assert attempt.status is None and server.connections == 1
    assert names == ["xn--fa-hia.test"]


def test_backend_refuses_any_other_host_or_port() -> None:
    target = Target(httpx2.URL("http://a.example/"), "a.example", 80, (PUBLIC,))
    recorder = LoopbackOnly()
    backend = PinnedBackend(target, Deadline(5), recorder)
    for host, port in [("b.example", 80), ("a.example", 8080), (PUBLIC, 80), ("127.0.0.1", 80)]:
        with pytest.raises(httpcore2.ConnectError, match="not the checked webhook target"):
            backend.connect_tcp(host, port)
    with pytest.raises(httpcore2.ConnectError):
        backend.connect_unix_socket("/var/run/docker.sock")
    assert recorder.connects == []


def test_next_checked_address_is_tried_when_one_refuses() -> None:
    with RawServer(lambda conn: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) as s:
        target = Target(
            httpx2.URL(f"http://h.example:{s.port}/"), "h.example", s.port, (PUBLIC, "127.0.0.1")
        )
        backend = LoopbackOnly()
        attempt = send(target, network=Network(backend=backend))
    assert attempt.status == 200 and backend.connects == [(PUBLIC, s.port), ("127.0.0.1", s.port)]


# ------------------------------------------------------------------- bounded answer, deadline
def loopback_target(port: int) -> Target:
    return check_target(f"http://127.0.0.1:{port}/hook", allow_private=True, ports={port})


def test_response_body_is_read_up_to_the_cap() -> None:
    """A receiver answering 200 MB costs the worker at most the cap (64 KiB by default)."""
    total = 200 * 1024 * 1024
    sent: list[int] = []

    def flood(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n".encode())
        chunk, count = b"x" * 65536, 0
        try:
            while count < total:
                conn.sendall(chunk)
                count += len(chunk)
        finally:
            sent.append(count)

    with RawServer(flood) as server:
        attempt = send(loopback_target(server.port))
        small = send(loopback_target(server.port), max_response_bytes=1000)
        # the flood stops when the worker closes the connection
        while len(sent) < 2:
            threading.Event().wait(0.01)
    assert attempt.status == 200 and attempt.response_bytes == 64 * 1024
    assert small.status == 200 and small.response_bytes == 1000
    assert max(sent) < total / 4


def test_whole_attempt_ends_by_the_deadline() -> None:
    """The status line trickles in one byte at a time: each read is quick, the whole is not."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    closed = threading.Event()

    def trickle(conn: socket.socket) -> None:
        conn.recv(65536)
        try:
            for byte in answer:  # 40 bytes x 0.05 s = 2 s, far beyond the 0.3 s deadline
                conn.sendall(bytes([byte]))
                if closed.wait(0.05):
                    return
        finally:
            closed.set()

    with RawServer(trickle) as server:
        attempt = send(loopback_target(server.port), timeout=0.3)
        closed.set()
    assert (attempt.status, attempt.error) == (None, "timeout")


def test_deadline_clamps_every_timeout() -> None:
    now = [100.0]
    deadline = Deadline(5.0, clock=lambda: now[0])
    assert deadline.clamp(None, TimeoutError) == 5.0
    assert deadline.clamp(2.0, TimeoutError) == 2.0
    now[0] = 104.0
    assert deadline.clamp(2.0, TimeoutError) == 1.0
    now[0] = 105.0
    with pytest.raises(TimeoutError, match="deadline"):
        deadline.clamp(2.0, TimeoutError)
