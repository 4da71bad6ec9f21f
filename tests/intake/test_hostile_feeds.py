"""Feeds written to hurt: XXE, entity bombs, giant fields, huge entry counts, SSRF targets."""

from __future__ import annotations

import socket
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from monitor.domain import Validators
from monitor.errors import FetchError, ParseError
from monitor.intake.fetch import FetchLimits, fetch_feed, make_client
from monitor.intake.netguard import check_public_url, request_hook
from monitor.intake.normalize import normalize_entry
from monitor.intake.parse import parse_feed
from tests.support.feedserver import FeedServer, rss

BASE = "http://hostile.example.invalid/feed.xml"
NOW = datetime(2026, 8, 23, 12, 0, tzinfo=UTC)


@pytest.fixture()
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    return path


def all_text(body: bytes) -> str:
    feed = parse_feed(body, "application/rss+xml", BASE)
    parts = [feed.title or ""]
    for e in feed.entries:
        parts += [e.title or "", e.summary_html or "", e.link or "", e.guid or ""]
    return "\n".join(parts)


# -- XML entity attacks --------------------------------------------------------------------


def test_xxe_external_entity_does_not_read_files(secret_file: Path) -> None:
    doc = f"""<?xml version="1.0"?>
<!DOCTYPE rss [
<!ENTITY xxe SYSTEM "file://{secret_file}">
]>
<rss version="2.0"><channel><title>t</title>
<item><title>leak &xxe; end</title><description>&xxe;</description><guid>1</guid></item>
</channel></rss>""".encode()
    text = all_text(doc)
    assert "TOP-SECRET" not in text
    assert "leak" in text  # the entry survives, the entity stays unexpanded


def test_xxe_parameter_entity_does_not_read_files(secret_file: Path) -> None:
    doc = f"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY % p SYSTEM "file://{secret_file}"> %p;]>
<rss version="2.0"><channel><item><title>x</title></item></channel></rss>""".encode()
    assert "TOP-SECRET" not in all_text(doc)


def test_feed_body_that_is_a_file_name_is_not_opened(secret_file: Path) -> None:
    """feedparser.parse(bytes) would open a local file of that name; we pass a stream."""
    body = str(secret_file).encode()
    with pytest.raises(Exception) as info:  # noqa: PT011 - any clean rejection will do
        parse_feed(body, "application/rss+xml", BASE)
    assert "TOP-SECRET" not in str(info.value)


def _laughs(levels: int = 10) -> bytes:
    lines = ['<!ENTITY lol0 "lol">']
    for i in range(1, levels):
        lines.append(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">')
    dtd = "\n".join(lines)
    return f"""<?xml version="1.0"?>
<!DOCTYPE rss [
{dtd}
]>
<rss version="2.0"><channel><title>bomb</title>
<item><title>&lol{levels - 1};</title><description>&lol{levels - 1};</description></item>
</channel></rss>""".encode()


def _bounded(fn: object, max_s: float = 3.0, max_mb: float = 100.0) -> object:
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = fn()  # type: ignore[operator]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < max_s
    assert peak < max_mb * 1024 * 1024
    return result


def test_billion_laughs_is_not_expanded() -> None:
    feed = _bounded(lambda: parse_feed(_laughs(), None, BASE))
    assert all(len(e.title or "") <= 1000 for e in feed.entries)  # type: ignore[attr-defined]


def test_quadratic_blowup_is_not_expanded() -> None:
    """One big literal entity referenced many times: feedparser's loose parser would expand it."""
    big = "A" * 100_000
    refs = "&a;" * 10_000
    doc = f"""<?xml version="1.0"?>
<!DOCTYPE rss [
<!ENTITY a "{big}">
]>
<rss version="2.0"><channel><item><title>{refs}</title><description>{refs}</description>
</item></channel></rss>""".encode()
    feed = _bounded(lambda: parse_feed(doc, None, BASE))
    (entry,) = feed.entries  # type: ignore[attr-defined]
    assert "AAAA" not in (entry.title or "")


@pytest.mark.parametrize(
    "padding",
    [
        pytest.param(b"<!--" + b"x" * 5_000_000 + b"-->\n", id="doctype-after-5MB-of-comment"),
        pytest.param(b"", id="internal-subset-over-4MB"),
    ],
)
def test_an_entity_declaration_is_found_however_deep(padding: bytes) -> None:
    """Padding before the DOCTYPE, or a long internal subset, must not let the entity in."""
    filler = b"" if padding else b"<!-- " + b"y" * 4_500_000 + b" -->\n"
    refs = b"&a;" * 10_000
    doc = (
        b'<?xml version="1.0"?>\n' + padding + b"<!DOCTYPE rss [\n" + filler
        + b'<!ENTITY a "' + b"A" * 100_000 + b'">\n]>\n'
        + b"<rss version='2.0'><channel><item><title>" + refs + b"</title>"
        + b"<description>" + refs + b"</description></item></channel></rss>"
    )  # fmt: skip
    feed = _bounded(lambda: parse_feed(doc, None, BASE))
    (entry,) = feed.entries  # type: ignore[attr-defined]
    assert "AAAA" not in (entry.title or "") and "AAAA" not in (entry.summary_html or "")


def test_declarations_nested_to_reassemble_after_stripping_are_no_feed() -> None:
    refs = b"&a;" * 200
    doc = (
        b'<?xml version="1.0"?>\n<!DOC<!DOCTYPE x>TYPE rss [<!EN<!ENTITY q>TITY a "'
        + b"A" * 10_000 + b'"> ]>\n<rss version="2.0"><channel><item><title>t</title>'
        + b"<description>" + refs + b"</description></item></channel></rss>"
    )  # fmt: skip
    with pytest.raises(ParseError, match="nested"):
        parse_feed(doc, None, BASE)


def test_a_doctype_that_never_ends_is_no_feed() -> None:
    doc = b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY a "x">\n<rss version="2.0">'
    with pytest.raises(ParseError, match="DOCTYPE"):
        parse_feed(doc, None, BASE)


# -- size and count ------------------------------------------------------------------------


def test_ten_thousand_entries_are_capped_quickly() -> None:
    items = [
        {
            "title": f"Item {i}",
            "guid": str(i),
            "link": f"http://x.invalid/{i}",
            "pubDate": (NOW - timedelta(minutes=i)).strftime("%a, %d %b %Y %H:%M:%S +0000"),
        }
        for i in range(10_000)
    ]
    start = time.perf_counter()
    feed = parse_feed(rss(items), None, BASE, max_entries=500)
    assert time.perf_counter() - start < 3.0
    assert len(feed.entries) == 500
    assert feed.entries[0].guid == "0" and feed.entries[-1].guid == "499"


def test_oldest_first_huge_feed_still_yields_newest() -> None:
    items = [
        {
            "title": f"I{i}",
            "guid": str(i),
            "pubDate": (NOW - timedelta(minutes=5000 - i)).strftime("%a, %d %b %Y %H:%M:%S +0000"),
        }
        for i in range(5000)
    ]
    feed = parse_feed(rss(items), None, BASE, max_entries=100)
    assert feed.entries[0].guid == "4999" and len(feed.entries) == 100


def test_one_megabyte_title_and_summary_are_capped() -> None:
    doc = rss([{"title": "T" * 1_000_000, "description": "D" * 1_000_000, "guid": "big"}])
    (raw,) = parse_feed(doc, None, BASE).entries
    assert raw.title is not None and len(raw.title) == 1000
    assert raw.summary_html is not None and len(raw.summary_html) == 20_000
    entry = normalize_entry(raw, fetched_at=NOW, feed_language=None)
    assert len(entry.title) <= 501 and len(entry.summary) <= 2001


def test_duplicate_guids_are_all_returned() -> None:
    doc = rss(
        [
            {"title": "A", "guid": "same"},
            {"title": "B", "guid": "same"},
            {"title": "A", "guid": "same"},
        ]
    )
    feed = parse_feed(doc, None, BASE)
    assert [e.guid for e in feed.entries] == [
        "same",
        "same",
        "same",
    ]  # dedup is the next stage's job


def test_far_future_and_ancient_dates() -> None:
    doc = rss(
        [
            {"title": "future", "guid": "f", "pubDate": "Fri, 01 Jan 2100 00:00:00 GMT"},
            {"title": "past", "guid": "p", "pubDate": "Mon, 01 Jan 1900 00:00:00 GMT"},
            {"title": "epoch", "guid": "e", "pubDate": "Thu, 01 Jan 1970 00:00:00 GMT"},
            {"title": "garbage", "guid": "g", "pubDate": "Someday 99 99 99:99"},
            {"title": "overflow", "guid": "o", "pubDate": "9999-12-31T23:59:59-23:59"},
        ]
    )
    for raw in parse_feed(doc, None, BASE).entries:
        assert normalize_entry(raw, fetched_at=NOW, feed_language=None).published == NOW


def test_deeply_nested_json_is_rejected_cleanly() -> None:
    from monitor.errors import ParseError

    with pytest.raises(ParseError):
        parse_feed(
            b'{"items": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/feed+json", BASE
        )


def test_control_characters_and_nul_bytes() -> None:
    doc = rss([{"title": "ok", "guid": "1"}]).replace(b"<title>ok", b"<title>o\x00k\x07\x1b")
    feed = parse_feed(doc, None, BASE)
    entry = normalize_entry(feed.entries[0], fetched_at=NOW, feed_language=None)
    assert "\x00" not in entry.title and "\x1b" not in entry.title


def test_javascript_links_are_dropped() -> None:
    doc = rss([{"title": "x", "guid": "1", "link": "javascript:alert(document.cookie)"}])
    entry = normalize_entry(
        parse_feed(doc, None, BASE).entries[0], fetched_at=NOW, feed_language=None
    )
    assert entry.url is None


# -- over the wire -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[FeedServer]:
    with FeedServer() as srv:
        yield srv


def test_hostile_feed_end_to_end_over_http(server: FeedServer) -> None:
    server.serve("/laughs.xml", _laughs())
    limits = FetchLimits(read_timeout_s=2, total_timeout_s=3)
    with make_client(limits, trust_env=False) as client:
        result = fetch_feed(client, server.url("/laughs.xml"), Validators(), limits)
    feed = _bounded(lambda: parse_feed(result.body, result.content_type, result.url))
    assert feed is not None


# -- SSRF guard ----------------------------------------------------------------------------


def fake_resolver(*addresses: str):  # type: ignore[no-untyped-def]
    def resolve(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        family = socket.AF_INET6 if ":" in addresses[0] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    return resolve


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost/",
        "http://[::1]/",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://172.16.5.5/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://100.64.0.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1%25eth0]/",
        "http://2130706433/",  # 127.0.0.1 as a decimal integer
        "file:///etc/passwd",
        "gopher://x.invalid/",
        "http:///nohost",
    ],
)
def test_guard_blocks_non_public_targets(url: str) -> None:
    with pytest.raises(FetchError) as info:
        check_public_url(url)
    assert info.value.kind in {"blocked_address", "dns"}
    if "invalid" not in url:
        assert info.value.kind == "blocked_address"


def test_guard_checks_every_resolved_address() -> None:
    resolve = fake_resolver("93.184.216.34", "10.0.0.5")
    with pytest.raises(FetchError, match="10.0.0.5"):
        check_public_url("https://mixed.example/", resolve=resolve)


def test_guard_allows_public_addresses() -> None:
    resolve = fake_resolver("93.184.216.34")
    assert check_public_url("https://news.example/a?x=1", resolve=resolve) == ("93.184.216.34",)


def test_guard_allow_private_still_blocks_metadata() -> None:
    assert check_public_url("http://10.0.0.1/", allow_private=True) == ("10.0.0.1",)
    with pytest.raises(FetchError):
        check_public_url("http://169.254.169.254/", allow_private=True)


def test_guard_dns_failure() -> None:
    def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise socket.gaierror(-2, "Name or service not known")

    with pytest.raises(FetchError) as info:
        check_public_url("https://nowhere.example/", resolve=fail)
    assert info.value.kind == "dns"


def test_guard_hook_checks_redirect_hops(server: FeedServer) -> None:
    """A public-looking first hop that redirects to a private address is stopped at the hop."""
    server.serve("/internal", b"internal secret")
    server.fault("/hop", "redirect", location=server.url("/internal"), status=302)
    seen: list[str] = []

    def resolve(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    guard = request_hook(resolve=resolve)

    def first_hop_public(request: httpx.Request) -> None:
        if request.url.path == "/hop":
            return  # pretend the first URL was public (it is really our local server)
        guard(request)

    with (
        httpx.Client(
            event_hooks={"request": [first_hop_public]}, follow_redirects=True, trust_env=False
        ) as c,
        pytest.raises(FetchError) as info,
    ):
        c.get(server.url("/hop"))
    assert info.value.kind == "blocked_address"
    assert server.hits("/internal") == 0
