"""Dedup: the pure plan for a batch of feeds, and storing one batch on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from monitor.clock import FrozenClock
from monitor.daemon.pipeline import FeedJob, FeedOutcome
from monitor.domain import Entry, FetchResult, Validators
from monitor.intake.dedup import Copy, FeedEntries, KnownItems, plan_batch
from monitor.intake.normalize import content_hash
from monitor.store.models import AssessmentRow, FeedRow, ItemRow, ItemSourceRow
from tests.support.stack import make_runtime, write_config

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def entry(guid: str, title: str, url: str | None = None) -> Entry:
    return Entry(
        guid=guid,
        url=url,
        title=title,
        summary=f"{title}, in more words.",
        published=NOW,
        content_hash=content_hash(title, f"{title}, in more words."),
    )


STORY = entry("a-1", "Regulator orders operators to block Telegram", "https://a.example/1")


def test_a_copy_in_a_later_feed_of_the_batch_becomes_a_source_of_the_new_item() -> None:
    copy = entry("b-9", STORY.title, "https://b.example/other-url")  # same text, other URL
    plan = plan_batch([FeedEntries(1, [STORY]), FeedEntries(2, [copy])], KnownItems())
    assert plan.new == [(1, STORY)]
    assert plan.copies == [Copy(2, copy, new_item=(1, "a-1"))]
    assert plan.new_per_feed == {1: 1, 2: 0}


def test_known_guids_are_skipped_and_stored_copies_point_at_the_stored_item() -> None:
    known = KnownItems(
        sources=frozenset({(1, "a-1")}), item_by_url={"https://c.example/3": 41}, item_by_hash={}
    )
    seen_url = entry("c-3", "A different headline", "https://c.example/3")
    fresh = entry("a-2", "Storm closes the port")
    plan = plan_batch([FeedEntries(1, [STORY, seen_url, fresh])], known)
    assert plan.new == [(1, fresh)]
    assert plan.copies == [Copy(1, seen_url, item_id=41)]


def test_a_story_repeated_within_one_document_is_dropped() -> None:
    same_story = entry("a-7", STORY.title, STORY.url)
    again = entry("a-1", STORY.title, STORY.url)  # the whole entry twice
    plan = plan_batch([FeedEntries(1, [STORY, same_story, again])], KnownItems())
    assert plan.new == [(1, replace(STORY, guid="a-1#https://a.example/1"))]
    assert plan.copies == []


def test_distinct_stories_sharing_a_guid_each_count_under_a_stable_guid() -> None:
    """Feeds that give every entry the site's address as GUID: no story may be lost, and
    each keeps its GUID when the next poll brings them in another order."""
    other = entry("a-1", "Another title under the same guid")
    first = plan_batch([FeedEntries(1, [STORY, other])], KnownItems())
    guids = [e.guid for _, e in first.new]
    assert guids == ["a-1#https://a.example/1", f"a-1#sha256:{other.content_hash}"]
    later = plan_batch([FeedEntries(1, [other, STORY])], KnownItems(sources=frozenset()))
    assert sorted(e.guid for _, e in later.new) == sorted(guids)
    known = KnownItems(sources=frozenset((1, guid) for guid in guids))
    assert plan_batch([FeedEntries(1, [other, STORY])], known).new == []


def _outcome(feed_id: int, name: str, entries: list[Entry]) -> FeedOutcome:
    job = FeedJob(feed_id, name, f"https://{name}.example/feed", None, "en", 900, 0, Validators())
    fetched = FetchResult(
        url=job.url, status=200, body=b"<rss/>", content_type="application/rss+xml",
        etag=None, last_modified=None, body_hash="x", elapsed_ms=5, not_modified=False,
    )  # fmt: skip
    return FeedOutcome(job, NOW, 5, fetched, entries=tuple(entries))


def test_one_batch_stores_each_story_once_with_all_its_sources(
    tmp_path: Path, db_url: str, clock: FrozenClock
) -> None:
    feeds = [{"name": n, "url": f"https://{n}.example/feed"} for n in ("a", "b", "c")]
    runtime = make_runtime(write_config(tmp_path / "feeds.yaml", feeds), db_url, clock)
    with runtime.sessions() as session:
        ids = {row.name: row.id for row in session.scalars(select(FeedRow))}
    copy_b = entry("b-1", STORY.title, "https://b.example/1")
    copy_c = entry("c-1", "Different words", STORY.url)  # same canonical URL
    other = entry("b-2", "Harvest festival opens")
    writer = runtime.writer()
    with runtime.sessions.begin() as session:
        first = writer.store_batch(
            session,
            [_outcome(ids["a"], "a", [STORY]), _outcome(ids["b"], "b", [copy_b, other])],
            NOW,
        )
    with runtime.sessions.begin() as session:
        again = writer.store_batch(
            session,
            [_outcome(ids["c"], "c", [copy_c]), _outcome(ids["a"], "a", [STORY])],
            NOW,
        )
    assert [s.new_items for s in first] == [1, 1] and [s.new_items for s in again] == [0, 0]
    assert first[0].flagged == 1
    with runtime.sessions() as session:
        items = {row.title: row for row in session.scalars(select(ItemRow))}
        assert sorted(items) == sorted([STORY.title, other.title])
        assert items[STORY.title].source_count == 3
        assert session.scalar(select(func.count(ItemSourceRow.id))) == 4
        assert session.scalar(select(func.count(AssessmentRow.id))) == 2
        sources = session.scalars(
            select(ItemSourceRow.guid).where(ItemSourceRow.item_id == items[STORY.title].id)
        )
        assert sorted(sources) == ["a-1", "b-1", "c-1"]
    runtime.close()


def test_equal_but_uninformative_text_at_different_addresses_is_two_items() -> None:
    def notice(guid: str, url: str) -> Entry:
        return Entry(
            guid=guid, url=url, title="Press release", summary="", published=NOW,
            content_hash=content_hash("Press release", ""),
        )  # fmt: skip

    first, second = notice("g-1", "https://gov.example/a"), notice("g-2", "https://gov.example/b")
    plan = plan_batch([FeedEntries(1, [first]), FeedEntries(2, [second])], KnownItems())
    assert plan.new == [(1, first), (2, second)] and plan.copies == []
    stored = KnownItems(item_by_hash={first.content_hash: 7})
    assert plan_batch([FeedEntries(2, [second])], stored).new == [(2, second)]
    # With enough text, equal text at another address is the same story: one more source.
    copy = entry("b-9", STORY.title, "https://b.example/elsewhere")
    assert plan_batch([FeedEntries(1, [STORY]), FeedEntries(2, [copy])], KnownItems()).copies


def test_a_front_page_guid_never_stands_for_a_story() -> None:
    """A feed that gives each entry the site's address as GUID, one entry per document: each
    poll's story is new, under the GUID qualified by its own link."""

    def story(title: str, url: str) -> Entry:
        return replace(entry("https://site.example/", title, url), guid="https://site.example/")

    monday = story("Ministry orders telecoms to block VPN services", "https://site.example/a/1")
    tuesday = story("Regulator sets a 24-hour takedown deadline", "https://site.example/a/2")
    first = plan_batch([FeedEntries(1, [monday])], KnownItems())
    [(_, stored)] = first.new
    assert stored.guid == "https://site.example/#https://site.example/a/1"
    known = KnownItems(sources=frozenset({(1, stored.guid)}))
    [(_, later)] = plan_batch([FeedEntries(1, [tuesday])], known).new
    assert later.guid == "https://site.example/#https://site.example/a/2"
    assert plan_batch([FeedEntries(1, [monday])], known).new == []  # seen: not new again
