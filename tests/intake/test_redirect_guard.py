"""Feed redirects may not turn the poller against its own network (SSRF)."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from monitor.domain import Validators
from monitor.errors import FetchError
from monitor.intake.fetch import FetchLimits, fetch_feed, make_client
from monitor.intake.netguard import redirect_guard

ADDRESSES = {
    "news.example.org": "93.184.216.34",
    "mirror.example.net": "93.184.216.35",
    "intranet.corp": "10.1.2.3",
    "metadata.internal": "169.254.169.254",
    "localhost": "127.0.0.1",
}


def fake_resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
    address = ADDRESSES.get(host, host)
    try:
        socket.inet_aton(address)
    except OSError as exc:
        raise socket.gaierror(f"unknown host {host}") from exc
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 80))]


@pytest.mark.parametrize(
    ("origin", "target", "allowed"),
    [
        ("http://news.example.org/rss", "https://mirror.example.net/rss", True),
        ("http://news.example.org/rss", "http://169.254.169.254/latest/meta-data/", False),
        ("http://news.example.org/rss", "http://metadata.internal/", False),
        ("http://news.example.org/rss", "http://127.0.0.1:8080/admin", False),
        ("http://news.example.org/rss", "http://intranet.corp/rss", False),
        ("http://news.example.org/rss", "file:///etc/passwd", False),
        # An admin's own private feed may move within its network, never to metadata.
        ("http://intranet.corp/rss", "http://10.9.9.9/rss", True),
        ("http://127.0.0.1:8000/rss", "http://localhost:8001/rss", True),
        ("http://intranet.corp/rss", "http://169.254.169.254/", False),
    ],
)
def test_redirect_guard(origin: str, target: str, allowed: bool) -> None:
    check = redirect_guard(resolve=fake_resolve)
    if allowed:
        check(origin, target)
    else:
        with pytest.raises(FetchError) as info:
            check(origin, target)
        assert info.value.kind == "blocked_address"


def test_allow_private_addresses_still_refuses_metadata() -> None:
    check = redirect_guard(allow_private=True, resolve=fake_resolve)
    check("http://news.example.org/rss", "http://intranet.corp/rss")
    with pytest.raises(FetchError):
        check("http://news.example.org/rss", "http://169.254.169.254/")


def test_fetch_refuses_a_redirect_from_a_public_feed_to_metadata() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.host == "news.example.org":
            return httpx.Response(302, headers={"Location": "http://169.254.169.254/creds"})
        return httpx.Response(200, text="secret credentials")

    limits = FetchLimits()
    client = make_client(limits, trust_env=False)
    client._transport = httpx.MockTransport(handler)  # boundary test: no socket needed
    with pytest.raises(FetchError) as info:
        fetch_feed(
            client,
            "http://news.example.org/rss",
            Validators(),
            limits,
            redirect_guard=redirect_guard(resolve=fake_resolve),
        )
    assert info.value.kind == "blocked_address"
    assert seen == ["http://news.example.org/rss"]  # the metadata address was never asked
    client.close()


def test_a_public_host_whose_dns_adds_a_private_address_may_not_redirect_inward() -> None:
    """A hostile publisher controls its DNS: one private address among public ones, or no
    answer at all, must not make its feed count as an intranet feed."""
    answers = {"evil.example": ["93.184.216.34", "10.0.0.1"], "intranet.corp": ["10.1.2.3"]}

    def resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in answers:
            raise socket.gaierror(f"unknown host {host}")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port or 80)) for a in answers[host]]

    check = redirect_guard(resolve=resolve)
    for origin in ("http://evil.example/rss", "http://vanished.example/rss"):
        with pytest.raises(FetchError) as info:
            check(origin, "http://10.0.0.1:6379/")
        assert info.value.kind == "blocked_address"
    check("http://intranet.corp/rss", "http://10.0.0.1/rss")  # wholly private: allowed
