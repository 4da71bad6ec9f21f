"""Dedup: which fetched entries are new items, and which are one more source of an item.

An item is stored once per feed GUID, and once across feeds for the same canonical URL or
content hash: the extra copy is recorded as another source, not a second item. This module
only decides. The writer loads what the database already holds for a batch of feeds
(`repo.known_items`), plans the whole batch here, and stores the plan in a few statements.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from monitor.domain import Entry
from monitor.intake.normalize import GUID_MAX_CHARS

# A new item of this batch, before it has an id: (feed id, guid) is unique per feed.
NewItemKey = tuple[int, str]

# Below this much text (title + summary), equal text is no proof of the same story: two
# notices titled "Press release" at different addresses are two items.
MIN_CHARS_FOR_CONTENT_MATCH = 24


def content_key(entry: Entry) -> str | None:
    """The entry's content hash when its text says enough to identify a story."""
    if len(entry.title) + len(entry.summary) < MIN_CHARS_FOR_CONTENT_MATCH:
        return None
    return entry.content_hash


@dataclass(frozen=True, slots=True)
class KnownItems:
    """What is stored already for a batch's entries."""

    sources: frozenset[NewItemKey] = frozenset()  # (feed id, guid) pairs already recorded
    item_by_url: Mapping[str, int] = field(default_factory=dict)
    item_by_hash: Mapping[str, int] = field(default_factory=dict)

    def stored_item(self, entry: Entry) -> int | None:
        """The stored item this entry is a copy of (same canonical URL or same content)."""
        by_url = self.item_by_url.get(entry.url) if entry.url else None
        if by_url is not None:
            return by_url
        key = content_key(entry)
        return self.item_by_hash.get(key) if key is not None else None


@dataclass(frozen=True, slots=True)
class FeedEntries:
    """One feed's fetched entries, in document order."""

    feed_id: int
    entries: Sequence[Entry]


@dataclass(frozen=True, slots=True)
class Copy:
    """An entry that is another feed's copy of an item: recorded as one more source.

    It points at a stored item (`item_id`) or at a new item of the same batch (`new_item`),
    whose id is known only once the batch's items are inserted.
    """

    feed_id: int
    entry: Entry
    item_id: int | None = None
    new_item: NewItemKey | None = None


@dataclass
class DedupPlan:
    """The decision for a batch: new items in order, extra sources, counts per feed."""

    new: list[tuple[int, Entry]] = field(default_factory=list)  # (feed id, entry)
    copies: list[Copy] = field(default_factory=list)
    new_per_feed: dict[int, int] = field(default_factory=dict)


def _names_no_story(guid: str, url: str | None) -> bool:
    """Whether a GUID is a site's front page rather than the entry's own: such feeds give
    every entry that GUID, often one entry per document, so it must not identify a story."""
    if not url or url == guid or not guid.startswith(("http://", "https://")):
        return False
    path = urlsplit(guid).path
    return path in ("", "/")


def unique_by_guid(entries: Sequence[Entry]) -> list[Entry]:
    """A document's entries, each with a GUID of its own; true repeats are dropped.

    Some feeds give every entry the same GUID (the site's address, say). Entries whose GUID
    is a front page, or that share one, get it qualified by their URL (or content hash), so
    distinct stories all count; a story repeated whole is kept once.
    """
    shared = Counter(entry.guid for entry in entries)
    first: dict[str, Entry] = {}
    for entry in entries:
        if shared[entry.guid] > 1 or _names_no_story(entry.guid, entry.url):
            story = entry.url or f"sha256:{entry.content_hash}"
            entry = replace(entry, guid=f"{entry.guid}#{story}"[:GUID_MAX_CHARS])
        first.setdefault(entry.guid, entry)
    return list(first.values())


def plan_batch(feeds: Sequence[FeedEntries], known: KnownItems) -> DedupPlan:
    """Decide, feed by feed in order, what each entry of a batch is.

    A GUID the feed delivered before is skipped; a copy of a stored item, or of a new item
    an earlier feed of this batch brought, becomes a source; a second copy of a story within
    one document is dropped; everything else is a new item.
    """
    plan = DedupPlan()
    new_by_key: dict[str, NewItemKey] = {}  # URL or content hash -> the new item that has it
    for feed in feeds:
        plan.new_per_feed.setdefault(feed.feed_id, 0)
        for entry in unique_by_guid(feed.entries):
            if (feed.feed_id, entry.guid) in known.sources:
                continue
            stored = known.stored_item(entry)
            if stored is not None:
                plan.copies.append(Copy(feed.feed_id, entry, item_id=stored))
                continue
            keys = [key for key in (entry.url, content_key(entry)) if key]
            pending = next((new_by_key[key] for key in keys if key in new_by_key), None)
            if pending is not None:
                if pending[0] != feed.feed_id:  # the same story twice in one document: drop
                    plan.copies.append(Copy(feed.feed_id, entry, new_item=pending))
                continue
            for key in keys:
                new_by_key[key] = (feed.feed_id, entry.guid)
            plan.new.append((feed.feed_id, entry))
            plan.new_per_feed[feed.feed_id] += 1
    return plan
