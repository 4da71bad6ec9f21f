"""Rows for web-surface tests: feeds, items with assessments, events and alerts, written with
the ORM the way the daemon stores them (no text of other people's articles: invented lines)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from monitor.store.models import AlertRow, AssessmentRow, EventRow, FeedRow, FetchLogRow, ItemRow


@dataclass
class Report:
    """One item reporting a measure, with the classifier's verdict."""

    title: str
    summary: str = ""
    stage: str = "enforced"
    score: float = 0.9
    hours_after: float = 0.0
    feed: str = "outlet-a"
    matched_terms: Sequence[str] = ("blocked",)
    evidence: Sequence[str] = ("rule platform_block: blocked",)


@dataclass
class Measure:
    country: str | None
    categories: Sequence[str]
    stage: str
    reports: Sequence[Report]
    targets: Sequence[str] = ()
    status: str = "open"
    alerts: Sequence[tuple[str, str, str]] = field(default_factory=tuple)  # route, kind, status


def add_feed(
    session: Session,
    name: str,
    now: datetime,
    *,
    country: str | None = None,
    failures: int = 0,
    error: str | None = None,
    error_kind: str | None = None,
    last_success: datetime | None = None,
) -> FeedRow:
    feed = FeedRow(
        name=name,
        url=f"http://127.0.0.1:9/{name}.xml",
        country=country,
        language="en",
        interval_s=900,
        enabled=True,
        next_poll_at=now,
        last_polled_at=now,
        last_success_at=last_success
        if last_success is not None
        else (now if not failures else None),
        consecutive_failures=failures,
        last_error=error,
        last_error_kind=error_kind,
        created_at=now - timedelta(days=30),
    )
    session.add(feed)
    session.flush()
    outcome = "error" if failures else "ok"
    session.add(
        FetchLogRow(
            feed_id=feed.id, started_at=now, outcome=outcome, http_status=500 if failures else 200,
            duration_ms=120, error_kind=error_kind, error=error,
        )
    )  # fmt: skip
    return feed


def add_measure(session: Session, measure: Measure, start: datetime) -> EventRow:
    """An event and its reports, stored as the recorder would leave them."""
    feeds: dict[str, FeedRow] = {}
    first = measure.reports[0]
    event = EventRow(
        country=measure.country,
        categories=list(measure.categories),
        stage=measure.stage,
        title=first.title,
        fingerprint=b"",
        first_seen=start + timedelta(hours=first.hours_after),
        last_seen=start + timedelta(hours=max(r.hours_after for r in measure.reports)),
        item_count=len(measure.reports),
        max_score=max(r.score for r in measure.reports),
        targets=list(measure.targets),
        stage_changed_at=start + timedelta(hours=measure.reports[-1].hours_after),
        status=measure.status,
    )
    session.add(event)
    session.flush()
    for n, report in enumerate(measure.reports):
        feed = feeds.get(report.feed) or session.query(FeedRow).filter_by(name=report.feed).first()
        if feed is None:
            feed = add_feed(session, report.feed, start, country=measure.country)
        feeds[report.feed] = feed
        when = start + timedelta(hours=report.hours_after)
        item = ItemRow(
            feed_id=feed.id,
            guid=f"{event.id}-{n}",
            url=f"https://news.example/{event.id}/{n}",
            title=report.title,
            summary=report.summary,
            language="en",
            published=when,
            fetched_at=when,
            content_hash=f"{event.id:08d}{n:056d}",
            event_id=event.id,
        )
        session.add(item)
        session.flush()
        session.add(
            AssessmentRow(
                item_id=item.id, relevant=True, score=report.score,
                categories=list(measure.categories), country=measure.country,
                stage=report.stage, matched_terms=list(report.matched_terms),
                evidence=list(report.evidence), model_version="test-model", created_at=when,
            )
        )  # fmt: skip
    for route, kind, status in measure.alerts:
        session.add(
            AlertRow(
                route=route, dedup_key=f"event:{event.id}:{kind}", kind=kind, event_id=event.id,
                status=status, payload={"title": event.title}, due_at=start, attempts=1,
                created_at=start, sent_at=start if status == "sent" else None,
            )
        )  # fmt: skip
    session.flush()
    return event
