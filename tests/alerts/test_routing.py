"""Routing table tests: filters, quiet hours, rate limits, digests (all pure, `now` given)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from monitor.alerts.routing import (
    Decision,
    RouteRules,
    decide,
    in_quiet_hours,
    matches,
    next_digest_time,
    quiet_end_after,
    rate_window_start,
)

BASE = RouteRules(name="team")
FILTERED = RouteRules(
    name="vn-team",
    min_score=0.5,
    countries=frozenset({"VN", "LA"}),
    categories=frozenset({"shutdown", "platform_block"}),
    stages=frozenset({"enacted", "enforced"}),
    kinds=frozenset({"new", "update"}),
)
# Quiet 22:00-07:00 in Ho Chi Minh City (UTC+7, no DST).
QUIET = RouteRules(
    name="quiet",
    quiet_start=time(22, 0),
    quiet_end=time(7, 0),
    quiet_tz="Asia/Ho_Chi_Minh",
)


@pytest.mark.parametrize(
    ("rules", "kind", "score", "country", "categories", "stage", "expected"),
    [
        (BASE, "new", 0.1, None, (), "none", True),
        (FILTERED, "new", 0.8, "VN", ("platform_block",), "enacted", True),
        (FILTERED, "update", 0.8, "vn", ("shutdown", "throttling"), "enforced", True),
        (FILTERED, "new", 0.49, "VN", ("shutdown",), "enacted", False),  # score
        (FILTERED, "new", 0.8, "TH", ("shutdown",), "enacted", False),  # country
        (FILTERED, "new", 0.8, None, ("shutdown",), "enacted", False),  # unknown country
        (FILTERED, "new", 0.8, "VN", ("surveillance",), "enacted", False),  # category
        (FILTERED, "new", 0.8, "VN", ("shutdown",), "proposed", False),  # stage
        (FILTERED, "feed_broken", 0.0, None, (), "none", False),  # kind not subscribed
        (BASE, "feed_broken", 0.0, None, (), "none", True),  # feed health ignores filters
        (
            replace(FILTERED, kinds=frozenset({"feed_health"})),
            "feed_recovered",
            0,
            None,
            (),
            "",
            True,
        ),
        (FILTERED, "test", 0.0, None, (), "none", True),  # test alerts always go out
    ],
)
def test_matches(
    rules: RouteRules,
    kind: str,
    score: float,
    country: str | None,
    categories: tuple[str, ...],
    stage: str,
    expected: bool,
) -> None:
    got = matches(
        rules, kind=kind, score=score, country=country, categories=categories, stage=stage
    )
    assert got is expected


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        (datetime(2026, 3, 1, 14, 59, tzinfo=UTC), False),  # 21:59 local
        (datetime(2026, 3, 1, 15, 0, tzinfo=UTC), True),  # 22:00 local
        (datetime(2026, 3, 1, 17, 0, tzinfo=UTC), True),  # 00:00 local, past midnight
        (datetime(2026, 3, 1, 23, 59, tzinfo=UTC), True),  # 06:59 local
        (datetime(2026, 3, 2, 0, 0, tzinfo=UTC), False),  # 07:00 local: window is [start, end)
        (datetime(2026, 3, 2, 5, 0, tzinfo=UTC), False),  # noon local
    ],
)
def test_quiet_hours_cross_midnight_in_route_timezone(utc: datetime, expected: bool) -> None:
    assert in_quiet_hours(QUIET, utc) is expected


def test_quiet_hours_same_day_window_and_none() -> None:
    lunch = RouteRules(name="l", quiet_start=time(12), quiet_end=time(13), quiet_tz="UTC")
    assert in_quiet_hours(lunch, datetime(2026, 3, 1, 12, 30, tzinfo=UTC))
    assert not in_quiet_hours(lunch, datetime(2026, 3, 1, 13, 0, tzinfo=UTC))
    assert not in_quiet_hours(BASE, datetime(2026, 3, 1, 3, 0, tzinfo=UTC))


def test_quiet_hours_follow_daylight_saving() -> None:
    berlin = RouteRules(name="b", quiet_start=time(22), quiet_end=time(7), quiet_tz="Europe/Berlin")
    # 05:30 UTC is 06:30 in winter (CET, quiet) but 07:30 in summer (CEST, not quiet).
    assert in_quiet_hours(berlin, datetime(2026, 1, 15, 5, 30, tzinfo=UTC))
    assert not in_quiet_hours(berlin, datetime(2026, 7, 15, 5, 30, tzinfo=UTC))


def test_quiet_end_after() -> None:
    # 23:00 local on 1 March -> 07:00 local on 2 March = 00:00 UTC on 2 March.
    now = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
    assert quiet_end_after(QUIET, now) == datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    # 03:00 local on 2 March -> 07:00 the same local morning.
    now = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
    assert quiet_end_after(QUIET, now) == datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    assert quiet_end_after(BASE, now) == now


NIGHT = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)  # 01:00 in Ho Chi Minh City
DAY = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # 12:00 there
LIMITED = replace(QUIET, rate_limit_count=3, rate_limit_per=timedelta(hours=1))


@pytest.mark.parametrize(
    ("rules", "kind", "categories", "now", "sent", "expected"),
    [
        (QUIET, "new", ("platform_block",), DAY, 0, Decision.SEND_NOW),
        (QUIET, "new", ("platform_block",), NIGHT, 0, Decision.HOLD_UNTIL_QUIET_END),
        (QUIET, "new", ("shutdown", "platform_block"), NIGHT, 0, Decision.SEND_NOW),
        (QUIET, "update", ("shutdown",), NIGHT, 0, Decision.SEND_NOW),
        (LIMITED, "new", ("vpn_restriction",), DAY, 2, Decision.SEND_NOW),
        (LIMITED, "new", ("vpn_restriction",), DAY, 3, Decision.TO_DIGEST),  # overflow
        (LIMITED, "new", ("shutdown",), DAY, 5, Decision.TO_DIGEST),  # never dropped
        (replace(BASE, delivery="digest"), "new", ("shutdown",), DAY, 0, Decision.TO_DIGEST),
        (replace(BASE, kinds=frozenset({"new"})), "update", (), DAY, 0, Decision.DROP),
        (replace(BASE, delivery="digest"), "test", (), NIGHT, 99, Decision.SEND_NOW),
    ],
)
def test_decide(
    rules: RouteRules,
    kind: str,
    categories: tuple[str, ...],
    now: datetime,
    sent: int,
    expected: Decision,
) -> None:
    got = decide(rules, kind=kind, categories=categories, now=now, sent_in_window=sent)
    assert got is expected


def test_rate_window_start() -> None:
    assert rate_window_start(LIMITED, DAY) == DAY - timedelta(hours=1)
    assert rate_window_start(BASE, DAY) is None


def test_next_digest_time_in_timezone() -> None:
    # 08:00 every day in Bangkok (UTC+7); asked at 02:00 UTC (09:00 local) -> next day 01:00 UTC.
    after = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    fire = next_digest_time("0 8 * * *", "Asia/Bangkok", after)
    assert fire == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    assert fire.utcoffset() == timedelta(hours=7)


def test_next_digest_time_is_strictly_after() -> None:
    at_fire = datetime(2026, 3, 2, 8, 0, tzinfo=ZoneInfo("Asia/Bangkok"))
    fire = next_digest_time("0 8 * * *", "Asia/Bangkok", at_fire)
    assert fire == at_fire + timedelta(days=1)


def test_next_digest_time_weekly_over_dst_change() -> None:
    # Mondays 09:00 New York: 9 March 2026 is the first Monday after DST starts (UTC-4).
    fire = next_digest_time("0 9 * * mon", "America/New_York", datetime(2026, 3, 3, tzinfo=UTC))
    assert fire == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("exceptions", "category", "expected"),
    [
        (frozenset({"shutdown"}), "shutdown", Decision.SEND_NOW),  # the default
        (frozenset({"throttling"}), "throttling", Decision.SEND_NOW),
        (frozenset({"throttling"}), "shutdown", Decision.HOLD_UNTIL_QUIET_END),
        (frozenset(), "shutdown", Decision.HOLD_UNTIL_QUIET_END),  # nothing wakes anyone
    ],
)
def test_quiet_hours_let_through_only_the_routes_exceptions(
    exceptions: frozenset[str], category: str, expected: Decision
) -> None:
    rules = replace(QUIET, quiet_except=exceptions)
    got = decide(rules, kind="new", categories=(category,), now=NIGHT, sent_in_window=0)
    assert got is expected
    by_day = decide(rules, kind="new", categories=(category,), now=DAY, sent_in_window=0)
    assert by_day is Decision.SEND_NOW
