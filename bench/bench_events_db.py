"""Benchmark the daemon's clustering path on a real database, at 1k/10k/100k stored events.

Run: python bench/bench_events_db.py   [--skip-postgres]   (fixed seed, about 1 min)

`MeasureRecorder.record_batch` is what the daemon calls for the flagged items of each batch of
feeds: fingerprints, `event_repo.stored_events` (a few indexed, bounded statements per batch: the
events filed under the batch's LSH band and key-term keys, and each country's newest), then
per item `events.match_event` against the candidates kept in memory, an event update or
insert, and one insert of the keys events gained. This script migrates a SQLite file (and a
throwaway PostgreSQL cluster when tests/support/pg.py can start one), stores N synthetic
events through the real models and `event_repo.add_event_bands` (by default a history: 1,000 per
21-day window, older windows before it; `--dense`: all N within the window), and times
record_batch for the same 300 new items at each N: each item alone in its own transaction
(the worst case: a batch with one flagged item), and all 300 in one transaction (a busy
batch). Every transaction is rolled back, so N stays fixed. It prints the cost per item, the
events loaded per item, the 100k/1k ratio, and the query plans at 100k. Prints figures only;
asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import Engine, event, select, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402
from synthetic_events import COUNTRIES, NOW, Corpus  # noqa: E402

from monitor.domain import Assessment, Category, Entry, Stage  # noqa: E402
from monitor.events.batch import BatchEvents  # noqa: E402
from monitor.events.fingerprint import text_fingerprint  # noqa: E402
from monitor.events.identity import EventCandidate, ItemForClustering, match_event  # noqa: E402
from monitor.events.recorder import (  # noqa: E402
    EVENT_WINDOW,
    FlaggedItem,
    MeasureRecorder,
    identity_lookup_keys,
    text_keys,
)
from monitor.events.targets import load_targets  # noqa: E402
from monitor.store import event_repo  # noqa: E402
from monitor.store.db import make_engine, make_sessions, upgrade  # noqa: E402
from monitor.store.event_repo import EventRecord  # noqa: E402
from monitor.store.models import EventRow  # noqa: E402

SIZES = (1_000, 10_000, 100_000)
QUERIES = 300
PASSES = 3  # best of three timed passes over the same items
INSERT_BATCH = 500
TARGETS = load_targets()
RECORDER = MeasureRecorder(routes=(), targets=TARGETS)


@dataclass(frozen=True, slots=True)
class NewItem:
    """A flagged item as the daemon hands it to record_batch."""

    kind: str  # "wire", "follow-up" or "new"
    entry: Entry
    assessment: Assessment


@dataclass(frozen=True, slots=True)
class Figures:
    """What one backend costs at one N."""

    events: int
    assign_us: float  # record_batch of one item, per item
    batch_us: float  # record_batch of all the items at once, per item
    query_us: float  # event_repo.stored_events alone (SQL + records), per item
    sql_us: float  # its SELECTs alone, raw driver calls
    candidates: float  # events loaded per item
    statements: float  # SQL statements per record_batch of one item
    joined: float  # share of items that joined a stored event
    agree: float  # share of items placed as a full scan of all stored events places them
    missed: dict[str, int]  # items placed otherwise than the full scan would, by kind


def make_item(
    corpus: Corpus, index: int, events: Sequence[EventCandidate], summaries: dict[int, str]
) -> NewItem:
    """A wire copy (40%), a follow-up (30%) of a stored event, or a new story (30%).

    Mirrors bench_events.Corpus.item but keeps the text, which record_batch fingerprints.
    """
    rng = corpus.rng
    roll = rng.random()
    if roll < 0.7:
        target = rng.choice(events)
        country, cats = target.country or "VN", target.categories
        name = next(n for n in corpus.names if n in target.title.split())
        if roll < 0.4:
            kind, title = "wire", f"UPDATE 2-{target.title} - sources"
            summary = summaries[target.event_id]
        else:
            kind = "follow-up"
            title, summary = corpus.story(country, name)
    else:
        kind = "new"
        country, cats, name = corpus.subject()
        title, summary = corpus.story(country, name)
    entry = Entry(
        guid=f"bench-{index}",
        url=f"https://news.example/{index}",
        title=title,
        summary=summary,
        published=NOW,
        content_hash=hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest(),
    )
    assessment = Assessment(
        relevant=True,
        score=0.9,
        categories=tuple(Category(c) for c in sorted(cats)),
        country=country,
        stage=Stage.ENFORCED,
    )
    return NewItem(kind, entry, assessment)


def full_scan(item: NewItem, stored: Sequence[EventCandidate]) -> int | None:
    """The reference: the stored event (position) match_event picks among all of them."""
    categories = frozenset(str(c) for c in item.assessment.categories)
    probe = ItemForClustering(
        country=item.assessment.country,
        categories=categories,
        stage=str(item.assessment.stage),
        fingerprint=text_fingerprint(item.entry.title, item.entry.summary),
        published=min(item.entry.published, NOW),
        title=item.entry.title,
        targets=TARGETS.read(item.entry.title, item.entry.summary, categories),
    )
    found = match_event(probe, stored, window=EVENT_WINDOW)
    return None if found is None else found.event_id


def store_events(sessions: sessionmaker[Session], events: Sequence[EventCandidate]) -> None:
    """Insert events as record_batch does for a new measure: EventRow, then its lookup keys."""
    for start in range(0, len(events), INSERT_BATCH):
        with sessions.begin() as session:
            rows = [
                EventRow(
                    country=ev.country,
                    categories=sorted(ev.categories),
                    stage=ev.stage,
                    title=ev.title,
                    fingerprint=ev.fingerprint.to_bytes(),
                    first_seen=ev.first_seen,
                    last_seen=ev.last_seen,
                    item_count=1,
                    max_score=0.9,
                    targets=ev.targets.ids(),
                    stage_changed_at=ev.first_seen,
                )
                for ev in events[start : start + INSERT_BATCH]
            ]
            session.add_all(rows)
            session.flush()
            for row, ev in zip(rows, events[start : start + INSERT_BATCH], strict=True):
                categories = frozenset(ev.categories)
                keys = text_keys(ev.country, categories, ev.fingerprint)
                keys += identity_lookup_keys(ev.country, categories, ev.targets)
                event_repo.add_event_bands(session, [(row.id, key) for key in keys])


@contextmanager
def rolled_back(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose transaction is open (connection checked out) and always rolled back."""
    session = sessions()
    try:
        session.connection()
        yield session
    finally:
        session.rollback()
        session.close()


@contextmanager
def statements_seen(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Record every SQL statement the engine sends, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def candidate_query(session: Session, item: NewItem) -> list[EventRecord]:
    """event_repo.stored_events exactly as record_batch calls it for one flagged item."""
    probe = RECORDER.probe(item.entry, item.assessment, NOW)
    return BatchEvents.load(session, [probe]).loaded


def flagged(item: NewItem) -> FlaggedItem:
    return FlaggedItem(0, 0, "bench", item.entry, item.assessment)


def best_per_item_us(
    sessions: sessionmaker[Session],
    items: Sequence[NewItem],
    run: Callable[[Session, NewItem], Any],
) -> float:
    """Best-of-PASSES mean time of run(), each item in its own rolled-back transaction."""
    best = float("inf")
    for _ in range(PASSES):
        total = 0.0
        for item in items:
            with rolled_back(sessions) as session:
                start = time.perf_counter()
                run(session, item)
                total += time.perf_counter() - start
        best = min(best, total)
    return best / len(items) * 1e6


def raw_sql_us(engine: Engine, statements: Sequence[tuple[str, Any]]) -> float:
    """Best-of-PASSES mean time of captured statements replayed through the bare driver."""
    best = float("inf")
    with engine.connect() as conn:
        for _ in range(PASSES):
            start = time.perf_counter()
            for statement, params in statements:
                conn.exec_driver_sql(statement, params).fetchall()
            best = min(best, time.perf_counter() - start)
        conn.rollback()
    return best / len(statements) * 1e6


def measure(
    engine: Engine,
    sessions: sessionmaker[Session],
    items: Sequence[NewItem],
    stored: Sequence[EventCandidate],
    stored_ids: Sequence[int],
) -> Figures:
    recorder = MeasureRecorder(routes=())

    def assign(session: Session, item: NewItem) -> int:
        """The event record_batch puts a lone flagged item in."""
        return recorder.record_batch(session, [flagged(item)], NOW)[0][0]

    assign_us = best_per_item_us(sessions, items, assign)
    batch_best = float("inf")
    for _ in range(PASSES):
        with rolled_back(sessions) as session:
            start = time.perf_counter()
            recorder.record_batch(session, [flagged(item) for item in items], NOW)
            batch_best = min(batch_best, time.perf_counter() - start)
    query_us = best_per_item_us(sessions, items, candidate_query)
    candidates = statements = joined = agree = 0
    missed = {"wire": 0, "follow-up": 0, "new": 0}
    candidate_sql: list[tuple[str, Any]] = []
    for item in items:
        with rolled_back(sessions) as session, statements_seen(engine) as seen:
            candidates += len(candidate_query(session, item))
        candidate_sql += seen
        with rolled_back(sessions) as session, statements_seen(engine) as seen:
            event_id = assign(session, item)
            statements += len(seen)
            got = event_id if event_id <= stored_ids[-1] else None  # else a new event
        reference = full_scan(item, stored)
        expected = None if reference is None else stored_ids[reference]
        joined += got is not None
        agree += got == expected
        missed[item.kind] += got != expected
    n = len(items)
    return Figures(
        events=len(stored),
        assign_us=assign_us,
        batch_us=batch_best / n * 1e6,
        query_us=query_us,
        sql_us=raw_sql_us(engine, candidate_sql),
        candidates=candidates / n,
        statements=statements / n,
        joined=joined / n,
        agree=agree / n,
        missed=missed,
    )


def explain(engine: Engine, sessions: sessionmaker[Session], item: NewItem) -> list[str]:
    """The plans of the candidate SELECTs, captured as event_repo.stored_events sends them."""
    with rolled_back(sessions) as session, statements_seen(engine) as seen:
        candidate_query(session, item)
    sqlite = engine.dialect.name == "sqlite"
    lines: list[str] = []
    with engine.connect() as conn:
        for statement, params in seen:
            prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
            for row in conn.exec_driver_sql(prefix + statement, params):
                line = str(row[-1]) if sqlite else str(row[0])
                lines.append("    " + (line if len(line) < 96 else line[:92] + " ..."))
    return lines


def growth(first: float, last: float) -> str:
    ratio = last / first
    verdict = "linear" if ratio >= 5 else "sub-linear" if ratio >= 2 else "flat"
    return f"{ratio:.2f}x ({verdict})"


def run_backend(
    label: str, url: str, events: Sequence[EventCandidate], items: Sequence[NewItem]
) -> list[Figures]:
    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessions(engine)
    results: list[Figures] = []
    stored = 0
    print(f"\n== {label}")
    print(f"{'events':>7} {'insert s':>8} {'assign us':>9} {'batch us':>8} {'query us':>9} "
          f"{'SQL us':>7} {'cands':>6} {'stmts':>6} {'joined':>6} {'=scan':>6}  "
          f"differs from scan (wire/follow-up/new)")  # fmt: skip
    for size in SIZES:
        started = time.perf_counter()
        store_events(sessions, events[stored:size])
        stored = size
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:  # what autovacuum's analyze does after a bulk load
                conn.execute(text("ANALYZE events; ANALYZE event_bands"))
        inserted = time.perf_counter() - started
        with sessions() as session:  # ids in insertion order: stored_ids[position]
            stored_ids = list(session.scalars(select(EventRow.id).order_by(EventRow.id)))
        f = measure(engine, sessions, items, events[:size], stored_ids)
        results.append(f)
        missed = "/".join(str(v) for v in f.missed.values())
        print(f"{size:>7} {inserted:>8.1f} {f.assign_us:>9.0f} {f.batch_us:>8.0f} "
              f"{f.query_us:>9.0f} {f.sql_us:>7.0f} {f.candidates:>6.1f} "
              f"{f.statements:>6.1f} {f.joined:>6.0%} {f.agree:>6.0%}  {missed}")  # fmt: skip
    a, b = results[0], results[-1]
    print(f"{SIZES[-1] // 1000}k/{SIZES[0] // 1000}k ({SIZES[-1] // SIZES[0]}x events): "
          f"record_batch of one {growth(a.assign_us, b.assign_us)}, "
          f"of {len(items)} {growth(a.batch_us, b.batch_us)}, "
          f"stored_events {growth(a.query_us, b.query_us)}, "
          f"candidate SQL {growth(a.sql_us, b.sql_us)}, "
          f"candidates {growth(a.candidates, b.candidates)}")  # fmt: skip
    print(f"query plans at {SIZES[-1]} events:")
    print("\n".join(explain(engine, sessions, items[0])))
    engine.dispose()
    return results


def start_postgres() -> tuple[Any, str] | tuple[None, str]:
    """A throwaway cluster and a migrated-to-be database URL, or None and the reason."""
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
        return server, server.create_database()
    except Exception as exc:  # any failure to start means "skip", with the reason
        server.destroy()
        return None, f"server did not start: {type(exc).__name__}: {exc}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument(
        "--dense",
        action="store_true",
        help="every stored event within the window (worst case); default: a history, the "
        "same 1,000 events per window, older ones before it, as months of running leave them",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    corpus = Corpus(seed=20250601)
    summaries: dict[int, str] = {}
    events: list[EventCandidate] = []
    for position in range(max(SIZES)):
        ev, summaries[position] = corpus.event(position)
        # As the recorder stores them: with the target read from the text.
        targets = TARGETS.read(ev.title, summaries[position], ev.categories)
        ev = dataclasses.replace(ev, targets=targets)
        if not args.dense:  # windows further back, one per 1,000 events
            back = EVENT_WINDOW * (position // SIZES[0])
            ev = dataclasses.replace(
                ev, first_seen=ev.first_seen - back, last_seen=ev.last_seen - back
            )
        events.append(ev)
    # Items refer to the first 1k events, so the same 300 items run at every N.
    items = [make_item(corpus, i, events[: SIZES[0]], summaries) for i in range(QUERIES)]
    kinds = {k: sum(1 for it in items if it.kind == k) for k in ("wire", "follow-up", "new")}
    spread = (
        f"all last seen within {EVENT_WINDOW.days} days"
        if args.dense
        else f"{SIZES[0]} per {EVENT_WINDOW.days}-day window, {len(events) // SIZES[0]} windows"
    )
    print(f"{len(events)} synthetic events ({len(COUNTRIES)} countries, {len(Category)} "
          f"categories, {spread}) fingerprinted in "
          f"{time.perf_counter() - started:.1f} s; {QUERIES} new items {kinds}")  # fmt: skip
    print("Per item: assign us = MeasureRecorder.record_batch of that item alone (fingerprint, "
          "candidate queries, match, event update or insert, new keys); batch us = "
          f"record_batch of all {QUERIES} at once, per item; query us = event_repo.stored_events "
          "alone (SQL + ORM rows); SQL us = its SELECTs replayed on the bare driver; "
          "cands = events loaded; stmts = SQL statements; =scan = placed as match_event over "
          "ALL stored events would place it")  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="bench-events-db-") as tmp:
        run_backend("SQLite (file, WAL)", f"sqlite:///{Path(tmp) / 'monitor.db'}", events, items)
    if args.skip_postgres:
        print("\n== PostgreSQL: skipped (--skip-postgres)")
    else:
        server, url_or_reason = start_postgres()
        if server is None:
            print(f"\n== PostgreSQL: skipped: {url_or_reason}")
        else:
            try:
                run_backend("PostgreSQL", url_or_reason, events, items)
            finally:
                server.destroy()
    print(f"\ntotal {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
