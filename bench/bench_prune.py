"""Benchmark pruning 1 M fetch-log rows while a poller-like writer keeps committing.

Run: python bench/bench_prune.py   [--rows 1000000] [--skip-postgres] [--skip-single]

For each backend (a SQLite file in WAL mode; a throwaway PostgreSQL cluster when
tests/support/pg.py can start one): migrate a fresh database, insert `--rows` fetch-log rows
(core inserts) spread over 60 days, oldest first, so a 30-day retention prunes the older half.
A writer thread then does what the poller does after each batch of feeds: one transaction
that appends `--writer-rows` fetch-log lines and commits, every `--writer-pause` seconds. It
runs `--baseline` seconds alone (its commit latency without a prune), then on through
`monitor.store.retention.prune` (batches of `--batch-size`, each its own transaction), and
the script reports the prune's time and rows/s and the writer's commit latency (max, p99,
median) without and during the prune. With the default, the same is repeated on a fresh copy
for the one-statement DELETE the prune job ran before retention existed, for comparison.
Prints figures only; asserts nothing. The machine has 2 cores shared with other work.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import delete, func, insert, select  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from monitor.config.retention import RetentionSpec  # noqa: E402
from monitor.store.db import make_engine, make_sessions, upgrade  # noqa: E402
from monitor.store.models import FeedRow, FetchLogRow  # noqa: E402
from monitor.store.retention import prune  # noqa: E402

FEEDS = 1_000
SPAN = timedelta(days=60)
INSERT_CHUNK = 20_000


@dataclass
class Writer:
    """A thread committing small fetch-log transactions; records each one's latency."""

    sessions: sessionmaker[Session]
    now: datetime
    rows: int
    pause_s: float
    samples: list[tuple[float, float]] = field(default_factory=list)  # (start, seconds)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        n = 0
        while not self.stop.is_set():
            values = [
                {"feed_id": 1 + (n + i) % FEEDS, "started_at": self.now, "outcome": "ok"}
                for i in range(self.rows)
            ]
            started = time.perf_counter()
            with self.sessions.begin() as session:
                session.execute(insert(FetchLogRow), values)
            self.samples.append((started, time.perf_counter() - started))
            n += self.rows
            self.stop.wait(self.pause_s)

    def finish(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()

    def overlapping(self, start: float, end: float) -> list[float]:
        """Commits that were under way at some moment between start and end."""
        return [took for at, took in self.samples if at < end and at + took > start]


def latency_line(label: str, took: list[float]) -> str:
    if not took:
        return f"{label}: no commits"
    ordered = sorted(took)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return (
        f"{label}: {len(took)} commits, max {1000 * ordered[-1]:.1f} ms, "
        f"p99 {1000 * p99:.1f} ms, median {1000 * statistics.median(ordered):.1f} ms"
    )


def fill(sessions: sessionmaker[Session], rows: int, now: datetime) -> float:
    """Feeds and `rows` fetch-log lines, oldest first over SPAN; seconds it took."""
    started = time.perf_counter()
    with sessions.begin() as session:
        session.execute(
            insert(FeedRow),
            [
                {"name": f"feed {i}", "url": f"http://127.0.0.2/{i}", "interval_s": 900,
                 "enabled": True, "gone": False, "next_poll_at": now, "created_at": now,
                 "consecutive_failures": 0, "broken_alerted": False}
                for i in range(FEEDS)
            ],
        )  # fmt: skip
    first = now - SPAN
    step = SPAN / rows
    for offset in range(0, rows, INSERT_CHUNK):
        values = [
            {
                "feed_id": 1 + n % FEEDS,
                "started_at": first + step * n,
                "outcome": "ok" if n % 7 else "not_modified",
                "http_status": 200,
                "bytes": 20_000,
                "entries": 25,
                "new_items": n % 3,
                "duration_ms": 120,
            }
            for n in range(offset, min(rows, offset + INSERT_CHUNK))
        ]
        with sessions.begin() as session:
            session.execute(insert(FetchLogRow), values)
    return time.perf_counter() - started


def single_statement(sessions: sessionmaker[Session], cutoff: datetime) -> int:
    """The prune job before retention: one DELETE in one transaction."""
    with sessions.begin() as session:
        result = session.connection().execute(
            delete(FetchLogRow).where(FetchLogRow.started_at < cutoff)
        )
        return int(result.rowcount)


def run_once(
    label: str,
    url: str,
    args: argparse.Namespace,
    do_prune: Callable[[sessionmaker[Session], datetime], tuple[int, str]],
) -> None:
    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessions(engine)
    now = datetime.now(UTC).replace(microsecond=0)
    filled = fill(sessions, args.rows, now)
    print(f"  {label}: {args.rows:,} rows inserted in {filled:.1f} s")
    writer = Writer(sessions, now, args.writer_rows, args.writer_pause)
    writer.start()
    base_start = time.perf_counter()
    time.sleep(args.baseline)
    prune_start = time.perf_counter()
    deleted, detail = do_prune(sessions, now)
    prune_end = time.perf_counter()
    time.sleep(1.0)  # the writer's commit that straddled the prune's end is counted
    writer.finish()
    took = prune_end - prune_start
    with sessions() as session:
        left = session.scalar(select(func.count(FetchLogRow.id)))
    print(
        f"  {label}: deleted {deleted:,} rows in {took:.2f} s = {deleted / took:,.0f} rows/s"
        f"{detail}; {left:,} left"
    )
    alone = writer.overlapping(base_start, prune_start - 1.0)  # none touching the prune
    during = writer.overlapping(prune_start, prune_end)
    print("    " + latency_line("writer without a prune", alone))
    print("    " + latency_line("writer during the prune", during))
    if alone and during:
        print(
            f"    ratio during/without: max {max(during) / max(alone):.1f}x, "
            f"p99 {_p99(during) / _p99(alone):.1f}x"
        )
    engine.dispose()


def _p99(took: list[float]) -> float:
    ordered = sorted(took)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def run_backend(name: str, make_url: Callable[[], str], args: argparse.Namespace) -> None:
    print(f"\n== {name}")
    spec = RetentionSpec(batch_size=args.batch_size, time_budget=timedelta(minutes=10))

    def batched(sessions: sessionmaker[Session], now: datetime) -> tuple[int, str]:
        report = prune(sessions, spec, now)
        per_batch = 1000 * report.seconds / max(report.batches, 1)
        return report.deleted["fetch_log"], (
            f" ({report.batches} transactions of up to {spec.batch_size:,} rows, "
            f"{per_batch:.0f} ms each, longest {1000 * report.longest_batch_s:.0f} ms, "
            f"finished={report.finished})"
        )

    def single(sessions: sessionmaker[Session], now: datetime) -> tuple[int, str]:
        return single_statement(sessions, now - spec.fetch_log), " (one DELETE)"

    run_once("batched prune (monitor.store.retention)", make_url(), args, batched)
    if not args.skip_single:
        run_once("one-statement DELETE (before)", make_url(), args, single)


def start_postgres() -> tuple[Any, str] | tuple[None, str]:
    """A throwaway cluster, or None and the reason."""
    try:
        from tests.support.pg import PostgresServer, find_pg_bin
    except ImportError as exc:
        return None, f"tests.support.pg not importable ({exc})"
    bin_dir = find_pg_bin()
    if bin_dir is None:
        return None, "PostgreSQL server binaries not found"
    server = PostgresServer(bin_dir)
    try:
        server.start()
        return server, ""
    except Exception as exc:  # any failure to start means "skip", with the reason
        server.destroy()
        return None, f"server did not start: {type(exc).__name__}: {exc}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=RetentionSpec().batch_size)
    parser.add_argument("--writer-rows", type=int, default=50, help="rows per commit")
    parser.add_argument("--writer-pause", type=float, default=0.05, help="seconds between")
    parser.add_argument("--baseline", type=float, default=10.0, help="writer-alone seconds")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-single", action="store_true", help="no one-DELETE comparison")
    args = parser.parse_args()
    started = time.perf_counter()
    print(
        f"{args.rows:,} fetch-log rows over {SPAN.days} days, the older half pruned (30 d); "
        f"writer: {args.writer_rows} rows per commit, {args.writer_pause * 1000:.0f} ms apart. "
        "2 shared cores."
    )
    with tempfile.TemporaryDirectory(prefix="bench-prune-") as tmp:
        counter = iter(range(100))
        run_backend(
            "SQLite (file, WAL)",
            lambda: f"sqlite:///{Path(tmp) / f'monitor-{next(counter)}.db'}",
            args,
        )
    if args.skip_postgres:
        print("\n== PostgreSQL: skipped (--skip-postgres)")
    else:
        server, reason = start_postgres()
        if server is None:
            print(f"\n== PostgreSQL: skipped: {reason}")
        else:
            try:
                run_backend("PostgreSQL", server.create_database, args)
            finally:
                server.destroy()
    print(f"\ntotal {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
