"""Pure normalization: canonical URLs, HTML to text, entry fallbacks, title keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.domain import RawEntry
from monitor.intake.normalize import (
    canonical_url,
    content_hash,
    html_to_text,
    normalize_entry,
    title_key,
)

NOW = datetime(2026, 8, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM:80/a?b=2&a=1#frag", "http://example.com/a?a=1&b=2"),
        ("https://example.com:443/", "https://example.com/"),
        ("https://example.com:8443/x", "https://example.com:8443/x"),
        ("https://example.com", "https://example.com/"),
        (
            "https://www.bbc.com/vietnamese/articles/c1?at_medium=RSS&at_campaign=rss",
            "https://www.bbc.com/vietnamese/articles/c1",
        ),
        (
            "https://x.invalid/p?id=7&utm_source=rss&utm_medium=feed&fbclid=1&gclid=2&ocid=3"
            "&cmpid=4&mc_cid=5&mc_eid=6&ref=7&ref_src=8",
            "https://x.invalid/p?id=7",
        ),
        (
            "http://www.bing.com/news/apiclick.aspx?ref=FexRss&aid=&tid=1"
            "&url=https%3a%2f%2fvnexpress.net%2fa-1.html%3futm_source%3dbing&c=1&mkt=en-us",
            "https://vnexpress.net/a-1.html",
        ),
        (
            "https://news.google.com/rss/articles/CBMiK2h0dHBz?oc=5&hl=en-US&gl=US",
            "https://news.google.com/rss/articles/CBMiK2h0dHBz?oc=5&hl=en-US&gl=US",
        ),
        ("http://x.invalid/a?q=%C3%A1&p=a+b", "http://x.invalid/a?p=a+b&q=%C3%A1"),
        ("https://x.invalid/a?amp;b=1", "https://x.invalid/a?amp%3Bb=1"),
        ("https://x.invalid/a?x=1&amp;utm_source=y", "https://x.invalid/a?x=1"),
        ("ftp://x.invalid/file", None),
        ("javascript:alert(1)", None),
        ("/relative/only", None),
        ("http://[::1]:80/x", "http://[::1]/x"),
        ("http://bad:port/", None),
        ("", None),
        (None, None),
    ],
)
def test_canonical_url(url: str | None, expected: str | None) -> None:
    assert canonical_url(url) == expected


def test_canonical_url_is_idempotent() -> None:
    once = canonical_url("https://X.invalid/a?b=1&utm_campaign=z&a=2")
    assert once is not None and canonical_url(once) == once


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("<p>Hello <b>world</b></p><p>again</p>", "Hello world again"),
        ("a<script>var x = '<p>no</p>';</script>b<style>p{}</style>c", "abc"),
        ("Ch&amp;iacute;nh ph&amp;ugrave; &amp;aacute;", "Chính phù á"),
        ("Tom &amp; Jerry &lt;3", "Tom & Jerry <3"),
        ("  many\n\n  spaces\t\u00a0here ", "many spaces here"),
        ("line<br>break", "line break"),
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("Persian \u200c joiner kept", "Persian \u200c joiner kept"),
        ("", ""),
        (None, ""),
        ("<unclosed <b>tag", "tag"),
        ("a < b and c > d", "a < b and c > d"),
    ],
)
def test_html_to_text(markup: str | None, expected: str) -> None:
    assert html_to_text(markup) == expected


def raw(**kw: object) -> RawEntry:
    base: dict[str, object] = {
        "guid": "g1",
        "link": "https://x.invalid/a?utm_source=rss",
        "title": "Title",
        "summary_html": "<p>Summary text</p>",
        "published": NOW - timedelta(hours=1),
    }
    base.update(kw)
    return RawEntry(**base)  # type: ignore[arg-type]


def test_normalize_entry_basic() -> None:
    entry = normalize_entry(raw(author="  Ann  "), fetched_at=NOW, feed_language="vi")
    assert entry.guid == "g1" and entry.url == "https://x.invalid/a"
    assert entry.title == "Title" and entry.summary == "Summary text"
    assert entry.published == NOW - timedelta(hours=1)
    assert entry.language == "vi" and entry.author == "Ann"
    assert entry.content_hash == content_hash("Title", "Summary text")


def test_guid_fallback_chain() -> None:
    no_guid = normalize_entry(raw(guid=None), fetched_at=NOW, feed_language=None)
    assert no_guid.guid == "https://x.invalid/a"
    nothing = normalize_entry(raw(guid="  ", link=None), fetched_at=NOW, feed_language=None)
    assert nothing.guid == f"sha256:{nothing.content_hash}" and nothing.url is None


@pytest.mark.parametrize(
    "published",
    [
        None,
        NOW + timedelta(days=3),
        datetime(1994, 12, 31, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
    ],
)
def test_absurd_or_missing_dates_fall_back_to_fetch_time(published: datetime | None) -> None:
    assert (
        normalize_entry(raw(published=published), fetched_at=NOW, feed_language=None).published
        == NOW
    )


def test_slightly_future_date_is_kept() -> None:
    soon = NOW + timedelta(hours=20)  # publishers' clocks and zones are sloppy
    assert (
        normalize_entry(raw(published=soon), fetched_at=NOW, feed_language=None).published == soon
    )


def test_naive_published_is_taken_as_utc() -> None:
    naive = datetime(2026, 8, 23, 10, 0)
    entry = normalize_entry(raw(published=naive), fetched_at=NOW, feed_language=None)
    assert entry.published == datetime(2026, 8, 23, 10, 0, tzinfo=UTC)


def test_title_falls_back_to_summary_words() -> None:
    summary = "<p>" + " ".join(f"w{i}" for i in range(30)) + "</p>"
    entry = normalize_entry(
        raw(title=None, summary_html=summary), fetched_at=NOW, feed_language=None
    )
    assert entry.title.startswith("w0 w1 w2") and entry.title.endswith("…")
    assert len(entry.title.split()) == 12


def test_summary_is_capped() -> None:
    entry = normalize_entry(raw(summary_html="word " * 5000), fetched_at=NOW, feed_language=None)
    assert len(entry.summary) <= 2001 and entry.summary.endswith("…")


def test_huge_title_is_capped() -> None:
    entry = normalize_entry(raw(title="A" * 1_000_000), fetched_at=NOW, feed_language=None)
    assert len(entry.title) <= 501


def test_content_hash_ignores_case_and_whitespace() -> None:
    a = normalize_entry(
        raw(title="Hello  World", summary_html="<b>X</b>  y"), fetched_at=NOW, feed_language=None
    )
    b = normalize_entry(
        raw(title="hello world", summary_html="x\ny"), fetched_at=NOW, feed_language=None
    )
    assert a.content_hash == b.content_hash


def test_entry_language_beats_feed_language() -> None:
    entry = normalize_entry(raw(language="my"), fetched_at=NOW, feed_language="en")
    assert entry.language == "my"


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("Vietnam blocks Telegram - VnExpress", "vietnam blocks telegram  vnexpress"),
        ("“Cấm” VPN: Bộ ra quyết định!", "cấm vpn bộ ra quyết định"),
        ("Myanmar&#8217;s junta cuts internet", "myanmar s junta cuts internet"),
    ],
)
def test_title_key(left: str, right: str) -> None:
    assert title_key(left) == title_key(right)


def test_title_key_keeps_distinct_titles_apart() -> None:
    assert title_key("Thailand bans X") != title_key("Thailand lifts ban on X")


@pytest.mark.parametrize(
    "plain",
    [
        "  Laos orders operators\tto cut\n foreign links ",
        "Zero\u200bwidth\u00a0and NBSP",
        "Việt Nam yêu cầu xác thực tài khoản",
        "a > b; quotes \" ' and ; semicolons",
    ],
)
def test_plain_text_takes_the_fast_path_with_the_parsers_result(plain: str) -> None:
    # The same text wrapped in a tag goes through the HTML parser; both must agree.
    assert html_to_text(plain) == html_to_text(f"<span>{plain}</span>")
    assert "<" not in plain and "&" not in plain
