"""What the event pages and the events API show, read from the database as typed values.

Each function answers one screen (or one API resource) with a bounded number of queries: a
page of events is one query, its details a few more batched over the page, never one per
row. Pages and API both call these, so they cannot drift apart.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import String, case, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from monitor.alerts.quote import evidence_quote
from monitor.daemon.status import ReloadStatus
from monitor.signals.corroborate import latest_verdicts
from monitor.signals.silence_store import SilenceNotice, open_signal_of
from monitor.signals.verdicts import SERVICE_NAMES
from monitor.store.models import (
    AlertRow,
    AssessmentRow,
    EventRow,
    FeedRow,
    ItemRow,
    SilenceSignalRow,
)
from monitor.web.filters import CATEGORIES, STAGES, EventFilter, cursor_of, event_query
from monitor.web.pagination import decode_cursor, encode_cursor
from monitor.web.revisions import StageStep, timeline, timelines

NOT_DISMISSED = ("open", "confirmed")
# An event page lists at most this many items; the count says when there are more.
MAX_EVIDENCE_ITEMS = 500
# Overview cards per list: the rest are one click away in /events.
MAX_CARDS = 12
SPARK_DAYS = 14
TOP_COUNTRIES = 8
SWIMLANE_DAYS = 90
COUNTRY_EVENTS = 200
# A feed is silent when it has not succeeded for this many of its intervals.
SILENT_INTERVALS = 3


@dataclass(frozen=True, slots=True)
class EventSummary:
    """One event as lists show it."""

    id: int
    title: str
    country: str | None
    categories: tuple[str, ...]
    targets: tuple[str, ...]
    stage: str
    status: str
    first_seen: datetime
    last_change: datetime
    stage_changed_at: datetime | None
    sources: int
    max_score: float


def summarize(row: EventRow) -> EventSummary:
    return EventSummary(
        id=row.id,
        title=row.title,
        country=row.country,
        categories=tuple(row.categories),
        targets=tuple(row.targets or ()),
        stage=row.stage,
        status=row.status,
        first_seen=row.first_seen,
        last_change=row.last_seen,
        stage_changed_at=row.stage_changed_at,
        sources=row.item_count,
        max_score=row.max_score,
    )


# --- events list -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventsPage:
    events: list[EventSummary]
    next_cursor: str | None


def events_page(
    session: Session, event_filter: EventFilter, cursor: str | None, limit: int
) -> EventsPage:
    """One page in the filter's order; one row more than asked says whether a next exists."""
    statement = event_query(event_filter, decode_cursor(cursor)).limit(limit + 1)
    rows = list(session.scalars(statement))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(cursor_of(event_filter, rows[-1])) if more and rows else None
    return EventsPage([summarize(row) for row in rows], next_cursor)


def all_events(session: Session, event_filter: EventFilter, cap: int) -> Iterable[EventSummary]:
    """Every matching event up to `cap` (the CSV export), read in batches."""
    statement = event_query(event_filter).limit(cap).execution_options(yield_per=500)
    for row in session.scalars(statement):
        yield summarize(row)


# --- event detail ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuoteSegment:
    """A run of the deciding sentence; `marked` runs are the words that decided."""

    text: str
    marked: bool


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    item_id: int
    title: str
    url: str | None
    outlet: str
    language: str | None
    published: datetime
    fetched_at: datetime
    quote: tuple[QuoteSegment, ...]
    quote_from_title: bool
    relevant: bool | None
    score: float | None
    stage: str | None
    model_version: str | None
    reasons: tuple[str, ...]
    matched_terms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SentAlert:
    id: int
    route: str
    kind: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True, slots=True)
class Measurement:
    """One service's latest verdict on the event (monitor.signals)."""

    service: str
    verdict: str
    summary: str
    link: str | None
    attribution: str
    checked_at: datetime
    next_check_at: datetime | None
    before_report: bool


@dataclass(frozen=True, slots=True)
class EventDetail:
    event: EventSummary
    timeline: list[StageStep]
    items: list[EvidenceItem]
    item_total: int
    alerts: list[SentAlert]
    corroboration: list[Link]
    measurements: tuple[Measurement, ...] = ()


def segments(text: str, marks: Sequence[tuple[int, int]]) -> tuple[QuoteSegment, ...]:
    """Split a sentence at its marks, so templates mark words without `|safe`."""
    parts: list[QuoteSegment] = []
    at = 0
    for start, end in marks:
        if start > at:
            parts.append(QuoteSegment(text[at:start], False))
        parts.append(QuoteSegment(text[start:end], True))
        at = end
    if at < len(text):
        parts.append(QuoteSegment(text[at:], False))
    return tuple(parts)


def corroboration_links(country: str | None) -> list[Link]:
    """Where measurements may confirm the reports: links only, nothing is fetched."""
    if not country:
        return []
    code = country.upper()
    return [
        Link("OONI Explorer", f"https://explorer.ooni.org/country/{code}"),
        Link("IODA", f"https://ioda.inetintel.cc.gatech.edu/country/{code}"),
        Link("Cloudflare Radar", f"https://radar.cloudflare.com/{code.lower()}"),
    ]


def event_detail(session: Session, event_id: int) -> EventDetail | None:
    row = session.get(EventRow, event_id)
    if row is None:
        return None
    total = session.scalar(select(func.count()).where(ItemRow.event_id == event_id)) or 0
    return EventDetail(
        event=summarize(row),
        timeline=timeline(session, row),
        items=evidence_items(session, event_id),
        item_total=int(total),
        alerts=event_alerts(session, event_id),
        corroboration=corroboration_links(row.country),
        measurements=measurements(session, event_id),
    )


def measurements(session: Session, event_id: int) -> tuple[Measurement, ...]:
    """Each measurement service's newest verdict, in service order."""
    return tuple(
        Measurement(
            service=SERVICE_NAMES.get(r.service, r.service),
            verdict=r.verdict,
            summary=r.summary,
            link=r.link,
            attribution=r.attribution,
            checked_at=r.checked_at,
            next_check_at=r.next_check_at,
            before_report=r.before_report,
        )
        for r in latest_verdicts(session, event_id)
    )


def evidence_items(session: Session, event_id: int) -> list[EvidenceItem]:
    query = (
        select(ItemRow, FeedRow.name, FeedRow.language, AssessmentRow)
        .join(FeedRow, FeedRow.id == ItemRow.feed_id)
        .outerjoin(AssessmentRow, AssessmentRow.item_id == ItemRow.id)
        .where(ItemRow.event_id == event_id)
        .order_by(ItemRow.published, ItemRow.id)
        .limit(MAX_EVIDENCE_ITEMS)
    )
    found: list[EvidenceItem] = []
    for item, outlet, feed_language, verdict in session.execute(query).tuples():
        terms = tuple(verdict.matched_terms) if verdict is not None else ()
        quote = evidence_quote(item.title, item.summary, terms)
        found.append(
            EvidenceItem(
                item_id=item.id,
                title=item.title,
                url=item.url,
                outlet=outlet,
                language=item.language or feed_language,
                published=item.published,
                fetched_at=item.fetched_at,
                quote=segments(quote.text, quote.marks),
                quote_from_title=quote.from_title,
                relevant=verdict.relevant if verdict is not None else None,
                score=verdict.score if verdict is not None else None,
                stage=verdict.stage if verdict is not None else None,
                model_version=verdict.model_version if verdict is not None else None,
                reasons=tuple(verdict.evidence) if verdict is not None else (),
                matched_terms=terms,
            )
        )
    return found


def event_alerts(session: Session, event_id: int) -> list[SentAlert]:
    rows = session.scalars(
        select(AlertRow).where(AlertRow.event_id == event_id).order_by(AlertRow.id).limit(200)
    )
    return [
        SentAlert(
            id=row.id,
            route=row.route,
            kind=row.kind,
            status=row.status,
            attempts=row.attempts,
            created_at=row.created_at,
            sent_at=row.sent_at,
            last_error=row.last_error,
        )
        for row in rows
    ]


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
