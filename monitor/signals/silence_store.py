"""The database side of the silence signal: snapshots of the feeds and their rhythm in a few
grouped queries, open and closed SilenceSignalRows, and `signal` alerts through the outbox.

`SilenceWatch` is held by the runtime; the daemon's `silence` job calls `run` once a minute
with the current config, so an edited `silence:` section or route takes effect at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Float, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from monitor.alerts.markup import country_label
from monitor.alerts.outbox import Outbox
from monitor.config.silence import SilenceSpec
from monitor.domain import AlertMessage
from monitor.signals.silence import (
    Action,
    Baseline,
    CountryView,
    FeedSnapshot,
    OpenSignal,
    Step,
    decide,
    duration_text,
)
from monitor.store.models import FeedRow, ItemRow, SilenceSignalRow

logger = logging.getLogger(__name__)

# The baselines (a window function over weeks of items) change slowly: recomputed this often.
BASELINE_REFRESH = timedelta(hours=1)
# Items are stamped by the writer's clock while this job reads: look back a little further
# than the last run, so an item committed just after it is not missed.
ITEM_OVERLAP = timedelta(minutes=5)
OFFLINE = "offline"  # FeedRow.last_error_kind the poller gives a feed it did not blame
SIGNAL_KIND = "signal"


class _Epoch(FunctionElement[float]):
    """Seconds since 1970 of a timestamp column, in whichever database holds it."""

    type = Float()
    inherit_cache = True


@compiles(_Epoch)
def _epoch_default(element: _Epoch, compiler: SQLCompiler, **kw: Any) -> str:
    return f"EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})"


@compiles(_Epoch, "sqlite")
def _epoch_sqlite(element: _Epoch, compiler: SQLCompiler, **kw: Any) -> str:
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


@dataclass
class _Rhythm:
    """Per-feed baselines and newest items, as last read."""

    baselines: dict[int, Baseline] = field(default_factory=dict)
    last_items: dict[int, datetime] = field(default_factory=dict)
    baselines_at: datetime | None = None
    items_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SilenceReport:
    opened: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()
    open_now: tuple[str, ...] = ()


class SilenceWatch:
    """Runs the detector against the database; keeps the feeds' rhythm between runs."""

    def __init__(self, sessions: sessionmaker[Session], now: Any) -> None:
        self.sessions = sessions
        self.now = now  # Callable[[], datetime]: the runtime's clock
        self._rhythm = _Rhythm()

    def run(self, spec: SilenceSpec, outbox: Outbox) -> SilenceReport:
        """One look at every country: open, keep or close signals, queue their alerts."""
        if not spec.enabled:
            return SilenceReport()
        now: datetime = self.now()
        with self.sessions.begin() as session:
            self._refresh(session, spec, now)
            feeds = feed_snapshots(session, self._rhythm.baselines, self._rhythm.last_items)
            rows = open_signal_rows(session)
            signals = [_open_signal(row) for row in rows]
            steps = decide(feeds, signals, spec, now)
            report = apply_steps(session, steps, {r.id: r for r in rows}, outbox, now)
        return report

    def _refresh(self, session: Session, spec: SilenceSpec, now: datetime) -> None:
        rhythm = self._rhythm
        if rhythm.baselines_at is None or now - rhythm.baselines_at >= BASELINE_REFRESH:
            rhythm.baselines = item_baselines(session, now - spec.baseline, now)
            rhythm.last_items = newest_items(session, now - spec.baseline)
            rhythm.baselines_at = rhythm.items_at = now
            return
        since = (rhythm.items_at or now) - ITEM_OVERLAP
        for feed_id, at in newest_items(session, since).items():
            seen = rhythm.last_items.get(feed_id)
            rhythm.last_items[feed_id] = at if seen is None else max(seen, at)
        rhythm.items_at = now


def item_baselines(session: Session, since: datetime, until: datetime) -> dict[int, Baseline]:
    """Per feed: its items published in [since, until] and the longest gap between two.

    One query: a window function puts each item's gap to the one before it beside it, and
    the grouping keeps the count and the longest. Publication times (not our fetch times)
    give the rhythm, or a first poll's backlog, all fetched at once, would read as no gap.
    """
    at = _Epoch(ItemRow.published)
    previous = func.lag(at).over(partition_by=ItemRow.feed_id, order_by=ItemRow.published)
    gaps = (
        select(ItemRow.feed_id.label("feed_id"), (at - previous).label("gap"))
        .where(ItemRow.published >= since, ItemRow.published <= until)
        .subquery()
    )
    rows = session.execute(
        select(gaps.c.feed_id, func.count(), func.max(gaps.c.gap)).group_by(gaps.c.feed_id)
    )
    return {
        # Whole seconds: SQLite's julianday arithmetic is a few microseconds off.
        int(feed_id): Baseline(int(count), timedelta(seconds=round(float(longest or 0.0))))
        for feed_id, count, longest in rows
    }


def newest_items(session: Session, since: datetime) -> dict[int, datetime]:
    """Per feed: when we last stored a new item of it (fetched since `since`)."""
    rows = session.execute(
        select(ItemRow.feed_id, func.max(ItemRow.fetched_at))
        .where(ItemRow.fetched_at >= since)
        .group_by(ItemRow.feed_id)
    )
    return {int(feed_id): at for feed_id, at in rows if at is not None}


def feed_snapshots(
    session: Session, baselines: dict[int, Baseline], last_items: dict[int, datetime]
) -> list[FeedSnapshot]:
    """Every enabled feed that is not gone, with its rhythm."""
    rows = session.execute(
        select(
            FeedRow.id,
            FeedRow.name,
            FeedRow.country,
            FeedRow.interval_s,
            FeedRow.last_success_at,
            FeedRow.consecutive_failures,
            FeedRow.last_error_kind,
        ).where(FeedRow.enabled.is_(True), FeedRow.gone.is_(False))
    )
    return [
        FeedSnapshot(
            feed_id=fid,
            name=name,
            country=country,
            interval=timedelta(seconds=interval_s),
            last_success_at=last_success,
            consecutive_failures=failures,
            offline=error_kind == OFFLINE,
            last_item_at=last_items.get(fid),
            baseline=baselines.get(fid),
        )
        for fid, name, country, interval_s, last_success, failures, error_kind in rows
    ]


def open_signal_rows(session: Session) -> list[SilenceSignalRow]:
    return list(
        session.scalars(
            select(SilenceSignalRow)
            .where(SilenceSignalRow.closed_at.is_(None))
            .order_by(SilenceSignalRow.id)
        )
    )


@dataclass(frozen=True, slots=True)
class SilenceNotice:
    """An open signal as the web shows it."""

    country: str
    opened_at: datetime
    silent_since: datetime
    feeds_total: int
    feeds_silent: int


def open_signal_of(session: Session, country: str) -> SilenceNotice | None:
    """The country's open silence signal, if any (for the web)."""
    row = session.scalars(
        select(SilenceSignalRow)
        .where(SilenceSignalRow.country == country.upper(), SilenceSignalRow.closed_at.is_(None))
        .order_by(SilenceSignalRow.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return SilenceNotice(
        row.country, row.opened_at, row.silent_since, row.feeds_total, row.feeds_silent
    )


def _open_signal(row: SilenceSignalRow) -> OpenSignal:
    return OpenSignal(row.id, row.country, row.opened_at, row.silent_since, row.clearing_since)


def apply_steps(
    session: Session,
    steps: Sequence[Step],
    rows: dict[int, SilenceSignalRow],
    outbox: Outbox,
    now: datetime,
) -> SilenceReport:
    """Write what `plan` decided and queue its alerts, in the caller's transaction."""
    opened: list[str] = []
    closed: list[str] = []
    for step in steps:
        if step.action is Action.OPEN and step.view is not None:
            row = _new_row(step.view, now)
            session.add(row)
            session.flush()  # its id is the alert's dedup key
            outbox.queue(session, opened_message(step.view), f"signal:silence:{row.id}:open", now)
            opened.append(step.country)
            logger.warning(
                "silence signal opened country=%s silent=%d of %d",
                step.country, row.feeds_silent, row.feeds_total,
            )  # fmt: skip
            continue
        if step.signal is None:
            continue
        row = rows[step.signal.id]
        if step.view is not None:
            row.feeds_total, row.feeds_silent = step.view.judged, len(step.view.silent)
            row.detail = _detail(step.view)
        if step.action is Action.KEEP:
            row.clearing_since = step.clearing_since
            continue
        row.closed_at = now
        closed.append(step.country)
        if step.alert and step.view is not None:
            message = closed_message(step.view, row.silent_since, now)
            outbox.queue(session, message, f"signal:silence:{row.id}:close", now)
        logger.info("silence signal closed country=%s", step.country)
    open_now = sorted({r.country for r in rows.values() if r.closed_at is None} | set(opened))
    return SilenceReport(tuple(opened), tuple(closed), tuple(open_now))


def _new_row(view: CountryView, now: datetime) -> SilenceSignalRow:
    return SilenceSignalRow(
        country=view.country,
        opened_at=now,
        silent_since=view.silent_since or now,
        closed_at=None,
        feeds_total=view.judged,
        feeds_silent=len(view.silent),
        detail=_detail(view),
        clearing_since=None,
    )


def _detail(view: CountryView) -> dict[str, Any]:
    """What the web and the alert list: which sources, since when, why."""
    return {
        "silent": [
            {
                "feed_id": v.feed_id,
                "name": v.name,
                "state": str(v.state),
                "quiet_since": v.quiet_since.isoformat() if v.quiet_since else None,
            }
            for v in view.silent
        ],
        "others_judged": view.others_judged,
        "others_silent": view.others_silent,
    }


def _hhmm(when: datetime) -> str:
    return when.strftime("%H:%M UTC")


def opened_message(view: CountryView) -> AlertMessage:
    """'Possible shutdown: Myanmar (MM) — 5 of 6 sources silent since 06:10 UTC; …'."""
    since = view.silent_since
    since_text = f" since {_hhmm(since)}" if since else ""
    title = (
        f"Possible shutdown: {country_label(view.country)} — {len(view.silent)} of "
        f"{view.judged} sources silent{since_text}; other countries' sources answer normally"
    )
    lines = tuple(_source_line(v.name, str(v.state), v.quiet_since) for v in view.silent)
    return _message(view.country, title, lines)


def closed_message(view: CountryView, silent_since: datetime, now: datetime) -> AlertMessage:
    """'Myanmar (MM): sources back (4 of 6 answering) after 3 h 20 min'."""
    title = (
        f"{country_label(view.country)}: sources back ({view.answering} of {view.judged} "
        f"answering) after {duration_text(now - silent_since)}"
    )
    still = tuple(_source_line(v.name, str(v.state), v.quiet_since) for v in view.silent)
    return _message(view.country, title, still)


def _source_line(name: str, state: str, since: datetime | None) -> str:
    how = "not answering" if state == "unanswered" else "no new items"
    when = f" since {since:%Y-%m-%d %H:%M} UTC" if since else ""
    return f"{name}: {how}{when}"


def _message(country: str, title: str, lines: tuple[str, ...]) -> AlertMessage:
    # "shutdown" as its category: quiet hours let it through unless a route says otherwise.
    return AlertMessage(
        kind=SIGNAL_KIND,
        title=title,
        link=None,
        source="silence signal (monitor's own polling)",
        country=country,
        categories=("shutdown",),
        stage="none",
        score=1.0,
        matched_terms=(),
        evidence=(),
        published=None,
        extra_lines=lines,
    )
