"""OPML 2.0 import and export of the feed list (`monitor feeds import-opml|export-opml`).

OPML files come from other people's feed readers, so they are untrusted: any DOCTYPE or
ENTITY declaration is refused before parsing (no external entities, no entity expansion
bombs), which is the part of defusedxml's protection that matters here.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any, NoReturn
from xml.parsers import expat

from monitor.config.schema import FeedSpec
from monitor.errors import ConfigError


def _refuse(*_: object) -> NoReturn:
    """Expat handler that rejects any DTD construct."""
    raise ConfigError("OPML: DOCTYPE and ENTITY declarations are not allowed")


def _check_no_dtd(data: bytes) -> None:
    """Scan the document with expat and refuse DOCTYPE/ENTITY declarations."""
    scanner = expat.ParserCreate()
    scanner.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    scanner.StartDoctypeDeclHandler = _refuse
    scanner.EntityDeclHandler = _refuse
    scanner.UnparsedEntityDeclHandler = _refuse
    scanner.ExternalEntityRefHandler = _refuse
    try:
        scanner.Parse(data, True)
    except expat.ExpatError as exc:
        raise ConfigError(f"OPML: not well-formed XML (line {exc.lineno}): {exc}") from None


def _tags_of(outline: ET.Element, folders: tuple[str, ...]) -> list[str]:
    """Tags for a feed outline: its enclosing folders plus its category paths."""
    tags = list(folders)
    for path in outline.get("category", "").split(","):
        tags += [part.strip() for part in path.split("/") if part.strip()]
    return list(dict.fromkeys(tags))


def _unique_name(name: str, taken: set[str]) -> str:
    """Make name unique among taken by appending (2), (3), ..."""
    candidate, number = name, 2
    while candidate.casefold() in taken:
        candidate, number = f"{name} ({number})", number + 1
    taken.add(candidate.casefold())
    return candidate


def _walk(
    parent: ET.Element, folders: tuple[str, ...], out: list[dict[str, Any]], seen: set[str]
) -> None:
    """Collect feed outlines under parent, depth first, remembering folder names."""
    for outline in parent.findall("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        label = (outline.get("title") or outline.get("text") or "").strip()
        if not url:
            _walk(outline, (*folders, label) if label else folders, out, seen)
            continue
        if url in seen:
            continue
        seen.add(url)
        taken = {str(item["name"]).casefold() for item in out}
        feed: dict[str, Any] = {"name": _unique_name(label or url, taken), "url": url}
        tags = _tags_of(outline, folders)
        if tags:
            feed["tags"] = tags
        language = (outline.get("language") or "").strip()
        if language:
            feed["language"] = language.split("-")[0].lower()
        out.append(feed)


def import_opml(data: bytes) -> list[dict[str, Any]]:
    """Read an OPML document into FeedSpec-shaped dicts (name, url, tags, language)."""
    _check_no_dtd(data)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ConfigError(f"OPML: not well-formed XML: {exc}") from None
    body = root.find("body")
    if root.tag != "opml" or body is None:
        raise ConfigError("OPML: the document has no <opml><body>")
    feeds: list[dict[str, Any]] = []
    _walk(body, (), feeds, set())
    return feeds


def export_opml(feeds: Iterable[FeedSpec], title: str = "monitor feeds") -> bytes:
    """Write feeds as an OPML 2.0 document (one rss outline per feed)."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    body = ET.SubElement(root, "body")
    for feed in feeds:
        outline = ET.SubElement(
            body, "outline", type="rss", text=feed.name, title=feed.name, xmlUrl=feed.url
        )
        if feed.tags:
            outline.set("category", ",".join(feed.tags))
        if feed.language:
            outline.set("language", feed.language)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"
