"""The silence signal with real parts: the feed server refusing one country's feeds while the
others answer, the real poller and database (SQLite file, then PostgreSQL), the outbox, the
real delivery to a webhook receiver."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from monitor.clock import FrozenClock
from monitor.daemon.bootstrap import Runtime
from monitor.signals.silence_store import item_baselines
from monitor.store.models import AlertRow, SilenceSignalRow
from tests.support.feedserver import FeedServer, rss
from tests.support.receivers import WebhookReceiver
from tests.support.stack import make_runtime, write_config

COUNTRIES = {"MM": 4, "TH": 3, "LA": 3}
POLL = timedelta(minutes=15)


def _path(country: str, n: int) -> str:
    return f"/{country.lower()}/{n}.xml"


def _item(country: str, n: int, at: datetime, k: int = 0) -> dict[str, str]:
    return {
        "title": f"Weather report {k} for region {n} of {country}",
        "link": f"https://news.example.org/{country}/{n}/{k}",
        "guid": f"{country}-{n}-{k}",
        "description": "Mild temperatures and light rain are expected over the weekend.",
        "pubDate": at.strftime("%a, %d %b %Y %H:%M:%S +0000"),
    }


def _serve_all(server: FeedServer, clock: FrozenClock, country: str | None = None) -> None:
    for code, count in COUNTRIES.items():
        if country is None or code == country:
            for n in range(count):
                server.serve(_path(code, n), rss([_item(code, n, clock.now())]))


def _stack(
    tmp_path: Path,
    db_url: str,
    server: FeedServer,
    hooks: dict[str, WebhookReceiver],
    clock: FrozenClock,
    silence: str = "",
) -> Runtime:
    feeds = [
        {
            "name": f"{code} {n}",
            "url": server.url(_path(code, n)),
            "country": code,
            "interval": "15m",
        }
        for code, count in COUNTRIES.items()
        for n in range(count)
    ]
    routes: list[dict[str, object]] = [
        {"name": "signals", "url": "${SIGNALS}", "kinds": "[signal]"},
        # Watches Thailand only: Myanmar's signal is not its business.
        {"name": "thailand", "url": "${THAILAND}", "kinds": "[signal]", "countries": "[TH]"},
        {"name": "measures", "url": "${MEASURES}"},  # default kinds: new, update
    ]
    config = write_config(tmp_path / "feeds.yaml", feeds, routes)
    with config.open("a", encoding="utf-8") as out:
        out.write(f"silence:\n  open_after: 10m\n  close_after: 10m\n{silence}")
    env = {name.upper(): hook.apprise_url() for name, hook in hooks.items()}
    return make_runtime(config, db_url, clock, env)


def _cycle(runtime: Runtime, clock: FrozenClock) -> None:
    clock.advance(POLL)
    runtime.poller.run_once()
    runtime.watch_silence()
    runtime.delivery.deliver_due()


def _hooks() -> dict[str, WebhookReceiver]:
    return {name: WebhookReceiver(f"/{name}") for name in ("signals", "thailand", "measures")}


class _Stack:
    def __init__(self, tmp_path: Path, db_url: str, server: FeedServer, clock: FrozenClock):
        self.hooks = _hooks()
        for hook in self.hooks.values():
            hook.start()
        _serve_all(server, clock)
        self.runtime = _stack(tmp_path, db_url, server, self.hooks, clock)
        self.runtime.poller.run_once()
        self.runtime.watch_silence()

    def close(self) -> None:
        self.runtime.close()
        for hook in self.hooks.values():
            hook.stop()


def test_a_country_going_dark_raises_one_signal_and_one_recovery(
    tmp_path: Path, db_url: str, feed_server: FeedServer, clock: FrozenClock
) -> None:
    stack = _Stack(tmp_path, db_url, feed_server, clock)
    runtime, hook = stack.runtime, stack.hooks["signals"]
    went_dark = clock.now()
    for n in range(COUNTRIES["MM"]):
        feed_server.fault(_path("MM", n), "reset")
    for _ in range(6):
        _cycle(runtime, clock)
    assert len(hook.posts) == 1
    title = hook.posts[0]["title"]
    assert title.startswith("Possible shutdown: Myanmar (MM) — 4 of 4 sources silent since ")
    assert f"since {went_dark:%H:%M} UTC" in title
    assert "other countries' sources answer normally" in title
    assert "MM 0: not answering" in hook.posts[0]["message"]
    with runtime.sessions() as session:
        row = session.scalars(select(SilenceSignalRow)).one()
        assert row.country == "MM" and row.closed_at is None and row.silent_since == went_dark

    _serve_all(feed_server, clock, "MM")
    _cycle(runtime, clock)  # back, but not yet for close_after
    assert len(hook.posts) == 1
    for _ in range(3):
        _cycle(runtime, clock)
    assert len(hook.posts) == 2
    assert hook.posts[1]["title"] == "Myanmar (MM): sources back (4 of 4 answering) after 2 h"
    assert stack.hooks["thailand"].posts == [] and stack.hooks["measures"].posts == []
    with runtime.sessions() as session:
        row = session.scalars(select(SilenceSignalRow)).one()
        assert row.closed_at == clock.now() - 2 * POLL
        keys = sorted(session.scalars(select(AlertRow.dedup_key)))
        assert keys == [f"signal:silence:{row.id}:close", f"signal:silence:{row.id}:open"]
    stack.close()


def test_one_dead_feed_alone_raises_nothing(
    tmp_path: Path, db_url: str, feed_server: FeedServer, clock: FrozenClock
) -> None:
    stack = _Stack(tmp_path, db_url, feed_server, clock)
    feed_server.fault(_path("MM", 0), "status", status=503)
    for _ in range(8):
        _cycle(stack.runtime, clock)
    assert stack.hooks["signals"].posts == []
    with stack.runtime.sessions() as session:
        assert session.scalars(select(SilenceSignalRow)).all() == []
    stack.close()


def test_every_feed_failing_at_once_is_our_outage_not_a_shutdown(
    tmp_path: Path, db_url: str, feed_server: FeedServer, clock: FrozenClock
) -> None:
    stack = _Stack(tmp_path, db_url, feed_server, clock)
    for code, count in COUNTRIES.items():
        for n in range(count):
            feed_server.fault(_path(code, n), "reset")
    for _ in range(8):
        _cycle(stack.runtime, clock)
    # And every server answering with errors (a broken proxy of ours) is no better.
    for code, count in COUNTRIES.items():
        for n in range(count):
            feed_server.fault(_path(code, n), "status", status=502)
    for _ in range(8):
        _cycle(stack.runtime, clock)
    assert stack.hooks["signals"].posts == []
    stack.close()


def test_sources_that_stop_publishing_count_by_their_own_rhythm(
    tmp_path: Path, db_url: str, feed_server: FeedServer, clock: FrozenClock
) -> None:
    """Myanmar's feeds answer but stop carrying news. Hourly publishers quiet for two hours
    are silent; had they published weekly, three quiet days would be nothing."""
    _serve_all(feed_server, clock)
    start = clock.now()
    for n in range(COUNTRIES["MM"]):
        hourly = [_item("MM", n, start - timedelta(hours=k), k) for k in range(12)]
        feed_server.serve(_path("MM", n), rss(hourly))
    hooks = _hooks()
    for hook in hooks.values():
        hook.start()
    runtime = _stack(tmp_path, db_url, feed_server, hooks, clock)
    runtime.poller.run_once()
    runtime.watch_silence()
    with runtime.sessions() as session:
        rhythm = item_baselines(session, start - timedelta(days=28), start)
    hourly_ids = [fid for fid, base in rhythm.items() if base.items == 12]
    assert len(hourly_ids) == 4
    assert {rhythm[fid].longest_gap for fid in hourly_ids} == {timedelta(hours=1)}
    for _ in range(8):  # two hours of 304s
        _cycle(runtime, clock)
    posts = hooks["signals"].posts
    assert len(posts) == 1 and "MM 0: no new items since" in posts[0]["message"]
    runtime.close()
    for hook in hooks.values():
        hook.stop()


def test_weekly_publishers_quiet_for_three_days_are_not_silent(
    tmp_path: Path, db_url: str, feed_server: FeedServer, clock: FrozenClock
) -> None:
    _serve_all(feed_server, clock)
    start = clock.now()
    for n in range(COUNTRIES["MM"]):
        weekly = [_item("MM", n, start - timedelta(days=7 * k), k) for k in range(8)]
        feed_server.serve(_path("MM", n), rss(weekly))
    hooks = _hooks()
    for hook in hooks.values():
        hook.start()
    runtime = _stack(tmp_path, db_url, feed_server, hooks, clock, "  baseline: 60d\n")
    runtime.poller.run_once()
    with runtime.sessions() as session:
        rhythm = item_baselines(session, start - timedelta(days=60), start)
    weekly_ids = [fid for fid, base in rhythm.items() if base.items == 8]
    assert {rhythm[fid].longest_gap for fid in weekly_ids} == {timedelta(days=7)}
    assert len(weekly_ids) == 4
    for _ in range(3 * 24):  # three days, polled hourly
        clock.advance(timedelta(hours=1))
        runtime.poller.run_once()
        runtime.watch_silence()
    runtime.delivery.deliver_due()
    assert hooks["signals"].posts == []
    runtime.close()
    for hook in hooks.values():
        hook.stop()
