"""Per-host politeness for the fetchers: at most `per_host` requests to one host at once,
starts spaced by an interval, and a host that answered 429 left alone until its wait is over.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from monitor.errors import FetchError

__all__ = ["MAX_HOST_HOLD_S", "RATE_LIMIT_HOLD_S", "HostGate", "host_wait_s"]

# A 429 speaks for the whole host: news-search services and APIs throttle the client, not one
# query, so the host's other feeds wait too. Without a Retry-After, a minute; and never longer
# than an hour, so a wrong answer for one path cannot silence a site's other feeds for long.
RATE_LIMIT_HOLD_S = 60.0
MAX_HOST_HOLD_S = 3600.0


def host_wait_s(error: FetchError) -> float | None:
    """How long a failed fetch tells every feed of its host to wait, if it does: a 429."""
    if error.kind != "rate_limited":
        return None  # a 503 may be one broken path of a site whose other feeds are fine
    return error.retry_after_s if error.retry_after_s is not None else RATE_LIMIT_HOLD_S


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
