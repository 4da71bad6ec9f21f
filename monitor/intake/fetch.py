"""Fetch one feed over HTTP: conditional GET, redirects, caps, deadlines, typed errors.

Synchronous httpx, called from a bounded thread pool. Bodies are read raw and inflated
here (gzip/deflate only) so the size cap applies to decompressed bytes with bounded memory:
a 50 KB gzip bomb stops at `max_body_bytes`, never allocating more than the cap.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from monitor import __version__
from monitor.domain import FetchResult, Validators
from monitor.errors import FeedGoneError, FetchError

__all__ = [
    "FetchLimits",
    "HostGate",
    "fetch_feed",
    "host_wait_s",
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
# A 429 speaks for the whole host: news-search services and APIs throttle the client, not one
# query, so the host's other feeds wait too. Without a Retry-After, a minute; and never longer
# than an hour, so a wrong answer for one path cannot silence a site's other feeds for long.
RATE_LIMIT_HOLD_S = 60.0
MAX_HOST_HOLD_S = 3600.0


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


class _Inflater:
    """Streaming gzip/deflate/identity decoder that never emits more than a byte budget."""

    def __init__(self, encoding: str, limit: int, where: str) -> None:
        self.encoding = encoding
        self.limit = limit
        self.where = where
        self.total = 0
        self._raw_fallback = encoding == "deflate"
        wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else 32 + zlib.MAX_WBITS
        self._z = zlib.decompressobj(wbits) if encoding != "identity" else None
        self._member_done = False  # a complete gzip member was decoded
        self._trailer_ignored = False

    def feed(self, data: bytes) -> bytes:
        """Decode one raw chunk; raise too_large as soon as the budget is exceeded."""
        if self._z is None:
            return self._count(data)
        out = bytearray()
        pending = data
        while pending and not self._trailer_ignored:
            chunk = self._inflate(pending)
            out += self._count(chunk)
            pending = self._z.unconsumed_tail
            if self._z.eof and self._z.unused_data:  # concatenated gzip members
                self._member_done = True
                pending = self._z.unused_data
                self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
            elif not chunk and pending:
                break
        return bytes(out)

    def _inflate(self, data: bytes) -> bytes:
        """Inflate at most budget+1 bytes; retry raw deflate for servers that send it."""
        assert self._z is not None
        try:
            chunk = self._z.decompress(data, self.limit - self.total + 1)
        except zlib.error as exc:
            if self._member_done:
                # Zero padding or junk after a complete member: browsers and httpx ignore it.
                self._trailer_ignored = True
                return b""
            if not self._raw_fallback:
                raise FetchError(
                    "decode", f"corrupt {self.encoding} body from {self.where}"
                ) from exc
            self._raw_fallback = False
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)
            return self._inflate(data)
        self._raw_fallback = False
        return chunk

    def _count(self, data: bytes) -> bytes:
        """Add to the running total and stop at the cap."""
        self.total += len(data)
        if self.total > self.limit:
            raise FetchError("too_large", f"body of {self.where} exceeds {self.limit} bytes")
        return data


def _content_encoding(response: httpx.Response, where: str) -> str:
    """The single supported content coding of a response, or an unsupported_encoding error."""
    codings = [
        c.strip().lower()
        for c in response.headers.get_list("content-encoding", split_commas=True)
        if c.strip() and c.strip().lower() != "identity"
    ]
    if not codings:
        return "identity"
    if len(codings) == 1 and codings[0] in {"gzip", "x-gzip", "deflate"}:
        return "gzip" if codings[0] == "x-gzip" else codings[0]
    # brotli is not installed and never advertised; a server sending it anyway is refused.
    raise FetchError(
        "unsupported_encoding", f"unsupported Content-Encoding {','.join(codings)} from {where}"
    )


def _read_body(
    response: httpx.Response,
    limits: FetchLimits,
    deadline: float,
    monotonic: Callable[[], float],
) -> bytes:
    """Stream the body, decoding as it comes, within the size cap and the total deadline."""
    where = redact_url(str(response.url))
    declared = response.headers.get("content-length", "")
    encoding = _content_encoding(response, where)
    if encoding == "identity" and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise FetchError("too_large", f"body of {where} declares {declared} bytes")
    inflater = _Inflater(encoding, limits.max_body_bytes, where)
    parts: list[bytes] = []
    for raw in response.iter_raw():
        parts.append(inflater.feed(raw))
        if monotonic() > deadline:
            raise FetchError(
                "timeout", f"{where} took longer than {limits.total_timeout_s:g} s in total"
            )
    return b"".join(parts)


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
) -> FetchResult:
    """Fetch `url` once: conditional GET, bounded redirects, size cap and total deadline."""
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
    body = _read_body(response, limits, deadline, monotonic)
    if not body.strip():
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


def host_wait_s(error: FetchError) -> float | None:
    """How long a failed fetch tells every feed of its host to wait, if it does: a 429."""
    if error.kind != "rate_limited":
        return None  # a 503 may be one broken path of a site whose other feeds are fine
    return error.retry_after_s if error.retry_after_s is not None else RATE_LIMIT_HOLD_S


def _ms(seconds: float) -> int:
    return max(0, int(seconds * 1000))


@dataclass
class _HostState:
    active: int = 0
    next_start: float = 0.0


class HostGate:
    """Per-host politeness: at most `per_host` requests at once, starts spaced by an interval."""

    def __init__(
        self,
        per_host: int = 2,
        min_interval_s: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_host < 1:
            raise ValueError("per_host must be at least 1")
        self.per_host = per_host
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._sleep = sleep
        self._cond = threading.Condition()
        self._hosts: dict[str, _HostState] = {}
        self._held_until: dict[str, float] = {}  # host -> clock time it may be asked again

    @staticmethod
    def host_of(url: str) -> str:
        """The gate key for a URL: lowercased host and port."""
        try:
            parts = urlsplit(url)
            return f"{(parts.hostname or '').lower()}:{parts.port or ''}"
        except ValueError:
            return url

    def hold(self, url: str, seconds: float) -> None:
        """Ask the URL's host nothing more for `seconds` (at most MAX_HOST_HOLD_S)."""
        if seconds <= 0:
            return
        key = self.host_of(url)
        until = self._clock() + min(seconds, MAX_HOST_HOLD_S)
        with self._cond:
            self._held_until[key] = max(self._held_until.get(key, until), until)

    def held_for(self, url: str) -> float:
        """Seconds before the URL's host may be asked again; 0 when it may be asked now."""
        key = self.host_of(url)
        with self._cond:
            until = self._held_until.get(key)
            if until is None:
                return 0.0
            left = until - self._clock()
            if left <= 0:
                del self._held_until[key]  # no entry kept per host once its wait is over
                return 0.0
            return left

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        """Hold one of the host's slots, waiting for a free slot and for the spacing."""
        key = self.host_of(url)
        wait = self._acquire(key)
        try:
            if wait > 0:
                self._sleep(wait)
            yield
        finally:
            self._release(key)

    def _acquire(self, key: str) -> float:
        """Take a slot and reserve a start time; returns how long to wait before starting."""
        with self._cond:
            state = self._hosts.setdefault(key, _HostState())
            while state.active >= self.per_host:
                self._cond.wait()
                state = self._hosts.setdefault(key, _HostState())
            state.active += 1
            now = self._clock()
            start_at = max(now, state.next_start)
            state.next_start = start_at + self.min_interval_s
            return start_at - now

    def _release(self, key: str) -> None:
        """Free a slot and forget idle hosts whose spacing has passed."""
        with self._cond:
            state = self._hosts.get(key)
            if state is None:
                return
            state.active -= 1
            if state.active <= 0 and state.next_start <= self._clock():
                del self._hosts[key]
            self._cond.notify_all()
