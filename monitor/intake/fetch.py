"""Fetch one feed over HTTP: conditional GET, redirects, caps, deadlines, typed errors.

Synchronous httpx, called from a bounded thread pool. Bodies are read raw and inflated
here (gzip/deflate only) so the size cap applies to decompressed bytes with bounded memory:
a 50 KB gzip bomb stops at `max_body_bytes`, never allocating more than the cap.
"""

from __future__ import annotations

import hashlib
import io
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from monitor import __version__
from monitor.domain import FetchResult, Validators
from monitor.errors import FeedGoneError, FetchError
from monitor.intake.bodies import BodyTicket
from monitor.intake.inflate import Inflater, content_encoding

__all__ = [
    "FetchLimits",
    "fetch_feed",
    "make_client",
    "parse_retry_after",
    "redact_url",
    "user_agent",
]

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
ACCEPT_ENCODING = "gzip, deflate"  # brotli/zstd are never advertised (and refused if sent)
_REDIRECTS = {301, 302, 303, 307, 308}
_PERMANENT = {301, 308}
_TIMEOUTS = (httpx.TimeoutException,)


# The error kind of a large body refused because the slots for large bodies stayed taken
# (intake.bodies), and how soon such a feed is asked again.
NO_ROOM = "no_room"
NO_ROOM_RETRY_S = 60.0


def user_agent(contact: str | None = None) -> str:
    """Honest User-Agent naming the poller, its version and how to reach the operator."""
    who = f"+{contact}; " if contact else ""
    return f"monitor/{__version__} ({who}feed poller)"


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """Bounds on one feed fetch: time, size and redirects."""

    connect_timeout_s: float = 10.0
    read_timeout_s: float = 20.0
    total_timeout_s: float = 60.0
    max_body_bytes: int = 10 * 1024 * 1024  # after decompression
    max_redirects: int = 5
    user_agent: str = field(default_factory=user_agent)


def make_client(
    limits: FetchLimits, *, trust_env: bool = True, connections: int = 32
) -> httpx.Client:
    """An httpx client for feed polling; redirects are followed by `fetch_feed` itself.

    `connections` should match the number of fetch threads: a thread waiting for a pooled
    connection is a thread not fetching.
    """
    pool = httpx.Limits(
        max_connections=connections,
        max_keepalive_connections=max(connections // 2, 1),
        keepalive_expiry=30,
    )
    return httpx.Client(
        timeout=_timeout(limits, limits.total_timeout_s),
        limits=pool,
        follow_redirects=False,
        headers={
            "User-Agent": limits.user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": ACCEPT_ENCODING,
        },
        trust_env=trust_env,
    )


def _timeout(limits: FetchLimits, remaining_s: float) -> httpx.Timeout:
    """Per-request timeouts, never longer than what is left of the total deadline."""
    left = max(remaining_s, 0.001)
    return httpx.Timeout(
        connect=min(limits.connect_timeout_s, left),
        read=min(limits.read_timeout_s, left),
        write=min(limits.read_timeout_s, left),
        pool=min(limits.connect_timeout_s, left),
    )


def redact_url(url: str) -> str:
    """The URL without userinfo, query values or fragment, safe for logs and messages."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "<invalid url>"
    query = "…" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), else None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit() also takes "²" and other digits
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _same_origin_or_upgrade(origin: httpx.URL, here: httpx.URL) -> bool:
    """Whether `here` is `origin`'s scheme, host and port, or its https:// upgrade (the most
    common redirect of all: http://host/feed to https://host/feed)."""
    if here.host != origin.host:
        return False
    if (here.scheme, here.port) == (origin.scheme, origin.port):
        return True
    return (
        (origin.scheme, here.scheme) == ("http", "https")
        and origin.port in (None, 80)
        and (here.port in (None, 443))
    )


def _conditional_headers(validators: Validators) -> dict[str, str]:
    """If-None-Match / If-Modified-Since from remembered validators."""
    headers: dict[str, str] = {}
    if validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    return headers


def _is_dns_failure(exc: BaseException) -> bool:
    """True when a connect error was caused by name resolution."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return True
        seen = seen.__cause__ or seen.__context__
    text = str(exc).lower()
    return any(s in text for s in ("name or service not known", "nodename nor servname", "-2]"))


def _transport_error(exc: httpx.HTTPError, url: str) -> FetchError:
    """Map an httpx transport exception to a FetchError kind."""
    where = redact_url(url)
    if isinstance(exc, _TIMEOUTS):
        return FetchError("timeout", f"timed out ({type(exc).__name__}) fetching {where}")
    if isinstance(exc, httpx.ConnectError):
        if _is_dns_failure(exc):
            return FetchError("dns", f"cannot resolve host of {where}")
        return FetchError("connect", f"cannot connect to {where}")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return FetchError("bad_url", f"unsupported or invalid URL {where}")
    if isinstance(exc, httpx.RemoteProtocolError):
        return FetchError("protocol", f"server broke HTTP while sending {where}")
    return FetchError("network", f"network error ({type(exc).__name__}) fetching {where}")


def _status_error(response: httpx.Response, url: str, now: datetime) -> FetchError:
    """The FetchError for a non-success, non-redirect status, from the server at `url`."""
    code = response.status_code
    where = redact_url(url)
    if code == 410:
        return FeedGoneError("gone", f"HTTP 410 Gone: {where}", status=code, answered_by=url)
    if code == 404:
        return FetchError("not_found", f"HTTP 404 Not Found: {where}", status=code, answered_by=url)
    kind = {429: "rate_limited", 503: "unavailable"}.get(code, f"http_{code}")
    retry = parse_retry_after(response.headers.get("Retry-After"), now)
    return FetchError(
        kind, f"HTTP {code}: {where}", status=code, retry_after_s=retry, answered_by=url
    )


def _read_body(
    response: httpx.Response,
    limits: FetchLimits,
    deadline: float,
    monotonic: Callable[[], float],
    large_body: BodyTicket | None = None,
) -> bytes:
    """Stream the body, decoding as it comes, within the size cap and the total deadline.

    Past `large_body`'s threshold the read goes on only once its ticket holds a slot.
    """
    where = redact_url(str(response.url))
    declared = response.headers.get("content-length", "")
    encoding = content_encoding(response, where)
    if encoding == "identity" and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise FetchError("too_large", f"body of {where} declares {declared} bytes")
    inflater = Inflater(encoding, limits.max_body_bytes, where)
    # Pieces go into one growing buffer as they come, and getvalue() hands that buffer over
    # without a copy: joining a list of pieces at the end held a body at the cap twice.
    body = io.BytesIO()
    parts: list[bytes] = []
    for raw in response.iter_raw():
        inflater.feed(raw, parts)
        for part in parts:
            body.write(part)
        parts.clear()
        if (
            large_body is not None
            and inflater.total > large_body.threshold
            and not large_body.need(deadline)
        ):
            # Not the feed's fault nor the network's: asked again soon, counted as neither.
            raise FetchError(
                NO_ROOM,
                f"{where}: no room for another large body within the deadline",
                retry_after_s=NO_ROOM_RETRY_S,
            )
        if monotonic() > deadline:
            raise FetchError(
                "timeout", f"{where} took longer than {limits.total_timeout_s:g} s in total"
            )
    return body.getvalue()


def fetch_feed(
    client: httpx.Client,
    url: str,
    validators: Validators,
    limits: FetchLimits,
    *,
    monotonic: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    extra_headers: Mapping[str, str] | None = None,
    redirect_guard: Callable[[str, str], None] | None = None,
    large_body: BodyTicket | None = None,
) -> FetchResult:
    """Fetch `url` once: conditional GET, bounded redirects, size cap and total deadline.

    With `large_body`, a body past its threshold waits for a slot (see intake.bodies).
    """
    start = monotonic()
    deadline = start + limits.total_timeout_s
    validator_headers = _conditional_headers(validators)
    origin = httpx.URL(url)
    current = url
    seen = {url}
    permanent: str | None = None
    only_permanent = True
    for _ in range(limits.max_redirects + 1):
        timeout = _timeout(limits, deadline - monotonic())
        headers = dict(validator_headers)
        if extra_headers and _same_origin_or_upgrade(origin, httpx.URL(current)):
            # Admin-configured headers (often credentials) never follow a redirect to another
            # origin: not off-host, not to another port, not from https down to plain http.
            headers.update(extra_headers)
        try:
            with client.stream("GET", current, headers=headers, timeout=timeout) as response:
                target = _redirect_target(response, current)
                if target is None:
                    return _finish(
                        response,
                        current,
                        validators,
                        limits,
                        start,
                        deadline,
                        monotonic,
                        now,
                        permanent,
                        large_body,
                    )
        except httpx.HTTPError as exc:
            raise _transport_error(exc, current) from None
        only_permanent = only_permanent and response.status_code in _PERMANENT
        if only_permanent:
            permanent = target
        if target in seen:
            raise FetchError("redirect_loop", f"redirect loop at {redact_url(target)}")
        if redirect_guard is not None:
            redirect_guard(url, target)  # raises FetchError("blocked_address") to refuse
        seen.add(target)
        current = target
    raise FetchError(
        "redirect_loop", f"more than {limits.max_redirects} redirects from {redact_url(url)}"
    )


def _redirect_target(response: httpx.Response, current: str) -> str | None:
    """The absolute Location of a redirect response, or None when it is not a redirect."""
    location = str(response.headers.get("location", "")).strip()
    if response.status_code not in _REDIRECTS or not location:
        return None
    return urljoin(current, location)


def _finish(
    response: httpx.Response,
    url: str,
    validators: Validators,
    limits: FetchLimits,
    start: float,
    deadline: float,
    monotonic: Callable[[], float],
    now: Callable[[], datetime],
    permanent: str | None,
    large_body: BodyTicket | None = None,
) -> FetchResult:
    """Turn the final (non-redirect) response into a FetchResult or a FetchError."""
    etag = response.headers.get("etag")
    last_modified = response.headers.get("last-modified")
    content_type = response.headers.get("content-type")
    if response.status_code == 304:
        return FetchResult(
            url=url,
            status=304,
            body=b"",
            content_type=content_type,
            etag=etag or validators.etag,
            last_modified=last_modified or validators.last_modified,
            body_hash=None,
            elapsed_ms=_ms(monotonic() - start),
            not_modified=True,
            permanent_redirect=permanent,
        )
    if not 200 <= response.status_code < 300:
        raise _status_error(response, url, now())
    body = _read_body(response, limits, deadline, monotonic, large_body)
    if not body or body.isspace():  # not body.strip(): that copies a body of megabytes
        raise FetchError("empty", f"empty body from {redact_url(url)}", status=response.status_code)
    digest = hashlib.sha256(body).hexdigest()
    unchanged = digest == validators.body_hash
    return FetchResult(
        url=url,
        status=response.status_code,
        body=b"" if unchanged else body,
        content_type=content_type,
        etag=etag,
        last_modified=last_modified,
        body_hash=None if unchanged else digest,
        elapsed_ms=_ms(monotonic() - start),
        not_modified=unchanged,
        permanent_redirect=permanent,
    )


def _ms(seconds: float) -> int:
    return max(0, int(seconds * 1000))
