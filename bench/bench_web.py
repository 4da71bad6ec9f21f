"""Benchmark the web surface: page times over 10,000 events, and what serving adds to the
daemon's memory.

Run: python bench/bench_web.py   [--events 10000] [--requests 20] [--feeds 300] [--seconds 40]

Pages: a SQLite file gets N synthetic events (3 reports each, 40 countries, all categories
and stages, one year of history) and 300 feeds with 30 days of fetch log, written with core
inserts. The real app is served by uvicorn in its thread on 127.0.0.1, as `monitor run` does,
and an httpx client with a logged-in session asks each page `--requests` times. It prints
the median and p95 per page and the ratio of the p95 to the 200 ms target.

Memory: `monitor run` polls the feed farm (bench/feedfarm.py) twice for `--seconds`, once with
MONITOR_WEB=0 and once with the web surface on while a client asks its pages every 0.2 s; it
prints the daemon process's peak RSS both ways and the difference (target: at most 20 MB).
Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from bench_poll import proc_status_mb, write_feeds_yaml  # noqa: E402
from feedfarm import FarmSpec, FeedFarm, feed_url  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from monitor.daemon.bootstrap import Settings  # noqa: E402
from monitor.domain import Category  # noqa: E402
from monitor.store import tokens  # noqa: E402
from monitor.store.db import make_engine, upgrade  # noqa: E402
from monitor.store.models import (  # noqa: E402
    AlertRow,
    AssessmentRow,
    EventRow,
    FeedRow,
    FetchLogRow,
    ItemRow,
)
from monitor.web.build import build_web  # noqa: E402
from monitor.web.server import ListenAddress, WebServer  # noqa: E402

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
TARGET_MS = 200.0
STAGES = ("proposed", "enacted", "enforced", "lifted")
COUNTRIES = [f"{a}{b}" for a in "ABCDEFGH" for b in "MNOPQ"]  # 40 codes
PAGES = [
    "/",
    "/events",
    "/events?country=AM&sort=sources",
    "/events?category=shutdown&stage=enforced&since=90d",
    "/events?q=decree",
    "/events/{event_id}",
    "/countries",
    "/countries/AM",
    "/items",
    "/feeds",
    "/alerts",
    "/feeds/events.atom",
    "/feeds/events.json?country=AM",
    "/api/v1/events?limit=50",
]


def seed(db_url: str, events: int, rng: random.Random) -> int:
    """N events with 3 reports each, feeds and their fetch log; returns a mid event's id."""
    categories = [c.value for c in Category]
    engine = make_engine(db_url)
    with engine.begin() as connection:
        connection.execute(
            insert(FeedRow),
            [
                {"name": f"feed-{n}", "url": f"http://127.0.0.1:9/{n}.xml",
                 "country": COUNTRIES[n % len(COUNTRIES)], "language": "en", "interval_s": 900,
                 "enabled": True, "gone": False, "next_poll_at": NOW,
                 "last_polled_at": NOW, "last_success_at": NOW - timedelta(hours=n % 7),
                 "consecutive_failures": 3 if n % 17 == 0 else 0, "broken_alerted": False,
                 "created_at": NOW - timedelta(days=60)}
                for n in range(1, 301)
            ],
        )  # fmt: skip
        connection.execute(
            insert(FetchLogRow),
            [
                {"feed_id": 1 + n % 300, "started_at": NOW - timedelta(minutes=15 * (n // 300)),
                 "outcome": "not_modified" if n % 3 else "ok", "http_status": 200,
                 "bytes": 5000, "entries": 25, "new_items": n % 2, "duration_ms": 40 + n % 900}
                for n in range(300 * 96 * 30 // 10)
            ],
        )  # fmt: skip
        event_rows, item_rows = [], []
        for n in range(events):
            first = NOW - timedelta(minutes=rng.randrange(365 * 24 * 60))
            words = rng.sample(["decree", "block", "order", "law", "vpn", "cut", "ban"], 3)
            event_rows.append(
                {"id": n + 1, "country": rng.choice(COUNTRIES),
                 "categories": [rng.choice(categories)], "stage": rng.choice(STAGES),
                 "title": f"Synthetic measure {n}: {' '.join(words)}", "fingerprint": b"",
                 "first_seen": first, "last_seen": first + timedelta(hours=rng.randrange(200)),
                 "item_count": 3, "max_score": rng.random(), "targets": ["platform:x"],
                 "stage_changed_at": first, "status": "open"}
            )  # fmt: skip
            for k in range(3):
                when = first + timedelta(hours=k)
                item_rows.append(
                    {"id": 3 * n + k + 1, "feed_id": 1 + (n + k) % 300, "guid": f"{n}-{k}",
                     "url": f"https://news.example/{n}/{k}", "title": f"Report {k} of {n}",
                     "summary": "The ministry ordered operators to block the platform. " * 3,
                     "language": "en", "published": when, "fetched_at": when,
                     "content_hash": f"{n:032d}{k:032d}", "event_id": n + 1, "source_count": 1}
                )  # fmt: skip
        connection.execute(insert(EventRow), event_rows)
        connection.execute(insert(ItemRow), item_rows)
        connection.execute(
            insert(AssessmentRow),
            [
                {"item_id": row["id"], "relevant": True, "score": 0.8,
                 "categories": ["platform_block"], "country": "AM",
                 "stage": STAGES[row["id"] % 4], "matched_terms": ["block"],
                 "evidence": ["rule platform_block: block"], "model_version": "bench",
                 "created_at": row["fetched_at"]}
                for row in item_rows
            ],
        )  # fmt: skip
        connection.execute(
            insert(AlertRow),
            [
                {"route": "team", "dedup_key": f"event:{n}:new", "kind": "event", "event_id": n,
                 "status": "sent" if n % 50 else "dead", "payload": {}, "due_at": NOW,
                 "attempts": 1, "created_at": NOW, "sent_at": NOW}
                for n in range(1, events + 1, 3)
            ],
        )  # fmt: skip
    engine.dispose()
    return events // 2


def time_pages(events: int, requests: int) -> None:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        db_url = f"sqlite:///{tmp}/web.db"
        upgrade(db_url)
        started = time.perf_counter()
        event_id = seed(db_url, events, rng)
        print(f"seeded {events:,} events, {3 * events:,} items in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        surface = build_web(Settings(config_path=Path(tmp) / "feeds.yaml", db_url=db_url))
        with surface.context.sessions.begin() as session:
            token = tokens.create_token(session, "bench", ["read", "feeds"], NOW)
        server = WebServer(surface.app, ListenAddress("127.0.0.1", 0))
        server.start()
        headers = {"Authorization": f"Bearer {token}"}
        print(f"{'page':58} {'median':>8} {'p95':>8} {'p95/200ms':>10}")
        try:
            with httpx.Client(base_url=server.address.url, headers=headers) as client:
                for template in PAGES:
                    path = template.format(event_id=event_id)
                    first = client.get(path)
                    if first.status_code != 200:
                        print(f"{path:58} HTTP {first.status_code}")
                        continue
                    times = []
                    for _ in range(requests):
                        began = time.perf_counter()
                        client.get(path).raise_for_status()
                        times.append((time.perf_counter() - began) * 1000)
                    p95 = sorted(times)[max(0, round(0.95 * len(times)) - 1)]
                    print(f"{path:58} {statistics.median(times):6.1f}ms {p95:6.1f}ms "
                          f"{p95 / TARGET_MS:9.2f}x")  # fmt: skip
        finally:
            server.stop()
            surface.close()


LINK = re.compile(r"dashboard (http://127\.0\.0\.1:\d+)/login\?token=(\S+)")


def daemon_peak_rss(feeds: int, seconds: float, web: bool) -> tuple[float, int]:
    """Peak RSS (MB) of `monitor run` on the feed farm, and how many pages it served."""
    spec = FarmSpec(feeds=feeds, items=25, latency_s=0.05)
    with FeedFarm(spec) as farm, tempfile.TemporaryDirectory(prefix="bench-web-rss-") as tmp:
        config = Path(tmp) / "feeds.yaml"
        write_feeds_yaml(config, [feed_url(spec, farm.port, i) for i in range(spec.feeds)])
        env = dict(
            os.environ, MONITOR_CONFIG=str(config), MONITOR_DB_URL=f"sqlite:///{tmp}/d.db",
            MONITOR_HOST_SPACING="0", MONITOR_PER_HOST="4", MONITOR_LISTEN="127.0.0.1:0",
            MONITOR_WEB="1" if web else "0",
        )  # fmt: skip
        daemon = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(daemon.stderr or []), daemon=True).start()
        served = 0
        peak = 0.0
        started = time.monotonic()
        client: httpx.Client | None = None
        while time.monotonic() - started < seconds and daemon.poll() is None:
            peak = max(peak, proc_status_mb("VmRSS", daemon.pid))
            if web and client is None:
                found = next((m for m in map(LINK.search, lines) if m), None)
                if found:
                    client = httpx.Client(base_url=found.group(1), timeout=10)
                    client.get(f"/login?token={found.group(2)}")
            if client is not None:
                for path in ("/", "/events", "/feeds", "/countries", "/alerts", "/system"):
                    served += client.get(path).status_code == 200
            time.sleep(0.2)
        if client is not None:
            client.close()
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    return peak, served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    print(f"== page times over {args.events:,} events (uvicorn thread, httpx, SQLite)")
    time_pages(args.events, args.requests)
    if args.skip_memory:
        return
    print(
        f"\n== daemon peak RSS, `monitor run` on {args.feeds} farm feeds for {args.seconds:.0f} s"
    )
    without, _ = daemon_peak_rss(args.feeds, args.seconds, web=False)
    with_web, served = daemon_peak_rss(args.feeds, args.seconds, web=True)
    print(f"  without web: {without:.1f} MB")
    print(f"  with web:    {with_web:.1f} MB ({served} pages served during the run)")
    print(f"  web adds:    {with_web - without:+.1f} MB (target: at most 20 MB)")


if __name__ == "__main__":
    main()
