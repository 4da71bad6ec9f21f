"""parse_feed on small fixtures written for this project (tests/data/feeds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor.errors import ParseError
from monitor.intake.dates import parse_date
from monitor.intake.normalize import html_to_text
from monitor.intake.parse import parse_feed
from tests.support.feedserver import atom, rss

DATA = Path(__file__).parents[1] / "data" / "feeds"
BASE = "http://news.example.invalid/feed.xml"
ICT = timezone(timedelta(hours=7))


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_rss_items_and_feed_fields() -> None:
    doc = rss(
        [
            {
                "title": "Ban on VPN apps",
                "link": "https://x.invalid/a",
                "guid": "g-1",
                "description": "<p>Ministry <b>orders</b> removal</p>",
                "pubDate": "Mon, 02 Mar 2026 10:00:00 GMT",
            }
        ],
        title="Feed A",
    )
    feed = parse_feed(doc, "application/rss+xml; charset=utf-8", BASE)
    assert feed.title == "Feed A" and not feed.malformed and not feed.is_html
    (entry,) = feed.entries
    assert (entry.guid, entry.link, entry.title) == (
        "g-1",
        "https://x.invalid/a",
        "Ban on VPN apps",
    )
    assert entry.summary_html and "orders" in entry.summary_html
    assert entry.published == datetime(2026, 3, 2, 10, tzinfo=UTC)


def test_atom_entry_with_relative_link_and_language() -> None:
    feed = parse_feed(
        load("atom-basic.xml"), "application/atom+xml", "https://atom.example.invalid/f"
    )
    (entry,) = feed.entries
    assert entry.guid == "tag:atom.example.invalid,2026:1"
    assert entry.link == "https://atom.example.invalid/artikel/1?utm_source=rss&id=7"
    assert entry.published == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert entry.author == "Redaktion" and entry.language == "de"
    assert entry.summary_html  # kept as served; only its text is ever used:
    text = html_to_text(entry.summary_html)
    assert text and "<" not in text and "alert(" not in text


def test_atom_helper_round_trip() -> None:
    doc = atom(
        [
            {
                "title": "T",
                "link": "https://a.invalid/1",
                "id": "urn:1",
                "published": "2026-01-01T00:00:00Z",
            }
        ]
    )
    (entry,) = parse_feed(doc, None, BASE).entries
    assert (entry.guid, entry.link, entry.title) == ("urn:1", "https://a.invalid/1", "T")


def test_vietnamese_date_formats() -> None:
    feed = parse_feed(load("vn-dates.xml"), None, BASE, assume_tz=ICT)
    by_guid = {e.guid: e.published for e in feed.entries}
    assert by_guid["a1"] == datetime(2026, 8, 22, 22, 20, tzinfo=UTC)  # 5:20 AM in +07
    assert by_guid["a2"] == datetime(2026, 8, 22, 22, 52, tzinfo=UTC)  # two-digit year
    assert by_guid["a3"] == datetime(2026, 8, 22, 23, 10, tzinfo=UTC)  # "+07"
    assert by_guid["a4"] == datetime(2026, 8, 23, 0, 0, tzinfo=UTC)
    assert feed.language == "vi"
    assert [e.guid for e in feed.entries] == ["a4", "a3", "a2", "a1"]  # newest first


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sun, 23 Aug 26 05:52:00 +0700", datetime(2026, 8, 22, 22, 52, tzinfo=UTC)),
        ("Sun, 23 Aug 2026 05:52:00 +07:00", datetime(2026, 8, 22, 22, 52, tzinfo=UTC)),
        ("2026-08-23T05:52:00Z", datetime(2026, 8, 23, 5, 52, tzinfo=UTC)),
        ("2026-08-23T05:52:00+07", datetime(2026, 8, 22, 22, 52, tzinfo=UTC)),
        ("8/23/2026 5:20:00 PM", datetime(2026, 8, 23, 17, 20, tzinfo=UTC)),
        ("23/08/2026 17:20", datetime(2026, 8, 23, 17, 20, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        ("Mon, 99 Foo 2026 99:99:99 +0000", None),
    ],
)
def test_parse_date(text: str, expected: datetime | None) -> None:
    assert parse_date(text) == expected


def test_zone_less_date_uses_assumed_zone() -> None:
    assert parse_date("8/23/2026 5:20:00 AM", assume_tz=ICT) == datetime(
        2026, 8, 22, 22, 20, tzinfo=UTC
    )


def test_html_page_instead_of_feed_reports_feed_links() -> None:
    feed = parse_feed(
        load("html-instead-of-feed.html"), "text/html; charset=utf-8", "https://site.invalid/news/"
    )
    assert feed.is_html and feed.entries == ()
    assert feed.feed_links == (
        "https://site.invalid/rss/top.xml",
        "https://cdn.example.invalid/atom.xml",
    )
    assert feed.title == "Example News — Home"


def test_feed_served_as_text_html_is_still_a_feed() -> None:
    feed = parse_feed(rss([{"title": "x", "guid": "1"}]), "text/html", BASE)
    assert not feed.is_html and len(feed.entries) == 1 and feed.malformed is None


def test_json_feed() -> None:
    feed = parse_feed(
        load("jsonfeed.json"), "application/feed+json", "https://json.example.invalid/feed.json"
    )
    assert feed.title == "JSON test feed" and feed.language == "en" and feed.malformed is None
    assert [e.guid for e in feed.entries] == ["2", "1", "3"]  # newest first, undated last
    newer, older, untitled = feed.entries
    assert older.link == "https://json.example.invalid/posts/1" and older.author == "Ann"
    assert newer.summary_html == "Plain &lt;text&gt; &amp; more" and newer.author == "Bo"
    assert newer.published == datetime(2026, 1, 3, 3, tzinfo=UTC)
    assert untitled.title is None and untitled.published is None and untitled.link is None


def test_json_that_is_not_a_feed_is_rejected() -> None:
    with pytest.raises(ParseError, match="not a JSON Feed"):
        parse_feed(b'{"hello": "world"}', "application/json", BASE)
    with pytest.raises(ParseError, match="invalid JSON"):
        parse_feed(b'{"items": [', "application/json", BASE)


def test_missing_charset_latin1_bytes() -> None:
    feed = parse_feed(load("latin1-no-charset.xml"), None, BASE)
    (entry,) = feed.entries
    assert entry.title == "Café crème"  # undeclared, invalid UTF-8: read as windows-1252


def _one_item(title: str, declared: str) -> str:
    return (
        f'<?xml version="1.0" encoding="{declared}"?><rss version="2.0"><channel>'
        f"<item><title>{title}</title></item></channel></rss>"
    )


def test_header_charset_beats_wrong_declaration() -> None:
    doc = _one_item("Đà Nẵng", "iso-8859-1").encode("utf-8")
    feed = parse_feed(doc, "application/xml; charset=utf-8", BASE)
    assert feed.entries[0].title == "Đà Nẵng"


def test_declared_charset_used_without_header() -> None:
    doc = _one_item("Новости", "koi8-r").encode("koi8-r")
    assert parse_feed(doc, "text/xml", BASE).entries[0].title == "Новости"
    assert parse_feed(doc, None, BASE).entries[0].title == "Новости"


def test_invalid_bytes_are_flagged_not_fatal() -> None:
    doc = rss([{"title": "ok", "guid": "1"}]).replace(b"<title>ok", b"<title>\xff\xfe ok \x00")
    feed = parse_feed(doc, "application/rss+xml; charset=utf-8", BASE)
    assert feed.malformed and len(feed.entries) == 1


def test_malformed_feed_keeps_entries() -> None:
    doc = (
        b'<rss version="2.0"><channel><title>A & B</title>'
        b"<item><title>Tom & Jerry</title><guid>1</guid></item>"
        b"<item><title>Second</title><guid>2</guid></item></channel></rss>"
    )
    feed = parse_feed(doc, None, BASE)
    assert feed.malformed and "SAXParseException" in feed.malformed
    assert [e.title for e in feed.entries] == ["Tom & Jerry", "Second"]


def test_empty_and_non_feed_documents_raise() -> None:
    with pytest.raises(ParseError, match="empty"):
        parse_feed(b"  \n", None, BASE)
    with pytest.raises(ParseError, match="not a feed"):
        parse_feed(b"<?xml version='1.0'?><catalog><book>x</book></catalog>", None, BASE)
    with pytest.raises(ParseError):
        parse_feed(b"just some words", "text/plain", BASE)


def test_non_url_guid_is_not_used_as_link() -> None:
    (entry,) = parse_feed(rss([{"title": "t", "guid": "12345"}]), None, BASE).entries
    assert entry.guid == "12345" and entry.link is None


def test_relative_link_is_resolved_against_base() -> None:
    (entry,) = parse_feed(rss([{"title": "t", "link": "/a/b.html"}]), None, BASE).entries
    assert entry.link == "http://news.example.invalid/a/b.html"
