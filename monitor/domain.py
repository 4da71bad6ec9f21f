"""Values passed between pipeline stages.

Frozen dataclasses only: each stage takes some of these and returns others, so every stage
can be tested alone. Nothing here imports from the rest of `monitor`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from operator import attrgetter
from typing import Any


class Category(StrEnum):
    """The fixed measure taxonomy (DESIGN.md); an item may carry several."""

    SHUTDOWN = "shutdown"
    PLATFORM_BLOCK = "platform_block"
    THROTTLING = "throttling"
    VPN_RESTRICTION = "vpn_restriction"
    IDENTITY_VERIFICATION = "identity_verification"
    CONTENT_TAKEDOWN = "content_takedown"
    SURVEILLANCE = "surveillance"
    DATA_LOCALIZATION = "data_localization"
    PLATFORM_REGULATION = "platform_regulation"


class Stage(StrEnum):
    """How far a measure has gone; `none` for items that report no measure."""

    PROPOSED = "proposed"
    ENACTED = "enacted"
    ENFORCED = "enforced"
    LIFTED = "lifted"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Validators:
    """HTTP cache validators remembered from the previous fetch of a feed."""

    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A completed HTTP exchange for one feed (errors are raised as FetchError instead)."""

    url: str  # the URL finally answered, after redirects
    status: int
    body: bytes  # empty when not_modified
    content_type: str | None
    etag: str | None
    last_modified: str | None
    body_hash: str | None  # sha256 of the decoded body; None when not_modified
    elapsed_ms: int
    not_modified: bool  # 304, or a 200 whose body hash equals the previous one
    permanent_redirect: str | None = None  # where a 301/308 pointed, for the admins


@dataclass(frozen=True, slots=True)
class RawEntry:
    """One entry as the feed carried it, before any cleaning."""

    guid: str | None
    link: str | None
    title: str | None
    summary_html: str | None
    published: datetime | None  # UTC when the feed gave a parseable date
    language: str | None = None
    author: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """What feedparser made of a fetched document."""

    title: str | None
    entries: tuple[RawEntry, ...]
    malformed: str | None = None  # why the document is not well formed, if it is not
    is_html: bool = False  # an HTML page was served where a feed was expected
    feed_links: tuple[str, ...] = ()  # feeds an HTML page advertises (<link rel=alternate>)
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """A normalized news item, ready for dedup and classification."""

    guid: str  # feed guid, else canonical link, else content hash
    url: str | None  # canonical URL without tracking parameters
    title: str
    summary: str  # plain text, whitespace folded, capped
    published: datetime  # UTC; fetch time when the feed gave none or an absurd one
    content_hash: str  # sha256 of the normalized title + summary
    language: str | None = None
    author: str | None = None

    def __reduce__(self) -> tuple[type[Entry], tuple[Any, ...]]:
        # Parser processes send thousands of entries per poll. A frozen slots dataclass
        # otherwise pickles through a Python loop over fields() on both sides.
        return (Entry, _entry_values(self))


_entry_values = attrgetter(*(f.name for f in fields(Entry)))


@dataclass(frozen=True, slots=True)
class ItemText:
    """What the classifier reads: the words of an item plus its feed's context."""

    title: str
    summary: str = ""
    language: str | None = None
    feed_country: str | None = None  # alpha-2 fallback when the text names no state


@dataclass(frozen=True, slots=True)
class Assessment:
    """The classifier's verdict on one item, with the reasons a recipient can read."""

    relevant: bool
    score: float  # 0..1
    categories: tuple[Category, ...] = ()
    country: str | None = None  # alpha-2 of the state imposing the measure
    stage: Stage = Stage.NONE
    matched_terms: tuple[str, ...] = ()  # rule terms found in the text
    evidence: tuple[str, ...] = ()  # human-readable reasons: rules fired, top model features
    model_version: str = ""


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """What one alert says, independent of the target's format."""

    kind: str  # "new", "update", "digest", "feed_broken", "feed_recovered", "test"
    title: str
    link: str | None
    source: str
    country: str | None
    categories: tuple[str, ...]
    stage: str
    score: float
    matched_terms: tuple[str, ...]
    evidence: tuple[str, ...]
    published: datetime | None
    other_sources: int = 0
    previous_stage: str | None = None
    extra_lines: tuple[str, ...] = field(default_factory=tuple)
    targets: tuple[str, ...] = ()  # what the measure acts on, as recipients read it
    quote: str = ""  # the item's sentence that best shows the measure
    quote_marks: tuple[tuple[int, int], ...] = ()  # (start, end) of its deciding words
    event_id: int | None = None
