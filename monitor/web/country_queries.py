"""What the country pages show: countries with open events, and per country its events, a
swimlane per category, its sources' health and an open silence signal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from monitor.signals.silence_store import SilenceNotice, open_signal_of
from monitor.store.models import (
    EventRow,
    FeedRow,
)
from monitor.web.event_queries import NOT_DISMISSED, EventSummary, summarize
from monitor.web.filters import CATEGORIES
from monitor.web.revisions import StageStep, timelines

SWIMLANE_DAYS = 90
COUNTRY_EVENTS = 200
# A feed is silent when it has not succeeded for this many of its intervals.
SILENT_INTERVALS = 3


# --- countries ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CountrySummary:
    code: str
    events: int
    open_events: int  # not dismissed and not lifted: measures still in the way
    latest_stage: str
    last_change: datetime


def countries(session: Session) -> list[CountrySummary]:
    """Every country with events, most recently active first (two grouped queries)."""
    base = [EventRow.status.in_(NOT_DISMISSED), EventRow.country.is_not(None)]
    open_case = case((EventRow.stage != "lifted", 1), else_=0)
    totals = session.execute(
        select(EventRow.country, func.count(), func.sum(open_case), func.max(EventRow.last_seen))
        .where(*base)
        .group_by(EventRow.country)
    ).tuples()
    newest = (
        func.row_number()
        .over(
            partition_by=EventRow.country,
            order_by=(EventRow.last_seen.desc(), EventRow.id.desc()),
        )
        .label("n")
    )
    ranked = select(EventRow.country, EventRow.stage, newest).where(*base).subquery()
    latest = dict(
        session.execute(select(ranked.c.country, ranked.c.stage).where(ranked.c.n == 1)).all()
    )
    found = [
        CountrySummary(
            code=code,
            events=int(count),
            open_events=int(open_count or 0),
            latest_stage=latest.get(code, "none"),
            last_change=last,
        )
        for code, count, open_count, last in totals
        if code is not None
    ]
    return sorted(found, key=lambda c: c.last_change, reverse=True)


@dataclass(frozen=True, slots=True)
class StageSpan:
    """Part of an event's bar: it was at `stage` from `start` to `end`."""

    stage: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class LaneBar:
    event_id: int
    title: str
    stage: str
    row: int  # overlapping bars of one lane are drawn on separate rows
    spans: tuple[StageSpan, ...]


@dataclass(frozen=True, slots=True)
class Lane:
    category: str
    rows: int
    bars: tuple[LaneBar, ...]


@dataclass(frozen=True, slots=True)
class FeedHealth:
    id: int
    name: str
    enabled: bool
    interval_s: int
    last_success_at: datetime | None
    consecutive_failures: int
    last_error_kind: str | None
    silent: bool


@dataclass(frozen=True, slots=True)
class CountryDetail:
    code: str
    window_start: datetime
    window_end: datetime
    lanes: list[Lane]
    events: list[EventSummary]
    feeds: list[FeedHealth]
    # Set when most of the country's feeds are silent: the newest success among them.
    silent_since: datetime | None
    mostly_silent: bool
    # The open silence signal, when the detector raised one: it says since when, and how
    # many, better than this page's own count (it knows each source's rhythm).
    signal: SilenceNotice | None = None


def country_detail(session: Session, code: str, now: datetime) -> CountryDetail:
    code = code.upper()
    window_start = now - timedelta(days=SWIMLANE_DAYS)
    rows = list(
        session.scalars(
            select(EventRow)
            .where(EventRow.country == code, EventRow.status.in_(NOT_DISMISSED))
            .order_by(EventRow.last_seen.desc(), EventRow.id.desc())
            .limit(COUNTRY_EVENTS)
        )
    )
    in_window = [row for row in rows if row.last_seen >= window_start]
    steps = timelines(session, in_window)
    feeds = country_feeds(session, code, now)
    silent = [feed for feed in feeds if feed.enabled and feed.silent]
    enabled = [feed for feed in feeds if feed.enabled]
    mostly_silent = bool(enabled) and len(silent) * 2 > len(enabled)
    successes = [feed.last_success_at for feed in silent if feed.last_success_at is not None]
    since = max(successes) if mostly_silent and successes else None
    signal = open_signal_of(session, code)
    if signal is not None:
        mostly_silent, since = True, signal.silent_since
    return CountryDetail(
        code=code,
        window_start=window_start,
        window_end=now,
        lanes=swimlanes(in_window, steps, window_start, now),
        events=[summarize(row) for row in rows],
        feeds=feeds,
        silent_since=since,
        mostly_silent=mostly_silent,
        signal=signal,
    )


def stage_spans(
    steps: Sequence[StageStep], start: datetime, end: datetime
) -> tuple[StageSpan, ...]:
    """An event's steps as spans clipped to [start, end]; a measure not lifted runs on to
    `end` (it is in force until a report says otherwise), a lifted one stops there."""
    spans: list[StageSpan] = []
    for step, following in zip(steps, [*steps[1:], None], strict=True):
        if step.stage == "lifted":
            until = step.at + timedelta(hours=12)  # a short tick: the day it ended
        else:
            until = following.at if following is not None else end
        clipped = StageSpan(step.stage, max(step.at, start), min(until, end))
        if clipped.end > clipped.start:
            spans.append(clipped)
        if step.stage == "lifted":
            break
    return tuple(spans)


def swimlanes(
    events: Sequence[EventRow],
    steps: dict[int, list[StageStep]],
    start: datetime,
    end: datetime,
) -> list[Lane]:
    """One lane per category (in the taxonomy's order); an event is a bar in each of its
    categories' lanes, placed on the first row where it overlaps nothing."""
    lanes: list[Lane] = []
    for category in CATEGORIES:
        members = sorted(
            (e for e in events if category in e.categories), key=lambda e: (e.first_seen, e.id)
        )
        row_ends: list[datetime] = []
        bars: list[LaneBar] = []
        for event in members:
            spans = stage_spans(steps.get(event.id, []), start, end)
            if not spans:
                continue
            row = next(
                (n for n, ends in enumerate(row_ends) if ends <= spans[0].start), len(row_ends)
            )
            if row == len(row_ends):
                row_ends.append(spans[-1].end)
            row_ends[row] = spans[-1].end
            bars.append(LaneBar(event.id, event.title, event.stage, row, spans))
        if bars:
            lanes.append(Lane(category, len(row_ends), tuple(bars)))
    return lanes


def country_feeds(session: Session, code: str, now: datetime) -> list[FeedHealth]:
    rows = session.scalars(
        select(FeedRow)
        .where(FeedRow.country == code, FeedRow.gone.is_(False))
        .order_by(FeedRow.name)
    )
    return [
        FeedHealth(
            id=row.id,
            name=row.name,
            enabled=row.enabled,
            interval_s=row.interval_s,
            last_success_at=row.last_success_at,
            consecutive_failures=row.consecutive_failures,
            last_error_kind=row.last_error_kind,
            silent=is_silent(row.last_success_at, row.interval_s, row.created_at, now),
        )
        for row in rows
    ]


def is_silent(
    last_success: datetime | None, interval_s: int, created_at: datetime, now: datetime
) -> bool:
    """No success for SILENT_INTERVALS intervals (counted from creation if never)."""
    allowed = timedelta(seconds=SILENT_INTERVALS * interval_s)
    return now - (last_success or created_at) > allowed
