"""Three `monitor run` replicas on one real PostgreSQL database, polling a real feed server
and alerting a real webhook: each feed polled once per interval, each alert sent once, and
a replica killed with -9 mid-poll whose feeds the others take over within the lease time."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitor.store.models import EventRow, ItemRow
from tests.support.faults import (
    MEASURES,
    AckWebhookReceiver,
    DaemonProcess,
    by_measure,
    daemon_env,
    daemons,
    db_session,
    measure_item,
    pid_of_local_port,
    unrelated_item,
    wait_until,
)
from tests.support.feedserver import FeedServer, RecordedRequest, rss
from tests.support.pg import PostgresServer
from tests.support.stack import write_config

FEEDS = 20
INTERVAL_S = 60  # the shortest interval the config allows
JITTER = 0.1  # monitor/daemon/schedule.py: the next poll is the interval ± 10 %
LEASE_S = 45  # monitor/daemon/poller.py: a feed's lease
SLOW_S = 12.0  # how long the slow feeds take to answer in the second round
TOLERANCE_S = 3.0  # ticks are 1 s; a shared CI machine adds its own delays
SLOW = range(4, 10)  # feeds slow to answer in the second round, the kill's victims
FIRST_MEASURES = range(4)  # reported in the first round, each by two feeds
LATER_MEASURES = range(4, 8)  # reported in the second round, by slow feeds


def _path(feed: int) -> str:
    return f"/f{feed}.xml"


def _first_round(feed: int) -> list[dict[str, str]]:
    items = [unrelated_item(feed)]
    # Feeds 0-3 and 10-13 report the same four measures: replicas storing them at the same
    # moment must still make one item, one event and one alert of each.
    if feed % 10 in FIRST_MEASURES:
        items.append(measure_item(feed % 10))
    return items


def _second_round(feed: int) -> list[dict[str, str]]:
    items = [unrelated_item(100 + feed), *_first_round(feed)]
    if feed in LATER_MEASURES:
        items.append(measure_item(feed))
    return items


@pytest.fixture
def ack_webhook() -> AckWebhookReceiver:
    receiver = AckWebhookReceiver()
    receiver.start()
    yield receiver  # type: ignore[misc]
    receiver.stop()


def _requests_per_feed(server: FeedServer) -> dict[int, list[RecordedRequest]]:
    per_feed: dict[int, list[RecordedRequest]] = defaultdict(list)
    for request in server.requests:
        name = request.path.split("?", 1)[0]
        if name.startswith("/f") and name.endswith(".xml"):
            per_feed[int(name[2:-4])].append(request)
    return per_feed


def _stored_items(db_url: str) -> int:
    with db_session(db_url) as session:
        return int(session.scalar(select(func.count(ItemRow.id))) or 0)


def _in_flight_slow(server: FeedServer, since: float) -> list[RecordedRequest]:
    """Slow feeds' requests that arrived since `since` and are still being answered."""
    now = time.monotonic()
    return [
        r
        for feed in SLOW
        for r in _requests_per_feed(server).get(feed, [])
        if r.time >= since and now - r.time < SLOW_S - 4
    ]


@pytest.mark.postgres
def test_replicas_poll_each_feed_once_per_interval_alert_once_and_take_over_a_dead_ones_feeds(
    tmp_path: Path,
    postgres_server: PostgresServer,
    feed_server: FeedServer,
    ack_webhook: AckWebhookReceiver,
) -> None:
    db_url = postgres_server.create_database()  # empty: the replicas migrate it together
    for feed in range(FEEDS):
        feed_server.serve(_path(feed), rss(_first_round(feed)))
    feeds = [
        {"name": f"Feed {feed}", "url": feed_server.url(_path(feed)), "interval": f"{INTERVAL_S}s"}
        for feed in range(FEEDS)
    ]
    routes: list[dict[str, object]] = [{"name": "hook", "url": "${HOOK}", "min_score": 0.5}]
    config = write_config(tmp_path / "feeds.yaml", feeds, routes)
    env = daemon_env({"HOOK": ack_webhook.url_for("/hook")})
    with daemons() as replicas:
        for n in range(3):
            replicas.append(DaemonProcess(config, db_url, tmp_path / f"replica{n}.log", env))
        for replica in replicas:
            wait_until(lambda r=replica: "monitor running" in r.log(), 60, "the start", replica)

        # First round: every feed polled, the four measures alerted once each.
        wait_until(lambda: len(_requests_per_feed(feed_server)) == FEEDS, 30, "every feed polled")
        wait_until(lambda: len(ack_webhook.acknowledged()) == len(FIRST_MEASURES), 30, "alerts")
        round_two = time.monotonic()
        for feed in range(FEEDS):
            delay = SLOW_S if feed in SLOW else 0.0
            feed_server.serve(_path(feed), rss(_second_round(feed)), delay_s=delay)

        # Second round: kill the replica that holds the most slow polls in flight.
        wait_until(
            lambda: len(_in_flight_slow(feed_server, round_two)) >= 3,
            INTERVAL_S * (1 + JITTER) + 15,
            "slow polls in flight",
        )
        pids = [replica.process.pid for replica in replicas]
        holders = Counter(
            pid_of_local_port(r.client_port, pids) for r in _in_flight_slow(feed_server, round_two)
        )
        holders.pop(None, None)
        assert holders, "no replica found holding a slow poll"
        victim_pid = holders.most_common(1)[0][0]
        victim = next(r for r in replicas if r.process.pid == victim_pid)
        orphaned = {
            int(r.path[2:-4])
            for r in _in_flight_slow(feed_server, round_two)
            if pid_of_local_port(r.client_port, pids) == victim_pid
        }
        victim.kill9()
        killed_at = time.monotonic()
        survivors = [r for r in replicas if r is not victim]

        # The dead replica's feeds come back once their leases run out, and their new
        # measures are alerted once.
        def taken_over() -> bool:
            per_feed = _requests_per_feed(feed_server)
            return all(per_feed[feed][-1].time > killed_at for feed in orphaned)

        wait_until(taken_over, LEASE_S + 20, "the dead replica's feeds polled again")
        wait_until(
            lambda: len(ack_webhook.acknowledged()) == len(FIRST_MEASURES) + len(LATER_MEASURES),
            SLOW_S + 30,
            "the second round's alerts",
            survivors[0],
        )
        # A feed the dead replica had polled but not recorded is asked again once its lease
        # runs out, which may be after the alerts: every story must be stored before the stop.
        expected_items = 2 * FEEDS + len(FIRST_MEASURES) + len(LATER_MEASURES)
        wait_until(
            lambda: _stored_items(db_url) == expected_items,
            LEASE_S + 30,
            "every story stored",
            survivors[0],
        )
        time.sleep(3)  # time for a duplicate, if any, to arrive
        for replica in survivors:
            assert replica.alive, replica.log()[-3000:]
            assert replica.terminate() == 0, replica.log()[-3000:]

    per_feed = _requests_per_feed(feed_server)
    assert orphaned, "the killed replica held no poll"
    for feed, requests in per_feed.items():
        times = [r.time for r in requests]
        for before, after in zip(times, times[1:], strict=False):
            gap = after - before
            early = gap < INTERVAL_S * (1 - JITTER) - TOLERANCE_S
            if before < killed_at < after and (feed in orphaned or early):
                # The dead replica's poll never finished (in flight at the kill, or answered
                # but not yet recorded): asked again once its lease ran out (45 s from the
                # claim, renewed until the kill): not sooner, nor an interval on.
                assert gap >= LEASE_S - TOLERANCE_S, (feed, gap)
                assert after - killed_at <= LEASE_S + TOLERANCE_S + 2, (feed, after - killed_at)
                continue
            assert gap >= INTERVAL_S * (1 - JITTER) - TOLERANCE_S, (feed, gap)
            answered = SLOW_S if feed in SLOW and before >= round_two else 0.0
            assert gap <= answered + INTERVAL_S * (1 + JITTER) + TOLERANCE_S, (feed, gap)

    # Each (route, event, kind) arrived once, and each measure is one item and one event.
    expected = {("/hook", MEASURES[m][0]): 1 for m in [*FIRST_MEASURES, *LATER_MEASURES]}
    assert dict(by_measure(ack_webhook.acknowledged())) == expected
    assert dict(by_measure(ack_webhook.received())) == expected
    with db_session(db_url) as session:
        items = Counter(session.scalars(select(ItemRow.guid)))
        events = session.scalar(select(func.count(EventRow.id)))
    assert all(count == 1 for count in items.values()), items
    # Two unrelated stories per feed (one each round) and the eight measures.
    assert len(items) == expected_items
    assert events == len(FIRST_MEASURES) + len(LATER_MEASURES)
