"""Triage: recent items near the classifier's threshold, or flagged with no event, and the
verdicts analysts give them. Typed dataclasses for both the page (ops_pages) and the API
(ops_api); one query per table for a whole page, bounded by a time window and a LIMIT.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from monitor.classify.model import load_model
from monitor.classify.training import DEFAULT_MODEL
from monitor.errors import ModelError
from monitor.store.feedback import record_feedback
from monitor.store.models import (
    AssessmentRow,
    FeedbackRow,
    FeedRow,
    ItemRow,
)
from monitor.web.filters import parse_moment
from monitor.web.pagination import time_id_cursor

# ------------------------------------------------------------------------------ triage

# Scores this close to the classifier's threshold (either side) are the ones a verdict
# teaches `monitor train` the most about.
TRIAGE_MARGIN = 0.15
TRIAGE_WINDOW = timedelta(days=7)
# What the training code gives a model when nothing else is said (TrainOptions.threshold).
FALLBACK_THRESHOLD = 0.8


def classifier_threshold(env: Mapping[str, str] | None = None) -> float:
    """The relevance threshold of the model the daemon uses: MONITOR_MODEL's file, else the
    packaged one (as monitor.daemon.bootstrap picks it). Costs a model load: cache it."""
    values = os.environ if env is None else env
    path = Path(values["MONITOR_MODEL"]) if values.get("MONITOR_MODEL") else DEFAULT_MODEL
    try:
        return load_model(path).threshold
    except ModelError:
        return FALLBACK_THRESHOLD


def cached_threshold(extras: dict[str, Any]) -> float:
    """The threshold, loaded once per app (kept in WebContext.extras)."""
    if "classifier_threshold" not in extras:
        extras["classifier_threshold"] = classifier_threshold()
    return float(extras["classifier_threshold"])


@dataclass(frozen=True, slots=True)
class TriageFilter:
    """Which items the triage list shows. By default the queue: items near the threshold,
    and flagged items no event took; `everything` drops that condition."""

    since: datetime
    relevant: bool | None = None
    score_lt: float | None = None
    score_gt: float | None = None
    language: str | None = None
    feed_id: int | None = None
    everything: bool = False

    def query_params(self) -> dict[str, str]:
        """The filter as query parameters (the next page, the redirect after a verdict)."""
        params = {"since": self.since.isoformat()}
        if self.relevant is not None:
            params["relevant"] = "yes" if self.relevant else "no"
        if self.score_lt is not None:
            params["score_lt"] = str(self.score_lt)
        if self.score_gt is not None:
            params["score_gt"] = str(self.score_gt)
        if self.language:
            params["language"] = self.language
        if self.feed_id is not None:
            params["feed"] = str(self.feed_id)
        if self.everything:
            params["all"] = "1"
        return params


def _score(name: str, raw: str | None) -> float | None:
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise HTTPException(400, f"{name}: {raw!r} is not a number") from exc
    if not 0.0 <= value <= 1.0:
        raise HTTPException(400, f"{name}: scores are 0..1, got {value}")
    return value


def parse_triage_filter(params: Mapping[str, str], now: datetime) -> TriageFilter:
    """The triage filter from query parameters; a wrong value is a 400 naming it."""
    relevant_raw = (params.get("relevant") or "").lower()
    if relevant_raw not in ("", "yes", "no"):
        raise HTTPException(400, f"relevant: use yes or no, got {relevant_raw!r}")
    feed_raw = params.get("feed") or ""
    if feed_raw and not feed_raw.isdigit():
        raise HTTPException(400, f"feed: {feed_raw!r} is not a feed id")
    since_raw = params.get("since") or ""
    return TriageFilter(
        since=parse_moment("since", since_raw, now) or now - TRIAGE_WINDOW,
        relevant=None if not relevant_raw else relevant_raw == "yes",
        score_lt=_score("score_lt", params.get("score_lt")),
        score_gt=_score("score_gt", params.get("score_gt")),
        language=(params.get("language") or "").strip().lower() or None,
        feed_id=int(feed_raw) if feed_raw else None,
        everything=params.get("all") in ("1", "yes", "on", "true"),
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """The newest analyst verdict on an item."""

    relevant: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class TriageItem:
    id: int
    title: str
    url: str | None
    feed_id: int
    feed: str
    language: str | None
    published: datetime
    event_id: int | None
    relevant: bool
    score: float
    categories: tuple[str, ...]
    country: str | None
    stage: str
    matched_terms: tuple[str, ...]
    verdict: Verdict | None = None

    @property
    def cursor(self) -> list[Any]:
        return [self.published.isoformat(), self.id]


@dataclass(frozen=True, slots=True)
class ItemDetail:
    """One item with its whole assessment (the API's `GET /items/{id}`)."""

    item: TriageItem
    summary: str
    fetched_at: datetime
    evidence: tuple[str, ...]
    model_version: str


def _item_columns() -> Select[*tuple[Any, ...]]:
    language = func.coalesce(ItemRow.language, FeedRow.language).label("language")
    return (
        select(
            ItemRow.id,
            ItemRow.title,
            ItemRow.url,
            ItemRow.feed_id,
            FeedRow.name,
            language,
            ItemRow.published,
            ItemRow.event_id,
            AssessmentRow.relevant,
            AssessmentRow.score,
            AssessmentRow.categories,
            AssessmentRow.country,
            AssessmentRow.stage,
            AssessmentRow.matched_terms,
        )  # fmt: skip
        .join(AssessmentRow, AssessmentRow.item_id == ItemRow.id)
        .join(FeedRow, FeedRow.id == ItemRow.feed_id)
    )


def _triage_item(row: Any) -> TriageItem:
    return TriageItem(
        id=row.id,
        title=row.title,
        url=row.url,
        feed_id=row.feed_id,
        feed=row.name,
        language=row.language,
        published=row.published,
        event_id=row.event_id,
        relevant=row.relevant,
        score=row.score,
        categories=tuple(row.categories or ()),
        country=row.country,
        stage=row.stage,
        matched_terms=tuple(row.matched_terms or ()),
    )


def triage_items(
    session: Session,
    triage: TriageFilter,
    threshold: float,
    *,
    after: list[Any] | None = None,
    limit: int = 50,
) -> tuple[list[TriageItem], list[Any] | None]:
    """A page of items, newest published first, and the cursor of the next page (or None)."""
    statement = _item_columns().where(ItemRow.published >= triage.since)
    if not triage.everything:
        near = AssessmentRow.score.between(threshold - TRIAGE_MARGIN, threshold + TRIAGE_MARGIN)
        unlinked = and_(AssessmentRow.relevant.is_(True), ItemRow.event_id.is_(None))
        statement = statement.where(or_(near, unlinked))
    if triage.relevant is not None:
        statement = statement.where(AssessmentRow.relevant.is_(triage.relevant))
    if triage.score_lt is not None:
        statement = statement.where(AssessmentRow.score < triage.score_lt)
    if triage.score_gt is not None:
        statement = statement.where(AssessmentRow.score > triage.score_gt)
    if triage.language:
        statement = statement.where(
            func.coalesce(ItemRow.language, FeedRow.language) == triage.language
        )
    if triage.feed_id is not None:
        statement = statement.where(ItemRow.feed_id == triage.feed_id)
    if after is not None:
        published, last_id = time_id_cursor(after)
        statement = statement.where(
            or_(
                ItemRow.published < published,
                and_(ItemRow.published == published, ItemRow.id < last_id),
            )
        )
    statement = statement.order_by(ItemRow.published.desc(), ItemRow.id.desc()).limit(limit + 1)
    rows = [_triage_item(row) for row in session.execute(statement)]
    page, more = rows[:limit], len(rows) > limit
    page = with_verdicts(session, page)
    return page, (page[-1].cursor if more and page else None)


def with_verdicts(session: Session, items: Sequence[TriageItem]) -> list[TriageItem]:
    """The items with their newest analyst verdict, in one query for the page."""
    if not items:
        return []
    query = (
        select(FeedbackRow.item_id, FeedbackRow.relevant, FeedbackRow.created_at)
        .where(FeedbackRow.item_id.in_([item.id for item in items]))
        .order_by(FeedbackRow.id)
    )
    newest = {row.item_id: Verdict(row.relevant, row.created_at) for row in session.execute(query)}
    return [replace(item, verdict=newest.get(item.id)) for item in items]


def item_detail(session: Session, item_id: int) -> ItemDetail | None:
    row = session.execute(_item_columns().where(ItemRow.id == item_id)).one_or_none()
    if row is None:
        return None
    extra = session.execute(
        select(
            ItemRow.summary, ItemRow.fetched_at, AssessmentRow.evidence, AssessmentRow.model_version
        )
        .join(AssessmentRow, AssessmentRow.item_id == ItemRow.id)
        .where(ItemRow.id == item_id)
    ).one()
    return ItemDetail(
        item=with_verdicts(session, [_triage_item(row)])[0],
        summary=extra.summary,
        fetched_at=extra.fetched_at,
        evidence=tuple(extra.evidence or ()),
        model_version=extra.model_version,
    )


def triage_feed_choices(session: Session) -> list[tuple[int, str]]:
    """(id, name) of every feed, for the triage filter's feed list."""
    return [
        (row.id, row.name)
        for row in session.execute(select(FeedRow.id, FeedRow.name).order_by(FeedRow.name))
    ]


def record_verdict(session: Session, item: TriageItem, relevant: bool, now: datetime) -> None:
    """An analyst's "relevant" (the classifier's labels confirmed) or "not relevant"."""
    stage = item.stage if relevant and item.stage != "none" else None
    record_feedback(
        session,
        item.id,
        relevant,
        item.categories if relevant else (),
        item.country if relevant else None,
        stage,
        now,
    )
