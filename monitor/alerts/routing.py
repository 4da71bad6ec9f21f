"""Which routes get an alert, and when (pure: the caller passes `now`).

`RouteRules` is the filter/timing part of a configured route; the composition root builds
it from the pydantic RouteSpec, so this module does not depend on the config layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from monitor.alerts.digest import group_by_country
from monitor.alerts.markup import FEED_HEALTH_KINDS
from monitor.alerts.notify import redact_url

__all__ = [
    "ALL_KINDS",
    "Decision",
    "RouteRules",
    "decide",
    "group_by_country",
    "in_quiet_hours",
    "matches",
    "next_digest_time",
    "quiet_end_after",
    "rate_window_start",
    "route_kind",
]

ALL_KINDS = frozenset({"new", "update", "feed_health", "signal"})
# Categories sent even in quiet hours unless a route says otherwise: a network cut is worth
# waking someone up for.
URGENT_CATEGORIES = frozenset({"shutdown"})


class Decision(StrEnum):
    """What to do with one alert on one route right now."""

    SEND_NOW = "send_now"
    HOLD_UNTIL_QUIET_END = "hold_until_quiet_end"
    TO_DIGEST = "to_digest"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class RouteRules:
    """A route's filters and timing; empty country/category/stage sets mean 'any'."""

    name: str
    min_score: float = 0.0
    countries: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    stages: frozenset[str] = frozenset()
    kinds: frozenset[str] = ALL_KINDS
    delivery: str = "instant"  # "instant" | "digest"
    rate_limit_count: int | None = None
    rate_limit_per: timedelta | None = None
    quiet_start: time | None = None
    quiet_end: time | None = None
    quiet_tz: str | None = None
    quiet_except: frozenset[str] = URGENT_CATEGORIES
    digest_tz: str | None = None


def route_kind(kind: str) -> str:
    """The route-level kind of an alert kind: feed_broken/feed_recovered -> feed_health."""
    return "feed_health" if kind in FEED_HEALTH_KINDS else kind


def matches(
    rules: RouteRules,
    *,
    kind: str,
    score: float,
    country: str | None,
    categories: tuple[str, ...] | frozenset[str] | list[str],
    stage: str,
) -> bool:
    """Whether the route wants this alert at all (test alerts always match)."""
    if kind == "test":
        return True
    rkind = route_kind(kind)
    if rules.kinds and rkind not in rules.kinds:
        return False
    if rkind == "feed_health":
        return True  # measure filters do not apply to feed-health notices
    if rkind == "signal":
        # A country's sources falling silent is no measure: no score, category or stage to
        # filter on, but a route watching some countries wants only theirs.
        return _country_matches(rules, country)
    if score < rules.min_score:
        return False
    if not _country_matches(rules, country):
        return False
    if rules.categories and not rules.categories.intersection(categories):
        return False
    return not rules.stages or stage in rules.stages


def _country_matches(rules: RouteRules, country: str | None) -> bool:
    return not rules.countries or (country or "").upper() in {c.upper() for c in rules.countries}


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _quiet_zone(rules: RouteRules) -> ZoneInfo:
    return ZoneInfo(rules.quiet_tz or "UTC")


def in_quiet_hours(rules: RouteRules, now: datetime) -> bool:
    """Whether `now` falls in the route's quiet window [start, end), which may cross midnight."""
    start, end = rules.quiet_start, rules.quiet_end
    if start is None or end is None or start == end:
        return False
    local = _aware(now).astimezone(_quiet_zone(rules)).time().replace(tzinfo=None)
    if start < end:
        return start <= local < end
    return local >= start or local < end


def quiet_end_after(rules: RouteRules, now: datetime) -> datetime:
    """The first end of quiet hours after `now` (UTC); `now` itself if none are set."""
    now = _aware(now)
    if rules.quiet_end is None or rules.quiet_start is None:
        return now
    zone = _quiet_zone(rules)
    local_day: date = now.astimezone(zone).date()
    for offset in range(3):
        candidate = datetime.combine(local_day + timedelta(days=offset), rules.quiet_end, zone)
        if candidate.astimezone(UTC) > now:
            return candidate.astimezone(UTC)
    raise AssertionError("unreachable: an end time exists within two days")


def rate_window_start(rules: RouteRules, now: datetime) -> datetime | None:
    """Start of the window whose sends count against the rate limit; None if unlimited."""
    if rules.rate_limit_count is None or rules.rate_limit_per is None:
        return None
    return _aware(now) - rules.rate_limit_per


def decide(
    rules: RouteRules,
    *,
    kind: str,
    categories: tuple[str, ...] | frozenset[str] | list[str],
    now: datetime,
    sent_in_window: int,
) -> Decision:
    """Send now, hold for quiet hours, or queue for the digest; overflow never drops."""
    if kind == "test":
        return Decision.SEND_NOW
    if rules.kinds and route_kind(kind) not in rules.kinds:
        return Decision.DROP
    if rules.delivery == "digest":
        return Decision.TO_DIGEST
    if rules.quiet_except.isdisjoint(categories) and in_quiet_hours(rules, now):
        return Decision.HOLD_UNTIL_QUIET_END
    if rules.rate_limit_count is not None and sent_in_window >= rules.rate_limit_count:
        return Decision.TO_DIGEST
    return Decision.SEND_NOW


def next_digest_time(cron: str, tz: str, after: datetime) -> datetime:
    """The next digest after `after` for a 5-field crontab in a time zone (aware, in `tz`)."""
    trigger = CronTrigger.from_crontab(cron, timezone=tz)
    # The trigger rounds `now` up to a whole second and may return it; +1 µs makes it strict.
    start = _aware(after).astimezone(ZoneInfo(tz)) + timedelta(microseconds=1)
    fire: datetime | None = trigger.get_next_fire_time(None, start)
    if fire is None:
        raise ValueError(f"cron expression {cron!r} never fires")
    return fire


@dataclass(frozen=True, slots=True)
class RouteTarget:
    """A configured route with its resolved (secret) Apprise URL; never log `url`."""

    rules: RouteRules
    url: str
    body_format: str = "auto"
    digest_cron: str | None = None
    digest_tz: str = "UTC"

    def __repr__(self) -> str:
        return f"RouteTarget(name={self.rules.name!r}, url={redact_url(self.url)!r})"
