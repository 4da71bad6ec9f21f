"""When to poll a feed next: pure functions of the outcome, the interval and the clock."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

# A broken feed is still tried at least this often, so a publisher's fix is noticed.
MAX_BACKOFF = timedelta(hours=24)
JITTER = 0.1  # ±10 %: spreads feeds that share an interval over the tick


def _jittered(delay: timedelta, rng: random.Random) -> timedelta:
    return delay * (1 + rng.uniform(-JITTER, JITTER))


def next_poll_after_success(now: datetime, interval: timedelta, rng: random.Random) -> datetime:
    """The next regular poll, jittered so that feeds do not march in lockstep."""
    return now + _jittered(interval, rng)


def next_poll_after_failure(
    now: datetime,
    interval: timedelta,
    failures: int,
    retry_after_s: float | None,
    rng: random.Random,
) -> datetime:
    """Exponential backoff from the interval, capped at a day, never earlier than Retry-After."""
    exponent = min(max(failures - 1, 0), 16)
    delay = min(interval * (2**exponent), MAX_BACKOFF)
    delay = _jittered(delay, rng)
    if retry_after_s is not None:
        delay = max(delay, timedelta(seconds=min(retry_after_s, MAX_BACKOFF.total_seconds())))
    return now + min(delay, MAX_BACKOFF)


def next_poll_after_wait(now: datetime, wait_s: float, rng: random.Random) -> datetime:
    """Just after a wait the feed's host asked for: a little later, never earlier, so the
    feeds that waited together do not all return at the same instant."""
    return now + timedelta(seconds=wait_s) * (1 + rng.uniform(0, JITTER))
