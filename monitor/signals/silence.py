"""Country-wide silence as a signal (pure: typed snapshots in, decisions out, `now` passed).

Three stages, each a function of the one before:

    judge_feed      one source: answering, silent (not answering / not publishing) or unknown
    assess          one country: dark, lit or unknown, against the other countries' sources
    plan            per country, with the open signals: open, keep or close

A source that never answered, or whose last poll failed because *our* server was offline
(the poller marks it "offline"), is unknown: it tells nothing about its country. A country
is only judged dark while enough sources elsewhere answer normally, so our own outage, a
dead resolver or a blocked uplink never reads as a shutdown abroad.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from monitor.config.silence import SilenceSpec


class FeedState(StrEnum):
    ANSWERING = "answering"
    UNANSWERED = "unanswered"  # failing since its last success, for k of its intervals
    NOT_PUBLISHING = "not_publishing"  # answers, but no new item for far longer than usual
    UNKNOWN = "unknown"


SILENT_STATES = frozenset({FeedState.UNANSWERED, FeedState.NOT_PUBLISHING})


class CountryState(StrEnum):
    DARK = "dark"
    LIT = "lit"
    UNKNOWN = "unknown"  # too few sources to judge, or the others are not fine either


@dataclass(frozen=True, slots=True)
class Baseline:
    """A source's rhythm over the baseline window: how many items, the longest gap."""

    items: int
    longest_gap: timedelta


@dataclass(frozen=True, slots=True)
class FeedSnapshot:
    """What the detector needs of one enabled feed."""

    feed_id: int
    name: str
    country: str | None
    interval: timedelta
    last_success_at: datetime | None
    consecutive_failures: int
    offline: bool  # its last failure was our network's, not its own
    last_item_at: datetime | None
    baseline: Baseline | None


@dataclass(frozen=True, slots=True)
class FeedVerdict:
    feed_id: int
    name: str
    country: str | None
    state: FeedState
    quiet_since: datetime | None = None  # its last answer, or its last new item
    silent_at: datetime | None = None  # when it crossed its allowance: counted as silent

    @property
    def silent(self) -> bool:
        return self.state in SILENT_STATES


@dataclass(frozen=True, slots=True)
class CountryView:
    """One country's sources, judged together."""

    country: str
    state: CountryState
    judged: int  # sources whose state is known
    silent: tuple[FeedVerdict, ...]
    others_judged: int
    others_silent: int
    silent_since: datetime | None = None  # by then, enough of them had gone quiet
    dark_at: datetime | None = None  # when enough of them counted as silent

    @property
    def answering(self) -> int:
        return self.judged - len(self.silent)


@dataclass(frozen=True, slots=True)
class OpenSignal:
    """A silence signal not yet closed, as stored."""

    id: int
    country: str
    opened_at: datetime
    silent_since: datetime
    clearing_since: datetime | None


class Action(StrEnum):
    OPEN = "open"
    KEEP = "keep"
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class Step:
    """What to do with one country now; `alert` is False for a close nobody should hear
    about (the country left the config, so it did not come back)."""

    action: Action
    country: str
    view: CountryView | None
    signal: OpenSignal | None = None
    clearing_since: datetime | None = None
    alert: bool = True


def judge_feed(feed: FeedSnapshot, spec: SilenceSpec, now: datetime) -> FeedVerdict:
    """One source's state now."""

    def verdict(
        state: FeedState, since: datetime | None = None, allowance: timedelta | None = None
    ) -> FeedVerdict:
        at = since + allowance if since is not None and allowance is not None else None
        return FeedVerdict(feed.feed_id, feed.name, feed.country, state, since, at)

    if feed.last_success_at is None or feed.offline:
        return verdict(FeedState.UNKNOWN)
    unanswered = feed.interval * spec.unanswered_intervals
    if feed.consecutive_failures > 0 and now - feed.last_success_at >= unanswered:
        return verdict(FeedState.UNANSWERED, feed.last_success_at, unanswered)
    quiet = publishing_allowance(feed, spec)
    if quiet is not None and feed.last_item_at is not None and now - feed.last_item_at >= quiet:
        return verdict(FeedState.NOT_PUBLISHING, feed.last_item_at, quiet)
    return verdict(FeedState.ANSWERING)


def publishing_allowance(feed: FeedSnapshot, spec: SilenceSpec) -> timedelta | None:
    """How long the source may go without a new item before it counts as silent: gap_factor
    times its longest gap in the baseline window (a source quiet every weekend has a
    weekend-long gap there), never under two polls; None when its rhythm is unknown."""
    base = feed.baseline
    if base is None or base.items < spec.min_items:
        return None
    return max(base.longest_gap * spec.gap_factor, 2 * feed.interval)


def assess(verdicts: Sequence[FeedVerdict], spec: SilenceSpec) -> dict[str, CountryView]:
    """Each country with at least `min_feeds` enabled sources, judged against the rest."""
    least = spec.min_feeds
    by_country: dict[str, list[FeedVerdict]] = {}
    for v in verdicts:
        if v.country:
            by_country.setdefault(v.country.upper(), []).append(v)
    known = [v for v in verdicts if v.state is not FeedState.UNKNOWN]
    all_judged, all_silent = len(known), sum(1 for v in known if v.silent)
    views: dict[str, CountryView] = {}
    for country, members in sorted(by_country.items()):
        if len(members) < least:
            continue
        judged = [v for v in members if v.state is not FeedState.UNKNOWN]
        silent = tuple(v for v in judged if v.silent)
        others_judged = all_judged - len(judged)
        others_silent = all_silent - len(silent)
        state = _country_state(len(judged), len(silent), others_judged, others_silent, spec, least)
        needed = _needed(len(judged), spec)
        since = at = None
        if state is CountryState.DARK:
            # The needed-th source to go quiet is when the country went quiet: earlier ones
            # alone were not yet a signal.
            since = sorted(_times(s.quiet_since for s in silent))[needed - 1]
            at = sorted(_times(s.silent_at for s in silent))[needed - 1]
        views[country] = CountryView(
            country, state, len(judged), silent, others_judged, others_silent, since, at
        )
    return views


def _needed(judged: int, spec: SilenceSpec) -> int:
    """Silent sources that make a country dark (at least one)."""
    return max(1, math.ceil(judged * spec.share - 1e-9))


def _country_state(
    judged: int, silent: int, others_judged: int, others_silent: int, spec: SilenceSpec, least: int
) -> CountryState:
    if judged < least or others_judged < least:
        return CountryState.UNKNOWN
    if others_silent > others_judged * spec.others_max_share:
        return CountryState.UNKNOWN  # the rest are not fine: the trouble may be ours
    return CountryState.DARK if silent >= _needed(judged, spec) else CountryState.LIT


def _times(values: Iterable[datetime | None]) -> list[datetime]:
    return [v for v in values if v is not None]


def plan(
    views: Mapping[str, CountryView],
    open_signals: Sequence[OpenSignal],
    spec: SilenceSpec,
    now: datetime,
) -> list[Step]:
    """Open a signal once a country has been dark for `open_after`; close one once its
    country has been lit for `close_after`. Unknown keeps things as they are: our own outage
    in the middle of a shutdown must neither close its signal nor open new ones."""
    steps: list[Step] = []
    by_country = {s.country: s for s in open_signals}
    for country, view in views.items():
        signal = by_country.pop(country, None)
        if signal is None:
            dark_at = view.dark_at if view.state is CountryState.DARK else None
            if dark_at is not None and now - dark_at >= spec.open_after:
                steps.append(Step(Action.OPEN, country, view))
            continue
        if view.state is CountryState.DARK:
            steps.append(Step(Action.KEEP, country, view, signal, clearing_since=None))
        elif view.state is CountryState.LIT:
            clearing = signal.clearing_since or now
            if now - clearing >= spec.close_after:
                steps.append(Step(Action.CLOSE, country, view, signal))
            else:
                steps.append(Step(Action.KEEP, country, view, signal, clearing_since=clearing))
        else:
            steps.append(Step(Action.KEEP, country, None, signal, signal.clearing_since))
    for country, signal in by_country.items():
        # Its feeds were removed or disabled: nothing left to watch, nothing came back.
        steps.append(Step(Action.CLOSE, country, None, signal, alert=False))
    return steps


def decide(
    feeds: Sequence[FeedSnapshot],
    open_signals: Sequence[OpenSignal],
    spec: SilenceSpec,
    now: datetime,
) -> list[Step]:
    """The three stages in one call."""
    verdicts = [judge_feed(feed, spec, now) for feed in feeds]
    return plan(assess(verdicts, spec), open_signals, spec, now)


def duration_text(span: timedelta) -> str:
    """'3 h 20 min', '45 min', '2 d 4 h' (for people, not for config)."""
    minutes = max(0, int(span.total_seconds() // 60))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"
