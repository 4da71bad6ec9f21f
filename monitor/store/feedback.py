"""Operators' verdicts on items: recorded from the CLI, learned from by `monitor train`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.classify import LabeledExample
from monitor.domain import Category, Stage
from monitor.store.models import FeedbackRow, FeedRow, ItemRow

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
