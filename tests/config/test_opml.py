"""OPML import/export round trip; DTDs (entity tricks) are refused."""

from __future__ import annotations

import pytest

from monitor.config.opml import export_opml, import_opml
from monitor.config.schema import FeedSpec
from monitor.errors import ConfigError

FEEDS = [
    FeedSpec(
        name="BBC News Tiếng Việt",
        url="https://feeds.bbci.co.uk/vietnamese/rss.xml",
        language="vi",
        tags=("vietnam", "news"),
    ),
    FeedSpec(name="Access Now", url="https://www.accessnow.org/feed/", tags=("rights-org",)),
    FeedSpec(name="Q & A <test>", url="https://example.org/feed?a=1&b=2"),
]


def test_round_trip() -> None:
    data = export_opml(FEEDS)
    assert data.startswith(b"<?xml") and b'version="2.0"' in data
    back = [FeedSpec(**item) for item in import_opml(data)]
    assert [(f.name, f.url, f.tags, f.language) for f in back] == [
        (f.name, f.url, f.tags, f.language) for f in FEEDS
    ]


def test_import_folders_categories_and_duplicates() -> None:
    data = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>x</title></head><body>
  <outline text="Vietnam">
    <outline type="rss" text="VnExpress" xmlUrl="https://vnexpress.net/rss/thoi-su.rss"
             category="/news/vn,policy"/>
    <outline type="rss" text="VnExpress" xmlUrl="https://vnexpress.net/rss/tin-moi-nhat.rss"/>
    <outline type="rss" text="Again" xmlUrl="https://vnexpress.net/rss/thoi-su.rss"/>
  </outline>
  <outline type="rss" title="Untitled?" xmlUrl="https://example.org/rss" language="en-US"/>
</body></opml>"""
    items = import_opml(data)
    assert items == [
        {
            "name": "VnExpress",
            "url": "https://vnexpress.net/rss/thoi-su.rss",
            "tags": ["Vietnam", "news", "vn", "policy"],
        },
        {
            "name": "VnExpress (2)",
            "url": "https://vnexpress.net/rss/tin-moi-nhat.rss",
            "tags": ["Vietnam"],
        },
        {"name": "Untitled?", "url": "https://example.org/rss", "language": "en"},
    ]


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY x "boom">]><opml><body>'
        b'<outline text="&x;" xmlUrl="https://a.example/rss"/></body></opml>',
        b'<?xml version="1.0"?><!DOCTYPE opml SYSTEM "http://evil.example/x.dtd">'
        b"<opml><body/></opml>",
        b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<opml><body><outline text="&xxe;" xmlUrl="https://a.example/rss"/></body></opml>',
    ],
)
def test_doctype_rejected(data: bytes) -> None:
    with pytest.raises(ConfigError, match="DOCTYPE and ENTITY"):
        import_opml(data)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [(b"<opml><body>", "not well-formed"), (b"<rss><channel/></rss>", "no <opml><body>")],
)
def test_bad_documents(data: bytes, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        import_opml(data)
