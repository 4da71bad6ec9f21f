"""Hostile feeds at the daemon level: one real feed server serves every misbehaviour at once.

One poll of ~25 feeds (two healthy ones carrying a measure, the rest each hostile in its own
way) must leave the poller working, the healthy feeds stored and alerted once, a clear error
on each hostile feed (in the feeds table and in `monitor feeds status`), nothing from the
local disk in any item, and the process's peak memory bounded. A second poll must still work.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from monitor.cli.main import main
from monitor.clock import FrozenClock
from monitor.intake.normalize import TITLE_MAX_CHARS
from monitor.store.models import AlertRow, FeedRow, ItemRow, ItemSourceRow
from tests.support.feedserver import FeedServer, rss
from tests.support.receivers import WebhookReceiver
from tests.support.stack import make_runtime, write_config

MAX_ITEMS = 50  # defaults.max_items_per_poll for this file
MARKER = "LOCAL-FILE-MARKER-7f3c9e21"
MAX_RSS_GROWTH_MB = 150

ETHIOPIA = {
    "title": "Ethiopia shuts down mobile internet in the Amhara region",
    "link": "https://news.example.org/et/amhara-shutdown",
    "guid": "et-amhara-1",
    "description": "Authorities cut mobile data across the Amhara region on Monday, "
    "telecom operators said.",
    "pubDate": "Mon, 23 Nov 2026 06:00:00 +0000",
}
PAKISTAN = {
    "title": "Pakistan blocks X nationwide after election protests",
    "link": "https://news.example.org/pk/x-block",
    "guid": "pk-x-1",
    "description": "The telecom regulator ordered internet providers to block access to the "
    "platform X.",
    "pubDate": "Mon, 23 Nov 2026 05:00:00 +0000",
}


def _plain(n: int, **extra: str) -> dict[str, str]:
    """A harmless item (never flagged), so only the measures alert."""
    item = {
        "title": f"Local football club wins match number {n}",
        "link": f"https://sport.example.org/match/{n}",
        "guid": f"sport-{n}",
        "description": "The team celebrated in the city centre after a late goal.",
        "pubDate": "Mon, 23 Nov 2026 04:00:00 +0000",
    }
    item.update(extra)
    return item


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
<item><title>laughs &lol{levels - 1}; end</title><guid>lol-1</guid>
<description>&lol{levels - 1};</description></item>
</channel></rss>""".encode()


def _xxe(secret: Path) -> bytes:
    return f"""<?xml version="1.0"?>
<!DOCTYPE rss [
<!ENTITY xxe SYSTEM "file://{secret}">
<!ENTITY % p SYSTEM "file://{secret}">
%p;
]>
<rss version="2.0"><channel><title>xxe &xxe;</title>
<item><title>leak &xxe; end</title><guid>xxe-1</guid>
<link>https://leak.example.org/1</link><description>&xxe;</description></item>
</channel></rss>""".encode()


def _latin(text: str, encoding: str, key: str) -> bytes:
    """A one-item RSS document encoded in `encoding` without any encoding declaration."""
    doc = (
        f'<rss version="2.0"><channel><title>t</title><item><title>{text}</title>'
        f"<guid>cs-{key}</guid><link>https://charset.example.org/{key}</link>"
        "<description>Weather report for the weekend.</description></item></channel></rss>"
    )
    return doc.encode(encoding)


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A URL whose TCP connect never completes: a listener with a full accept queue."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    yield f"http://127.0.0.1:{port}/feed.xml"
    for filler in fillers:
        filler.close()
    listener.close()


@pytest.fixture
def throttled() -> Iterator[FeedServer]:
    """A second local server, so another host: the one whose feed answers 429."""
    with FeedServer() as server:
        yield server


def _peak_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/self/status")


# name -> (path or absolute URL, expected last_error_kind, text expected in last_error)
FAILING: dict[str, tuple[str, str, str]] = {
    "Connect Timeout": ("<blackhole>", "timeout", "timed out"),
    "Read Timeout": ("/hang.xml", "timeout", "timed out"),
    "Drip": ("/drip.xml", "timeout", "took longer than"),
    "Endless": ("/endless.xml", "too_large", "exceeds"),
    "Too Large": ("/large.xml", "too_large", "bytes"),
    "Gzip Bomb": ("/bomb.xml", "too_large", "exceeds"),
    "HTML Page": ("/page.html", "not_a_feed", "HTML page"),
    "Empty": ("/empty.xml", "empty", "empty body"),
    "Not Found": ("/missing.xml", "not_found", "404"),
    "Gone": ("/gone.xml", "gone", "410"),
    "Redirect Loop": ("/loop.xml", "redirect_loop", "redirect loop"),
    # On a host of its own: a 429 holds back every feed of its host (test_poller shows how).
    "Rate Limited": ("<throttled host>", "rate_limited", "429"),
    "Unavailable": ("/503.xml", "unavailable", "503"),
    "DNS Failure": ("http://nonexistent.invalid/feed.xml", "dns", "resolve"),
}
# Hostile documents that must still poll cleanly (possibly with fewer entries).
SURVIVING = [
    "Billion Laughs",
    "XXE",
    "Wrong Charset",
    "Missing Charset",
    "Invalid Bytes",
    "Ten Thousand",
    "Duplicate GUIDs",
    "Absurd Dates",
    "Huge Title",
]
HEALTHY = {"Healthy ET": ETHIOPIA, "Healthy PK": PAKISTAN}
RETRY_AFTER = {"Rate Limited": 7200, "Unavailable": 5400}


def _serve_all(server: FeedServer, secret: Path) -> dict[str, str]:
    """Configure every route; returns the path of each surviving/healthy feed."""
    server.serve("/et.xml", rss([ETHIOPIA]))
    server.serve("/pk.xml", rss([PAKISTAN]))
    # -- network and HTTP faults
    server.fault("/hang.xml", "hang", max_s=30)
    server.fault("/drip.xml", "drip", interval_s=1.0)
    server.fault("/endless.xml", "endless")
    server.serve("/large.xml", rss([_plain(1, description="x" * 6_000_000)]))
    server.fault("/bomb.xml", "gzip_bomb", size=64 * 1024 * 1024)
    server.fault("/empty.xml", "empty")
    server.fault("/missing.xml", "status", status=404)
    server.fault("/gone.xml", "status", status=410)
    server.fault("/loop.xml", "redirect_loop")
    server.fault("/503.xml", "status", status=503, headers={"Retry-After": "5400"})
    page = (
        "<!DOCTYPE html><html><head><title>News</title>"
        '<link rel="alternate" type="application/rss+xml" href="/real-feed.xml">'
        "</head><body><p>Welcome</p></body></html>"
    )
    server.serve("/page.html", page.encode(), content_type="text/html; charset=utf-8")
    # -- hostile documents
    server.serve("/laughs.xml", _laughs())
    server.serve("/xxe.xml", _xxe(secret))
    # Header says UTF-8, bytes are windows-1251.
    server.serve(
        "/wrong-charset.xml",
        _latin("Погода на выходные", "cp1251", "wrong"),
        content_type="application/rss+xml; charset=utf-8",
    )
    # No charset anywhere, Latin-1 bytes.
    server.serve(
        "/no-charset.xml",
        _latin("Café owners reopen terraces", "latin-1", "none"),
        content_type="application/rss+xml",
    )
    invalid = rss([_plain(2, title="Market report ÿÿÿ today")]).replace(
        "ÿÿÿ".encode(), b"\xff\xfe\xc3\x28\x80"
    )
    server.serve("/invalid-bytes.xml", invalid)
    many = [
        {"title": f"Entry {n}", "guid": f"e{n}", "link": f"https://m.example.org/{n}"}
        for n in range(10_000)
    ]
    server.serve("/many.xml", rss(many))
    dup = [_plain(3, guid="same"), _plain(4, guid="same"), _plain(5, guid="same")]
    server.serve("/dup.xml", rss(dup))
    dates = [
        _plain(6, pubDate="Fri, 01 Jan 2999 00:00:00 +0000"),
        _plain(7, pubDate="Mon, 01 Jan 1800 00:00:00 +0000"),
    ]
    server.serve("/dates.xml", rss(dates))
    server.serve("/huge-title.xml", rss([_plain(8, title="T" * 1_000_000)]))
    return {
        "Healthy ET": "/et.xml",
        "Healthy PK": "/pk.xml",
        "Billion Laughs": "/laughs.xml",
        "XXE": "/xxe.xml",
        "Wrong Charset": "/wrong-charset.xml",
        "Missing Charset": "/no-charset.xml",
        "Invalid Bytes": "/invalid-bytes.xml",
        "Ten Thousand": "/many.xml",
        "Duplicate GUIDs": "/dup.xml",
        "Absurd Dates": "/dates.xml",
        "Huge Title": "/huge-title.xml",
    }


def _status_lines(config: Path, db_url: str) -> dict[str, str]:
    result = CliRunner().invoke(
        main, ["--config", str(config), "--db", db_url, "feeds", "status"], env={}
    )
    assert result.exit_code == 0, result.output
    lines: dict[str, str] = {}
    for line in result.output.splitlines():
        name = line[:40].strip()
        if name:
            lines[name] = line
    return lines


def _feed_list(
    server: FeedServer, paths: dict[str, str], blackhole: str, throttled: FeedServer
) -> list[dict[str, str]]:
    throttled.fault("/429.xml", "status", status=429, headers={"Retry-After": "7200"})
    feeds: list[dict[str, str]] = []
    for name, (where, _, _) in FAILING.items():
        if where == "<blackhole>":
            url = blackhole
        elif where == "<throttled host>":
            url = throttled.url("/429.xml")
        elif where.startswith("http"):
            url = where
        else:
            url = server.url(where)
        feeds.append({"name": name, "url": url})
    feeds += [{"name": name, "url": server.url(path)} for name, path in paths.items()]
    return feeds


def _check_failing(
    rows: dict[str, FeedRow], items_of: dict[str, list[ItemRow]], now: datetime, html_link: str
) -> None:
    """Each failing feed: the right kind, a message naming the problem, backed off, no items."""
    for name, (_, kind, text) in FAILING.items():
        row = rows[name]
        assert row.last_error_kind == kind, (name, row.last_error_kind, row.last_error)
        assert row.last_error and text.lower() in row.last_error.lower(), (name, row.last_error)
        assert row.consecutive_failures == 1, name
        assert row.next_poll_at is not None and row.next_poll_at > now, name
        assert items_of[name] == [], name
    assert html_link in (rows["HTML Page"].last_error or "")
    for name, seconds in RETRY_AFTER.items():
        assert rows[name].next_poll_at >= now + timedelta(seconds=seconds), name
    assert [name for name, row in rows.items() if row.gone] == ["Gone"]


def _check_surviving(
    rows: dict[str, FeedRow], items_of: dict[str, list[ItemRow]], now: datetime
) -> None:
    """Hostile documents that still poll: bounded, capped, deduplicated, nothing local leaked."""
    for name in SURVIVING:
        assert rows[name].last_error_kind is None, (name, rows[name].last_error)
    for item in (item for items in items_of.values() for item in items):
        assert MARKER not in item.title and MARKER not in item.summary
        assert len(item.title) <= TITLE_MAX_CHARS  # the cap, its ellipsis included
        assert "lollollol" not in item.title + item.summary
    assert [i.guid for i in items_of["XXE"]] == ["xxe-1"]
    assert [i.guid for i in items_of["Billion Laughs"]] == ["lol-1"]
    assert len(items_of["Ten Thousand"]) == MAX_ITEMS
    # Three stories under one GUID: each kept, under the GUID qualified by its link.
    assert sorted(i.guid for i in items_of["Duplicate GUIDs"]) == [
        f"same#https://sport.example.org/match/{n}" for n in (3, 4, 5)
    ]
    dated = items_of["Absurd Dates"]
    assert len(dated) == 2
    for item in dated:
        published = item.published.replace(tzinfo=item.published.tzinfo or UTC)
        assert published == now, (item.title, item.published)
    (huge,) = items_of["Huge Title"]
    assert huge.title.startswith("TTTT") and len(huge.title) <= TITLE_MAX_CHARS
    for name in ("Wrong Charset", "Missing Charset", "Invalid Bytes"):
        (item,) = items_of[name]
        assert item.title.strip(), name
    assert "Café" in items_of["Missing Charset"][0].title
    assert "Market report" in items_of["Invalid Bytes"][0].title


def _check_status_lines(lines: dict[str, str]) -> None:
    """`monitor feeds status`: each failing feed shows its state and error, the rest are ok."""
    for name, (_, _, text) in FAILING.items():
        line = lines[name]
        assert "error:" in line and text.lower() in line.lower(), line
        assert ("GONE" if name == "Gone" else "FAILING x1") in line, line
    assert "real-feed.xml" in lines["HTML Page"]
    for name in [*HEALTHY, *SURVIVING]:
        assert "  ok  " in lines[name] and "error:" not in lines[name], lines[name]


def test_hostile_feeds_in_one_poll_leave_the_daemon_and_other_feeds_fine(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    webhook: WebhookReceiver,
    clock: FrozenClock,
    blackhole: str,
    throttled: FeedServer,
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(MARKER, encoding="utf-8")
    feeds = _feed_list(feed_server, _serve_all(feed_server, secret), blackhole, throttled)
    assert len(feeds) == 25
    routes = [
        {"name": "team", "url": "${HOOK_URL}", "min_score": 0.5, "kinds": "[new, update]"},
        {"name": "admins", "url": "${HOOK_URL}", "kinds": "[feed_health]"},
    ]
    config = write_config(
        tmp_path / "feeds.yaml", feeds, routes, defaults=f"max_items_per_poll: {MAX_ITEMS}"
    )
    runtime = make_runtime(config, db_url, clock, {"HOOK_URL": webhook.apprise_url()})
    poller = runtime.poller
    poller.fetch_context.limits = dataclasses.replace(
        poller.fetch_context.limits,
        connect_timeout_s=1,
        read_timeout_s=2,
        total_timeout_s=3,
        max_body_bytes=4_000_000,
    )
    now = clock.now()

    before_kb = _peak_rss_kb()
    report = poller.run_once()
    growth_mb = (_peak_rss_kb() - before_kb) / 1024
    assert growth_mb < MAX_RSS_GROWTH_MB, f"peak RSS grew {growth_mb:.0f} MB in one poll"
    assert report.polled == 25 and not report.offline
    assert report.failed == len(FAILING)

    with runtime.sessions() as session:
        rows = {row.name: row for row in session.scalars(select(FeedRow))}
        items_of = {
            name: list(session.scalars(select(ItemRow).where(ItemRow.feed_id == row.id)))
            for name, row in rows.items()
        }
        alerts = session.scalars(select(AlertRow)).all()
        dup_sources = session.scalars(
            select(ItemSourceRow).where(ItemSourceRow.feed_id == rows["Duplicate GUIDs"].id)
        ).all()

    # Healthy feeds: stored, and each measure alerted to the team exactly once.
    for name, measure in HEALTHY.items():
        assert (rows[name].last_error_kind, rows[name].consecutive_failures) == (None, 0), name
        assert [i.title for i in items_of[name]] == [measure["title"]]
    team = sorted(a.payload["title"] for a in alerts if a.route == "team")
    assert team == sorted(m["title"] for m in HEALTHY.values())
    # 410: the admins told, once; tried again once a day; nobody else is blamed yet.
    admin = [(a.kind, a.payload.get("source")) for a in alerts if a.route == "admins"]
    assert admin == [("feed_gone", "Gone")]

    _check_failing(rows, items_of, now, feed_server.url("/real-feed.xml"))
    _check_surviving(rows, items_of, now)
    assert len(dup_sources) == 3  # one source row per story
    _check_status_lines(_status_lines(config, db_url))

    runtime.delivery.deliver_due()
    posts = webhook.wait_for(3)
    assert len(posts) == 3 and sum("Gone" in p["title"] for p in posts) == 1

    with runtime.sessions() as session:
        gone_next = session.scalars(select(FeedRow).where(FeedRow.name == "Gone")).one()
    assert timedelta(hours=21) <= gone_next.next_poll_at - now <= timedelta(hours=24)

    # The daemon keeps running: a second poll, past every backoff, still works.
    gone_hits = feed_server.hits("/gone.xml")
    clock.advance(timedelta(hours=25))
    second = poller.run_once()
    assert second.polled == 25 and second.new_items == 0 and not second.offline
    assert feed_server.hits("/gone.xml") == gone_hits + 1  # 410: still tried, once a day
    with runtime.sessions() as session:
        rows = {row.name: row for row in session.scalars(select(FeedRow))}
        team_again = session.scalars(select(AlertRow).where(AlertRow.route == "team")).all()
    for name in [*HEALTHY, *SURVIVING]:
        assert rows[name].last_error_kind is None and rows[name].consecutive_failures == 0
    for name, (_, kind, _) in FAILING.items():
        if name != "Gone":
            assert rows[name].last_error_kind == kind, (name, rows[name].last_error)
            assert rows[name].consecutive_failures == 2, name
    assert len(team_again) == 2  # no measure alerted twice
    runtime.close()


def test_timeouts_after_a_healthy_feed_answered_are_blamed_on_the_feeds(
    tmp_path: Path, db_url: str, feed_server: FeedServer, clock: FrozenClock
) -> None:
    """A feed that answered in this cycle proves the server is online: the slow feeds
    that time out afterwards must carry their own `timeout` error, not `offline`."""
    feed_server.serve("/et.xml", rss([ETHIOPIA]))
    feeds = [{"name": "Healthy ET", "url": feed_server.url("/et.xml")}]
    for n in range(3):
        feed_server.fault(f"/hang{n}.xml", "hang", max_s=30)
        feeds.append({"name": f"Hang {n}", "url": feed_server.url(f"/hang{n}.xml")})
    config = write_config(tmp_path / "feeds.yaml", feeds)
    runtime = make_runtime(config, db_url, clock)
    poller = runtime.poller
    poller.fetch_context.limits = dataclasses.replace(
        poller.fetch_context.limits, read_timeout_s=1, total_timeout_s=2
    )
    report = poller.run_once()
    with runtime.sessions() as session:
        kinds = {row.name: row.last_error_kind for row in session.scalars(select(FeedRow))}
    runtime.close()
    assert kinds["Healthy ET"] is None
    assert not report.offline
    assert [kinds[f"Hang {n}"] for n in range(3)] == ["timeout"] * 3
