"""The operators' queries: triage of items, source health, the alert outbox, the status line.

Each returns typed dataclasses that both the pages (ops_pages) and the JSON API (ops_api)
use, so the two never disagree. Every list is one query per table for the whole page (no
query per row), bounded by a LIMIT or a time window on an indexed column.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

from fastapi import HTTPException
from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from monitor.classify.model import load_model
from monitor.classify.training import DEFAULT_MODEL
from monitor.config.schema import parse_duration
from monitor.errors import ModelError
from monitor.store.feedback import record_feedback
from monitor.store.models import (
    AlertRow,
    AssessmentRow,
    EventRow,
    FeedbackRow,
    FeedRow,
    FetchLogRow,
    ItemRow,
)

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


def _moment(name: str, raw: str, now: datetime) -> datetime:
    """A duration back from now (7d, 24h) or an ISO date/time; a 400 naming the parameter."""
    try:
        return now - parse_duration(raw)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise HTTPException(400, f"{name}: {raw!r} is not a duration (7d, 24h) or a date") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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
        since=_moment("since", since_raw, now) if since_raw else now - TRIAGE_WINDOW,
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
        published, last_id = _published_cursor(after)
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


def _published_cursor(after: list[Any]) -> tuple[datetime, int]:
    try:
        raw, last_id = after
        return datetime.fromisoformat(raw), int(last_id)
    except (TypeError, ValueError) as exc:
        raise HTTPException(400, "cursor: not a cursor of this list") from exc


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


# ------------------------------------------------------------------------ source health

FeedState = Literal["failing", "silent", "healthy", "disabled"]
FEED_STATES: tuple[FeedState, ...] = get_args(FeedState)
STATS_WINDOW = timedelta(days=7)
# How far back "its usual gap between new items" is measured.
SILENT_WINDOW = timedelta(days=30)
SILENT_GAP_FACTOR = 3
SILENT_INTERVAL_FACTOR = 2


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """One feed's polling state and its last week in numbers."""

    id: int
    name: str
    url: str
    country: str | None
    language: str | None
    interval_s: int
    enabled: bool
    gone: bool
    last_polled_at: datetime | None
    last_success_at: datetime | None
    next_poll_at: datetime
    consecutive_failures: int
    last_error_kind: str | None
    last_error: str | None
    moved_to: str | None
    created_at: datetime
    fetches_7d: int = 0
    not_modified_7d: int = 0
    items_7d: int = 0
    flagged_7d: int = 0
    last_item_at: datetime | None = None
    # Mean time between its new items over SILENT_WINDOW; None with fewer than two items.
    usual_gap_s: float | None = None
    state: FeedState = "healthy"

    @property
    def not_modified_ratio(self) -> float | None:
        return self.not_modified_7d / self.fetches_7d if self.fetches_7d else None


def feed_state(feed: FeedHealth, now: datetime) -> FeedState:
    """disabled, failing, silent or healthy (the first that applies).

    Silent: it polls fine but has brought no new item for much longer than usual: its newest
    item (first collected by this feed) is older than max(3 x its mean gap between items
    over 30 d, 2 x its poll interval). With fewer than two items in 30 d there is no usual
    gap: it is silent once 30 d pass without an item (counted from its creation if none).
    The mean, not the median, so one grouped SQL query serves every feed.
    """
    if not feed.enabled or feed.gone:
        return "disabled"
    if feed.consecutive_failures > 0:
        return "failing"
    interval = timedelta(seconds=feed.interval_s)
    if feed.usual_gap_s is not None and feed.last_item_at is not None:
        allowed = max(
            SILENT_GAP_FACTOR * timedelta(seconds=feed.usual_gap_s),
            SILENT_INTERVAL_FACTOR * interval,
        )
        quiet_since = feed.last_item_at
    else:
        allowed = max(SILENT_WINDOW, SILENT_INTERVAL_FACTOR * interval)
        quiet_since = feed.last_item_at or feed.created_at
    return "silent" if now - quiet_since > allowed else "healthy"


def _fetch_stats(
    session: Session, since: datetime, feed_id: int | None
) -> dict[int, tuple[int, int]]:
    """feed id -> (polls, 304s) since a moment: one grouped query over fetch_log."""
    not_modified = func.sum(case((FetchLogRow.outcome == "not_modified", 1), else_=0))
    query = (
        select(FetchLogRow.feed_id, func.count(FetchLogRow.id), not_modified)
        .where(FetchLogRow.started_at >= since)
        .group_by(FetchLogRow.feed_id)
    )
    if feed_id is not None:
        query = query.where(FetchLogRow.feed_id == feed_id)
    return {row[0]: (int(row[1]), int(row[2] or 0)) for row in session.execute(query)}


@dataclass(frozen=True, slots=True)
class _ItemStats:
    items_7d: int
    flagged_7d: int
    count_30d: int
    first_30d: datetime
    last_30d: datetime


def _item_stats(session: Session, now: datetime, feed_id: int | None) -> dict[int, _ItemStats]:
    """feed id -> its items over 30 d (by fetched_at, indexed): one grouped query."""
    week = now - STATS_WINDOW
    recent = ItemRow.fetched_at >= week
    query = (
        select(
            ItemRow.feed_id,
            func.sum(case((recent, 1), else_=0)),
            func.sum(case((and_(recent, AssessmentRow.relevant.is_(True)), 1), else_=0)),
            func.count(ItemRow.id),
            func.min(ItemRow.fetched_at),
            func.max(ItemRow.fetched_at),
        )
        .outerjoin(AssessmentRow, AssessmentRow.item_id == ItemRow.id)
        .where(ItemRow.fetched_at >= now - SILENT_WINDOW)
        .group_by(ItemRow.feed_id)
    )
    if feed_id is not None:
        query = query.where(ItemRow.feed_id == feed_id)
    stats: dict[int, _ItemStats] = {}
    for fid, items_7d, flagged_7d, count, first, last in session.execute(query):
        stats[fid] = _ItemStats(
            int(items_7d or 0), int(flagged_7d or 0), int(count), _aware(first), _aware(last)
        )
    return stats


def _aware(value: datetime | str) -> datetime:
    """min()/max() of a UTC column come back as text or naive datetimes on SQLite."""
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FeedStats:
    """The 7- and 30-day aggregates of every feed: the costly part of the sources page."""

    fetches: dict[int, tuple[int, int]]
    items: dict[int, _ItemStats]
    taken_at: float  # monotonic seconds


# Aggregates over a week of polls change little in a minute; at 1,000 feeds the fetch log
# holds 670k rows a week, and grouping them on every view of /feeds took most of its time.
FEED_STATS_TTL_S = 60.0


def cached_feed_stats(extras: dict[str, Any], session: Session, now: datetime) -> FeedStats:
    """Every feed's aggregates, computed at most once a minute per app (WebContext.extras)."""
    cached: FeedStats | None = extras.get("feed_stats")
    if cached is None or time.monotonic() - cached.taken_at > FEED_STATS_TTL_S:
        cached = FeedStats(
            fetches=_fetch_stats(session, now - STATS_WINDOW, None),
            items=_item_stats(session, now, None),
            taken_at=time.monotonic(),
        )
        extras["feed_stats"] = cached
    return cached


def feed_health(
    session: Session,
    now: datetime,
    feed_id: int | None = None,
    stats: FeedStats | None = None,
) -> list[FeedHealth]:
    """Every feed (or one) by name, with its 7-day numbers and its state.

    `stats`: every feed's aggregates computed before (cached_feed_stats); without them, they
    are computed now (for one feed, only its own).
    """
    query = select(FeedRow).order_by(FeedRow.name)
    if feed_id is not None:
        query = query.where(FeedRow.id == feed_id)
    if stats is not None:
        fetches, items = stats.fetches, stats.items
    else:
        fetches = _fetch_stats(session, now - STATS_WINDOW, feed_id)
        items = _item_stats(session, now, feed_id)
    result = []
    for row in session.scalars(query):
        polls, not_modified = fetches.get(row.id, (0, 0))
        own = items.get(row.id)
        gap = None
        if own is not None and own.count_30d >= 2:
            gap = (own.last_30d - own.first_30d).total_seconds() / (own.count_30d - 1)
        health = FeedHealth(
            id=row.id, name=row.name, url=row.url, country=row.country, language=row.language,
            interval_s=row.interval_s, enabled=row.enabled, gone=row.gone,
            last_polled_at=row.last_polled_at, last_success_at=row.last_success_at,
            next_poll_at=row.next_poll_at, consecutive_failures=row.consecutive_failures,
            last_error_kind=row.last_error_kind, last_error=row.last_error,
            moved_to=row.moved_to, created_at=row.created_at,
            fetches_7d=polls, not_modified_7d=not_modified,
            items_7d=own.items_7d if own else 0, flagged_7d=own.flagged_7d if own else 0,
            last_item_at=own.last_30d if own else None, usual_gap_s=gap,
        )  # fmt: skip
        result.append(replace(health, state=feed_state(health, now)))
    return result


def state_counts(feeds: Sequence[FeedHealth]) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(FEED_STATES, 0)
    for feed in feeds:
        counts[feed.state] += 1
    return counts


def failing_feed_count(session: Session) -> int:
    """Feeds in the failing state (the nav badge): polled, and the last poll failed."""
    query = select(func.count(FeedRow.id)).where(
        FeedRow.enabled.is_(True), FeedRow.gone.is_(False), FeedRow.consecutive_failures > 0
    )
    return int(session.scalar(query) or 0)


@dataclass(frozen=True, slots=True)
class FetchEntry:
    id: int
    started_at: datetime
    outcome: str
    http_status: int | None
    bytes: int
    entries: int
    new_items: int
    duration_ms: int
    error_kind: str | None
    error: str | None

    @property
    def cursor(self) -> list[Any]:
        return [self.started_at.isoformat(), self.id]


def fetch_history(
    session: Session, feed_id: int, *, after: list[Any] | None = None, limit: int = 50
) -> tuple[list[FetchEntry], list[Any] | None]:
    """A feed's polls, newest first (fetch_log keeps 30 d), and the next page's cursor."""
    query = select(FetchLogRow).where(FetchLogRow.feed_id == feed_id)
    if after is not None:
        started, last_id = _published_cursor(after)
        query = query.where(
            or_(
                FetchLogRow.started_at < started,
                and_(FetchLogRow.started_at == started, FetchLogRow.id < last_id),
            )
        )
    query = query.order_by(FetchLogRow.started_at.desc(), FetchLogRow.id.desc()).limit(limit + 1)
    rows = [
        FetchEntry(
            id=row.id,
            started_at=row.started_at,
            outcome=row.outcome,
            http_status=row.http_status,
            bytes=row.bytes,
            entries=row.entries,
            new_items=row.new_items,
            duration_ms=row.duration_ms,
            error_kind=row.error_kind,
            error=row.error,
        )  # fmt: skip
        for row in session.scalars(query)
    ]
    page = rows[:limit]
    return page, (page[-1].cursor if len(rows) > limit and page else None)


# ------------------------------------------------------------------------------ outbox

# The outbox's statuses (monitor.alerts.outbox, delivery, digest_delivery): waiting to be
# sent, leased by a sender, waiting for its route's digest, sent, given up on.
ALERT_STATUSES = ("pending", "sending", "digest", "sent", "dead")


@dataclass(frozen=True, slots=True)
class AlertEntry:
    id: int
    route: str
    kind: str
    title: str
    event_id: int | None
    event_title: str | None
    feed_id: int | None
    status: str
    attempts: int
    last_error: str | None
    due_at: datetime
    created_at: datetime
    sent_at: datetime | None


def parse_alert_status(raw: str | None) -> str | None:
    if not raw:
        return None
    if raw not in ALERT_STATUSES:
        raise HTTPException(400, f"status: unknown {raw!r}; use {', '.join(ALERT_STATUSES)}")
    return raw


def alerts_page(
    session: Session,
    *,
    status: str | None,
    route: str | None,
    after: list[Any] | None = None,
    limit: int = 50,
) -> tuple[list[AlertEntry], list[Any] | None]:
    """Outbox rows, newest first, with their event's title (one outer join)."""
    query = select(AlertRow, EventRow.title).outerjoin(EventRow, EventRow.id == AlertRow.event_id)
    if status:
        query = query.where(AlertRow.status == status)
    if route:
        query = query.where(AlertRow.route == route)
    if after is not None:
        try:
            query = query.where(AlertRow.id < int(after[0]))
        except (TypeError, ValueError, IndexError) as exc:
            raise HTTPException(400, "cursor: not a cursor of this list") from exc
    query = query.order_by(AlertRow.id.desc()).limit(limit + 1)
    rows = [
        AlertEntry(
            id=alert.id,
            route=alert.route,
            kind=alert.kind,
            title=str((alert.payload or {}).get("title") or ""),
            event_id=alert.event_id,
            event_title=event_title,
            feed_id=alert.feed_id,
            status=alert.status,
            attempts=alert.attempts,
            last_error=alert.last_error,
            due_at=alert.due_at,
            created_at=alert.created_at,
            sent_at=alert.sent_at,
        )  # fmt: skip
        for alert, event_title in session.execute(query)
    ]
    page = rows[:limit]
    return page, ([page[-1].id] if len(rows) > limit and page else None)


def outbox_counts(session: Session, route: str | None = None) -> dict[str, int]:
    """How many alerts are in each status (of one route, or all)."""
    query = select(AlertRow.status, func.count(AlertRow.id)).group_by(AlertRow.status)
    if route:
        query = query.where(AlertRow.route == route)
    counts = dict.fromkeys(ALERT_STATUSES, 0)
    for status, count in session.execute(query):
        counts[status] = int(count)
    return counts


def alert_routes(session: Session) -> list[str]:
    return list(session.scalars(select(AlertRow.route).distinct().order_by(AlertRow.route)))


# ------------------------------------------------------------------------------ status


@dataclass(frozen=True, slots=True)
class PollingStatus:
    feeds_due: int
    feeds_failing: int
    last_poll_at: datetime | None


def polling_status(session: Session, now: datetime) -> PollingStatus:
    """Feeds due now, failing, and the newest poll: one aggregate over feeds."""
    active = and_(FeedRow.enabled.is_(True), FeedRow.gone.is_(False))
    query = select(
        func.sum(case((and_(active, FeedRow.next_poll_at <= now), 1), else_=0)),
        func.sum(case((and_(active, FeedRow.consecutive_failures > 0), 1), else_=0)),
        func.max(FeedRow.last_polled_at),
    )
    due, failing, last = session.execute(query).one()
    return PollingStatus(int(due or 0), int(failing or 0), _aware(last) if last else None)


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
