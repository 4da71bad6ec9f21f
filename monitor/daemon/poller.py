"""Poll cycles: lease due feeds, fetch them in a bounded thread pool, write results in order.

Workers only fetch and parse; the thread that calls `tick` or `run_once` does every database
write, one transaction per feed. A slow feed holds one worker, never the cycle: `tick` stores
whatever has finished and moves on, so the others keep their schedule.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from monitor.daemon.pipeline import (
    FeedJob,
    FeedOutcome,
    FetchContext,
    StoreSummary,
    Writer,
    fetch_and_parse,
)
from monitor.daemon.telemetry import Telemetry
from monitor.intake.fetch import redact_url
from monitor.intake.hostgate import HostGate
from monitor.store import repo
from monitor.store.models import HELD_BACK, FeedRow
from monitor.store.repo import LEASE_CHUNK

logger = logging.getLogger(__name__)

# With fewer outcomes than this, "every feed failed" says nothing about our own network.
OFFLINE_MIN_FEEDS = 3
# Held network failures are judged at the end of a cycle, or after this long in a busy daemon.
OFFLINE_VERDICT_AFTER = timedelta(minutes=2)
# Feeds stored per transaction when several finished together.
BATCH_FEEDS = 50
# When only a trickle of feeds has finished, wait this long for more before storing them:
# a commit costs more than a feed's rows, so a conditional cycle of quick 304s would
# otherwise spend most of its writer's time committing one or two feeds at a time.
GATHER_S = 0.05
GATHER_BELOW = 10
# Waiting feeds of busy hosts looked past per hand-out, at most.
HAND_OUT_LOOK_AHEAD = 256


@dataclass
class CycleReport:
    """Totals of one tick or one `poll --once`."""

    polled: int = 0
    failed: int = 0
    new_items: int = 0
    flagged: int = 0
    alerts_queued: int = 0
    held_back: int = 0  # not asked: their host asked for a wait (a 429)
    offline: bool = False

    def add(self, outcome: FeedOutcome, summary: StoreSummary) -> None:
        if outcome.held_back:
            self.held_back += 1
            return
        self.polled += 1
        self.failed += outcome.failed
        self.new_items += summary.new_items
        self.flagged += summary.flagged
        self.alerts_queued += summary.alerts_queued

    def merge(self, other: CycleReport) -> None:
        """Add another report's totals to this one."""
        self.polled += other.polled
        self.failed += other.failed
        self.new_items += other.new_items
        self.flagged += other.flagged
        self.alerts_queued += other.alerts_queued
        self.held_back += other.held_back
        self.offline = self.offline or other.offline


def default_lease_holder() -> str:
    """This process as a lease holder: host, process id and a random tag. The tag tells a
    restarted container (same host name, pid 1 again) from its dead predecessor."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[-200:]


class Poller:
    """Owns the worker pool; `tick` is called by the scheduler, `run_once` by the CLI."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        fetch_context: FetchContext,
        writer: Callable[[], Writer],
        now: Callable[[], datetime],
        *,
        workers: int = 16,
        lease: timedelta = timedelta(seconds=45),
        claim_limit: int = 1000,
        telemetry: Telemetry | None = None,
        holder: str | None = None,
    ) -> None:
        self.sessions = sessions
        # Who this poller is in feeds.lease_holder: replicas renew and release only their own.
        self.holder = holder if holder is not None else default_lease_holder()
        self.telemetry = telemetry if telemetry is not None else Telemetry()
        self.fetch_context = fetch_context
        self.writer = writer
        self.now = now
        self.lease = lease
        self.claim_limit = claim_limit
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch")
        # Backpressure: at most this many feeds are handed to workers and not yet stored, so
        # a writer slower than the fetchers (a first poll) holds a few outcomes, not all.
        self.max_in_flight = 2 * workers
        self._in_flight: dict[Future[FeedOutcome], FeedJob] = {}
        self._waiting: deque[FeedJob] = deque()  # leased, not yet handed to a worker
        self._in_flight_per_host: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._network_failures: list[FeedOutcome] = []
        self._last_answer: datetime | None = None  # when the newest answer of a server came
        self._leases_renewed: datetime | None = None

    def tick(self, busy_for: float = 0.0, stop: Callable[[], bool] = lambda: False) -> CycleReport:
        """Store what has finished, keep in-flight leases alive, start the feeds that are due.

        With `busy_for` seconds, keep storing feeds as they finish (and handing out waiting
        ones) for that long or until none is in flight: the backpressure limit would otherwise
        let a tick start only twice as many feeds as there are workers.
        """
        # The budget counts from the start, and with one, every store is a single batch: the
        # tick then ends within a batch of its budget and the scheduler never skips the next.
        deadline = time.monotonic() + busy_for
        report = self._drain(block=False, limit=BATCH_FEEDS if busy_for > 0 else None)
        self._extend_leases()
        self._submit(self._claim(only=None))
        while self.in_flight() and not stop():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            # One batch at a time, so the tick ends close to its budget.
            report.merge(self._drain(block=True, timeout=remaining, limit=BATCH_FEEDS))
            self._extend_leases()
        return report

    def run_once(self, only: str | None = None) -> CycleReport:
        """Poll every due feed (or the named one, due or not) and wait for all of them."""
        self._submit(self._claim(only=only, everything=only is None))
        report = CycleReport()
        while self.in_flight():
            report.merge(self._drain(block=True))
            self._extend_leases()
        return report

    def in_flight(self) -> int:
        """Feeds leased by this poller and not yet stored."""
        with self._lock:
            return len(self._in_flight) + len(self._waiting)

    def _leased_ids(self) -> list[int]:
        with self._lock:
            return [job.feed_id for job in (*self._in_flight.values(), *self._waiting)]

    def _claim(self, only: str | None, everything: bool = False) -> list[FeedJob]:
        now = self.now()
        busy = set(self._leased_ids())
        try:
            with self.sessions.begin() as session:
                if everything:
                    # `poll --once` means now: make every enabled feed due first.
                    session.execute(
                        update(FeedRow).where(FeedRow.enabled.is_(True)).values(next_poll_at=now)
                    )
                rows = repo.claim_due_feeds(
                    session, now, self.lease, self.claim_limit, only, holder=self.holder
                )
                return [FeedJob.from_row(row) for row in rows if row.id not in busy]
        except SQLAlchemyError as exc:
            logger.error("could not claim due feeds (database): %s", _short(exc))
            return []

    def _submit(self, jobs: list[FeedJob]) -> None:
        with self._lock:
            self._waiting.extend(jobs)
        self._hand_out()

    def _hand_out(self) -> None:
        """Give waiting feeds to the workers, up to the backpressure limit.

        A feed whose host already has its share of requests out waits here, not in a worker:
        a worker waiting for a busy host's slot (60 news-search feeds on one host, say) is a
        worker no other host's feed can use.
        """
        per_host = self.fetch_context.gate.per_host
        with self._lock:
            held_back: list[FeedJob] = []
            try:
                # Bounded look-ahead: a long queue of one busy host costs a few hundred checks
                # per call, not one per waiting feed.
                while (
                    self._waiting
                    and len(self._in_flight) < self.max_in_flight
                    and len(held_back) < HAND_OUT_LOOK_AHEAD
                ):
                    job = self._waiting.popleft()
                    host = HostGate.host_of(job.url)
                    if self._in_flight_per_host[host] >= per_host:
                        held_back.append(job)
                        continue
                    try:
                        future = self._pool.submit(fetch_and_parse, job, self.fetch_context)
                    except RuntimeError:  # the pool is shut down: the job stays waiting
                        held_back.append(job)
                        break
                    self._in_flight[future] = job
                    self._in_flight_per_host[host] += 1
            finally:
                self._waiting.extendleft(reversed(held_back))  # in their order, at the front

    def _drain(
        self, block: bool, timeout: float | None = None, limit: int | None = None
    ) -> CycleReport:
        """Store finished feeds (at most `limit`; the others stay for the next call)."""
        with self._lock:
            pending = list(self._in_flight)
        if not pending:
            return self._store_all([])
        if block:
            # Wake up now and then even if nothing finished, so leases are kept alive.
            wait_s = self.lease.total_seconds() / 3
            if timeout is not None:
                wait_s = min(wait_s, timeout)
            done, _ = wait(pending, timeout=wait_s, return_when=FIRST_COMPLETED)
            if done and len(done) < min(GATHER_BELOW, len(pending)):
                time.sleep(min(GATHER_S, wait_s))
                done = {future for future in pending if future.done()}
        else:
            done = {future for future in pending if future.done()}
        if limit is not None:
            done = set(list(done)[:limit])
        outcomes = []
        for future in done:
            with self._lock:
                job = self._in_flight.pop(future)
                host = HostGate.host_of(job.url)
                self._in_flight_per_host[host] -= 1
                if self._in_flight_per_host[host] <= 0:
                    del self._in_flight_per_host[host]  # no entry kept per host ever seen
            try:
                outcomes.append(future.result())
            except Exception:  # noqa: BLE001 - fetch_and_parse should not raise; log if it does
                logger.exception("worker crashed feed=%s", job.name)
        self._hand_out()  # before storing, so the workers fetch while the writer writes
        return self._store_all(outcomes)

    def _store_all(self, outcomes: list[FeedOutcome]) -> CycleReport:
        report = CycleReport()
        writer = self.writer()
        ready: list[FeedOutcome] = []
        for outcome in outcomes:
            if outcome.network_failure:
                # Held back: whether it is the feed's fault or ours is known only once the
                # rest of the cycle has answered.
                self._network_failures.append(outcome)
                continue
            if outcome.server_answered:  # an HTTP error or unparsable body proves it too
                answered_at = _finished_at(outcome)
                self._last_answer = max(self._last_answer or answered_at, answered_at)
            ready.append(outcome)
        self._store_batch(writer, ready, report)
        self._settle_network_failures(writer, report, final=not self.in_flight())
        return report

    def _store_batch(
        self, writer: Writer, outcomes: list[FeedOutcome], report: CycleReport
    ) -> None:
        """Store finished feeds together, in one transaction of at most BATCH_FEEDS feeds.

        Each feed's writes stay all-or-nothing (the batch commits whole); one commit per
        batch instead of per feed is what lets a first poll of a thousand feeds keep up.
        Should the batch fail, its feeds are stored one by one, so one bad feed costs
        only itself.
        """
        for start in range(0, len(outcomes), BATCH_FEEDS):
            chunk = outcomes[start : start + BATCH_FEEDS]
            if len(chunk) == 1:
                self._store_one(writer, chunk[0], report, postpone=False)
                continue
            now = self.now()
            try:
                writer.begin()
                with self.sessions.begin() as session:
                    summaries = writer.store_batch(session, chunk, now)
                    writer.finish(session)
            except SQLAlchemyError as exc:
                logger.warning("batch store failed, storing feeds one by one: %s", _short(exc))
                for outcome in chunk:
                    self._store_one(writer, outcome, report, postpone=False)
                continue
            for outcome, summary in zip(chunk, summaries, strict=True):
                self._stored(outcome, summary, report)

    def _settle_network_failures(self, writer: Writer, report: CycleReport, final: bool) -> None:
        held = self._network_failures
        if not held:
            return
        if not final and self.now() - held[0].started_at < OFFLINE_VERDICT_AFTER:
            return
        # A failure is the feed's own when some server answered after it began: the network
        # worked then. The rest are unexplained; enough of them means this server is offline
        # (a network lost mid-cycle blames only the feeds that failed before it went).
        last_answer = self._last_answer

        def unexplained(outcome: FeedOutcome) -> bool:
            return last_answer is None or last_answer < outcome.started_at

        unexplained_count = sum(1 for outcome in held if unexplained(outcome))
        offline = unexplained_count >= OFFLINE_MIN_FEEDS
        if offline:
            logger.warning(
                "%d feeds failed with network errors and no server answered since: this "
                "server looks offline; they are not blamed",
                unexplained_count,
            )
            report.offline = True
        self._network_failures = []
        for outcome in held:
            self._store_one(writer, outcome, report, postpone=offline and unexplained(outcome))

    def _store_one(
        self, writer: Writer, outcome: FeedOutcome, report: CycleReport, postpone: bool
    ) -> None:
        now = self.now()
        writer.begin()
        try:
            with self.sessions.begin() as session:
                if postpone:
                    writer.postpone(session, outcome, now)
                    summary = StoreSummary()
                else:
                    summary = writer.store(session, outcome, now)
                writer.finish(session)
        except SQLAlchemyError as exc:
            # The lease expires and the feed is polled again; nothing half-written stays.
            logger.error("could not store feed=%s (database): %s", outcome.job.name, _short(exc))
            return
        self._stored(outcome, summary, report)

    def _stored(self, outcome: FeedOutcome, summary: StoreSummary, report: CycleReport) -> None:
        """A feed's poll is in the database: add it to the report, the log and the metrics
        (counted here, in the storing thread, never in a parser process)."""
        report.add(outcome, summary)
        _log_poll(outcome, summary)
        self.telemetry.poll_finished(
            _outcome_word(outcome),
            error_kind=outcome.error_kind,
            fetch_seconds=outcome.elapsed_ms / 1000,
            body_bytes=outcome.body_bytes,
            new_items=summary.new_items,
            flagged=summary.flagged,
            finished_at=_finished_at(outcome),
        )

    def _extend_leases(self) -> None:
        """Heartbeat: a lease is short so a crashed process's feeds come back quickly, and
        renewed (every third of its length) while this process still works on them."""
        now = self.now()
        if self._leases_renewed is not None and now - self._leases_renewed < self.lease / 3:
            return
        ids = self._leased_ids()
        if not ids:
            return
        self._leases_renewed = now
        try:
            with self.sessions.begin() as session:
                repo.hold_leases(session, ids, self.holder, now + self.lease, LEASE_CHUNK)
        except SQLAlchemyError as exc:
            logger.warning("could not extend feed leases: %s", _short(exc))

    def release(self) -> None:
        """Give back the leases of feeds still in flight (on shutdown), so a restart polls them."""
        ids = self._leased_ids()
        if not ids:
            return
        try:
            with self.sessions.begin() as session:
                repo.hold_leases(session, ids, self.holder, None, LEASE_CHUNK)
        except SQLAlchemyError as exc:
            logger.warning("could not release leases: %s", _short(exc))

    def shutdown(self) -> None:
        """Stop starting work; running fetches are abandoned, not waited for."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _outcome_word(outcome: FeedOutcome) -> str:
    """The fetch_log outcome of a poll: ok, not_modified, error or held_back."""
    if outcome.held_back:
        return HELD_BACK
    if outcome.failed:
        return "error"
    if outcome.fetched is not None and outcome.fetched.not_modified:
        return "not_modified"
    return "ok"


def _log_poll(outcome: FeedOutcome, summary: StoreSummary) -> None:
    fetched = outcome.fetched
    status = _outcome_word(outcome)
    if status == "error":
        status = f"error:{outcome.error_kind}"
    logger.info(
        "poll feed=%s status=%s http=%s bytes=%d entries=%d new=%d flagged=%d ms=%d%s",
        outcome.job.name,
        status,
        fetched.status if fetched else "-",
        outcome.body_bytes,
        len(outcome.entries),
        summary.new_items,
        summary.flagged,
        outcome.elapsed_ms,
        _poll_notes(outcome),
    )


def _poll_notes(outcome: FeedOutcome) -> str:
    """The optional end of a poll line: the error, or where the feed has moved for good."""
    notes = f" error={outcome.error}" if outcome.error else ""
    moved = outcome.fetched.permanent_redirect if outcome.fetched else None
    if moved:
        # Said at every poll until the admins update feeds.yaml: each one costs a redirect.
        notes += f" moved_permanently={redact_url(moved)} (update the url in feeds.yaml)"
    return notes


def _short(exc: Exception) -> str:
    # SQLAlchemy messages embed the statement and parameters; the first line is the cause.
    return str(exc).splitlines()[0][:300]


def _finished_at(outcome: FeedOutcome) -> datetime:
    """When a fetch ended: its answer came, or its failure was seen."""
    return outcome.started_at + timedelta(milliseconds=outcome.elapsed_ms)
