"""Rendering: every format carries the facts and the reasons, escaped for its target."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from monitor.alerts.digest import group_by_country, render_digest
from monitor.alerts.markup import (
    MAX_CHARS,
    UNKNOWN_COUNTRY,
    BodyFormat,
    country_label,
    format_for_url,
    humanize_age,
)
from monitor.alerts.render import render
from monitor.domain import AlertMessage

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
QUOTE = "The ministry told operators to block Telegram within 24 hours."
MESSAGE = AlertMessage(
    kind="new",
    title="Government orders block of <Telegram> & Signal",
    link="https://news.example.org/a?x=1&y=2",
    source="VnExpress International",
    country="VN",
    categories=("platform_block", "vpn_restriction"),
    stage="enacted",
    score=0.87,
    matched_terms=("block", "telegram"),
    evidence=("rule platform_block: 'block' near platform name", "model: 0.87"),
    published=datetime(2026, 11, 23, 6, 0, tzinfo=UTC),
    other_sources=2,
    targets=("Telegram",),
    quote=QUOTE,
    quote_marks=((31, 36), (37, 45)),  # "block", "Telegram"
)


@pytest.mark.parametrize("fmt", list(BodyFormat))
def test_every_format_has_the_facts_and_no_internals(fmt: BodyFormat) -> None:
    out = render(MESSAGE, fmt, now=NOW)
    assert out.body_format is fmt
    assert out.title == "Viet Nam: platform block, vpn restriction · Telegram · enacted"
    body = out.body
    for needle in (
        "2026-11-23 06:00 UTC",
        "2 h ago",
        "VnExpress International · 2 other reports",
        "within 24 hours",
    ):
        assert needle in body, (fmt, needle)
    assert "news.example.org/a?x=1" in body
    # Model internals belong in `monitor classify` and the event's record, not in messages.
    for internal in ("rule platform_block", "model: 0.87", "0.87", "Why flagged"):
        assert internal not in body, (fmt, internal)


@pytest.mark.parametrize(
    ("fmt", "marked"),
    [
        (BodyFormat.MARKDOWN, "to **block** **Telegram** within"),
        (BodyFormat.HTML, "to <mark>block</mark> <mark>Telegram</mark> within"),
        (BodyFormat.TEXT, "to *block* *Telegram* within"),
    ],
)
def test_the_deciding_words_are_marked_in_the_quote(fmt: BodyFormat, marked: str) -> None:
    assert marked in render(MESSAGE, fmt).body


def test_marks_that_do_not_fit_the_quote_are_dropped() -> None:
    broken = replace(MESSAGE, quote_marks=((50, 10), (60, 9999)))
    body = render(broken, BodyFormat.MARKDOWN).body
    assert "> " + QUOTE.replace(".", ".") in body and "**block**" not in body


def test_a_quote_that_is_the_headline_marks_the_headline() -> None:
    title = "Vietnam orders Telegram blocked"
    message = replace(MESSAGE, title=title, quote=title, quote_marks=((15, 23),))
    body = render(message, BodyFormat.MARKDOWN).body
    assert "[Vietnam orders **Telegram** blocked](https://news.example.org/a?x=1&y=2)" in body
    assert "> " not in body


def test_html_escapes_feed_text() -> None:
    evil = replace(
        MESSAGE,
        title='<script>alert("x")</script>',
        source="<img src=x onerror=alert(1)>",
        quote="<b>bold</b> block",
        quote_marks=((12, 17),),
        targets=("<i>T</i>",),
    )
    body = render(evil, BodyFormat.HTML).body
    assert "<script>" not in body and "<img" not in body and "<b>bold" not in body
    assert "<i>T" not in body
    assert "&lt;script&gt;" in body and "&lt;img src=x" in body
    assert "&lt;b&gt;bold&lt;/b&gt; <mark>block</mark>" in body
    assert 'href="https://news.example.org/a?x=1&amp;y=2"' in body


def test_markdown_escapes_markup_and_text_keeps_it_plain() -> None:
    md = render(replace(MESSAGE, title="*Bold* [click](https://evil.example)"), BodyFormat.MARKDOWN)
    assert r"\*Bold\* \[click\](https://evil.example)" in md.body
    text = render(MESSAGE, BodyFormat.TEXT)
    assert "<Telegram> & Signal" in text.body


def test_non_http_links_are_dropped() -> None:
    body = render(replace(MESSAGE, link="javascript:alert(1)"), BodyFormat.HTML).body
    assert "javascript:" not in body


def test_a_link_cannot_break_out_of_its_markdown_link() -> None:
    """A feed's link with ) or > in it must not end the Markdown link early and let the rest
    of the address (or what a hostile feed put there) read as text or as another link."""
    link = "https://news.example.org/a_(b)>[x](https://evil.example)"
    body = render(replace(MESSAGE, link=link), BodyFormat.MARKDOWN).body
    assert "https://news.example.org/a_%28b%29%3E[x]%28https://evil.example%29" in body
    assert "(https://evil.example)" not in body


def test_update_says_what_changed() -> None:
    update = replace(MESSAGE, kind="update", stage="lifted", previous_stage="enforced")
    for fmt in BodyFormat:
        out = render(update, fmt)
        assert out.title == (
            "Update · Viet Nam: platform block, vpn restriction · Telegram · enforced → lifted"
        )
        assert "stage enforced → lifted · now 3 reports" in out.body


def test_a_measure_without_target_or_country_still_reads() -> None:
    bare = replace(MESSAGE, country=None, targets=(), categories=())
    assert render(bare, BodyFormat.TEXT).title == "Unknown country: measure · enacted"


@pytest.mark.parametrize("fmt", list(BodyFormat))
def test_long_bodies_are_truncated_gracefully(fmt: BodyFormat) -> None:
    huge = replace(MESSAGE, extra_lines=tuple("x" * 250 for _ in range(200)))
    body = render(huge, fmt).body
    assert len(body) <= MAX_CHARS[fmt.value]
    assert "(truncated)" in body
    if fmt is BodyFormat.HTML:
        assert body.count("<p>") == body.count("</p>")
        assert "<ul>" not in body


@pytest.mark.parametrize(
    ("kind", "title_start"),
    [
        ("feed_broken", "Feed broken:"),
        ("feed_gone", "Feed gone:"),
        ("feed_recovered", "Feed recovered:"),
        ("test", "Test"),
    ],
)
def test_simple_kinds(kind: str, title_start: str) -> None:
    msg = AlertMessage(
        kind=kind,
        title="Example Feed",
        link=None,
        source="Example Feed",
        country=None,
        categories=(),
        stage="none",
        score=0.0,
        matched_terms=(),
        evidence=(),
        published=None,
        extra_lines=("HTTP 500 for 3 polls <since 06:00>",),
    )
    for fmt in BodyFormat:
        out = render(msg, fmt)
        assert out.title.startswith(title_start)
        assert "HTTP 500 for 3 polls" in out.body
        assert "Why flagged" not in out.body
    assert "&lt;since 06:00&gt;" in render(msg, BodyFormat.HTML).body


def test_digest_groups_by_country_unknown_last() -> None:
    events = [
        replace(MESSAGE, title="Laos item", country="LA"),
        replace(MESSAGE, title="No country item", country=None),
        replace(MESSAGE, title="Viet Nam item", country="VN"),
        replace(MESSAGE, title="Another Laos item", country="LA"),
    ]
    out = render_digest("rights-team", events, BodyFormat.TEXT, period_label="last 24 h")
    assert out.title == "Digest for rights-team: 4 measures (last 24 h)"
    body = out.body
    order = [body.index(s) for s in ("Laos (LA)", "Viet Nam (VN)", UNKNOWN_COUNTRY)]
    assert order == sorted(order)
    assert body.index("Laos item") < body.index("Viet Nam (VN)")
    assert body.index("Another Laos item") < body.index("Viet Nam (VN)")
    assert len([ln for ln in body.splitlines() if ln.startswith("- ")]) == 4
    assert [label for label, _ in group_by_country(events)][-1] == UNKNOWN_COUNTRY


@pytest.mark.parametrize("fmt", list(BodyFormat))
def test_digest_formats_escape_and_link(fmt: BodyFormat) -> None:
    out = render_digest("r", [MESSAGE], fmt, period_label="today")
    assert "Viet Nam (VN)" in out.body and "news.example.org" in out.body
    # Each line says what, target, stage, how many report it and when, as an alert does.
    assert "platform block, vpn restriction · Telegram · enacted" in out.body
    assert "VnExpress International, 3 reports, 23 Nov 06:00 UTC" in out.body
    if fmt is BodyFormat.HTML:
        assert "&lt;Telegram&gt;" in out.body


def test_empty_digest() -> None:
    out = render_digest("r", [], BodyFormat.TEXT, period_label="today")
    assert "0 measures" in out.title and "No new measures." in out.body


@pytest.mark.parametrize(
    ("url", "requested", "expected"),
    [
        ("slack://T/B/C", "auto", BodyFormat.MARKDOWN),
        ("https://hooks.slack.com/services/T/B/C", "auto", BodyFormat.MARKDOWN),
        ("discord://id/token", "auto", BodyFormat.MARKDOWN),
        ("mmosts://host/token", "auto", BodyFormat.MARKDOWN),
        ("msteams://a/b/c", "auto", BodyFormat.MARKDOWN),
        ("tgram://bot/chat", "auto", BodyFormat.MARKDOWN),
        ("matrixs://user:pw@host/#room", "auto", BodyFormat.MARKDOWN),
        ("mailto://host?to=a@example.org", "auto", BodyFormat.HTML),
        ("mailtos://u:p@host", "auto", BodyFormat.HTML),
        ("json://127.0.0.1:8000/hook", "auto", BodyFormat.TEXT),
        ("mailto://host", "text", BodyFormat.TEXT),
        ("json://host", "markdown", BodyFormat.MARKDOWN),
    ],
)
def test_format_for_url(url: str, requested: str, expected: BodyFormat) -> None:
    assert format_for_url(url, requested) is expected


def test_country_label_and_age() -> None:
    assert country_label("vn") == "Viet Nam (VN)"
    assert country_label("XX") == "XX"
    assert country_label(None) == UNKNOWN_COUNTRY
    assert humanize_age(datetime(2026, 11, 23, 7, 59, 30, tzinfo=UTC), NOW) == "just now"
    assert humanize_age(datetime(2026, 11, 23, 7, 15, tzinfo=UTC), NOW) == "45 min ago"
    assert humanize_age(datetime(2026, 11, 20, 8, 0, tzinfo=UTC), NOW) == "3 days ago"
