"""What the overview and the stats API show: new events and stage moves in a window, the
category x stage matrix, the most active countries, the system strip, counts per day.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import String, case, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from monitor.daemon.status import ReloadStatus
from monitor.store.models import (
    AlertRow,
    EventRow,
    FeedRow,
    SilenceSignalRow,
)
from monitor.web.event_queries import NOT_DISMISSED, EventSummary, summarize
from monitor.web.filters import CATEGORIES, STAGES

# Overview cards per list: the rest are one click away in /events.
MAX_CARDS = 12
SPARK_DAYS = 14
TOP_COUNTRIES = 8


# --- overview ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Activity:
    """What happened in one window: events first seen, and events whose stage moved."""

    label: str
    since: datetime
    until: datetime | None
    new: list[EventSummary]
    moved: list[EventSummary]


@dataclass(frozen=True, slots=True)
class StageMatrix:
    """Events by category (rows) and stage (columns); an event counts in each category."""

    since: datetime | None
    categories: tuple[str, ...]
    stages: tuple[str, ...]
    counts: dict[tuple[str, str], int]

    def count(self, category: str, stage: str) -> int:
        return self.counts.get((category, stage), 0)

    def row_total(self, category: str) -> int:
        return sum(self.count(category, stage) for stage in self.stages)

    @property
    def largest(self) -> int:
        return max(self.counts.values(), default=0)


@dataclass(frozen=True, slots=True)
class CountryActivity:
    """A country's new events and stage moves per day, oldest day first."""

    code: str
    total: int
    per_day: tuple[int, ...]
    first_day: date


@dataclass(frozen=True, slots=True)
class SystemStrip:
    last_poll_at: datetime | None
    feeds: int
    feeds_failing: int
    outbox_pending: int
    outbox_dead: int
    reload: ReloadStatus | None
    daemon_here: bool
    # Countries with an open silence signal (monitor.signals): a possible shutdown each.
    silent_countries: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Overview:
    windows: list[Activity]
    matrix: StageMatrix
    countries: list[CountryActivity]


def overview(session: Session, now: datetime) -> Overview:
    day_ago = now - timedelta(hours=24)
    # The week's cards leave out the last day's: those are shown just above them.
    windows = [
        activity(session, "last 24 hours", day_ago, None),
        activity(session, "rest of the last 7 days", now - timedelta(days=7), day_ago),
    ]
    return Overview(
        windows=windows,
        matrix=stage_matrix(session, now - timedelta(days=30)),
        countries=top_countries(session, now),
    )


def activity(session: Session, label: str, since: datetime, until: datetime | None) -> Activity:
    """Events first seen, and events whose stage moved, in [since, until)."""
    # Both conditions also bound last_seen (first_seen and stage_changed_at never pass it),
    # so the events.last_seen index does the narrowing.
    recent = [EventRow.last_seen >= since, EventRow.status.in_(NOT_DISMISSED)]
    opened: list[ColumnElement[bool]] = [EventRow.first_seen >= since]
    changed: list[ColumnElement[bool]] = [
        EventRow.stage_changed_at >= since,
        EventRow.stage_changed_at > EventRow.first_seen,
    ]
    if until is not None:
        opened.append(EventRow.first_seen < until)
        changed.append(EventRow.stage_changed_at < until)
    new = session.scalars(
        select(EventRow)
        .where(*recent, *opened)
        .order_by(EventRow.first_seen.desc(), EventRow.id.desc())
        .limit(MAX_CARDS)
    )
    moved = session.scalars(
        select(EventRow)
        .where(*recent, *changed)
        .order_by(EventRow.stage_changed_at.desc(), EventRow.id.desc())
        .limit(MAX_CARDS)
    )
    return Activity(label, since, until, [summarize(r) for r in new], [summarize(r) for r in moved])


def stage_matrix(session: Session, since: datetime | None) -> StageMatrix:
    """Grouped on the database by the categories' JSON text, which has few distinct values;
    the lists are split here."""
    conditions: list[ColumnElement[bool]] = [EventRow.status.in_(NOT_DISMISSED)]
    if since is not None:
        conditions.append(EventRow.last_seen >= since)
    as_text = cast(EventRow.categories, String)
    rows = session.execute(
        select(as_text, EventRow.stage, func.count())
        .where(*conditions)
        .group_by(as_text, EventRow.stage)
    )
    counts: Counter[tuple[str, str]] = Counter()
    for categories_text, stage, count in rows.tuples():
        for category in _json_list(categories_text):
            counts[(category, stage)] += count
    return StageMatrix(since, CATEGORIES, STAGES, dict(counts))


def _json_list(text: str | None) -> list[str]:
    try:
        value: Any = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


@dataclass(frozen=True, slots=True)
class _Moment:
    """An event's dated happenings: when it opened and when its stage last moved."""

    country: str | None
    first_seen: datetime
    stage_changed_at: datetime | None

    def days(self) -> list[date]:
        happened = [self.first_seen.date()]
        if self.stage_changed_at is not None and self.stage_changed_at > self.first_seen:
            happened.append(self.stage_changed_at.date())
        return happened


def _moments(session: Session, since: datetime) -> list[_Moment]:
    conditions = [EventRow.last_seen >= since, EventRow.status.in_(NOT_DISMISSED)]
    rows = session.execute(
        select(EventRow.country, EventRow.first_seen, EventRow.stage_changed_at).where(*conditions)
    )
    return [_Moment(c, first, changed) for c, first, changed in rows.tuples()]


def top_countries(session: Session, now: datetime) -> list[CountryActivity]:
    """The countries with the most new events and stage moves over the last two weeks."""
    first_day = (now - timedelta(days=SPARK_DAYS - 1)).date()
    since = datetime.combine(first_day, datetime.min.time(), tzinfo=now.tzinfo)
    per_country: dict[str, list[int]] = defaultdict(lambda: [0] * SPARK_DAYS)
    for moment in _moments(session, since):
        if moment.country is None:
            continue
        for day in moment.days():
            offset = (day - first_day).days
            if 0 <= offset < SPARK_DAYS:
                per_country[moment.country][offset] += 1
    ranked = sorted(per_country.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    return [
        CountryActivity(code, sum(days), tuple(days), first_day)
        for code, days in ranked[:TOP_COUNTRIES]
        if sum(days) > 0
    ]


def system_strip(session: Session, reload: ReloadStatus | None, daemon_here: bool) -> SystemStrip:
    """Small aggregate queries: feeds, failing feeds, the outbox by status, open signals."""
    last_poll, feeds, failing = session.execute(
        select(
            func.max(FeedRow.last_polled_at),
            func.count(),
            func.coalesce(func.sum(case((FeedRow.consecutive_failures > 0, 1), else_=0)), 0),
        ).where(FeedRow.enabled.is_(True))
    ).one()
    outbox = dict(
        session.execute(
            select(AlertRow.status, func.count())
            .where(AlertRow.status.in_(("pending", "dead")))
            .group_by(AlertRow.status)
        ).all()
    )
    silent = session.scalars(
        select(SilenceSignalRow.country)
        .where(SilenceSignalRow.closed_at.is_(None))
        .distinct()
        .order_by(SilenceSignalRow.country)
    )
    return SystemStrip(
        silent_countries=tuple(silent),
        last_poll_at=last_poll,
        feeds=int(feeds),
        feeds_failing=int(failing),
        outbox_pending=outbox.get("pending", 0),
        outbox_dead=outbox.get("dead", 0),
        reload=reload,
        daemon_here=daemon_here,
    )


# --- stats -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date
    new_events: int
    stage_changes: int


@dataclass(frozen=True, slots=True)
class Stats:
    since: datetime
    matrix: StageMatrix
    per_day: list[DayCount]


def stats(session: Session, since: datetime, now: datetime) -> Stats:
    new: Counter[date] = Counter()
    moved: Counter[date] = Counter()
    for moment in _moments(session, since):
        if moment.first_seen >= since:
            new[moment.first_seen.date()] += 1
        changed = moment.stage_changed_at
        if changed is not None and changed > moment.first_seen and changed >= since:
            moved[changed.date()] += 1
    days = (now.date() - since.date()).days + 1
    per_day = [
        DayCount(day, new[day], moved[day])
        for day in (since.date() + timedelta(days=n) for n in range(max(days, 0)))
    ]
    return Stats(since=since, matrix=stage_matrix(session, since), per_day=per_day)
