"""Clustering a batch of flagged items at once places each item as one-by-one recording would,
on a real database (SQLite, then PostgreSQL)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from monitor.domain import Assessment, Category, Entry, Stage
from monitor.events.recorder import FlaggedItem, MeasureRecorder
from monitor.store.db import make_engine, make_sessions
from monitor.store.models import EventBandRow, EventRow

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
BLOCK = (
    "The Ministry of Information and Communications ordered internet service providers to "
    "block the messaging app Telegram, saying it was used by criminal groups."
)
STORIES = [
    ("Vietnam orders telecom operators to block Telegram", BLOCK, Stage.ENACTED),
    ("Vietnam orders telecoms to block Telegram messaging app", BLOCK, Stage.ENACTED),
    (
        "Vietnam drafts decree requiring social media users to verify accounts with ID",
        "A draft decree would require every social network account in Vietnam to be verified "
        "with a phone number or national ID before it can post.",
        Stage.PROPOSED,
    ),
    ("Vietnam orders network operators to block Telegram", BLOCK, Stage.ENACTED),
    (
        "Vietnam lifts Telegram block after the app agrees to open a local office",
        "Authorities restored access to Telegram on Friday, lifting the block ordered last "
        "week by the Ministry of Information and Communications.",
        Stage.LIFTED,
    ),
]


def _flagged(index: int, title: str, summary: str, stage: Stage) -> FlaggedItem:
    category = Category.IDENTITY_VERIFICATION if "verify" in title else Category.PLATFORM_BLOCK
    entry = Entry(
        guid=f"item-{index}",
        url=f"https://outlet{index}.example.org/story",
        title=title,
        summary=summary,
        published=NOW - timedelta(hours=len(STORIES) - index),
        content_hash=hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest(),
    )
    assessment = Assessment(
        relevant=True, score=0.9, categories=(category,), country="VN", stage=stage
    )
    return FlaggedItem(index, index, f"Outlet {index}", entry, assessment)


def _record(db_url: str, batches: Sequence[Sequence[FlaggedItem]]) -> list[int]:
    """Record the batches, each in its own transaction; the event id of every item."""
    engine = make_engine(db_url)
    sessions = make_sessions(engine)
    recorder = MeasureRecorder(routes=())
    placed: list[int] = []
    for batch in batches:
        with sessions.begin() as session:
            placed += [event for event, _ in recorder.record_batch(session, batch, NOW)]
    engine.dispose()
    return placed


def _pattern(event_ids: Sequence[int]) -> list[int]:
    """Event ids renumbered by first appearance, so two databases' ids compare."""
    order: dict[int, int] = {}
    return [order.setdefault(event, len(order)) for event in event_ids]


def test_a_batch_places_items_as_recording_them_one_by_one_does(db_url: str) -> None:
    items = [_flagged(i, *story) for i, story in enumerate(STORIES)]
    at_once = _record(db_url, [items[:4], items[4:]])

    # The copies of the block join the event the first one started in the same batch; the ID
    # decree is another measure; the lifting (next batch) joins the stored block event.
    assert _pattern(at_once) == [0, 0, 1, 0, 0]
    engine = make_engine(db_url)
    with make_sessions(engine)() as session:
        block = session.get(EventRow, at_once[0])
        assert block is not None
        assert (block.item_count, block.stage) == (4, "lifted")
        assert session.scalar(select(func.count(EventRow.id))) == 2
        filed = session.scalar(
            select(func.count(EventBandRow.id)).where(EventBandRow.event_id == block.id)
        )
        assert filed is not None and filed > 0
    engine.dispose()


def test_one_item_per_transaction_places_them_alike(db_url: str) -> None:
    items = [_flagged(i, *story) for i, story in enumerate(STORIES)]
    one_by_one = _record(db_url, [[item] for item in items])
    assert _pattern(one_by_one) == [0, 0, 1, 0, 0]
