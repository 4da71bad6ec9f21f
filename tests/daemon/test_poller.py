"""The poller's backpressure: a bounded number of feeds out at once, yet no idle workers."""

from __future__ import annotations

import logging
import time
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from monitor.cli.main import main
from monitor.clock import FrozenClock
from monitor.daemon.bootstrap import Runtime, Settings, build_runtime
from monitor.intake.hostgate import HostGate
from monitor.store import repo
from monitor.store.models import FeedRow, FetchLogRow
from tests.support.feedserver import FeedServer, rss
from tests.support.stack import write_config

FEEDS = 12


def _runtime(tmp_path: Path, db_url: str, feed_server: FeedServer, clock: FrozenClock) -> Runtime:
    feeds = []
    for index in range(FEEDS):
        item = {"title": f"Harvest festival {index}", "guid": f"g-{index}"}
        feed_server.serve(f"/f{index}.xml", rss([item]))
        feeds.append({"name": f"feed-{index}", "url": feed_server.url(f"/f{index}.xml")})
    settings = Settings(
        write_config(tmp_path / "feeds.yaml", feeds), db_url, workers=2, host_spacing_s=0.0,
        per_host=4,  # all on one host: the host limit must not be what holds feeds back here
    )  # fmt: skip
    runtime = build_runtime(settings, env={}, clock=clock)
    runtime.sync_feeds()
    return runtime


def test_a_tick_without_budget_hands_out_at_most_twice_the_workers(
    tmp_path: Path, db_url: str, feed_server: FeedServer, clock: FrozenClock
) -> None:
    runtime = _runtime(tmp_path, db_url, feed_server, clock)
    poller = runtime.poller
    assert poller.max_in_flight == 4
    first = poller.tick()
    assert first.polled == 0 and poller.in_flight() == FEEDS  # all twelve leased
    # The four handed out finish at once; nothing more starts until they are stored.
    deadline = time.monotonic() + 10
    while len(feed_server.requests) < poller.max_in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert len(feed_server.requests) == poller.max_in_flight
    second = poller.tick()
    assert second.polled == poller.max_in_flight
    runtime.poller.release()
    runtime.close()


def test_a_busy_tick_works_through_the_whole_due_list(
    tmp_path: Path, db_url: str, feed_server: FeedServer, clock: FrozenClock
) -> None:
    runtime = _runtime(tmp_path, db_url, feed_server, clock)
    report = runtime.poller.tick(busy_for=20.0)
    assert report.polled == FEEDS and report.new_items == FEEDS
    assert runtime.poller.in_flight() == 0
    runtime.close()


def test_a_busy_tick_returns_when_asked_to_stop(
    tmp_path: Path, db_url: str, feed_server: FeedServer, clock: FrozenClock
) -> None:
    runtime = _runtime(tmp_path, db_url, feed_server, clock)
    report = runtime.poller.tick(busy_for=20.0, stop=lambda: True)
    assert report.polled == 0 and runtime.poller.in_flight() == FEEDS
    runtime.poller.release()
    runtime.close()


def test_freed_heap_between_live_chunks_goes_back_to_the_system() -> None:
    """The daemon's trim job: memory freed in the middle of the heap (which glibc keeps, so
    a long-running daemon crept up poll after poll) is returned by release_free_memory."""
    import ctypes.util
    import subprocess
    import sys

    import pytest

    if not ctypes.util.find_library("c") or sys.platform != "linux":
        pytest.skip("malloc_trim is glibc's; this is not a glibc Linux")
    code = """
from pathlib import Path

import pytest
from monitor.daemon.bootstrap import release_free_memory, tune_malloc
def anon_mb():
    status = Path("/proc/self/status").read_text().splitlines()
    return int(next(l for l in status if l.startswith("RssAnon:")).split()[1]) / 1024
tune_malloc()
blocks = [bytearray(2000) for _ in range(40_000)]  # 80 MB in malloc chunks (not pymalloc)
keep = blocks[::64]  # one live chunk per 128 KB pins every page range
del blocks
before = anon_mb()
released = release_free_memory()
print(before, anon_mb(), released, len(keep))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    before, after, released, _ = out.stdout.split()
    assert released == "True"
    assert float(before) - float(after) > 40, out.stdout


def test_language_values_that_are_no_short_tag_still_store(
    tmp_path: Path, db_url: str, feed_server: FeedServer, clock: FrozenClock
) -> None:
    """Feeds write languages as words or long tags; the items column holds 8 characters,
    which PostgreSQL enforces: such a feed must store, not fail at every poll."""
    from sqlalchemy import select

    from monitor.store.models import ItemRow

    document = (
        b'<?xml version="1.0" encoding="utf-8"?>\n'
        b'<rss version="2.0"><channel><title>T</title><link>http://example.invalid/</link>'
        b"<language>Vietnamese</language>"
        b"<item><title>Festival opens</title><guid>w-1</guid></item>"
        b'<item><title xml:lang="zh-Hant-TW">Harbour news</title><guid>w-2</guid></item>'
        b'<item><title xml:lang="en_GB">Museum news</title><guid>w-3</guid></item>'
        b"</channel></rss>"
    )
    feed_server.serve("/lang.xml", document)
    settings = Settings(
        write_config(tmp_path / "feeds.yaml", [{"name": "L", "url": feed_server.url("/lang.xml")}]),
        db_url, workers=2, host_spacing_s=0.0,
    )  # fmt: skip
    runtime = build_runtime(settings, env={}, clock=clock)
    runtime.sync_feeds()
    report = runtime.poller.run_once()
    assert (report.polled, report.failed, report.new_items) == (1, 0, 3)
    with runtime.sessions() as session:
        languages = dict(session.execute(select(ItemRow.guid, ItemRow.language)).tuples().all())
    assert languages == {"w-1": None, "w-2": "zh-hant", "w-3": "en-gb"}
    runtime.close()


def test_a_304_keeps_the_malformed_verdict_of_the_document_it_stands_for(
    tmp_path: Path, db_url: str, feed_server: FeedServer, clock: FrozenClock
) -> None:
    from datetime import timedelta

    from sqlalchemy import select

    from monitor.store.models import FeedRow

    broken = rss([{"title": "Harbour opens", "guid": "h-1"}]).replace(
        b"</channel>", b"& </channel>"
    )
    feed_server.serve("/broken.xml", broken)
    feeds = [{"name": "B", "url": feed_server.url("/broken.xml")}]
    settings = Settings(
        write_config(tmp_path / "feeds.yaml", feeds), db_url, workers=2, host_spacing_s=0.0
    )
    runtime = build_runtime(settings, env={}, clock=clock)
    runtime.sync_feeds()
    verdicts = []
    for _ in range(2):
        runtime.poller.run_once()
        with runtime.sessions() as session:
            verdicts.append(session.scalars(select(FeedRow.malformed)).one())
        clock.advance(timedelta(hours=1))
    runtime.close()
    assert feed_server.requests[-1].headers.get("If-None-Match")  # the second poll was a 304
    assert verdicts[0] is not None and verdicts[1] == verdicts[0]


def test_feeds_of_a_busy_host_wait_in_the_poller_not_in_the_workers(
    tmp_path: Path, db_url: str, feed_server: FeedServer, clock: FrozenClock
) -> None:
    """Six slow feeds on one host, two workers per host: the other host's feeds get the
    remaining workers at once instead of queueing behind workers waiting for a slot."""
    with FeedServer() as other_host:
        feeds = []
        for n in range(6):
            feed_server.serve(f"/slow{n}.xml", rss([{"title": f"Slow {n}"}]), delay_s=1.0)
            feeds.append({"name": f"slow-{n}", "url": feed_server.url(f"/slow{n}.xml")})
        for n in range(2):
            other_host.serve(f"/fast{n}.xml", rss([{"title": f"Fast {n}"}]))
            feeds.append({"name": f"zz-fast-{n}", "url": other_host.url(f"/fast{n}.xml")})
        settings = Settings(
            write_config(tmp_path / "feeds.yaml", feeds), db_url, workers=4, per_host=2,
            host_spacing_s=0.0,
        )  # fmt: skip
        runtime = build_runtime(settings, env={}, clock=clock)
        runtime.sync_feeds()
        started = time.monotonic()
        runtime.poller.tick()
        deadline = started + 10
        while len(other_host.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        fast_done = time.monotonic() - started
        report = runtime.poller.tick(busy_for=15.0)
        runtime.close()
    assert fast_done < 0.8, f"the other host's feeds waited {fast_done:.1f} s"
    assert report.polled == 8  # and every feed was polled in the end


def test_a_feed_moved_for_good_is_named_in_its_poll_line_and_its_status(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from monitor.config.schema import load_config

    feed_server.serve("/new.xml", rss([{"title": "Harbour opens", "guid": "n-1"}]))
    feed_server.fault("/old.xml", "redirect", location="/new.xml?key=s3cr3t", status=301)
    feeds = [{"name": "Moved", "url": feed_server.url("/old.xml")}]
    config = write_config(tmp_path / "feeds.yaml", feeds)
    settings = Settings(config, db_url, workers=2, host_spacing_s=0.0)
    runtime = build_runtime(settings, env={}, clock=clock)
    runtime.sync_feeds()

    def status() -> str:
        command = ["--config", str(config), "--db", db_url, "feeds", "status"]
        result = CliRunner().invoke(main, command, env={})
        assert result.exit_code == 0, result.output
        return result.output

    with caplog.at_level(logging.INFO, logger="monitor.daemon.poller"):
        report = runtime.poller.run_once()
    assert report.new_items == 1
    [line] = [r.getMessage() for r in caplog.records if "poll feed=Moved" in r.getMessage()]
    assert f"moved_permanently={feed_server.url('/new.xml')}?…" in line
    shown = status()
    assert f"moved to {feed_server.url('/new.xml')}?… for good" in shown
    assert "s3cr3t" not in shown  # a token in the new address stays out of the output
    # The publisher stops redirecting: the note goes with the next poll.
    feed_server.serve("/old.xml", rss([{"title": "Harbour opens", "guid": "n-1"}]))
    runtime.poller.run_once()
    assert "moved to" not in status()
    # It redirects again, and the admins update the url: the note goes at once.
    feed_server.fault("/old.xml", "redirect", location="/new.xml", status=308)
    runtime.poller.run_once()
    assert "moved to" in status()
    write_config(config, [{"name": "Moved", "url": feed_server.url("/new.xml")}])
    runtime.apply_config(load_config(config, {}))  # as the daemon's reload does
    runtime.close()
    assert "moved to" not in status()


def test_a_429_holds_back_the_other_feeds_of_its_host_until_its_wait_is_over(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A news-search host that says 429 is not asked again by its other feeds in that cycle:
    they wait, unharmed (no failure, no broken-feed count), and are polled after the wait.
    Another host's feed is polled as usual."""
    feed_server.fault("/q1.xml", "status", status=429, headers={"Retry-After": "120"})
    for query in ("q2", "q3"):
        feed_server.serve(f"/{query}.xml", rss([{"title": f"Result {query}", "guid": query}]))
    feeds = [{"name": q, "url": feed_server.url(f"/{q}.xml")} for q in ("q1", "q2", "q3")]
    with FeedServer() as other_host:
        other_host.serve("/news.xml", rss([{"title": "Harvest festival", "guid": "h"}]))
        feeds.append({"name": "other", "url": other_host.url("/news.xml")})
        settings = Settings(
            write_config(tmp_path / "feeds.yaml", feeds), db_url, workers=4,
            host_spacing_s=0.0, per_host=1,  # one request per host at a time: q1 goes first
        )  # fmt: skip
        runtime = build_runtime(settings, env={}, clock=clock)
        runtime.sync_feeds()
        gate_clock = [1000.0]
        runtime.poller.fetch_context.gate = HostGate(1, 0.0, clock=lambda: gate_clock[0])
        now = clock.now()

        with caplog.at_level(logging.INFO, logger="monitor.daemon.poller"):
            first = runtime.poller.run_once()

        assert (first.polled, first.failed, first.held_back, first.new_items) == (2, 1, 2, 1)
        assert [feed_server.hits(f"/{q}.xml") for q in ("q1", "q2", "q3")] == [1, 0, 0]
        assert other_host.hits("/news.xml") == 1
        with runtime.sessions() as session:
            rows = {row.name: row for row in session.scalars(select(FeedRow))}
            logged = {
                rows_by_id: outcome
                for rows_by_id, outcome in session.execute(
                    select(FetchLogRow.feed_id, FetchLogRow.outcome)
                )
            }
        assert rows["q1"].last_error_kind == "rate_limited"
        for name in ("q2", "q3"):
            row = rows[name]
            assert (row.consecutive_failures, row.last_error_kind) == (0, None), name
            assert row.last_polled_at is None, name  # never asked, so never polled
            assert row.lease_until is None, name  # free for the next cycle
            wait = row.next_poll_at.replace(tzinfo=UTC) - now
            assert timedelta(seconds=120) <= wait <= timedelta(seconds=132), name
            assert logged[row.id] == "held_back", name
            [line] = [r.getMessage() for r in caplog.records if f"feed={name} " in r.getMessage()]
            assert "status=held_back" in line and "asked for a wait" in line, line

        command = ["--config", str(settings.config_path), "--db", db_url, "feeds", "status"]
        shown = CliRunner().invoke(main, command, env={}).output.splitlines()
        assert [line[:2] for line in shown if "held (429)" in line] == ["q2", "q3"]

        gate_clock[0] += 121  # the host's wait is over, and it answers again
        clock.advance(timedelta(seconds=121))
        feed_server.serve("/q1.xml", rss([{"title": "Result q1", "guid": "q1"}]))
        second = runtime.poller.run_once()
        assert [feed_server.hits(f"/{q}.xml") for q in ("q1", "q2", "q3")] == [2, 1, 1]
        assert (second.failed, second.new_items) == (0, 3)
        shown = CliRunner().invoke(main, command, env={}).output
        assert "held (429)" not in shown
        runtime.close()


def test_a_429_after_a_redirect_holds_the_host_that_said_it(
    tmp_path: Path, db_url: str, feed_server: FeedServer, clock: FrozenClock
) -> None:
    """A feed that moved to a throttling host: that host is held, not the feed's own."""
    with FeedServer() as throttling:
        throttling.fault("/q.xml", "status", status=429, headers={"Retry-After": "600"})
        throttling.serve("/other-q.xml", rss([{"title": "Result", "guid": "r"}]))
        feed_server.fault("/moved.xml", "redirect", location=throttling.url("/q.xml"))
        feed_server.serve("/local.xml", rss([{"title": "Local news", "guid": "l"}]))
        feeds = [
            {"name": "a-moved", "url": feed_server.url("/moved.xml")},
            {"name": "b-local", "url": feed_server.url("/local.xml")},
            {"name": "c-other-query", "url": throttling.url("/other-q.xml")},
        ]
        settings = Settings(
            write_config(tmp_path / "feeds.yaml", feeds), db_url, workers=1,
            host_spacing_s=0.0, per_host=1,  # one worker: the feeds go in order
        )  # fmt: skip
        runtime = build_runtime(settings, env={}, clock=clock)
        runtime.sync_feeds()
        report = runtime.poller.run_once()
        runtime.close()
    assert (report.failed, report.held_back) == (1, 1)
    assert feed_server.hits("/local.xml") == 1  # the redirecting host was not held
    assert throttling.hits("/other-q.xml") == 0  # the host that said 429 was


def test_fixed_chunks_repeat_the_last_id_to_a_few_lengths() -> None:
    from monitor.store.repo import fixed_chunks

    assert fixed_chunks([], 4) == []
    assert fixed_chunks([7], 4) == [[7]]
    assert fixed_chunks([1, 2, 3], 4) == [[1, 2, 3, 3]]
    assert fixed_chunks([1, 2, 3, 4, 5], 4) == [[1, 2, 3, 4], [5, 5, 5, 5]]
    assert {len(fixed_chunks(list(range(n)), 500)[-1]) for n in range(1, 2000)} == {
        1, 2, 4, 8, 16, 32, 64, 128, 256, 500,
    }  # fmt: skip


def test_leases_are_renewed_and_released_in_chunks_of_one_length(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every leased feed, in flight or waiting, is renewed and then given back, whatever the
    chunking (the statement per chunk keeps one length, so SQLite caches one)."""
    import monitor.daemon.poller as poller_module

    monkeypatch.setattr(poller_module, "LEASE_CHUNK", 5)
    runtime = _runtime(tmp_path, db_url, feed_server, clock)
    poller = runtime.poller
    poller.tick()
    assert poller.in_flight() == FEEDS
    clock.advance(timedelta(seconds=20))
    poller._extend_leases()
    with runtime.sessions() as session:
        leases = {row.lease_until for row in session.scalars(select(FeedRow))}
    # SQLite gives naive UTC back, PostgreSQL an aware time.
    assert {lease.replace(tzinfo=lease.tzinfo or UTC) for lease in leases if lease} == {
        clock.now() + poller.lease
    } and None not in leases
    poller.release()
    with runtime.sessions() as session:
        assert {row.lease_until for row in session.scalars(select(FeedRow))} == {None}
    runtime.close()


def test_a_replica_stores_renews_and_releases_only_under_the_leases_it_holds(
    tmp_path: Path, db_url: str, feed_server: FeedServer, clock: FrozenClock
) -> None:
    """A replica that stalled past its leases finds them taken by another: storing its polls,
    its heartbeat and its release leave the other's leases alone, and `feeds status` names
    who polls a feed."""
    runtime = _runtime(tmp_path, db_url, feed_server, clock)
    poller = runtime.poller
    poller.holder = "replica-a:1:0"
    poller.tick()  # leases all twelve, hands four to workers
    assert poller.in_flight() == FEEDS
    with runtime.sessions() as session:
        assert {row.lease_holder for row in session.scalars(select(FeedRow))} == {"replica-a:1:0"}
    # Replica A stalls past its lease; replica B claims the feeds.
    clock.advance(poller.lease + timedelta(seconds=1))
    with runtime.sessions.begin() as session:
        # A long lease: `feeds status` compares it with the real time, not the frozen clock.
        long = timedelta(days=36500)
        claimed = repo.claim_due_feeds(session, clock.now(), long, 100, holder="b:2")
        taken = {row.id: row.lease_until for row in claimed}
    assert len(taken) == FEEDS
    report = poller.tick(busy_for=20.0)  # A finishes and stores the polls it had leased
    assert report.polled == FEEDS and poller.in_flight() == 0
    clock.advance(timedelta(seconds=20))
    poller._leases_renewed = None
    poller._extend_leases()
    poller.release()
    with runtime.sessions() as session:
        rows = list(session.scalars(select(FeedRow)))
        assert {row.lease_holder for row in rows} == {"b:2"}
        assert {row.id: row.lease_until for row in rows} == taken  # neither renewed nor freed
    config = runtime.settings.config_path
    result = CliRunner().invoke(
        main, ["--config", str(config), "--db", db_url, "feeds", "status"], env={}
    )
    assert result.exit_code == 0, result.output
    runtime.close()
    assert result.output.count("being polled by b:2") == FEEDS


def test_a_large_body_without_room_is_asked_again_soon_and_not_held_against_the_feed(
    tmp_path: Path, db_url: str, feed_server: FeedServer, clock: FrozenClock
) -> None:
    """A feed refused for want of a large-body slot is neither failing nor offline: it keeps
    no failure and is asked again about a minute later."""
    from monitor.daemon.pipeline import FeedJob, FeedOutcome
    from monitor.intake.fetch import NO_ROOM, NO_ROOM_RETRY_S

    runtime = _runtime(tmp_path, db_url, feed_server, clock)
    with runtime.sessions() as session:
        row = session.scalars(select(FeedRow).where(FeedRow.name == "feed-0")).one()
        job = FeedJob.from_row(row)
    outcome = FeedOutcome(
        job, clock.now(), 5, error_kind=NO_ROOM, error="no room", retry_after_s=NO_ROOM_RETRY_S
    )
    assert outcome.held_back and not outcome.failed and not outcome.network_failure
    writer = runtime.poller.writer()
    with runtime.sessions.begin() as session:
        writer.begin()
        writer.store(session, outcome, clock.now())
        writer.finish(session)
    with runtime.sessions() as session:
        row = session.scalars(select(FeedRow).where(FeedRow.name == "feed-0")).one()
        assert row.consecutive_failures == 0 and row.last_error_kind is None
        wait = row.next_poll_at.replace(tzinfo=UTC) - clock.now()
        assert timedelta(seconds=NO_ROOM_RETRY_S) <= wait <= timedelta(seconds=2 * NO_ROOM_RETRY_S)
    runtime.close()
