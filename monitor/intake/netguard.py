"""SSRF guard for fetching article pages named by untrusted feeds.

Feed URLs come from admins and are not guarded; links inside feeds are untrusted, so before
fetching one (and every redirect hop) its host must resolve only to public addresses.
Limitation: httpx resolves the name again when connecting, so a DNS answer that changes
between check and connect (rebinding) is not caught; pin addresses at the transport to
close that gap.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from monitor.errors import FetchError

__all__ = ["METADATA_ADDRESSES", "check_public_url", "is_blocked_address", "request_hook"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., Sequence[tuple[Any, ...]]]

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IPv6
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    }
)
_SCHEMES = {"http": 80, "https": 443}


def _unwrap(ip: IPAddress) -> IPAddress:
    """The IPv4 address inside IPv4-mapped / 6to4 / NAT64-style IPv6 forms, else `ip`."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in ipaddress.ip_network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def is_blocked_address(ip: IPAddress, *, allow_private: bool = False) -> bool:
    """True for addresses a server-side fetch must not reach."""
    addr = _unwrap(ip)
    if ip in METADATA_ADDRESSES or addr in METADATA_ADDRESSES:
        return True
    if addr.is_multicast or addr.is_unspecified or addr.is_reserved:
        return True
    private = addr.is_private or addr.is_loopback or addr.is_link_local or not addr.is_global
    return private and not allow_private


def _blocked(url: str, why: str) -> FetchError:
    """The error raised for a refused URL (host only, never query or credentials)."""
    try:
        host = urlsplit(url).hostname or "?"
    except ValueError:
        host = "?"
    return FetchError("blocked_address", f"refused {host}: {why}")


def check_public_url(
    url: str, *, allow_private: bool = False, resolve: Resolver = socket.getaddrinfo
) -> tuple[str, ...]:
    """Raise FetchError(blocked_address) unless every address `url`'s host resolves to is
    public; returns the addresses checked."""
    try:
        scheme, host, port = _scheme_host_port(url)
    except ValueError as exc:
        raise _blocked(url, "malformed URL") from exc
    if scheme not in _SCHEMES:
        raise _blocked(url, f"scheme {scheme or 'none'!r} is not http(s)")
    if not host:
        raise _blocked(url, "no host")
    addresses = _resolve(host, port, resolve)
    for address in addresses:
        if is_blocked_address(address, allow_private=allow_private):
            raise _blocked(url, f"resolves to non-public address {address}")
    return tuple(str(a) for a in addresses)


def _scheme_host_port(url: str) -> tuple[str, str | None, int]:
    """The lower-case scheme, host and port (the scheme's default if none) of a URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, parts.hostname, parts.port or _SCHEMES.get(scheme, 0)


def _resolve(host: str, port: int, resolve: Resolver) -> list[IPAddress]:
    """All addresses of `host` (a literal is its own answer)."""
    try:
        return [ipaddress.ip_address(host.split("%", 1)[0])]
    except ValueError:
        pass
    try:
        infos = resolve(host, port, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise FetchError("dns", f"cannot resolve {host}") from exc
    found: list[IPAddress] = []
    for info in infos:
        try:
            found.append(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
        except (ValueError, IndexError, TypeError):
            continue
    if not found:
        raise FetchError("dns", f"no addresses for {host}")
    return found


def request_hook(
    *, allow_private: bool = False, resolve: Resolver = socket.getaddrinfo
) -> Callable[[httpx.Request], None]:
    """An httpx `event_hooks={"request": [...]}` hook that guards every request and redirect hop."""

    def guard(request: httpx.Request) -> None:
        check_public_url(str(request.url), allow_private=allow_private, resolve=resolve)

    return guard


def redirect_guard(
    *, allow_private: bool = False, resolve: Resolver = socket.getaddrinfo
) -> Callable[[str, str], None]:
    """A check for feed redirects: a feed on a public host may not bounce the poller to a
    private, loopback, link-local or metadata address (SSRF through a compromised or hostile
    publisher). A feed the admin configured on a private address (an intranet, a test server)
    may redirect within its network; metadata addresses stay refused even then."""

    def check(origin: str, target: str) -> None:
        private_origin = allow_private or _on_private_network(origin, resolve)
        check_public_url(target, allow_private=private_origin, resolve=resolve)

    return check


def _on_private_network(url: str, resolve: Resolver) -> bool:
    """Whether every address of `url`'s host is private: a feed on an intranet or test server.

    All of them, not any: a hostile publisher's DNS can add one private address to a public
    host's answer to unlock redirects into the poller's network. An unresolvable host is no
    private one either.
    """
    try:
        _, host, port = _scheme_host_port(url)
        if not host:
            return False
        addresses = _resolve(host, port, resolve)
    except (ValueError, FetchError):
        return False
    return all(is_blocked_address(a) and not is_blocked_address(a, allow_private=True)
               for a in addresses)  # fmt: skip
