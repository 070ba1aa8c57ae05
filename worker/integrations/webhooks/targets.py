"""SSRF guard: a webhook URL may only point at public addresses unless configuration allows more.

Every address the host resolves to is checked (a name with one public and one private address
is refused). Private, loopback, link-local, multicast, reserved and unspecified addresses, and
IPv4 addresses mapped into IPv6, are refused unless ``allow_private``
(``MMW_WEBHOOK_ALLOW_PRIVATE``).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from worker.errors import PermanentFailure

__all__ = ["Resolver", "TargetRefused", "check_target", "is_public_address", "resolve_host"]

Resolver = Callable[[str, int], list[str]]


class TargetRefused(PermanentFailure):
    """The webhook URL is not an allowed delivery target."""


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def is_public_address(address: str) -> bool:
    """True for globally routable unicast addresses only."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def check_target(url: str, *, allow_private: bool, resolve: Resolver = resolve_host) -> list[str]:
    """The resolved addresses of ``url``; raises :class:`TargetRefused` if it may not be used."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("webhook URL must be an absolute http(s) URL")
    if parts.username or parts.password:
        raise TargetRefused("webhook URL must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("webhook URL has an invalid port") from None
    try:
        addresses = resolve(parts.hostname, port)
    except (OSError, UnicodeError):
        raise TargetRefused(f"webhook host {parts.hostname!r} does not resolve") from None
    if not addresses:
        raise TargetRefused(f"webhook host {parts.hostname!r} does not resolve")
    if not allow_private:
        refused = [a for a in addresses if not is_public_address(a)]
        if refused:
            raise TargetRefused(
                f"webhook host {parts.hostname!r} resolves to a non-public address ({refused[0]})"
            )
    return addresses
