"""Atom 1.0 and JSON Feed 1.1 documents, and conditional GET: what a feed holds, written.

The XML is built with xml.etree, not a template: the serializer escapes every text and
attribute, so no title can close a tag, and `_text`, the one way text gets into the tree,
strips the control characters XML 1.0 forbids (item titles come from the internet; one NUL
would make the whole feed unreadable).
"""

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from starlette.responses import Response

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
JSON_FEED_TYPE = "application/feed+json; charset=utf-8"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
AUTHOR = "monitor"
CACHE_CONTROL = "private, max-age=60"
# An empty feed still needs an `updated`; a fixed one keeps its ETag stable.
EMPTY_FEED_UPDATED = datetime(2026, 1, 1, tzinfo=UTC)
# XML 1.0 allows tab, newline and carriage return below U+0020, and no surrogates or
# U+FFFE/U+FFFF; the C1 controls are legal but only ever garbage in a headline.
_NOT_XML = re.compile("[^\t\n\r\u0020-\u007e\u00a0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean(text: str | None) -> str:
    """Text safe for XML 1.0 (and for readers): illegal control characters dropped."""
    return _NOT_XML.sub("", text or "")


def web_url(url: str | None) -> str | None:
    """An http(s) URL, or None: a `javascript:` link from a feed must not become a link."""
    if not url:
        return None
    url = clean(url).strip()
    return url if urlsplit(url).scheme.lower() in ("http", "https") else None


# --- What a feed holds, whatever its format -------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedEntry:
    id: str
    title: str
    updated: datetime
    published: datetime
    link: str | None  # rel=alternate
    content_html: str
    content_text: str
    tags: tuple[str, ...] = ()
    related: str | None = None  # rel=related (an item's event page)


@dataclass(frozen=True, slots=True)
class FeedDoc:
    id: str
    title: str
    home_url: str  # the page the feed mirrors
    atom_url: str  # rel=self of the Atom feed, without the token
    json_url: str  # feed_url of the JSON Feed
    entries: tuple[FeedEntry, ...]

    @property
    def updated(self) -> datetime:
        return max((e.updated for e in self.entries), default=EMPTY_FEED_UPDATED)


# --- Writers ---------------------------------------------------------------------------------


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _text(parent: ET.Element, tag: str, value: str, **attributes: str) -> ET.Element:
    """The one way text enters the Atom tree: cleaned here, escaped by the serializer."""
    element = ET.SubElement(parent, tag, {k: clean(v) for k, v in attributes.items()})
    element.text = clean(value)
    return element


def _link(parent: ET.Element, rel: str, href: str, kind: str | None = None) -> None:
    attributes = {"rel": rel, "href": clean(href)}
    if kind:
        attributes["type"] = kind
    ET.SubElement(parent, "link", attributes)


def atom_bytes(doc: FeedDoc) -> bytes:
    # xmlns as a plain attribute: ET.register_namespace would change a process-wide table.
    feed = ET.Element("feed", {"xmlns": ATOM_NS})
    _text(feed, "id", doc.id)
    _text(feed, "title", doc.title)
    _text(feed, "updated", rfc3339(doc.updated))
    author = ET.SubElement(feed, "author")
    _text(author, "name", AUTHOR)
    _text(feed, "generator", AUTHOR)
    _link(feed, "self", doc.atom_url, "application/atom+xml")
    _link(feed, "alternate", doc.home_url, "text/html")
    for entry in doc.entries:
        element = ET.SubElement(feed, "entry")
        _text(element, "id", entry.id)
        _text(element, "title", entry.title, type="text")
        _text(element, "updated", rfc3339(entry.updated))
        _text(element, "published", rfc3339(entry.published))
        if entry.link:
            _link(element, "alternate", entry.link, "text/html")
        if entry.related:
            _link(element, "related", entry.related, "text/html")
        for tag in entry.tags:
            ET.SubElement(element, "category", {"term": clean(tag)})
        _text(element, "content", entry.content_html, type="html")
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body


def json_feed_bytes(doc: FeedDoc) -> bytes:
    items: list[dict[str, Any]] = []
    for entry in doc.entries:
        item: dict[str, Any] = {
            "id": entry.id,
            "title": clean(entry.title),
            "content_html": clean(entry.content_html),
            "content_text": clean(entry.content_text),
            "date_published": rfc3339(entry.published),
            "date_modified": rfc3339(entry.updated),
            "tags": list(entry.tags),
        }
        if entry.link:
            item["url"] = entry.link
        items.append(item)
    document = {
        "version": JSON_FEED_VERSION,
        "title": doc.title,
        "home_page_url": doc.home_url,
        "feed_url": doc.json_url,
        "authors": [{"name": AUTHOR}],
        "items": items,
    }
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")


# --- Conditional GET -------------------------------------------------------------------------


def strong_etag(body: bytes) -> str:
    """From the bytes themselves: a strong ETag promises byte-identical bodies."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison, so a proxy's W/ prefix still matches."""
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


def _not_modified_since(if_modified_since: str, last_modified: datetime) -> bool:
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return last_modified.replace(microsecond=0) <= since


def conditional(request: Request, body: bytes, media_type: str, doc: FeedDoc) -> Response:
    """The feed, or a 304 when the reader's copy is current (If-None-Match wins over
    If-Modified-Since, as RFC 9110 §13.2.2 says)."""
    etag = strong_etag(body)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if doc.entries:
        headers["Last-Modified"] = format_datetime(doc.updated.astimezone(UTC), usegmt=True)
    if_none_match = request.headers.get("if-none-match")
    if_modified_since = request.headers.get("if-modified-since")
    if if_none_match is not None:
        fresh = _matches(if_none_match, etag)
    elif if_modified_since is not None and doc.entries:
        fresh = _not_modified_since(if_modified_since, doc.updated)
    else:
        fresh = False
    if fresh:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)
