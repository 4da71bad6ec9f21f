"""Source health: each feed's state (failing, silent, healthy, disabled) with its 7- and
30-day numbers, its poll history, and the polling status line. Aggregates are grouped
queries for every feed at once (cached for a minute: see cached_feed_stats).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from monitor.store.models import (
    AssessmentRow,
    FeedRow,
    FetchLogRow,
    ItemRow,
)
from monitor.web.pagination import time_id_cursor

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
    """A feed's polls, newest first (kept for retention.fetch_log), and the next page's cursor."""
    query = select(FetchLogRow).where(FetchLogRow.feed_id == feed_id)
    if after is not None:
        started, last_id = time_id_cursor(after)
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
