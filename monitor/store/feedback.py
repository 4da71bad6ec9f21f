"""Operators' verdicts on items: recorded from the CLI, learned from by `monitor train`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.classify import LabeledExample
from monitor.domain import Category, Stage
from monitor.store.models import AssessmentRow, EventRow, FeedbackRow, FeedRow, ItemRow

CATEGORY_NAMES = frozenset(c.value for c in Category)
STAGE_NAMES = frozenset(s.value for s in Stage)


def record_feedback(
    session: Session,
    item_id: int,
    relevant: bool,
    categories: Sequence[str],
    country: str | None,
    stage: str | None,
    now: datetime,
) -> FeedbackRow:
    """Store a verdict; raises ValueError naming what is wrong."""
    if session.get(ItemRow, item_id) is None:
        raise ValueError(f"no item with id {item_id} (see `monitor items list`)")
    unknown = sorted(set(categories) - CATEGORY_NAMES)
    if unknown:
        raise ValueError(
            f"unknown categories {', '.join(unknown)}; use {', '.join(sorted(CATEGORY_NAMES))}"
        )
    if stage is not None and stage not in STAGE_NAMES:
        raise ValueError(f"unknown stage {stage!r}; use {', '.join(sorted(STAGE_NAMES))}")
    if country is not None and (len(country) != 2 or not country.isalpha()):
        raise ValueError(f"country {country!r} is not an ISO alpha-2 code")
    row = FeedbackRow(
        item_id=item_id,
        relevant=relevant,
        categories=list(categories) if relevant else [],
        country=country.upper() if country and relevant else None,
        stage=stage if relevant else "none",
        created_at=now,
    )
    session.add(row)
    return row


def feedback_examples(session: Session) -> list[LabeledExample]:
    """Every recorded verdict as a training example (the newest verdict per item wins)."""
    query = (
        select(FeedbackRow, ItemRow, FeedRow.language)
        .join(ItemRow, ItemRow.id == FeedbackRow.item_id)
        .join(FeedRow, FeedRow.id == ItemRow.feed_id)
        .order_by(FeedbackRow.id)
    )
    latest: dict[int, LabeledExample] = {}
    for verdict, item, feed_language in session.execute(query):
        latest[item.id] = LabeledExample(
            id=f"feedback-{verdict.id}",
            title=item.title,
            summary=item.summary,
            language=item.language or feed_language or "en",
            relevant=verdict.relevant,
            categories=tuple(Category(c) for c in verdict.categories),
            country=verdict.country,
            stage=Stage(verdict.stage or ("enforced" if verdict.relevant else "none")),
        )
    return list(latest.values())


# Event-level verdicts: what an analyst says of a whole event becomes one verdict per item
# of it, so `monitor train` learns from the event page as it does from `monitor feedback`.


@dataclass(frozen=True, slots=True)
class EventCorrection:
    """The labels an analyst gives an event in place of the classifier's."""

    categories: tuple[str, ...]
    stage: str
    country: str | None


def _event(session: Session, event_id: int) -> EventRow:
    event = session.get(EventRow, event_id)
    if event is None:
        raise LookupError(f"no event with id {event_id}")
    return event


def _items_with_stages(session: Session, event_id: int) -> list[tuple[ItemRow, str | None]]:
    """The event's items and the stage each reported (loaded as rows, so record_feedback's
    lookup of each item is answered from the session, not by one query per item)."""
    query = (
        select(ItemRow, AssessmentRow.stage)
        .outerjoin(AssessmentRow, AssessmentRow.item_id == ItemRow.id)
        .where(ItemRow.event_id == event_id)
        .order_by(ItemRow.id)
    )
    return [(item, stage) for item, stage in session.execute(query).tuples()]


def check_correction(correction: EventCorrection) -> EventCorrection:
    """The correction with its country upper-cased; ValueError naming the wrong field."""
    if not correction.categories:
        raise ValueError("categories: choose at least one")
    unknown = sorted(set(correction.categories) - CATEGORY_NAMES)
    if unknown:
        raise ValueError(f"categories: unknown {', '.join(unknown)}")
    if correction.stage not in STAGE_NAMES - {"none"}:
        raise ValueError(f"stage: unknown {correction.stage!r}")
    country = (correction.country or "").strip().upper() or None
    if country is not None and (len(country) != 2 or not country.isalpha()):
        raise ValueError(f"country: {correction.country!r} is not an ISO alpha-2 code")
    categories = tuple(sorted(dict.fromkeys(correction.categories)))
    return EventCorrection(categories, correction.stage, country)


def confirm_event(session: Session, event_id: int, now: datetime) -> EventRow:
    """The event is a real measure: confirmed, and each item a relevant example with the
    event's labels and the stage that item itself reported."""
    event = _event(session, event_id)
    event.status = "confirmed"
    for item, stage in _items_with_stages(session, event_id):
        record_feedback(
            session, item.id, True, event.categories, event.country, stage or event.stage, now
        )
    return event


def dismiss_event(session: Session, event_id: int, now: datetime) -> EventRow:
    """Not a measure: dismissed (out of the default views) and each item a negative example."""
    event = _event(session, event_id)
    event.status = "dismissed"
    for item, _stage in _items_with_stages(session, event_id):
        record_feedback(session, item.id, False, (), None, None, now)
    return event


def correct_event(
    session: Session, event_id: int, correction: EventCorrection, now: datetime
) -> EventRow:
    """New labels for the event and its items; the event counts as confirmed.

    Categories and country hold for every item. The stage is the event's: items that
    reported the stage the event had (the ones that put it there) get the corrected stage,
    while earlier steps keep theirs (a report of the proposal stays a proposal).
    """
    correction = check_correction(correction)
    event = _event(session, event_id)
    old_stage = event.stage
    for item, stage in _items_with_stages(session, event_id):
        item_stage = correction.stage if stage in (None, old_stage) else stage
        record_feedback(
            session, item.id, True, correction.categories, correction.country, item_stage, now
        )
    event.categories = list(correction.categories)
    event.country = correction.country
    if correction.stage != old_stage:
        event.stage = correction.stage
        # The recorder does not move a stage back on reports older than this.
        event.stage_changed_at = max(now, event.stage_changed_at or now)
    event.status = "confirmed"
    return event
