"""SSRF guard: a webhook URL is parsed once, resolved once, and yields where delivery may connect.

The URL is parsed by httpx2, the library that connects, so the name that is checked is the name
connected to (IDNA 2008: ``faß.test`` is ``xn--fa-hia.test`` for both). The host is resolved
once; every address must be public unless ``allow_private`` (``MMW_WEBHOOK_ALLOW_PRIVATE``),
and the port must be allowed (``MMW_WEBHOOK_ALLOWED_PORTS``, 443 and 80 by default). The
result, a :class:`Target`, carries the approved addresses: delivery connects to exactly those
(``transport.py``) and never asks DNS again, so a resolver that answers differently the second
time gains nothing.

Not public: loopback, private, link-local, CGNAT, documentation, benchmarking, multicast,
reserved and unspecified addresses, IPv6 site-local (``fec0::/10``) and local-use NAT64
(``64:ff9b:1::/48``), and every IPv6 form that embeds an IPv4 address (IPv4-mapped, NAT64
``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo ``2001::/32``) whose embedded address is not public.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass

import httpx2

from worker.errors import PermanentFailure, RetryLater

__all__ = [
    "DEFAULT_PORTS",
    "Resolver",
    "Target",
    "TargetRefused",
    "TargetUnresolved",
    "check_target",
    "is_public_address",
    "parse_target",
    "resolve_host",
]

Resolver = Callable[[str, int], list[str]]

DEFAULT_PORTS: frozenset[int] = frozenset({80, 443})
MAX_URL_LENGTH = 2048

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_HOSTNAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Zs", "Zl", "Zp"}
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


class TargetRefused(PermanentFailure):
    """The webhook URL is not an allowed delivery target (retrying cannot change that)."""


class TargetUnresolved(RetryLater):
    """The webhook host did not resolve now (DNS may answer later)."""


@dataclass(frozen=True)
class Target:
    """A checked webhook URL: what to send to, and the only addresses to connect to."""

    url: httpx2.URL
    host: str  # ASCII (IDNA 2008) name: Host header, TLS server name, certificate check
    port: int
    addresses: tuple[str, ...]


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` (ASCII) resolves to, in the system resolver's preference order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _public_ipv4(ip: ipaddress.IPv4Address) -> bool:
    return ip.is_global and not (
        ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_loopback or ip.is_private
    )


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, NAT64, 6to4, Teredo), if any."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in _NAT64:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    return []


def _public(ip: _IP) -> bool:
    if isinstance(ip, ipaddress.IPv4Address):
        return _public_ipv4(ip)
    embedded = _embedded_ipv4(ip)
    if embedded:
        return all(_public_ipv4(v4) for v4 in embedded)
    if ip in _SITE_LOCAL or ip in _NAT64_LOCAL:
        return False
    return ip.is_global and not (
        ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_private
    )


def is_public_address(address: str) -> bool:
    """True for globally routable unicast addresses only (see the module docstring)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return _public(ip)


def _unsafe_character(url: str) -> str | None:
    for index, char in enumerate(url):
        if char.isspace() or unicodedata.category(char) in _UNSAFE_CATEGORIES:
            return f"U+{ord(char):04X} at position {index}"
    return None


def parse_target(url: str, *, ports: Collection[int] = DEFAULT_PORTS) -> tuple[httpx2.URL, int]:
    """The parsed URL and its port, or :class:`TargetRefused` with the reason (no DNS)."""
    if not isinstance(url, str) or not url:
        raise TargetRefused("webhook URL is missing")
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"webhook URL is longer than {MAX_URL_LENGTH} characters")
    unsafe = _unsafe_character(url)
    if unsafe:
        raise TargetRefused(f"webhook URL contains a control or whitespace character ({unsafe})")
    try:
        parsed = httpx2.URL(url)
    except (httpx2.InvalidURL, ValueError, UnicodeError) as exc:
        raise TargetRefused(f"webhook URL is invalid: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise TargetRefused("webhook URL must be an absolute http(s) URL")
    if parsed.userinfo:
        raise TargetRefused("webhook URL must not carry credentials")
    port = parsed.port if parsed.port is not None else (443 if parsed.scheme == "https" else 80)
    if not 0 < port < 65536 or port not in ports:
        allowed = ", ".join(str(p) for p in sorted(ports))
        raise TargetRefused(f"webhook URL port {port} is not allowed (allowed: {allowed})")
    return parsed, port


def _literal_address(host: str) -> str | None:
    """The address of an IP-literal host, None for a name (IPv6 literals must parse)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        if ":" in host:
            raise TargetRefused(f"webhook URL has an invalid IPv6 address {host!r}") from None
        if not _HOSTNAME.fullmatch(host):
            raise TargetRefused(f"webhook URL has an invalid host name {host!r}") from None
        return None


def check_target(
    url: str,
    *,
    allow_private: bool,
    ports: Collection[int] = DEFAULT_PORTS,
    resolve: Resolver = resolve_host,
) -> Target:
    """Parse and resolve ``url`` once; :class:`TargetRefused` if it may not be used.

    Raises :class:`TargetUnresolved` (retryable) when the name does not resolve now.
    """
    parsed, port = parse_target(url, ports=ports)
    host = parsed.raw_host.decode("ascii")
    literal = _literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = list(resolve(host, port))
        except (OSError, UnicodeError) as exc:
            raise TargetUnresolved(f"webhook host {host!r} does not resolve ({exc})") from None
        if not addresses:
            raise TargetUnresolved(f"webhook host {host!r} does not resolve")
    if not allow_private:
        refused = [a for a in addresses if not is_public_address(a)]
        if refused:
            raise TargetRefused(
                f"webhook host {host!r} resolves to a non-public address ({refused[0]})"
            )
    return Target(url=parsed, host=host, port=port, addresses=tuple(addresses))
