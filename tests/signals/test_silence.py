"""The silence detector, pure: per-source baselines, a country against the others, holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from monitor.config.silence import SilenceSpec
from monitor.signals.silence import (
    Action,
    Baseline,
    CountryState,
    FeedSnapshot,
    FeedState,
    FeedVerdict,
    OpenSignal,
    assess,
    decide,
    duration_text,
    judge_feed,
    plan,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SPEC = SilenceSpec(open_after=timedelta(0), close_after=timedelta(0))
MIN15 = timedelta(minutes=15)


def feed(
    fid: int,
    country: str | None,
    *,
    failing_for: timedelta | None = None,
    last_item_ago: timedelta | None = None,
    baseline: Baseline | None = None,
    offline: bool = False,
    never: bool = False,
) -> FeedSnapshot:
    """A 15-minute feed, answering now unless `failing_for` (since its last success)."""
    last_success = None if never else NOW - (failing_for or timedelta(minutes=1))
    return FeedSnapshot(
        feed_id=fid,
        name=f"{country or 'xx'}-{fid}",
        country=country,
        interval=MIN15,
        last_success_at=last_success,
        consecutive_failures=4 if failing_for else 0,
        offline=offline,
        last_item_at=None if last_item_ago is None else NOW - last_item_ago,
        baseline=baseline,
    )


def world(dark: int, *, mm: int = 4, others: int = 6, others_dark: int = 0) -> list[FeedSnapshot]:
    """`mm` Myanmar feeds, `dark` of them refused for 2 h; `others` elsewhere."""
    feeds = [feed(n, "MM", failing_for=timedelta(hours=2) if n < dark else None) for n in range(mm)]
    for n in range(others):
        failing = timedelta(hours=2) if n < others_dark else None
        feeds.append(feed(100 + n, "TH" if n % 2 else "LA", failing_for=failing))
    return feeds


def test_a_feed_refused_for_k_intervals_is_not_answering_and_silent_since_its_last_answer() -> None:
    verdict = judge_feed(feed(1, "MM", failing_for=timedelta(minutes=50)), SPEC, NOW)
    assert verdict.state is FeedState.UNANSWERED
    assert verdict.quiet_since == NOW - timedelta(minutes=50)
    assert verdict.silent_at == verdict.quiet_since + 3 * MIN15


def test_one_failure_is_not_silence_yet() -> None:
    assert judge_feed(feed(1, "MM", failing_for=timedelta(minutes=20)), SPEC, NOW).state is (
        FeedState.ANSWERING
    )


def test_a_feed_that_never_answered_or_failed_for_our_outage_tells_nothing() -> None:
    assert judge_feed(feed(1, "MM", never=True), SPEC, NOW).state is FeedState.UNKNOWN
    offline = feed(1, "MM", failing_for=timedelta(hours=3), offline=True)
    assert judge_feed(offline, SPEC, NOW).state is FeedState.UNKNOWN


def test_a_weekly_source_quiet_for_three_days_is_not_silent() -> None:
    weekly = Baseline(items=5, longest_gap=timedelta(days=7))
    quiet = feed(1, "MM", last_item_ago=timedelta(days=3), baseline=weekly)
    assert judge_feed(quiet, SPEC, NOW).state is FeedState.ANSWERING
    # Far past its longest gap, it is.
    gone_quiet = feed(1, "MM", last_item_ago=timedelta(days=11), baseline=weekly)
    assert judge_feed(gone_quiet, SPEC, NOW).state is FeedState.NOT_PUBLISHING


def test_a_wire_service_quiet_for_a_day_is_silent_unless_it_is_always_quiet_on_weekends() -> None:
    hourly = Baseline(items=600, longest_gap=timedelta(hours=2))
    assert judge_feed(
        feed(1, "MM", last_item_ago=timedelta(hours=24), baseline=hourly), SPEC, NOW
    ).state is (FeedState.NOT_PUBLISHING)
    weekend = Baseline(items=400, longest_gap=timedelta(hours=60))
    assert judge_feed(
        feed(1, "MM", last_item_ago=timedelta(hours=48), baseline=weekend), SPEC, NOW
    ).state is (FeedState.ANSWERING)


def test_too_few_items_means_no_rhythm_and_the_floor_is_two_polls() -> None:
    sparse = Baseline(items=3, longest_gap=timedelta(minutes=1))
    assert judge_feed(
        feed(1, "MM", last_item_ago=timedelta(days=20), baseline=sparse), SPEC, NOW
    ).state is (FeedState.ANSWERING)
    bursty = Baseline(items=50, longest_gap=timedelta(minutes=1))
    assert judge_feed(
        feed(1, "MM", last_item_ago=timedelta(minutes=25), baseline=bursty), SPEC, NOW
    ).state is (FeedState.ANSWERING)
    assert judge_feed(
        feed(1, "MM", last_item_ago=timedelta(minutes=31), baseline=bursty), SPEC, NOW
    ).state is (FeedState.NOT_PUBLISHING)


def _verdicts(feeds: list[FeedSnapshot]) -> list[FeedVerdict]:
    return [judge_feed(f, SPEC, NOW) for f in feeds]


def test_most_of_a_country_dark_while_others_answer_is_dark() -> None:
    views = assess(_verdicts(world(dark=3)), SPEC)
    assert views["MM"].state is CountryState.DARK
    assert len(views["MM"].silent) == 3 and views["MM"].judged == 4
    assert views["MM"].silent_since == NOW - timedelta(hours=2)
    # Seen from Thailand, the others (Myanmar's among them) are not fine: not judged now.
    assert views["TH"].state is CountryState.UNKNOWN


def test_one_dead_feed_alone_does_not_darken_a_country() -> None:
    assert assess(_verdicts(world(dark=1)), SPEC)["MM"].state is CountryState.LIT
    assert assess(_verdicts(world(dark=2)), SPEC)["MM"].state is CountryState.LIT  # 2/4 < 0.6


def test_everything_failing_at_once_is_our_problem_not_a_shutdown() -> None:
    views = assess(_verdicts(world(dark=4, others_dark=6)), SPEC)
    assert {v.state for v in views.values()} == {CountryState.UNKNOWN}
    # Two of six elsewhere failing too (one third): still not "the others are fine".
    assert assess(_verdicts(world(dark=4, others_dark=2)), SPEC)["MM"].state is (
        CountryState.UNKNOWN
    )
    # One of six elsewhere is ordinary breakage.
    assert assess(_verdicts(world(dark=4, others_dark=1)), SPEC)["MM"].state is CountryState.DARK


def test_a_country_with_fewer_than_min_feeds_is_not_watched() -> None:
    views = assess(_verdicts(world(dark=2, mm=2)), SPEC)
    assert "MM" not in views


def test_open_waits_for_open_after_and_close_for_close_after() -> None:
    spec = SilenceSpec(open_after=timedelta(minutes=30), close_after=timedelta(minutes=30))
    feeds = world(dark=4)  # dark since 2 h - 45 min (three intervals after the last answer)
    assert [s.action for s in decide(feeds, [], spec, NOW)] == [Action.OPEN]
    # Only just dark: the needed-th source crossed its allowance 10 minutes ago.
    early = world(dark=0, mm=0) + [
        feed(n, "MM", failing_for=3 * MIN15 + timedelta(minutes=10)) for n in range(4)
    ]
    assert decide(early, [], spec, NOW) == []

    signal = OpenSignal(7, "MM", NOW - timedelta(hours=1), NOW - timedelta(hours=2), None)
    lit = world(dark=0)
    first = decide(lit, [signal], spec, NOW)
    assert [(s.action, s.clearing_since) for s in first] == [(Action.KEEP, NOW)]
    clearing = OpenSignal(7, "MM", signal.opened_at, signal.silent_since, NOW - MIN15)
    assert [s.action for s in decide(lit, [clearing], spec, NOW)] == [Action.KEEP]
    done = OpenSignal(7, "MM", signal.opened_at, signal.silent_since, NOW - 2 * MIN15)
    assert [s.action for s in decide(lit, [done], spec, NOW)] == [Action.CLOSE]
    # Dark again while clearing: the clearing starts over.
    again = decide(world(dark=4), [clearing], spec, NOW)
    assert [(s.action, s.clearing_since) for s in again] == [(Action.KEEP, None)]


def test_our_outage_in_the_middle_of_a_shutdown_neither_closes_nor_opens() -> None:
    signal = OpenSignal(7, "MM", NOW - timedelta(hours=1), NOW - timedelta(hours=2), None)
    everything_offline = [
        feed(f.feed_id, f.country, failing_for=timedelta(hours=1), offline=True)
        for f in world(dark=0)
    ]
    steps = decide(everything_offline, [signal], SPEC, NOW)
    assert [(s.action, s.clearing_since) for s in steps] == [(Action.KEEP, None)]


def test_a_signal_whose_country_left_the_config_closes_without_an_alert() -> None:
    signal = OpenSignal(7, "MM", NOW, NOW, None)
    steps = plan({}, [signal], SPEC, NOW)
    assert [(s.action, s.alert) for s in steps] == [(Action.CLOSE, False)]


def test_duration_text() -> None:
    assert duration_text(timedelta(hours=3, minutes=20)) == "3 h 20 min"
    assert duration_text(timedelta(minutes=45)) == "45 min"
    assert duration_text(timedelta(days=2, hours=4)) == "2 d 4 h"


@pytest.mark.parametrize(
    "bad",
    [{"min_feeds": 1}, {"share": 0}, {"share": 1.5}, {"open_after": "2d"}, {"baseline": "1h"}],
)
def test_silence_options_are_validated(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SilenceSpec.model_validate(bad)
