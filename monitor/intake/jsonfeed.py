"""JSON Feed (version 1 and 1.1) documents into a ParsedFeed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import tzinfo
from html import escape
from typing import Any
from urllib.parse import urljoin

from monitor.domain import ParsedFeed, RawEntry
from monitor.errors import ParseError
from monitor.intake.caps import SUMMARY_MAX, TITLE_MAX
from monitor.intake.dates import newest_entries, parse_date

__all__ = ["looks_like_json", "parse_json"]


def looks_like_json(body: bytes, content_type: str | None) -> bool:
    """True for a JSON content type or a body that starts like a JSON object."""
    start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return start == b"{" or ("json" in (content_type or "").lower() and start != b"<")


def _text(value: Any, limit: int) -> str | None:
    """A capped string from a JSON value, or None when it is not a string."""
    return value[:limit] if isinstance(value, str) and value else None


def _json_author(item: Mapping[str, Any]) -> str | None:
    """The first author's name from JSON Feed 1.1 `authors` or 1.0 `author`."""
    authors = item.get("authors")
    candidates = authors if isinstance(authors, list) else [item.get("author")]
    for author in candidates:
        if isinstance(author, dict) and isinstance(author.get("name"), str):
            return str(author["name"])[:200]
    return None


def _json_entry(
    item: Mapping[str, Any], base: str, language: str | None, assume_tz: tzinfo
) -> RawEntry:
    """One JSON Feed item as a RawEntry."""
    link = _text(item.get("url"), 4000) or _text(item.get("external_url"), 4000)
    summary = _text(item.get("content_html"), SUMMARY_MAX) or _text(
        item.get("summary"), SUMMARY_MAX
    )
    if summary is None and isinstance(item.get("content_text"), str):
        summary = escape(item["content_text"][:SUMMARY_MAX])
    raw_id = item.get("id")
    date = _text(item.get("date_published"), 100) or _text(item.get("date_modified"), 100)
    return RawEntry(
        guid=str(raw_id)[:1000] if isinstance(raw_id, str | int) and str(raw_id) else None,
        link=urljoin(base, link) if link else None,
        title=_text(item.get("title"), TITLE_MAX),
        summary_html=summary,
        published=parse_date(date, assume_tz=assume_tz),
        language=_text(item.get("language"), 35) or language,
        author=_json_author(item),
    )


def parse_json(body: bytes, base_url: str, max_entries: int, assume_tz: tzinfo) -> ParsedFeed:
    """A JSON Feed 1.x document (feedparser does not read JSON Feed)."""
    try:
        doc = json.loads(body.decode("utf-8-sig", "replace"))
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"invalid JSON: {str(exc)[:120]}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise ParseError("JSON document is not a JSON Feed (no items list)")
    version = doc.get("version")
    malformed = None
    if not (isinstance(version, str) and version.startswith("https://jsonfeed.org/version/")):
        malformed = "JSON Feed without a jsonfeed.org version"
    base = _text(doc.get("home_page_url"), 4000) or base_url
    language = _text(doc.get("language"), 35)
    items = [i for i in doc["items"] if isinstance(i, dict)]
    entries = [_json_entry(i, urljoin(base_url, base), language, assume_tz) for i in items]
    return ParsedFeed(
        title=_text(doc.get("title"), TITLE_MAX),
        entries=newest_entries(entries, max_entries),
        malformed=malformed,
        language=language,
    )
