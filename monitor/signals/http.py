"""The small HTTP helper the three measurement clients share: a TTL cache, per-service
spacing, and a cool-down after 429/5xx/timeouts instead of retries in place.

A check runs in its own job, never in the alert path, but a service that is struggling
should not be hammered by every due event either: after a failure the service is "cooling
down" and every further call fails at once (no request) until the cool-down ends. The job
then notes "service unreachable" and asks again later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from monitor.clock import Clock

logger = logging.getLogger(__name__)

# Cool-down after successive failures (Explorer's own 429 backoff is 2/5/10 s inside one
# page; a daemon checking every minute steps wider).
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1))
MAX_RETRY_AFTER = timedelta(hours=6)

Params = Mapping[str, str | int]


class ServiceUnavailable(Exception):
    """The service could not answer now (429, 5xx, timeout, refused, cooling down)."""

    def __init__(self, service: str, reason: str, retry_at: datetime | None = None) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason
        self.retry_at = retry_at


class ServiceError(Exception):
    """The service answered, but not with what was asked (bad parameters, odd shape)."""


@dataclass
class ServiceHttp:
    """One service's base URL, headers, cache, spacing and cool-down over a shared client."""

    name: str
    client: httpx.Client
    base_url: str
    clock: Clock
    cache_ttl: timedelta
    min_interval: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    _cache: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[datetime, Any]] = field(
        default_factory=dict, repr=False
    )
    _last_request: float | None = None
    _failures: int = 0
    cooling_until: datetime | None = None

    def get_json(self, path: str, params: Params) -> Any:
        """GET base_url + path and return its JSON, from the cache while fresh."""
        key = (path, tuple(sorted((k, str(v)) for k, v in params.items())))
        now = self.clock.now()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self.cache_ttl:
            return cached[1]
        if self.cooling_until is not None and now < self.cooling_until:
            raise ServiceUnavailable(self.name, "cooling down after errors", self.cooling_until)
        self._space()
        url = self.base_url.rstrip("/") + path
        try:
            response = self.client.get(url, params=dict(key[1]), headers=dict(self.headers))
        except httpx.TimeoutException as exc:
            raise self._failed("timed out", None) from exc
        except httpx.HTTPError as exc:
            raise self._failed(f"unreachable ({type(exc).__name__})", None) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise self._failed(f"HTTP {response.status_code}", response)
        try:
            data = response.json()
        except ValueError as exc:
            if response.status_code >= 400:
                raise ServiceError(f"{self.name}: HTTP {response.status_code}") from exc
            raise ServiceError(f"{self.name}: response is not JSON") from exc
        self._failures = 0
        self.cooling_until = None
        if response.status_code >= 400:
            # IODA's 400 carries {"error": ...}; the clients read it from the data.
            return data
        self._cache[key] = (now, data)
        return data

    def _space(self) -> None:
        """Keep min_interval between requests to this service (a small, polite bucket)."""
        if self.min_interval > 0 and self._last_request is not None:
            wait = self._last_request + self.min_interval - self.monotonic()
            if wait > 0:
                self.sleep(wait)
        self._last_request = self.monotonic()

    def _failed(self, reason: str, response: httpx.Response | None) -> ServiceUnavailable:
        now = self.clock.now()
        step = BACKOFF[min(self._failures, len(BACKOFF) - 1)]
        hinted = _retry_after(response, now) if response is not None else None
        self._failures += 1
        self.cooling_until = now + max(step, hinted or timedelta(0))
        logger.warning("%s: %s; not asked again before %s", self.name, reason, self.cooling_until)
        return ServiceUnavailable(self.name, reason, self.cooling_until)


def _retry_after(response: httpx.Response, now: datetime) -> timedelta | None:
    """Retry-After in seconds or as an HTTP date, capped: a bad header must not stop checks."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        wait = timedelta(seconds=float(value))
    except ValueError:
        try:
            wait = parsedate_to_datetime(value) - now
        except (TypeError, ValueError):
            return None
    return min(max(wait, timedelta(0)), MAX_RETRY_AFTER)
