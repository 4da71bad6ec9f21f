"""The labeled corpus format of DESIGN.md: read JSON Lines into LabeledExamples."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from monitor.domain import Category, ItemText, Stage
from monitor.errors import MonitorError


class CorpusError(MonitorError):
    """A corpus file is unreadable or a line breaks the format; the message names where."""


@dataclass(frozen=True, slots=True)
class LabeledExample:
    """One labeled news item (also how database feedback rows reach training)."""

    id: str
    title: str
    summary: str
    language: str | None
    relevant: bool
    categories: tuple[Category, ...] = ()
    country: str | None = None
    stage: Stage = Stage.NONE
    url: str | None = None
    source: str | None = None
    published: str | None = None
    rationale: str | None = None
    hard_negative: bool = False
    event: str | None = None  # the story it reports, so held-out tests can keep events apart

    @property
    def outlet(self) -> str:
        """Who published it: the page's site, or the dataset a row came from."""
        return outlet_of(self.url or self.source)

    @property
    def event_group(self) -> str:
        """The event to hold out together: the labeled one, else a coarse stand-in.

        Items labeled without an event are grouped by state and first category when
        relevant (stricter than one event: every such measure of that state goes together)
        and stand alone otherwise.
        """
        if self.event:
            return self.event
        if self.relevant:
            first = self.categories[0].value if self.categories else "any"
            return f"{self.country or 'xx'}-{first}"
        return self.id

    def item(self, feed_country: str | None = None) -> ItemText:
        """The text the classifier reads for this example."""
        return ItemText(self.title, self.summary, self.language, feed_country)


# Second-level labels under which a registered name takes three parts (bbc.co.uk).
_SECOND_LEVEL = frozenset({"co", "com", "org", "net", "gov", "ac", "edu", "go", "or", "ne"})


def outlet_of(address: str | None) -> str:
    """The site of a URL (www. and m. dropped, e.g. bbc.co.uk), or a dataset's repo:path."""
    if not address:
        return "unknown"
    if "://" not in address:
        return address.split(",")[0].split(" (")[0]
    host = (urlsplit(address).hostname or "unknown").lower()
    parts = host.split(".")
    keep = 3 if len(parts) >= 3 and parts[-2] in _SECOND_LEVEL and len(parts[-1]) == 2 else 2
    return ".".join(parts[-keep:])


def _optional_str(record: dict[str, Any], key: str) -> str | None:
    """A string field that may be missing or null."""
    value = record.get(key)
    return None if value is None else str(value)


def parse_example(record: Any) -> LabeledExample:
    """A LabeledExample from one decoded JSON object; ValueError says what is wrong."""
    if not isinstance(record, dict):
        raise ValueError("expected a JSON object")
    for key in ("id", "title", "relevant"):
        if key not in record:
            raise ValueError(f"missing field {key!r}")
    if not isinstance(record["relevant"], bool):
        raise ValueError("field 'relevant' must be true or false")
    categories = record.get("categories") or []
    if not isinstance(categories, list):
        raise ValueError("field 'categories' must be a list")
    try:
        cats = tuple(Category(str(c)) for c in categories)
        stage = Stage(str(record.get("stage") or "none"))
    except ValueError as exc:
        raise ValueError(f"unknown label: {exc}") from exc
    country = _optional_str(record, "country")
    return LabeledExample(
        id=str(record["id"]),
        title=str(record["title"]),
        summary=str(record.get("summary") or ""),
        language=_optional_str(record, "language"),
        relevant=record["relevant"],
        categories=cats,
        country=country.upper() if country else None,
        stage=stage,
        url=_optional_str(record, "url"),
        source=_optional_str(record, "source"),
        published=_optional_str(record, "published"),
        rationale=_optional_str(record, "rationale"),
        hard_negative=bool(record.get("hard_negative", False)),
        event=_optional_str(record, "event"),
    )


def read_corpus(path: Path | str) -> list[LabeledExample]:
    """All examples of a JSONL corpus file; CorpusError names the file and line at fault."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: cannot read corpus: {exc}") from exc
    examples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            examples.append(parse_example(json.loads(line)))
        except (json.JSONDecodeError, ValueError) as exc:
            raise CorpusError(f"{path}, line {number}: {exc}") from exc
    return examples
