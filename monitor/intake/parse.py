"""Turn fetched bytes into a ParsedFeed: RSS/Atom via feedparser, JSON Feed via json.

Never does HTTP. feedparser gets a byte stream (not bytes: given bytes it first tries them
as a local *file name*), the response Content-Type (so the charset is honoured) and the
base URL. Its DOCTYPE handling drops every ENTITY declaration except simple literal ones
and expat runs with external general entities off, so XXE and entity bombs do not work;
tests/intake/test_hostile_feeds.py pins that behaviour.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import parsedate_to_datetime
from html import escape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import feedparser

from monitor.domain import ParsedFeed, RawEntry
from monitor.errors import ParseError

__all__ = ["MAX_ENTRIES", "parse_date", "parse_feed"]

logger = logging.getLogger(__name__)

MAX_ENTRIES = 500
TITLE_MAX = 1000
SUMMARY_MAX = 20000
_SNIFF_BYTES = 4096
_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")
_HARMLESS_BOZO = (feedparser.NonXMLContentType,)
_SHORT_OFFSET = re.compile(r"([+-])(\d{2})$")
_COLON_OFFSET = re.compile(r"([+-]\d{2}):(\d{2})$")
_LOCAL_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d-%m-%Y %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d",
)
_FIRST_TAG = re.compile(rb"<([A-Za-z][\w:.-]*)")
_DOCTYPE_START = re.compile(rb"<!DOCTYPE\b", re.IGNORECASE)
_DOCTYPE = re.compile(rb"<!DOCTYPE\b[^\[>]*(?:\[.*?\]\s*)?>", re.IGNORECASE | re.DOTALL)
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY\b[^>]*>", re.IGNORECASE)
_ENTRY_END = re.compile(rb"</(?:[A-Za-z][\w.-]*:)?(?:item|entry)\s*>", re.IGNORECASE)


# -- dates ---------------------------------------------------------------------------------


def _to_utc(value: datetime, assume_tz: tzinfo) -> datetime:
    """An aware UTC datetime; naive values are read in `assume_tz`."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=assume_tz)
    return value.astimezone(UTC)


def _rfc822(text: str) -> datetime | None:
    """RFC 822 dates, including two-digit years and '+07' / '+07:00' offsets."""
    fixed = _COLON_OFFSET.sub(r"\1\2", text)
    fixed = _SHORT_OFFSET.sub(r"\g<1>\g<2>00", fixed)
    try:
        return parsedate_to_datetime(fixed)
    except (TypeError, ValueError, IndexError):
        return None


def _iso(text: str) -> datetime | None:
    """ISO 8601 / RFC 3339, including 'Z' and '+07' offsets."""
    fixed = _SHORT_OFFSET.sub(
        r"\g<1>\g<2>:00", text.replace(" ", "T", 1) if "T" not in text else text
    )
    try:
        return datetime.fromisoformat(fixed)
    except ValueError:
        return None


def _local(text: str) -> datetime | None:
    """Zone-less local formats seen in the wild (e.g. '8/23/2026 5:20:00 AM')."""
    for fmt in _LOCAL_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def parse_date(text: str | None, *, assume_tz: tzinfo = UTC) -> datetime | None:
    """Parse a feed date string to aware UTC; zone-less times are read in `assume_tz`."""
    if not text:
        return None
    text = " ".join(text.split())[:100]
    if not text:
        return None
    # ISO 8601 starts with the year; trying it first on an RFC 822 date ("Mon, 23 Nov ...")
    # would only raise and catch an exception per entry.
    attempts = (_iso, _rfc822, _local) if text[:4].isdigit() else (_rfc822, _iso, _local)
    for attempt in attempts:
        value = attempt(text)
        if value is not None:
            try:
                return _to_utc(value, assume_tz)
            except (OverflowError, ValueError):
                return None
    return None


def _struct_to_utc(value: Any) -> datetime | None:
    """feedparser's UTC struct_time to an aware datetime."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def _entry_date(entry: Mapping[str, Any], assume_tz: tzinfo) -> datetime | None:
    """The best publication date of a feedparser entry."""
    for key in ("published", "updated", "created"):
        raw = entry.get(key)
        value = parse_date(raw, assume_tz=assume_tz) if isinstance(raw, str) else None
        value = value or _struct_to_utc(entry.get(key + "_parsed"))
        if value is not None:
            return value
    return None


# -- HTML pages ----------------------------------------------------------------------------


class _FeedLinkFinder(HTMLParser):
    """Collects <link rel=alternate type=feed> hrefs and the page title."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.title: str | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and self.title is None:
            self._in_title = True
            self.title = ""
        if tag not in ("link", "a"):
            return
        a = {k.lower(): (v or "") for k, v in attrs}
        rels = a.get("rel", "").lower().split()
        if (
            "alternate" in rels
            and a.get("type", "").lower().strip() in _FEED_TYPES
            and a.get("href")
        ):
            self.links.append(a["href"].strip())

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title and self.title is not None and len(self.title) < TITLE_MAX:
            self.title += data


def _looks_like_html(body: bytes) -> bool:
    """True when the document's first element is <html> (or it opens with an HTML doctype)."""
    head = body[:_SNIFF_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<!doctype html") and b"<rss" not in head and b"<feed" not in head:
        return True
    stripped = re.sub(rb"<!--.*?-->|<\?.*?\?>|<!.*?>", b"", head, flags=re.S)
    match = _FIRST_TAG.search(stripped)
    return bool(match and match.group(1) in (b"html", b"head", b"body"))


def _html_charset(body: bytes, content_type: str | None) -> str:
    """The charset of an HTML page from the header, a <meta> tag, else UTF-8."""
    for source in (content_type or "", body[: _SNIFF_BYTES * 4].decode("ascii", "replace")):
        match = re.search(r"charset=[\"']?([\w.:-]+)", source, re.I)
        if match:
            try:
                "".encode(match.group(1))
                return match.group(1)
            except LookupError:
                continue
    return "utf-8"


def _parse_html(body: bytes, content_type: str | None, base_url: str) -> ParsedFeed:
    """An HTML page served instead of a feed: report it with the feeds it advertises."""
    finder = _FeedLinkFinder()
    finder.feed(body.decode(_html_charset(body, content_type), "replace"))
    finder.close()
    links = tuple(dict.fromkeys(urljoin(base_url, link) for link in finder.links))
    title = " ".join((finder.title or "").split()) or None
    return ParsedFeed(
        title=title,
        entries=(),
        malformed="an HTML page, not a feed",
        is_html=True,
        feed_links=links,
    )


# -- JSON Feed -----------------------------------------------------------------------------


def _looks_like_json(body: bytes, content_type: str | None) -> bool:
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


def _parse_json(body: bytes, base_url: str, max_entries: int, assume_tz: tzinfo) -> ParsedFeed:
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
        entries=_newest(entries, max_entries),
        malformed=malformed,
        language=language,
    )


# -- RSS / Atom ----------------------------------------------------------------------------


def _summary(entry: Mapping[str, Any]) -> str | None:
    """Entry summary, else its first content block, capped."""
    summary = entry.get("summary")
    if not summary:
        content = entry.get("content")
        if isinstance(content, list) and content and isinstance(content[0], dict):
            summary = content[0].get("value")
    return summary[:SUMMARY_MAX] if isinstance(summary, str) and summary else None


def _language(entry: Mapping[str, Any]) -> str | None:
    """xml:lang of the entry's summary or title, when the feed marked it."""
    for key in ("summary_detail", "title_detail"):
        detail = entry.get(key)
        language = dict.get(detail, "language") if isinstance(detail, dict) else None
        if isinstance(language, str):
            return language[:35] or None
    return None


def _entry_link(entry: Mapping[str, Any], base_url: str) -> str | None:
    """The entry link made absolute; a non-URL guid that feedparser copied into link is dropped."""
    link = entry.get("link")
    if not isinstance(link, str) or not link.strip():
        return None
    link = link.strip()[:4000]
    absolute = link.lower().startswith(("http://", "https://"))
    if entry.get("guidislink") and link == entry.get("id") and not absolute:
        return None
    return link if absolute else urljoin(base_url, link)


def _xml_entry(entry: Mapping[str, Any], base_url: str, assume_tz: tzinfo) -> RawEntry:
    """One feedparser entry as a RawEntry with capped fields."""
    guid, title, author = (entry.get(k) for k in ("id", "title", "author"))
    return RawEntry(
        guid=guid[:1000] if isinstance(guid, str) and guid.strip() else None,
        link=_entry_link(entry, base_url),
        title=title[:TITLE_MAX] if isinstance(title, str) else None,
        summary_html=_summary(entry),
        published=_entry_date(entry, assume_tz),
        language=_language(entry),
        author=author[:200] if isinstance(author, str) and author else None,
    )


def _bozo_reason(result: Mapping[str, Any]) -> str | None:
    """A short reason when feedparser found the document malformed."""
    if not result.get("bozo"):
        return None
    exc = result.get("bozo_exception")
    if isinstance(exc, _HARMLESS_BOZO):
        return None
    detail = " ".join(str(exc).split())[:160] if exc is not None else "unknown error"
    return f"{type(exc).__name__}: {detail}"


def _strip_doctype(body: bytes) -> bytes:
    """Remove the DOCTYPE and its internal subset before any XML parser sees them.

    feedparser keeps "safe" literal ENTITY declarations and, when expat rejects a document,
    its loose parser expands them without limit: one 100 KB entity referenced 10,000 times
    took 77 s and 4 GB. Undeclared entities then stay literal (HTML names such as &hellip;
    are still decoded by the loose parser), which is the price of never expanding them.

    Both are looked for in the whole document (padding must not hide them), and an ENTITY
    declaration outside a DOCTYPE, which no valid feed has, is dropped too.
    """
    removed = 0
    start = _DOCTYPE_START.search(body)
    if start is not None:
        match = _DOCTYPE.match(body, start.start())
        if match is None:
            raise ParseError("not a feed (a DOCTYPE that never ends)")
        body, removed = body[: match.start()] + body[match.end() :], 1
    body, entities = _ENTITY_DECLARATION.subn(b"", body)
    if (removed or entities) and (_DOCTYPE_START.search(body) or _ENTITY_DECLARATION.search(body)):
        # Declarations nested in one another, so that removing one joins another together:
        # written to get an entity past this function, so no feed.
        raise ParseError("not a feed (nested DOCTYPE or ENTITY declarations)")
    return body


def _trim_entries(body: bytes, keep: int) -> bytes:
    """Cut all but the first and last `keep` entries out of a huge document, before parsing.

    feedparser needs ~0.3 ms per entry; a 10 MB feed of tiny items would cost many seconds.
    Keeping both ends serves feeds ordered newest-first and oldest-first alike.
    """
    ends = [m.end() for m in _ENTRY_END.finditer(body)]
    if len(ends) <= 2 * keep or keep <= 0:
        return body
    logger.info("feed has %d entries; parsing the first and last %d", len(ends), keep)
    return body[: ends[keep - 1]] + body[ends[-keep - 1] :]


def _parse_xml(
    body: bytes, content_type: str | None, base_url: str, max_entries: int, assume_tz: tzinfo
) -> ParsedFeed:
    """RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 through feedparser."""
    # No content-location: feedparser would resolve relative guids against it, so ids would
    # change whenever a feed moves. Links are made absolute in _entry_link instead.
    headers: dict[str, str] = {}
    if content_type:
        headers["content-type"] = content_type
    body = _trim_entries(_strip_doctype(body), max_entries)
    # No HTML sanitizing or URI rewriting inside content: monitor never renders a feed's HTML,
    # it reduces it to text (normalize.html_to_text drops scripts and styles), and both
    # passes cost about a fifth of feedparser's time.
    result = feedparser.parse(
        io.BytesIO(body),
        response_headers=headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    malformed = _bozo_reason(result)
    feed = result.get("feed") or {}
    if not result.get("version") and not result.get("entries"):
        raise ParseError(f"not a feed ({malformed or 'no RSS, Atom or RDF root'})")
    # Plain dict lookups: FeedParserDict.get resolves aliases and legacy keys first, which
    # costs more than reading the fields; the keys _xml_entry reads have no aliases.
    entries = [_xml_entry(dict(e), base_url, assume_tz) for e in result.get("entries", [])]
    title = feed.get("title")
    language = feed.get("language")
    return ParsedFeed(
        title=title[:TITLE_MAX] if isinstance(title, str) and title else None,
        entries=_newest(entries, max_entries),
        malformed=malformed,
        language=language[:35] if isinstance(language, str) and language else None,
    )


def _newest(entries: list[RawEntry], max_entries: int) -> tuple[RawEntry, ...]:
    """Entries newest first (undated ones after, in document order), at most max_entries."""
    floor = datetime.min.replace(tzinfo=UTC) + timedelta(days=1)
    ordered = sorted(entries, key=lambda e: e.published or floor, reverse=True)
    return tuple(ordered[: max(0, max_entries)])


def parse_feed(
    body: bytes,
    content_type: str | None,
    base_url: str,
    *,
    max_entries: int = MAX_ENTRIES,
    assume_tz: tzinfo = UTC,
) -> ParsedFeed:
    """Parse a fetched document; raises ParseError when it is no feed at all.

    An HTML page comes back as `is_html=True` with the feed links it advertises. Zone-less
    dates are read in `assume_tz` (pass the feed's local zone when it is known).
    """
    if not body.strip():
        raise ParseError("empty document")
    if _looks_like_html(body):
        return _parse_html(body, content_type, base_url)
    if _looks_like_json(body, content_type):
        return _parse_json(body, base_url, max_entries, assume_tz)
    return _parse_xml(body, content_type, base_url, max_entries, assume_tz)
