"""Turn fetched bytes into a ParsedFeed: RSS/Atom via feedparser, JSON Feed via json.

Never does HTTP. feedparser gets a byte stream (not bytes: given bytes it first tries them
as a local *file name*), the response Content-Type (so the charset is honoured) and the
base URL. Its DOCTYPE handling drops every ENTITY declaration except simple literal ones
and expat runs with external general entities off, so XXE and entity bombs do not work;
tests/intake/test_hostile_feeds.py pins that behaviour.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Mapping
from datetime import UTC, tzinfo
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import feedparser

from monitor.domain import ParsedFeed, RawEntry
from monitor.errors import ParseError
from monitor.intake.caps import SUMMARY_MAX, TITLE_MAX
from monitor.intake.dates import entry_date, newest_entries, parse_date
from monitor.intake.jsonfeed import looks_like_json, parse_json

__all__ = ["MAX_ENTRIES", "parse_date", "parse_feed"]

logger = logging.getLogger(__name__)

MAX_ENTRIES = 500
_SNIFF_BYTES = 4096
_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")
_HARMLESS_BOZO = (feedparser.NonXMLContentType,)
_FIRST_TAG = re.compile(rb"<([A-Za-z][\w:.-]*)")
_DOCTYPE_START = re.compile(rb"<!DOCTYPE\b", re.IGNORECASE)
_DOCTYPE = re.compile(rb"<!DOCTYPE\b[^\[>]*(?:\[.*?\]\s*)?>", re.IGNORECASE | re.DOTALL)
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY\b[^>]*>", re.IGNORECASE)
_ENTRY_END = re.compile(rb"</(?:[A-Za-z][\w.-]*:)?(?:item|entry)\s*>", re.IGNORECASE)


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
        published=entry_date(entry, assume_tz),
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
        entries=newest_entries(entries, max_entries),
        malformed=malformed,
        language=language[:35] if isinstance(language, str) and language else None,
    )


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
    if not body or body.isspace():  # not body.strip(): that copies the whole document
        raise ParseError("empty document")
    if _looks_like_html(body):
        return _parse_html(body, content_type, base_url)
    if looks_like_json(body, content_type):
        return parse_json(body, base_url, max_entries, assume_tz)
    return _parse_xml(body, content_type, base_url, max_entries, assume_tz)
