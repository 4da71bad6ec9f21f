"""One feed, start to finish: fetch → parse → normalize (worker) then dedup → classify → store
→ events → outbox (writer). Reads top to bottom as the data flow; the stages do the work."""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.alerts.health import feed_broken, feed_recovered
from monitor.daemon.schedule import (
    MAX_BACKOFF,
    next_poll_after_failure,
    next_poll_after_success,
    next_poll_after_wait,
)
from monitor.domain import Assessment, Entry, FetchResult, ItemText, Validators
from monitor.errors import FeedGoneError, FetchError, MonitorError
from monitor.events.recorder import FlaggedItem, MeasureRecorder
from monitor.intake.bodies import BodyTicket, LargeBodies
from monitor.intake.dedup import FeedEntries, plan_batch
from monitor.intake.fetch import NO_ROOM, FetchLimits, fetch_feed, redact_url
from monitor.intake.hostgate import HostGate, host_wait_s
from monitor.intake.reader import InlineReader, Reader, ReadRequest
from monitor.store import locks, repo
from monitor.store.models import HELD_BACK, FeedRow, FetchLogRow

logger = logging.getLogger(__name__)

# Errors that say more about this server's own connectivity than about the feed.
NETWORK_ERROR_KINDS = frozenset({"dns", "connect", "timeout"})
# Failures that come without an answer from any server, so they say nothing about whether this
# server is online (an HTTP error or a broken body, by contrast, did come over the network).
# A held-back feed (its host asked for a wait: a 429 to another of its feeds) made no request.
UNANSWERED_ERROR_KINDS = NETWORK_ERROR_KINDS | {
    "network", "bad_url", "blocked_address", "internal", HELD_BACK,
}  # fmt: skip


class Assessor(Protocol):
    """The classifier seam: many texts in, one Assessment each out."""

    def assess_many(self, items: Sequence[ItemText]) -> list[Assessment]: ...


@dataclass(frozen=True, slots=True)
class FeedJob:
    """A leased feed, copied out of its row so a worker thread needs no session."""

    feed_id: int
    name: str
    url: str
    country: str | None
    language: str | None
    interval_s: int
    consecutive_failures: int
    validators: Validators
    lease_holder: str | None = None  # who leased it: only that holder's lease is cleared

    @classmethod
    def from_row(cls, row: FeedRow) -> FeedJob:
        return cls(
            feed_id=row.id,
            name=row.name,
            url=row.url,
            country=row.country,
            language=row.language,
            interval_s=row.interval_s,
            consecutive_failures=row.consecutive_failures,
            validators=Validators(row.etag, row.last_modified, row.body_hash),
            lease_holder=row.lease_holder,
        )


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    """What a worker learned about one feed; never an exception."""

    job: FeedJob
    started_at: datetime
    elapsed_ms: int
    fetched: FetchResult | None = None  # without its body once read (see body_bytes)
    body_bytes: int = 0
    entries: tuple[Entry, ...] = ()
    malformed: str | None = None
    error_kind: str | None = None
    error: str | None = None
    retry_after_s: float | None = None
    gone: bool = False

    @property
    def failed(self) -> bool:
        return self.error_kind is not None and not self.held_back

    @property
    def held_back(self) -> bool:
        """Not fetched, through no fault of the feed or the network: its host asked for a
        wait (a 429), or this server had no room for another large body; asked again later."""
        return self.error_kind in (HELD_BACK, NO_ROOM)

    @property
    def network_failure(self) -> bool:
        return self.error_kind in NETWORK_ERROR_KINDS

    @property
    def server_answered(self) -> bool:
        """Whether a server answered (a feed, an HTTP error, a bad body): the network worked."""
        return self.error_kind not in UNANSWERED_ERROR_KINDS


@dataclass
class FetchContext:
    """What a worker thread needs to fetch and parse one feed."""

    client: httpx.Client
    gate: HostGate
    limits: FetchLimits
    now: Callable[[], datetime]
    reader: Reader = field(default_factory=InlineReader)
    max_items: int = 200
    # Extra request headers per feed name, from feeds.yaml (resolved secrets: never logged).
    feed_headers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # Checks each redirect hop (origin, target); raises FetchError to refuse it.
    redirect_guard: Callable[[str, str], None] | None = None
    # How many bodies past 1 MiB are held at once, from the read until parsed or refused.
    large_bodies: LargeBodies = field(default_factory=LargeBodies)


def fetch_and_parse(job: FeedJob, ctx: FetchContext) -> FeedOutcome:
    """Fetch, parse and normalize one feed; every failure becomes part of the outcome."""
    with ctx.large_bodies.ticket() as ticket:  # a large body's slot lasts until it is parsed
        return _fetch_and_parse(job, ctx, ticket)


def _fetch_and_parse(job: FeedJob, ctx: FetchContext, ticket: BodyTicket) -> FeedOutcome:
    started = ctx.now()
    t0 = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - t0) * 1000)

    held = _held_back(job, ctx, started)  # before the slot: a held feed waits for no spacing
    if held is not None:
        return held
    try:
        with ctx.gate.slot(job.url):
            held = _held_back(job, ctx, started)  # a 429 may have come while it waited
            if held is not None:
                return held
            fetched = fetch_feed(
                ctx.client,
                job.url,
                job.validators,
                ctx.limits,
                extra_headers=ctx.feed_headers.get(job.name),
                redirect_guard=ctx.redirect_guard,
                large_body=ticket,
            )
    except FeedGoneError as exc:
        return FeedOutcome(job, started, elapsed(), error_kind=exc.kind, error=str(exc), gone=True)
    except FetchError as exc:
        # The host that said 429, which after a redirect is not the configured one.
        ctx.gate.hold(exc.answered_by or job.url, host_wait_s(exc) or 0.0)
        return FeedOutcome(
            job, started, elapsed(), error_kind=exc.kind, error=str(exc),
            retry_after_s=exc.retry_after_s,
        )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - one feed's surprise must not stop the cycle
        logger.exception("unexpected fetch failure feed=%s", job.name)
        return FeedOutcome(job, started, elapsed(), error_kind="internal", error=repr(exc)[:300])
    if fetched.not_modified:
        return FeedOutcome(job, started, elapsed(), fetched=fetched)
    request = ReadRequest(
        body=fetched.body,
        content_type=fetched.content_type,
        url=fetched.url,
        max_items=ctx.max_items,
        fetched_at=started,
        feed_language=job.language,
    )
    size = len(fetched.body)
    # The outcome may wait for the writer a while: it keeps the body's size, not the body.
    fetched = replace(fetched, body=b"")
    try:
        document = ctx.reader.read(request)
    except MonitorError as exc:
        return FeedOutcome(
            job, started, elapsed(), fetched, body_bytes=size, error_kind="parse", error=str(exc)
        )
    if document.is_html:
        links = document.feed_links
        hint = f"; it advertises {', '.join(links[:3])}" if links else ""
        return FeedOutcome(
            job, started, elapsed(), fetched, body_bytes=size, error_kind="not_a_feed",
            error=f"an HTML page was served instead of a feed{hint}",
        )  # fmt: skip
    return FeedOutcome(
        job,
        started,
        elapsed(),
        fetched,
        body_bytes=size,
        entries=document.entries,
        malformed=document.malformed,
    )


def _held_back(job: FeedJob, ctx: FetchContext, started: datetime) -> FeedOutcome | None:
    """The outcome of a feed whose host asked for a wait (a 429), or None to fetch it now."""
    wait_s = ctx.gate.held_for(job.url)
    if wait_s <= 0:
        return None
    error = f"{redact_url(job.url)}: its host asked for a wait (HTTP 429)"
    return FeedOutcome(job, started, 0, error_kind=HELD_BACK, error=error, retry_after_s=wait_s)


@dataclass(frozen=True, slots=True)
class StoreSummary:
    """What storing one outcome did, for the per-poll log line."""

    new_items: int = 0
    flagged: int = 0
    alerts_queued: int = 0


@dataclass
class Writer:
    """Applies worker outcomes to the database: one transaction per feed."""

    assessor: Assessor
    recorder: MeasureRecorder
    rng: random.Random = field(default_factory=random.Random)
    broken_after: timedelta | int = 5  # consecutive failures, or time since last success
    _log_rows: list[FetchLogRow] = field(default_factory=list)

    def begin(self) -> None:
        """Start a transaction's worth of work (forget what a failed one had collected)."""
        self._log_rows.clear()

    def finish(self, session: Session) -> None:
        """Write what this transaction collected for the fetch log, in one statement."""
        repo.log_fetches(session, self._log_rows)
        self._log_rows.clear()

    def store(self, session: Session, outcome: FeedOutcome, now: datetime) -> StoreSummary:
        """Record one feed's poll; call inside `with session.begin()`."""
        return self.store_batch(session, [outcome], now)[0]

    def store_batch(
        self, session: Session, outcomes: Sequence[FeedOutcome], now: datetime
    ) -> list[StoreSummary]:
        """Record several feeds' polls in the caller's transaction; a summary per outcome.

        Dedup, classification and inserts run once for the whole batch; events and alerts
        then follow the items in feed order, as if the feeds had been stored one by one.
        """
        # Replicas store one batch at a time: dedup and clustering must see the batch before,
        # or one story polled from two feeds by two replicas becomes two items, two events.
        locks.hold_for_transaction(session, locks.WRITES)
        ids = [outcome.job.feed_id for outcome in outcomes]
        # Held in a variable: the session's identity map only keeps weak references.
        rows = {row.id: row for row in session.scalars(select(FeedRow).where(FeedRow.id.in_(ids)))}
        stored = [o for o in outcomes if o.entries and o.job.feed_id in rows]
        summaries = self._store_entries(session, rows, stored, now)
        result = []
        for outcome in outcomes:
            row = rows.get(outcome.job.feed_id)
            if row is None:
                result.append(StoreSummary())
                continue
            summary = summaries.get(row.id, StoreSummary())
            self._update_feed_state(session, row, outcome, now)
            self._log_rows.append(_fetch_log(outcome, summary))
            result.append(summary)
        return result

    def _store_entries(
        self,
        session: Session,
        rows: Mapping[int, FeedRow],
        outcomes: Sequence[FeedOutcome],
        now: datetime,
    ) -> dict[int, StoreSummary]:
        feeds = [FeedEntries(o.job.feed_id, o.entries) for o in outcomes]
        if not feeds:
            return {}
        plan = plan_batch(feeds, repo.known_items(session, feeds))
        texts = [
            ItemText(e.title, e.summary, e.language, rows[feed_id].country)
            for feed_id, e in plan.new
        ]
        # Only the new entries are classified: known ones were judged when first stored.
        assessments = self.assessor.assess_many(texts) if texts else []
        item_ids = repo.store_plan(session, plan, assessments, now)
        flagged = [
            FlaggedItem(item_id, feed_id, rows[feed_id].name, entry, assessment)
            for item_id, (feed_id, entry), assessment in zip(
                item_ids, plan.new, assessments, strict=True
            )
            if assessment.relevant
        ]
        recorded = self.recorder.record_batch(session, flagged, now)
        flagged_per_feed: Counter[int] = Counter()
        queued: Counter[int] = Counter()
        item_events: list[tuple[int, int]] = []
        for item, (event_id, alerts) in zip(flagged, recorded, strict=True):
            item_events.append((item.item_id, event_id))
            flagged_per_feed[item.feed_id] += 1
            queued[item.feed_id] += alerts
        repo.set_item_events(session, item_events)
        return {
            feed_id: StoreSummary(new, flagged_per_feed[feed_id], queued[feed_id])
            for feed_id, new in plan.new_per_feed.items()
        }

    def _update_feed_state(
        self, session: Session, row: FeedRow, outcome: FeedOutcome, now: datetime
    ) -> None:
        _end_lease(row, outcome.job)
        if outcome.held_back:
            # Not polled and not failed: its state stays, and it is asked once the wait is over.
            row.next_poll_at = next_poll_after_wait(now, outcome.retry_after_s or 0.0, self.rng)
            return
        row.last_polled_at = now
        interval = timedelta(seconds=row.interval_s)
        if outcome.failed:
            row.consecutive_failures += 1
            row.last_error_kind, row.last_error = outcome.error_kind, outcome.error
            row.gone = outcome.gone
            # 410 Gone is tried once a day: no feed is silenced for good, and a publisher that
            # brings a feed back (or a CDN's wrong 410) is noticed within a day.
            row.next_poll_at = next_poll_after_failure(
                now,
                MAX_BACKOFF if outcome.gone else interval,
                row.consecutive_failures,
                outcome.retry_after_s,
                self.rng,
            )
            if outcome.gone or self._is_broken(row, now):
                feed_broken(self.recorder.outbox, session, row, now)
            return
        if row.broken_alerted:
            feed_recovered(self.recorder.outbox, session, row, now)
        row.consecutive_failures = 0
        row.gone = False
        row.last_error_kind = row.last_error = None
        row.last_success_at = now
        fetched = outcome.fetched
        if fetched is not None:
            row.moved_to = fetched.permanent_redirect  # cleared once the URL is updated
        if fetched is not None and not fetched.not_modified:
            # Only a parsed document says whether the feed is malformed: a 304 or an
            # unchanged body keeps the verdict on the document it stands for.
            row.malformed = outcome.malformed
            row.etag, row.last_modified = fetched.etag, fetched.last_modified
            row.body_hash = fetched.body_hash
        row.next_poll_at = next_poll_after_success(now, interval, self.rng)

    def _is_broken(self, row: FeedRow, now: datetime) -> bool:
        if isinstance(self.broken_after, int):
            return row.consecutive_failures >= self.broken_after
        last_good = row.last_success_at or row.created_at
        return row.consecutive_failures >= 2 and now - last_good >= self.broken_after

    def postpone(self, session: Session, outcome: FeedOutcome, now: datetime) -> None:
        """Reschedule a feed that failed only because this server lost its network."""
        row = session.get(FeedRow, outcome.job.feed_id)
        if row is None:
            return
        _end_lease(row, outcome.job)
        row.last_polled_at = now
        row.last_error_kind = "offline"
        row.last_error = f"server offline during poll ({outcome.error_kind}); not held against feed"
        row.next_poll_at = now + min(timedelta(minutes=5), timedelta(seconds=row.interval_s))
        self._log_rows.append(_fetch_log(outcome, StoreSummary()))


def _end_lease(row: FeedRow, job: FeedJob) -> None:
    """Give back the feed's lease, unless another replica has taken it since this poll was
    leased (this one stalled past the lease): freeing it then would let a third poll start
    while that replica's poll is in flight."""
    if row.lease_holder is None or row.lease_holder == job.lease_holder:
        row.lease_until = row.lease_holder = None


def _fetch_log(outcome: FeedOutcome, summary: StoreSummary) -> FetchLogRow:
    fetched = outcome.fetched
    if outcome.held_back:
        result = HELD_BACK
    elif outcome.failed:
        result = "error"
    elif fetched is not None and fetched.not_modified:
        result = "not_modified"
    else:
        result = "ok"
    return FetchLogRow(
        feed_id=outcome.job.feed_id,
        started_at=outcome.started_at,
        outcome=result,
        http_status=fetched.status if fetched else None,
        bytes=outcome.body_bytes,
        entries=len(outcome.entries),
        new_items=summary.new_items,
        duration_ms=outcome.elapsed_ms,
        error_kind=outcome.error_kind,
        error=outcome.error,
    )
