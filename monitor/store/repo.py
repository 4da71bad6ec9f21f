"""The queries the pipeline needs; every function takes the Session it works in."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from monitor.domain import Assessment, Entry
from monitor.store.models import (
    AlertRow,
    AssessmentRow,
    Base,
    EventBandRow,
    EventRow,
    FeedRow,
    FetchLogRow,
    ItemRow,
    ItemSourceRow,
)


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
    """Make the feeds table match the config: add, update, and disable what was removed."""
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
    session: Session, now: datetime, lease: timedelta, limit: int, only: str | None = None
) -> list[FeedRow]:
    """Lease the feeds due for a poll so that no other cycle or process polls them at once."""
    query = (
        select(FeedRow)
        .where(FeedRow.enabled.is_(True), FeedRow.gone.is_(False))
        .where(or_(FeedRow.lease_until.is_(None), FeedRow.lease_until < now))
        .order_by(FeedRow.next_poll_at)
        .limit(limit)
    )
    query = query.where(FeedRow.name == only) if only else query.where(FeedRow.next_poll_at <= now)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(session.scalars(query))
    for row in rows:
        row.lease_until = now + lease
    return rows


def log_fetches(session: Session, rows: Sequence[FetchLogRow]) -> None:
    """Append lines to the fetch log, in one statement (nothing needs their ids back)."""
    if not rows:
        return
    table = _table(FetchLogRow)
    keys = [column.key for column in table.columns if column.key != "id"]
    values = [{key: getattr(row, key) for key in keys} for row in rows]
    session.connection().execute(insert(table).values(values))


@dataclass(frozen=True, slots=True)
class DedupResult:
    """How a batch of entries from one feed relates to what is already stored."""

    new: list[Entry]
    extra_sources: int  # entries that are another feed's copy of a stored item
    known: int  # entries this feed had already delivered


def dedup_entries(
    session: Session, feed_id: int, entries: Sequence[Entry], now: datetime
) -> DedupResult:
    """Split entries into new ones and ones already stored (recording extra sources)."""
    unique: dict[str, Entry] = {}
    for entry in entries:
        unique.setdefault(entry.guid, entry)  # duplicate GUIDs inside one document
    guids = list(unique)
    seen: set[str] = set()
    for chunk in _chunks(guids, 500):
        seen.update(
            session.scalars(
                select(ItemSourceRow.guid).where(
                    ItemSourceRow.feed_id == feed_id, ItemSourceRow.guid.in_(chunk)
                )
            )
        )
    fresh = [entry for guid, entry in unique.items() if guid not in seen]
    by_url, by_hash = _stored_items_for(session, fresh)
    new: list[Entry] = []
    extra = 0
    batch_keys: set[str] = set()
    for entry in fresh:
        match = (by_url.get(entry.url) if entry.url else None) or by_hash.get(entry.content_hash)
        if match is not None:
            session.add(
                ItemSourceRow(
                    item_id=match, feed_id=feed_id, guid=entry.guid, url=entry.url, seen_at=now
                )
            )
            session.execute(
                update(ItemRow)
                .where(ItemRow.id == match)
                .values(source_count=ItemRow.source_count + 1)
            )
            extra += 1
            continue
        keys = {entry.content_hash} | ({entry.url} if entry.url else set())
        if keys & batch_keys:
            continue  # the same story twice in one document
        batch_keys |= keys
        new.append(entry)
    return DedupResult(new=new, extra_sources=extra, known=len(entries) - len(fresh))


def _stored_items_for(
    session: Session, entries: Sequence[Entry]
) -> tuple[dict[str, int], dict[str, int]]:
    urls = [entry.url for entry in entries if entry.url]
    hashes = [entry.content_hash for entry in entries]
    by_url: dict[str, int] = {}
    by_hash: dict[str, int] = {}
    for chunk in _chunks(urls, 500):
        for item_id, url in session.execute(
            select(ItemRow.id, ItemRow.url).where(ItemRow.url.in_(chunk))
        ):
            if url is not None:
                by_url.setdefault(url, item_id)
    for chunk in _chunks(hashes, 500):
        for item_id, content_hash in session.execute(
            select(ItemRow.id, ItemRow.content_hash).where(ItemRow.content_hash.in_(chunk))
        ):
            by_hash.setdefault(content_hash, item_id)
    return by_url, by_hash


def _chunks(values: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def store_items(
    session: Session,
    feed_id: int,
    entries: Sequence[Entry],
    assessments: Sequence[Assessment],
    now: datetime,
) -> list[int]:
    """Insert new items with their first source and assessment; returns ids in entry order.

    Bulk Core inserts: a first poll stores thousands of items, and ORM unit-of-work
    bookkeeping per row cost more than the SQL itself.
    """
    if not entries:
        return []
    item_rows = [
        {
            "feed_id": feed_id,
            "guid": entry.guid,
            "url": entry.url,
            "title": entry.title,
            "summary": entry.summary,
            "language": entry.language,
            "published": entry.published,
            "fetched_at": now,
            "content_hash": entry.content_hash,
            "source_count": 1,
            "event_id": None,
        }
        for entry in entries
    ]
    # Core statements on the session's connection: the ORM bulk path spends more time on
    # bookkeeping than SQLite spends on the rows.
    connection = session.connection()
    items = _table(ItemRow)
    # RETURNING without a parameter order lets SQLite batch the rows; guids are unique within
    # a feed's new entries (dedup_entries), so they map the ids back.
    returning = insert(items).returning(items.c.id, items.c.guid)
    id_of = {guid: item_id for item_id, guid in connection.execute(returning, item_rows)}
    ids = [id_of[entry.guid] for entry in entries]
    connection.execute(
        insert(_table(ItemSourceRow)),
        [
            {"item_id": item_id, "feed_id": feed_id, "guid": e.guid, "url": e.url, "seen_at": now}
            for item_id, e in zip(ids, entries, strict=True)
        ],
    )
    connection.execute(
        insert(_table(AssessmentRow)),
        [
            {
                "item_id": item_id,
                "relevant": a.relevant,
                "score": a.score,
                "categories": [str(c) for c in a.categories],
                "country": a.country,
                "stage": str(a.stage),
                "matched_terms": list(a.matched_terms),
                "evidence": list(a.evidence),
                "model_version": a.model_version,
                "created_at": now,
            }
            for item_id, a in zip(ids, assessments, strict=True)
        ],
    )
    return ids


def _table(model: type[Base]) -> Table:
    """A model's Table, typed as one (mypy sees only FromClause)."""
    return cast(Table, model.__table__)


def set_item_events(session: Session, item_events: Sequence[tuple[int, int]]) -> None:
    """Record which event each item reports, in one statement."""
    if not item_events:
        return
    items = _table(ItemRow)
    statement = (
        update(items)
        .where(items.c.id == bindparam("item_id"))
        .values(event_id=bindparam("event_id"))
    )
    session.connection().execute(
        statement, [{"item_id": item, "event_id": event} for item, event in item_events]
    )


# How many of a country's newest events a new item is compared with besides those found by
# its keys: a safety net for a follow-up that shares neither wording nor a key term.
NEWEST_EVENTS_CHECKED = 10


def event_candidates(
    session: Session, keys: Sequence[str], country: str | None, since: datetime
) -> list[EventRow]:
    """Events seen lately that share a lookup key with an item (keys are country-scoped),
    plus the item's country's newest few events.

    Two indexed, bounded lookups: the first starts from the key index (no country condition,
    so SQLite's planner cannot prefer scanning the country's events), the second walks the
    (country, last_seen) index backwards. The cost does not grow with the stored events.
    """
    sharing_a_key = select(EventBandRow.event_id).where(EventBandRow.band_key.in_(list(keys)))
    by_key = (
        select(EventRow)
        .where(EventRow.id.in_(sharing_a_key), EventRow.last_seen >= since)
        .limit(100)
    )
    same_country = EventRow.country.is_(None) if country is None else EventRow.country == country
    newest = (
        select(EventRow)
        .where(same_country, EventRow.last_seen >= since)
        .order_by(EventRow.last_seen.desc())
        .limit(NEWEST_EVENTS_CHECKED)
    )
    found = {row.id: row for row in session.scalars(by_key) if row.country == country}
    for row in session.scalars(newest):
        found.setdefault(row.id, row)
    return sorted(found.values(), key=lambda row: row.last_seen, reverse=True)


def add_event_bands(session: Session, event_id: int, band_keys: Iterable[str]) -> None:
    """Index an event's fingerprint bands; bands it already has are skipped by the database."""
    rows = [{"event_id": event_id, "band_key": key} for key in sorted(set(band_keys))]
    if not rows:
        return
    table = _table(EventBandRow)
    dialect = session.get_bind().dialect.name
    statement = (
        postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    ).on_conflict_do_nothing(index_elements=["event_id", "band_key"])
    # One multi-row VALUES statement; ORM or executemany inserts go row by row on SQLite.
    session.connection().execute(statement.values(rows))


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
