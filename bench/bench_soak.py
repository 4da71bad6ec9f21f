"""Soak: 1,000 feeds (5% faulty) polled for 30 cycles; memory, fds, sockets, lost or doubled data.

Run: python bench/bench_soak.py   [--cycles 30] [--feeds 1000] [--workers 48]

A feed farm in its own process (bench/feedfarm.py) serves the feeds; 5% of them fail in a
mix of ways (HTTP 500, 404, hang, malformed XML, oversize body, gzip bomb, connection reset).
This process is the monitor: the real runtime (packaged classifier, SQLite file database,
INFO log to a file), short fetch limits so hangs end in 2 s, and one alert route to the farm's
JSON webhook. Each cycle some healthy feeds gain stories (some about measures), every feed is
polled once (`run_once`), the outbox is delivered (`deliver_due` until empty) and freed heap
memory is handed back as the daemon's trim job does (`release_free_memory`). Per cycle it
records the VmRSS of this process and its parser processes, open fds and TCP sockets. At the
end it checks that every story a healthy feed served is stored exactly once and that every
alert row reached the webhook exactly once, and prints the figures. Asserts nothing; ~5-8 min
for the defaults on 2 cores.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from feedfarm import FarmSpec, FeedFarm  # noqa: E402
from sqlalchemy import select  # noqa: E402

from monitor.daemon.bootstrap import (  # noqa: E402
    DEFAULT_WORKERS,
    Runtime,
    Settings,
    build_runtime,
    default_parse_processes,
    release_free_memory,
    tune_process_for_service,
)
from monitor.store.db import upgrade_in_child  # noqa: E402
from monitor.store.models import AlertRow, AssessmentRow, FeedRow, ItemRow  # noqa: E402

ROUTE = "soak-webhook"
MAX_DELIVERY_ROUNDS = 200  # deliver_due sends at most one batch (50) per call
TCP_STATES = {"01": "established", "06": "time_wait", "08": "close_wait"}


@dataclass
class Sample:
    """What one cycle did and what the process looked like right after it."""

    cycle: int
    wall_s: float
    polled: int
    failed: int
    new_items: int
    flagged: int
    queued: int
    sent: int
    rss_mb: float
    fds: int
    tcp: int
    tcp_established: int
    tcp_close_wait: int


# -- what this process holds -----------------------------------------------------------------


def rss_mb(pids: Sequence[int] = ()) -> float:
    """VmRSS of this process plus the given (parser) processes, in MB."""
    total = 0.0
    for pid in ["self", *map(str, pids)]:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def open_fds() -> list[str]:
    """The targets of this process's open file descriptors."""
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue  # the fd of the listing itself, already closed
    return targets


def tcp_sockets(fd_targets: Sequence[str]) -> Counter[str]:
    """This process's TCP sockets by state, matched by inode in /proc/net/tcp and tcp6."""
    inodes = {t[8:-1] for t in fd_targets if t.startswith("socket:[")}
    states: Counter[str] = Counter()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[9] in inodes:
                states[TCP_STATES.get(fields[3], "other")] += 1
    return states


# -- set-up --------------------------------------------------------------------------------------


def write_feeds_yaml(path: Path, urls: Sequence[str], webhook: str) -> None:
    """A feeds.yaml with every farm feed and one route to the farm's webhook."""
    lines = ["feeds:"]
    for index, url in enumerate(urls):
        lines += [f"  - name: farm-{index:04d}", f"    url: {url}", "    language: en"]
    lines += ["alerts:", f"  - name: {ROUTE}", f"    url: {webhook}", "    format: text"]
    # The measurement services are outside hosts: a benchmark contacts none.
    lines += ["corroboration:", "  enabled: false"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def build(tmp: Path, farm: FeedFarm, workers: int) -> Runtime:
    """The real runtime on a fresh SQLite file, with short fetch limits for the faults."""
    logging.basicConfig(
        filename=tmp / "monitor.log",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore", "apprise", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = tmp / "feeds.yaml"
    write_feeds_yaml(config, farm.urls(), farm.webhook_apprise_url)
    db_url = f"sqlite:///{tmp}/soak.db"
    upgrade_in_child(db_url)  # as `monitor run` does
    # Parser processes as in production (MONITOR_PARSE_PROCESSES's default).
    settings = Settings(
        config,
        db_url,
        workers=workers,
        per_host=4,
        host_spacing_s=0.0,
        parse_processes=default_parse_processes(),
    )
    runtime = build_runtime(settings, env={})
    # What `monitor run` does before its first poll.
    runtime.sync_feeds()
    runtime.load_classifier()
    tune_process_for_service()
    context = runtime.poller.fetch_context
    context.limits = replace(
        context.limits,
        connect_timeout_s=2.0,
        read_timeout_s=2.0,
        total_timeout_s=4.0,
        max_body_bytes=1024 * 1024,
    )
    return runtime


# -- the soak --------------------------------------------------------------------------------------


def run_cycle(runtime: Runtime, farm: FeedFarm, cycle: int) -> Sample:
    """Grow some feeds, poll every feed once, deliver the outbox, then sample the process."""
    if cycle > 1:
        farm.advance(cycle)
    start = time.perf_counter()
    report = runtime.poller.run_once()
    sent = 0
    for _ in range(MAX_DELIVERY_ROUNDS):
        delivered = runtime.delivery.deliver_due()
        sent += delivered.sent
        if delivered.sent + delivered.failed + delivered.dead == 0:
            break
    wall = time.perf_counter() - start
    # The daemon's "trim" job does this once a minute; a soak cycle takes a few seconds.
    release_free_memory()
    fds = open_fds()
    tcp = tcp_sockets(fds)
    return Sample(
        cycle=cycle,
        wall_s=wall,
        polled=report.polled,
        failed=report.failed,
        new_items=report.new_items,
        flagged=report.flagged,
        queued=report.alerts_queued,
        sent=sent,
        rss_mb=rss_mb(getattr(runtime.poller.fetch_context.reader, "pids", list)()),
        fds=len(fds),
        tcp=sum(tcp.values()),
        tcp_established=tcp["established"],
        tcp_close_wait=tcp["close_wait"],
    )


def print_sample(s: Sample) -> None:
    """One line per cycle."""
    print(
        f"{s.cycle:>5}{s.wall_s:>8.2f}{s.polled:>7}{s.failed:>7}{s.new_items:>7}{s.flagged:>8}"
        f"{s.queued:>7}{s.sent:>6}{s.rss_mb:>9.1f}{s.fds:>6}{s.tcp:>6}{s.tcp_established:>6}"
        f"{s.tcp_close_wait:>7}",
        flush=True,
    )


# -- the checks ------------------------------------------------------------------------------------


def check_items(runtime: Runtime, farm: FeedFarm) -> dict[str, int]:
    """Every GUID a healthy feed served is stored once; nothing else is stored for it."""
    faulty = set(farm.spec.faults())
    served = {
        (index, guid)
        for index, guids in farm.served().items()
        if index not in faulty
        for guid in guids
    }
    with runtime.sessions() as session:
        names = {row.id: row.name for row in session.execute(select(FeedRow.id, FeedRow.name))}
        rows = session.execute(select(ItemRow.feed_id, ItemRow.guid)).all()
        stored = Counter((int(names[row.feed_id][5:]), row.guid) for row in rows)
    healthy = Counter({key: n for key, n in stored.items() if key[0] not in faulty})
    return {
        "served by healthy feeds": len(served),
        "stored for healthy feeds": sum(healthy.values()),
        "lost (served, not stored)": len(served - set(healthy)),
        "duplicated (stored > once)": sum(n - 1 for n in healthy.values() if n > 1),
        "unexpected (stored, never served)": len(set(healthy) - served),
        "stored for faulty (malformed) feeds": sum(stored.values()) - sum(healthy.values()),
    }


def check_alerts(runtime: Runtime, posts: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Every flagged item has an event with a 'new' alert; every alert row posted exactly once."""
    with runtime.sessions() as session:
        flagged = session.execute(
            select(ItemRow.id, ItemRow.event_id)
            .join(AssessmentRow, AssessmentRow.item_id == ItemRow.id)
            .where(AssessmentRow.relevant.is_(True))
        ).all()
        alerts = list(session.scalars(select(AlertRow).where(AlertRow.route == ROUTE)))
    new_events = Counter(a.event_id for a in alerts if a.kind == "new")
    events = {event_id for _, event_id in flagged if event_id is not None}
    texts = [f"{p.get('title', '')}\n{p.get('message', '')}" for p in posts]
    posted: Counter[int] = Counter()
    matched_posts: set[int] = set()
    for alert in alerts:
        link = str(alert.payload.get("link") or "")
        hits = [i for i, text in enumerate(texts) if link and link in text]
        posted[alert.id] = len(hits)
        matched_posts.update(hits)
    return {
        "flagged items": len(flagged),
        "flagged items without an event": sum(1 for _, e in flagged if e is None),
        "events": len(events),
        "events without a 'new' alert row": len(events - set(new_events)),
        "events with > 1 'new' alert row": sum(1 for n in new_events.values() if n > 1),
        "alert rows (new + update)": len(alerts),
        "alert rows not sent": sum(1 for a in alerts if a.status != "sent"),
        "webhook posts": len(posts),
        "alert rows never posted (lost)": sum(1 for n in posted.values() if n == 0),
        "alert rows posted > once (duplicated)": sum(1 for n in posted.values() if n > 1),
        "posts matching no alert row": len(posts) - len(matched_posts),
    }


def feed_errors(runtime: Runtime) -> Counter[str]:
    """Last error kind per feed, for the faulty ones."""
    with runtime.sessions() as session:
        query = select(FeedRow.last_error_kind).where(FeedRow.last_error_kind.is_not(None))
        return Counter(str(kind) for kind in session.scalars(query))


def print_summary(samples: Sequence[Sample], checks: dict[str, dict[str, int]]) -> None:
    """Growth and flatness figures, then the loss/duplication checks."""
    first, last = samples[0], samples[-1]
    growth = (last.rss_mb - first.rss_mb) / first.rss_mb * 100
    later = samples[1:] or samples
    print(f"\nRSS cycle 1 → {last.cycle}: {first.rss_mb:.1f} → {last.rss_mb:.1f} MB "
          f"({growth:+.1f}%; goal < +10%: {'met' if growth < 10 else 'NOT met'}); "
          f"max {max(s.rss_mb for s in samples):.1f} MB")  # fmt: skip
    for label, values in (
        ("open fds", [s.fds for s in samples]),
        ("TCP sockets", [s.tcp for s in samples]),
        ("TCP established", [s.tcp_established for s in samples]),
        ("TCP close_wait", [s.tcp_close_wait for s in samples]),
    ):
        print(f"{label:<16} first {values[0]:>4}  last {values[-1]:>4}  max {max(values):>4}  "
              f"min {min(values):>4}")  # fmt: skip
    times = [s.wall_s for s in later]
    print(f"cycle time: first {first.wall_s:.2f} s; later median {statistics.median(times):.2f} s, "
          f"max {max(times):.2f} s")  # fmt: skip
    for title, figures in checks.items():
        print(f"\n{title}")
        for name, value in figures.items():
            print(f"  {name:<40}{value:>8}")


def main() -> None:
    """Run the soak and print per-cycle figures and the end-of-run checks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    args = parser.parse_args()
    started = time.perf_counter()
    spec = FarmSpec(feeds=args.feeds, faulty_share=0.05, latency_s=0.05)
    faults = Counter(spec.faults().values())
    print(f"{spec.feeds} feeds, {sum(faults.values())} faulty: "
          + ", ".join(f"{k} {n}" for k, n in sorted(faults.items())))  # fmt: skip
    with FeedFarm(spec) as farm, tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp_name:
        tmp = Path(tmp_name)
        runtime = build(tmp, farm, args.workers)
        print(f"{'cycle':>5}{'wall s':>8}{'polled':>7}{'failed':>7}{'new':>7}{'flagged':>8}"
              f"{'queued':>7}{'sent':>6}{'RSS MB':>9}{'fds':>6}{'tcp':>6}{'estab':>6}"
              f"{'clwait':>7}")  # fmt: skip
        samples = []
        for cycle in range(1, args.cycles + 1):
            samples.append(run_cycle(runtime, farm, cycle))
            print_sample(samples[-1])
        checks = {
            "items (healthy feeds)": check_items(runtime, farm),
            f"alerts (route {ROUTE})": check_alerts(runtime, farm.posts()),
        }
        errors = feed_errors(runtime)
        stats = farm.stats()
        log = (tmp / "monitor.log").read_text(encoding="utf-8", errors="replace").splitlines()
        db_mb = (tmp / "soak.db").stat().st_size / 1e6
        runtime.close()
    print_summary(samples, checks)
    feed_requests = sum(n for k, n in stats.items() if k.startswith("feed:"))
    print(
        f"\nfeed requests served {feed_requests} for {args.cycles} × {spec.feeds} polls; "
        f"last error per feed: " + ", ".join(f"{k} {n}" for k, n in sorted(errors.items()))
    )
    bad = [line for line in log if " ERROR " in line or " CRITICAL " in line]
    print(f"log: {len(log)} lines, {len(bad)} ERROR; database {db_mb:.1f} MB")
    for line in bad[:5]:
        print("  " + line[:200])
    print(f"\ntotal soak time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
