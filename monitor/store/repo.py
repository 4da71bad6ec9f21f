"""The queries the pipeline needs; every function takes the Session it works in."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Table,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.dml import Insert

from monitor.domain import Assessment, Entry
from monitor.intake.dedup import DedupPlan, FeedEntries, KnownItems, NewItemKey
from monitor.store import locks
from monitor.store.models import (
    HELD_BACK,
    AlertRow,
    AssessmentRow,
    Base,
    FeedRow,
    FetchLogRow,
    ItemRow,
    ItemSourceRow,
)

T = TypeVar("T")
# Leases are claimed, renewed and released this many feeds per statement, the last chunk
# padded to one of a few lengths (fixed_chunks). A first poll of 10,000 feeds holds ~8,000
# leases at once; one UPDATE for each different count was a new prepared statement of
# ~1.5 MB, and SQLite's statement cache kept 11 MB of those.
LEASE_CHUNK = 500


@dataclass(frozen=True, slots=True)
class FeedSettings:
    """What the config says about one feed, as the database needs it."""

    name: str
    url: str
    country: str | None
    language: str | None
    interval_s: int
    enabled: bool


def sync_feeds(session: Session, feeds: Sequence[FeedSettings], now: datetime) -> None:
    """Make the feeds table match the config: add, update, and disable what was removed.

    Replicas that start (or reload) together sync one after the other: the second then finds
    the feeds the first inserted instead of inserting them again (feeds.name is unique).
    """
    locks.hold_for_transaction(session, locks.WRITES)
    existing = {row.name: row for row in session.scalars(select(FeedRow))}
    wanted = {feed.name for feed in feeds}
    for feed in feeds:
        row = existing.get(feed.name)
        if row is None:
            session.add(
                FeedRow(
                    name=feed.name,
                    url=feed.url,
                    country=feed.country,
                    language=feed.language,
                    interval_s=feed.interval_s,
                    enabled=feed.enabled,
                    next_poll_at=now,
                    created_at=now,
                )
            )
            continue
        if row.url != feed.url:
            # A new address is a new resource: its validators and "gone" verdict do not carry over.
            row.url, row.etag, row.last_modified, row.body_hash = feed.url, None, None, None
            row.gone, row.next_poll_at, row.consecutive_failures = False, now, 0
            row.moved_to = None  # the admins followed the move, or changed the address anyway
        row.country, row.language = feed.country, feed.language
        if row.interval_s != feed.interval_s:
            row.interval_s = feed.interval_s
            row.next_poll_at = min(row.next_poll_at, now + timedelta(seconds=feed.interval_s))
        if feed.enabled and not row.enabled:
            row.next_poll_at = now
        row.enabled = feed.enabled
    for name, row in existing.items():
        if name not in wanted:
            row.enabled = False  # history is kept; the feed simply stops being polled


def claim_due_feeds(
    session: Session,
    now: datetime,
    lease: timedelta,
    limit: int,
    only: str | None = None,
    *,
    holder: str,
) -> list[FeedRow]:
    """Lease the feeds due for a poll so that no other cycle or process polls them at once;
    `holder` names who holds the leases (see `lease_holder`)."""
    free = or_(FeedRow.lease_until.is_(None), FeedRow.lease_until < now)
    query = (
        select(FeedRow)
        .where(FeedRow.enabled.is_(True))
        .where(free)
        .order_by(FeedRow.next_poll_at)
        .limit(limit)
    )
    query = query.where(FeedRow.name == only) if only else query.where(FeedRow.next_poll_at <= now)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(session.scalars(query))
    until = now + lease
    feeds = table_of(FeedRow)
    # One UPDATE for the lot: the unit of work would flush each row with its own bookkeeping,
    # and a busy tick claims hundreds. It re-checks that each lease is still free: on SQLite
    # the SELECT takes no lock, so another process may have leased some of these meanwhile.
    claimed: set[int] = set()
    for ids in fixed_chunks([row.id for row in rows], LEASE_CHUNK):  # a few statement lengths
        lease_them = (
            update(feeds)
            .where(feeds.c.id.in_(ids), free)
            .values(lease_until=until, lease_holder=holder)
        ).returning(feeds.c.id)
        claimed.update(session.connection().execute(lease_them).scalars())
    for row in rows:
        if row.id in claimed:  # what the database now holds
            set_committed_value(row, "lease_until", until)
            set_committed_value(row, "lease_holder", holder)
    return [row for row in rows if row.id in claimed]


def held_back_feeds(session: Session, lookback: timedelta) -> set[int]:
    """Feeds whose latest fetch log entry says they were held back (their host said 429).

    Only the log's last `lookback` is read (a hold lasts at most an hour, and the index on
    started_at keeps this from reading months of log), counted back from its newest entry,
    not from this machine's clock.
    """
    newest = session.scalar(select(func.max(FetchLogRow.started_at)))
    if newest is None:
        return set()
    since = newest - lookback
    latest = (
        select(FetchLogRow.feed_id, func.max(FetchLogRow.id).label("id"))
        .where(FetchLogRow.started_at >= since)
        .group_by(FetchLogRow.feed_id)
        .subquery()
    )
    query = select(FetchLogRow.feed_id).join(latest, FetchLogRow.id == latest.c.id)
    return set(session.scalars(query.where(FetchLogRow.outcome == HELD_BACK)))


def log_fetches(session: Session, rows: Sequence[FetchLogRow]) -> None:
    """Append lines to the fetch log, in one statement (nothing needs their ids back)."""
    if not rows:
        return
    table = table_of(FetchLogRow)
    keys = [column.key for column in table.columns if column.key != "id"]
    values = [{key: getattr(row, key) for key in keys} for row in rows]
    # executemany of one cached statement: a multi-row VALUES would be compiled anew each time.
    session.connection().execute(insert(table), values)


def known_items(session: Session, feeds: Sequence[FeedEntries]) -> KnownItems:
    """What the database holds for a batch's entries, in a few indexed queries per batch:
    the (feed, guid) pairs already recorded, and the items their URLs and hashes point to."""
    feed_ids = sorted({feed.feed_id for feed in feeds})
    entries = [entry for feed in feeds for entry in feed.entries]
    wanted = {(feed.feed_id, entry.guid) for feed in feeds for entry in feed.entries}
    sources: set[tuple[int, str]] = set()
    for chunk in chunks(sorted({entry.guid for entry in entries}), 500):
        # Both columns of the unique (feed_id, guid) index are constrained, so the database
        # probes the index; the pairs that belong to other feeds of the batch are dropped.
        query = select(ItemSourceRow.feed_id, ItemSourceRow.guid).where(
            ItemSourceRow.feed_id.in_(feed_ids), ItemSourceRow.guid.in_(chunk)
        )
        sources.update(pair for pair in session.execute(query).tuples() if pair in wanted)
    unknown = [
        entry
        for feed in feeds
        for entry in feed.entries
        if (feed.feed_id, entry.guid) not in sources
    ]
    by_url, by_hash = _stored_items_for(session, unknown)
    return KnownItems(frozenset(sources), by_url, by_hash)


def _stored_items_for(
    session: Session, entries: Sequence[Entry]
) -> tuple[dict[str, int], dict[str, int]]:
    urls = sorted({entry.url for entry in entries if entry.url})
    hashes = sorted({entry.content_hash for entry in entries})
    by_url: dict[str, int] = {}
    by_hash: dict[str, int] = {}
    for chunk in chunks(urls, 500):
        for item_id, url in session.execute(
            select(ItemRow.id, ItemRow.url).where(ItemRow.url.in_(chunk))
        ):
            if url is not None:
                by_url.setdefault(url, item_id)
    for chunk in chunks(hashes, 500):
        for item_id, content_hash in session.execute(
            select(ItemRow.id, ItemRow.content_hash).where(ItemRow.content_hash.in_(chunk))
        ):
            by_hash.setdefault(content_hash, item_id)
    return by_url, by_hash


def fixed_chunks(ids: list[int], size: int) -> list[list[int]]:
    """`ids` in chunks of `size`; a shorter chunk repeats its last id up to that length (the
    same rows), so every chunk is the same statement. Fewer than `size` ids make one chunk
    of the next power of two at least as long: a handful of lengths, not one per count."""
    if not ids:
        return []
    parts = [list(part) for part in chunks(ids, size)]
    length = size if len(ids) >= size else min(size, 1 << (len(ids) - 1).bit_length())
    parts[-1] += [parts[-1][-1]] * (length - len(parts[-1]))
    return parts


def hold_leases(
    session: Session, ids: list[int], holder: str, until: datetime | None, chunk: int
) -> None:
    """Renew (`until`) or give back (None) the leases `holder` holds on these feeds; a lease
    another process has taken since (this one stalled past it) is left alone."""
    values: dict[str, Any] = {"lease_until": until}
    if until is None:
        values["lease_holder"] = None
    for part in fixed_chunks(ids, chunk):
        session.execute(
            update(FeedRow)
            .where(FeedRow.id.in_(part), FeedRow.lease_holder == holder)
            .values(**values)
        )


def chunks(values: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def store_plan(
    session: Session, plan: DedupPlan, assessments: Sequence[Assessment], now: datetime
) -> list[int]:
    """Insert a batch's new items (with their sources and assessments) and its extra sources;
    returns the new items' ids in plan order.

    Bulk Core statements, a handful per batch: a first poll stores thousands of items, and
    per-row ORM bookkeeping or per-feed statements cost more than the SQL itself.
    """
    connection = session.connection()
    copies_of: Counter[NewItemKey] = Counter(
        copy.new_item for copy in plan.copies if copy.new_item is not None
    )
    ids: list[int] = []
    id_of: dict[NewItemKey, int] = {}
    if plan.new:
        items = table_of(ItemRow)
        # RETURNING without a parameter order lets SQLite batch the rows; (feed, guid) is
        # unique among a plan's new items, so it maps the ids back.
        returning = insert(items).returning(items.c.id, items.c.feed_id, items.c.guid)
        rows = [
            _item_values(feed_id, e, now, 1 + copies_of[(feed_id, e.guid)])
            for feed_id, e in plan.new
        ]
        id_of = {
            (feed, guid): item_id for item_id, feed, guid in connection.execute(returning, rows)
        }
        ids = [id_of[(feed_id, entry.guid)] for feed_id, entry in plan.new]
        connection.execute(
            insert(table_of(AssessmentRow)),
            [
                _assessment_values(item_id, a, now)
                for item_id, a in zip(ids, assessments, strict=True)
            ],
        )
    sources = [
        _source_values(item_id, feed_id, e, now)
        for item_id, (feed_id, e) in zip(ids, plan.new, strict=True)
    ]
    stored_copies: Counter[int] = Counter()
    for copy in plan.copies:
        item_id = copy.item_id if copy.new_item is None else id_of[copy.new_item]
        if item_id is None:  # a Copy points at a stored item or at a new one: never here
            continue
        sources.append(_source_values(item_id, copy.feed_id, copy.entry, now))
        if copy.item_id is not None:
            stored_copies[copy.item_id] += 1
    if sources:
        connection.execute(insert(table_of(ItemSourceRow)), sources)
    if stored_copies:
        items = table_of(ItemRow)
        connection.execute(
            update(items)
            .where(items.c.id == bindparam("item_id"))
            .values(source_count=items.c.source_count + bindparam("extra")),
            [{"item_id": item, "extra": extra} for item, extra in sorted(stored_copies.items())],
        )
    return ids


def _item_values(feed_id: int, entry: Entry, now: datetime, sources: int) -> dict[str, object]:
    return {
        "feed_id": feed_id,
        "guid": entry.guid,
        "url": entry.url,
        "title": entry.title,
        "summary": entry.summary,
        "language": entry.language,
        "published": entry.published,
        "fetched_at": now,
        "content_hash": entry.content_hash,
        "source_count": sources,
        "event_id": None,
    }


def _source_values(item_id: int, feed_id: int, entry: Entry, now: datetime) -> dict[str, object]:
    return {
        "item_id": item_id,
        "feed_id": feed_id,
        "guid": entry.guid,
        "url": entry.url,
        "seen_at": now,
    }


def _assessment_values(item_id: int, assessment: Assessment, now: datetime) -> dict[str, object]:
    return {
        "item_id": item_id,
        "relevant": assessment.relevant,
        "score": assessment.score,
        "categories": [str(c) for c in assessment.categories],
        "country": assessment.country,
        "stage": str(assessment.stage),
        "matched_terms": list(assessment.matched_terms),
        "evidence": list(assessment.evidence),
        "model_version": assessment.model_version,
        "created_at": now,
    }


def table_of(model: type[Base]) -> Table:
    """A model's Table, typed as one (mypy sees only FromClause)."""
    return cast(Table, model.__table__)


def set_item_events(session: Session, item_events: Sequence[tuple[int, int]]) -> None:
    """Record which event each item reports, in one statement."""
    if not item_events:
        return
    items = table_of(ItemRow)
    statement = (
        update(items)
        .where(items.c.id == bindparam("item_id"))
        .values(event_id=bindparam("event_id"))
    )
    session.connection().execute(
        statement, [{"item_id": item, "event_id": event} for item, event in item_events]
    )


def add_alert_once(session: Session, values: Mapping[str, object]) -> int:
    """Queue an outbox row unless its route has one with its dedup key; 1 if queued, else 0."""
    statement = insert_ignoring_conflict(session, table_of(AlertRow), ["route", "dedup_key"])
    result = session.connection().execute(statement, values)
    return max(result.rowcount, 0)


def insert_ignoring_conflict(session: Session, table: Table, unique: list[str]) -> Insert:
    dialect = session.get_bind().dialect.name
    insert_for = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert_for(table).on_conflict_do_nothing(index_elements=unique)


def count_sent_since(session: Session, route: str, since: datetime) -> int:
    """Instant alerts a route has sent or queued since a moment (for its rate limit)."""
    return int(
        session.scalar(
            select(func.count(AlertRow.id)).where(
                AlertRow.route == route,
                AlertRow.created_at >= since,
                AlertRow.status.in_(("pending", "sending", "sent", "held")),
                AlertRow.kind.in_(("new", "update")),
            )
        )
        or 0
    )


def unsent_alerts_per_route(session: Session, routes: Sequence[str]) -> dict[str, int]:
    """How many alerts of each of `routes` wait to be sent (pending, sending or in a digest)."""
    query = (
        select(AlertRow.route, func.count())
        .where(AlertRow.route.in_(routes), AlertRow.status.in_(("pending", "sending", "digest")))
        .group_by(AlertRow.route)
    )
    return {route: count for route, count in session.execute(query).tuples()}


# ------------------------------------------------- operators' actions (CLI and web)


def retry_dead_alerts(
    session: Session, now: datetime, *, route: str | None = None, alert_id: int | None = None
) -> int:
    """Put dead-lettered alerts back in the queue, due now with a fresh attempt count; how
    many. `monitor alerts retry` and the web's retry buttons both call this."""
    statement = update(AlertRow).where(AlertRow.status == "dead")
    if route:
        statement = statement.where(AlertRow.route == route)
    if alert_id is not None:
        statement = statement.where(AlertRow.id == alert_id)
    result = session.execute(
        statement.values(
            status="pending", attempts=0, due_at=now, last_error=None
        ).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def poll_feed_now(session: Session, feed_id: int, now: datetime) -> bool:
    """Make a feed due at the next scheduler tick; False if there is no such feed."""
    feed = session.get(FeedRow, feed_id)
    if feed is None:
        return False
    feed.next_poll_at = now
    return True


def reset_feed_errors(session: Session, feed_id: int) -> bool:
    """Forget a feed's failure streak (its next failure alerts afresh); False if no feed."""
    feed = session.get(FeedRow, feed_id)
    if feed is None:
        return False
    feed.consecutive_failures = 0
    feed.broken_alerted = False
    return True
