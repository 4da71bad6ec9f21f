"""Replicas: N `monitor run` processes on one throwaway PostgreSQL server and the feed farm.

The farm (10,000 feeds on loopback hosts by default, 5% faulty) gains stories every third of
an interval; one replica is killed with -9 midway. Printed: requests per feed per interval
(the farm's request log: gaps between one feed's requests, and polls closer than the
interval allows), CPU per replica (its process and parser children, /proc), database
connections (pg_stat_activity), items lost or duplicated (the farm's served GUIDs against the
database), alerts sent per (route, event, kind) against the webhook's posts, and whether the
killed replica's leases were all taken over within the lease time.

    python bench/bench_replicas.py                        # 10,000 feeds, 15 min, ~32 min
    python bench/bench_replicas.py --feeds 500 --interval 60 --seconds 180   # quick look
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_events_db import start_postgres  # noqa: E402
from bench_poll import children  # noqa: E402
from feedfarm import FarmSpec, FeedFarm, feed_url  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from monitor.store.db import make_engine, upgrade  # noqa: E402
from monitor.store.models import AlertRow, FeedRow, ItemRow, ItemSourceRow  # noqa: E402

JITTER = 0.1  # monitor/daemon/schedule.py
LEASE_S = 45  # monitor/daemon/poller.py


def write_config(path: Path, urls: list[str], interval_s: int, hook: str) -> None:
    lines = ["feeds:"]
    for index, url in enumerate(urls):
        lines += [f"  - name: farm-{index:05d}", f"    url: {url}", f"    interval: {interval_s}s"]
    lines += ["alerts:", "  - name: hook", f"    url: {hook}", "    min_score: 0.5"]
    lines += ["corroboration:", "  enabled: false"]  # its services are outside hosts
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def cpu_s(pid: int) -> float:
    """User + system CPU of a process and its live children (the parser), from /proc."""
    total = 0.0
    for one in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=10_000)
    parser.add_argument("--interval", type=int, default=900, help="seconds (the issue: 15 min)")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--seconds", type=float, help="run time (default: 2 intervals + 2 min)")
    parser.add_argument("--faulty", type=float, default=0.05)
    args = parser.parse_args()
    seconds = args.seconds or 2 * args.interval + 120
    server, db_url = start_postgres()
    if server is None:
        print(f"skipped: {db_url}")
        return
    spec = FarmSpec(feeds=args.feeds, items=10, latency_s=0.05, faulty_share=args.faulty)
    try:
        with FeedFarm(spec) as farm, tempfile.TemporaryDirectory(prefix="bench-rep-") as tmp:
            upgrade(db_url)
            config = Path(tmp) / "feeds.yaml"
            urls = [feed_url(spec, farm.port, i) for i in range(spec.feeds)]
            write_config(config, urls, args.interval, farm.webhook_apprise_url)
            report = run(args, seconds, farm, spec, config, db_url, Path(tmp))
        print(report)
    finally:
        server.destroy()


def run(
    args: argparse.Namespace,
    seconds: float,
    farm: FeedFarm,
    spec: FarmSpec,
    config: Path,
    db_url: str,
    tmp: Path,
) -> str:
    env = dict(
        os.environ,
        MONITOR_HOST_SPACING="0",
        MONITOR_PER_HOST="4",
        MONITOR_LISTEN="127.0.0.1:0",
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )
    command = [sys.executable, "-m", "monitor", "--config", str(config), "--db", db_url, "run"]
    logs = [open(tmp / f"replica{n}.log", "w") for n in range(args.replicas)]  # noqa: SIM115
    replicas = [subprocess.Popen(command, env=env, stdout=log, stderr=log) for log in logs]
    engine = make_engine(db_url)
    started = time.time()
    kill_at, killed_at = started + seconds / 2, None
    cpu_at_kill = 0.0
    connections = 0
    cycle, next_advance = 0, started + args.interval / 3
    stale_after_lease: int | None = None
    try:
        while time.time() - started < seconds:
            now = time.time()
            with engine.connect() as conn:
                count = conn.scalar(
                    text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
                )
                connections = max(connections, int(count or 0))
                if stale_after_lease is None and killed_at and now > killed_at + LEASE_S + 10:
                    # Leases that ran out 10 s ago and were not taken over by now.
                    stale_after_lease = int(
                        conn.scalar(
                            text(
                                "SELECT count(*) FROM feeds WHERE lease_until IS NOT NULL "
                                "AND lease_until < now() - interval '10 seconds'"
                            )
                        )
                        or 0
                    )
            if now >= next_advance:
                cycle += 1
                farm.advance(cycle)
                next_advance += args.interval / 3
            if killed_at is None and now >= kill_at:
                cpu_at_kill = cpu_s(replicas[0].pid)
                replicas[0].send_signal(signal.SIGKILL)
                replicas[0].wait(timeout=10)
                killed_at = time.time()
            time.sleep(2)
        ended = time.time()
        cpu = [cpu_at_kill] + [cpu_s(r.pid) for r in replicas[1:]]
        for replica in replicas[1:]:
            replica.send_signal(signal.SIGTERM)
        codes = [replica.wait(timeout=60) for replica in replicas[1:]]
    finally:
        for replica in replicas:
            if replica.poll() is None:
                replica.kill()
        for log in logs:
            log.close()
    assert killed_at is not None
    return summary(
        args, spec, farm, engine, started, killed_at, ended, cpu, connections, codes,
        stale_after_lease,
    )  # fmt: skip


def summary(
    args: argparse.Namespace,
    spec: FarmSpec,
    farm: FeedFarm,
    engine: object,
    started: float,
    killed_at: float,
    ended: float,
    cpu: list[float],
    connections: int,
    codes: list[int],
    stale_after_lease: int | None,
) -> str:
    from sqlalchemy import Engine

    assert isinstance(engine, Engine)
    interval = args.interval
    faulty = spec.faults()
    times = farm.request_times()
    healthy = [i for i in range(spec.feeds) if i not in faulty]
    gaps = [
        b - a for i in healthy for a, b in zip(times.get(i, []), times.get(i, [])[1:], strict=False)
    ]
    close = sum(gap < interval * (1 - JITTER) - 3 for gap in gaps)  # polled twice too soon
    late = sum(gap > interval * (1 + JITTER) + LEASE_S + 5 for gap in gaps)
    # Whole intervals each feed's log covers, from its first request to the end.
    spans = [(ended - times[i][0]) / interval for i in healthy if times.get(i)]
    counts = [len(times[i]) for i in healthy if times.get(i)]
    # A feed first asked at t0 is due again every interval: floor(span) + 1 requests by the
    # end (the first poll counts); 1.000 means each due feed was polled once per interval.
    per_interval = sum(counts) / max(sum(math.floor(s) + 1 for s in spans), 1)
    unpolled = sum(1 for i in healthy if not times.get(i))
    served = farm.served()
    posts = farm.posts()
    with engine.connect() as conn:
        stored = Counter(
            (feed, guid)
            for feed, guid in conn.execute(
                select(FeedRow.name, ItemSourceRow.guid).join(
                    FeedRow, FeedRow.id == ItemSourceRow.feed_id
                )
            )
        )
        # A GUID names a story within its feed: the same GUID from two feeds is two stories
        # (the oversize feeds' tiny "x" entries all get one content-hash GUID), so a story
        # stored twice is a (feed, GUID) with two items.
        doubled = conn.execute(
            select(ItemRow.feed_id, ItemRow.guid, func.count())
            .group_by(ItemRow.feed_id, ItemRow.guid)
            .having(func.count() > 1)
        ).all()
        item_dupes = len(doubled)
        alerts = Counter(
            (route, event, kind, status)
            for route, event, kind, status in conn.execute(
                select(AlertRow.route, AlertRow.event_id, AlertRow.kind, AlertRow.status)
            )
        )
    lost_keys = [
        (feed, guid)
        for feed, guids in served.items()
        for guid in guids
        if (f"farm-{feed:05d}", guid) not in stored
    ]
    lost = len(lost_keys)
    served_keys = {(f"farm-{feed:05d}", guid) for feed, guids in served.items() for guid in guids}
    unexpected = Counter(
        faulty.get(int(feed[5:]), "healthy")
        for feed, guid in stored
        if (feed, guid) not in served_keys
    )
    sent = Counter((r, e, k) for (r, e, k, s), n in alerts.items() if s == "sent" for _ in range(n))
    kinds = Counter(k for (_, _, k) in sent)
    most = max(sent.values(), default=0)
    busy = [c / (ended - started if n else killed_at - started) for n, c in enumerate(cpu)]
    lines = [
        f"{args.replicas} replicas on one PostgreSQL, {spec.feeds} feeds ({len(faulty)} faulty) at "
        f"{interval} s, {ended - started:.0f} s run; replica 0 kill -9'd at "
        f"{killed_at - started:.0f} s (a 2-core machine shared with other work)",
        f"  requests per healthy feed per interval: {per_interval:.3f} "
        f"({sum(counts)} requests, {unpolled} healthy feeds never polled)",
        f"  gaps between one feed's requests: {len(gaps)}; closer than the interval - 10 %: "
        f"{close}; longer than interval + 10 % + lease: {late}",
        f"  killed replica's leases not taken over {LEASE_S + 10} s after the kill: "
        f"{stale_after_lease}",
        "  CPU per replica (share of one core): "
        + ", ".join(f"r{n} {b:.1%}" for n, b in enumerate(busy))
        + f"; survivors' exit codes {codes}",
        f"  database connections (pg_stat_activity, peak): {connections}",
        f"  items: served {sum(len(g) for g in served.values())} (status 200), lost {lost}, "
        f"stored twice {item_dupes}, stored but never served {sum(unexpected.values())} "
        f"(by feed: {dict(unexpected)})",
        *lost_story_lines(lost_keys, faulty, times, killed_at, ended, interval),
        *(f"    stored twice: feed {feed} {guid} ({n} items)" for feed, guid, n in doubled[:5]),
        f"  alerts sent: {sum(sent.values())} over {len(sent)} (route, event, kind); "
        f"most per key {most}; by kind {dict(kinds)}; webhook posts {len(posts)} "
        f"(posts - sent = {len(posts) - sum(sent.values())})",
        "  alert rows by status: "
        + str(dict(Counter(s for (_, _, _, s), n in alerts.items() for _ in range(n)))),
    ]
    return "\n".join(lines)


def lost_story_lines(
    lost: list[tuple[int, str]],
    faulty: dict[int, str],
    times: dict[int, list[float]],
    killed_at: float,
    ended: float,
    interval: int,
) -> list[str]:
    """Where the lost stories were: by the feed's fault, and for healthy feeds when their
    feed was last asked (before or after the kill, in the last interval before the stop)."""
    if not lost:
        return []
    kinds = Counter(faulty.get(feed, "healthy") for feed, _ in lost)
    lines = ["    lost by feed: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))]
    when: Counter[str] = Counter()
    for feed, _ in lost:
        if feed in faulty or not times.get(feed):
            continue
        last = times[feed][-1]
        if last >= ended - interval:
            when["last asked in the final interval before the stop"] += 1
        elif last < killed_at:
            when["last asked before the kill"] += 1
        else:
            when["last asked after the kill, earlier than the final interval"] += 1
    lines += [f"    lost (healthy feeds), {what}: {n}" for what, n in sorted(when.items())]
    for feed, guid in lost[:3]:
        asked = ", ".join(f"{t - killed_at:+.0f}" for t in times.get(feed, [])[-4:])
        lines.append(f"    e.g. {guid}: its feed asked at {asked} s from the kill")
    return lines


if __name__ == "__main__":
    main()
