"""What the event pages and the events API show, read from the database as typed values.

Each function answers one screen (or one API resource) with a bounded number of queries: a
page of events is one query, its details a few more batched over the page, never one per
row. Pages and API both call these, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.alerts.quote import evidence_quote
from monitor.signals.corroborate import latest_verdicts
from monitor.signals.verdicts import SERVICE_NAMES
from monitor.store.models import (
    AlertRow,
    AssessmentRow,
    EventRow,
    FeedRow,
    ItemRow,
)
from monitor.web.filters import EventFilter, cursor_of, event_query
from monitor.web.pagination import decode_cursor, encode_cursor
from monitor.web.revisions import StageStep, timeline

NOT_DISMISSED = ("open", "confirmed")
# An event page lists at most this many items; the count says when there are more.
MAX_EVIDENCE_ITEMS = 500


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
