"""The corroborate job: which events are due, ask the services, store the verdicts, and queue
an update alert when a verdict changes what recipients should believe.

It runs beside alerting: the new-event alert has gone out long before (it never waits for
this). HTTP calls are made outside any database transaction, so a slow service holds no
lock; each event's verdicts and the alert they earn are written in one transaction.

Schedule per (event, service): a first check as soon as the job sees the event, then at the
report time + each `rechecks` offset (6 h, 24 h); a service that failed is asked again after
`retry_after` (or its Retry-After) until the last re-check is a day behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session, sessionmaker

from monitor.alerts.outbox import Outbox
from monitor.alerts.render import MEASUREMENTS_CHANGED
from monitor.clock import Clock
from monitor.config.corroboration import CorroborationSpec
from monitor.domain import AlertMessage
from monitor.signals import verdicts as v
from monitor.signals.check import Checker, Services
from monitor.signals.http import ServiceHttp
from monitor.signals.ioda import IodaClient
from monitor.signals.ooni import OoniClient
from monitor.signals.plan import CHECKED_STAGES, EventFacts, plan_for
from monitor.signals.radar import RadarClient
from monitor.store.models import CorroborationRow, EventRow

logger = logging.getLogger(__name__)

GIVE_UP_AFTER = timedelta(hours=24)  # past the last re-check: a failing service is let go


@dataclass(frozen=True, slots=True)
class Due:
    """An event to check, and which services (None: all of its plan - a first check)."""

    event: EventFacts
    services: frozenset[str] | None


def build_services(
    spec: CorroborationSpec, client: httpx.Client, clock: Clock, env: Mapping[str, str]
) -> Services:
    """The clients the config turns on; the others give their reason as a "not checked" note."""
    off: list[tuple[str, str]] = []

    def http(name: str, base: str, ttl: timedelta, spacing: float, **headers: str) -> ServiceHttp:
        return ServiceHttp(name, client, base, clock, ttl, spacing, headers)

    ooni = ioda = radar = None
    if spec.enabled and spec.ooni.enabled:
        o = spec.ooni
        ooni = OoniClient(http("ooni", o.base_url, o.cache_ttl, o.min_interval))
    else:
        off.append(("ooni", "turned off"))
    if spec.enabled and spec.ioda.enabled:
        i = spec.ioda
        ioda = IodaClient(http("ioda", i.base_url, i.cache_ttl, i.min_interval))
    else:
        off.append(("ioda", "turned off"))
    token = spec.radar.resolved_token(env) if spec.enabled else None
    if token:
        r = spec.radar
        auth = {"Authorization": f"Bearer {token}"}
        radar = RadarClient(http("radar", r.base_url, r.cache_ttl, r.min_interval, **auth))
    else:
        off.append(("radar", "turned off" if not spec.radar.enabled else "no API token configured"))
    return Services(ooni, ioda, radar, spec.ooni.min_measurements, tuple(off))


class Corroborator:
    """Runs due checks; one instance per daemon (its clients keep caches and cool-downs)."""

    def __init__(
        self,
        spec: CorroborationSpec,
        services: Services,
        outbox: Outbox,
        clock: Clock,
        *,
        target_label: Callable[[Sequence[str]], str] | None = None,
    ) -> None:
        self.spec = spec
        self.checker = Checker(services)
        self.outbox = outbox
        self.clock = clock
        self.target_label = target_label

    def run(self, sessions: sessionmaker[Session], stop: Callable[[], bool] = lambda: False) -> int:
        """Check what is due; returns how many events were checked."""
        if not self.spec.enabled:
            return 0
        now = self.clock.now()
        with sessions() as session:
            due = self.due(session, now)
        done = 0
        for item in due:
            if stop():
                break
            found = self.checker.check(item.event, self.clock.now(), item.services)
            with sessions.begin() as session:
                self.record(session, item.event, found, self.clock.now())
            done += 1
        return done

    def due(self, session: Session, now: datetime) -> list[Due]:
        """Events never checked (recent, of a stage measurements could show), then re-checks."""
        limit = self.spec.events_per_run
        checked = exists().where(CorroborationRow.event_id == EventRow.id)
        fresh = session.scalars(
            select(EventRow)
            .where(
                ~checked,
                EventRow.country.is_not(None),
                EventRow.stage.in_([str(s) for s in CHECKED_STAGES]),
                EventRow.status != "dismissed",
                EventRow.last_seen >= now - self.spec.max_event_age,
            )
            .order_by(EventRow.last_seen.desc())
            .limit(limit)
        ).all()
        found = [Due(facts_of(row), None) for row in fresh if plan_for(facts_of(row)).services]
        rows = session.execute(
            select(CorroborationRow.event_id, CorroborationRow.service)
            .where(CorroborationRow.next_check_at <= now)
            .order_by(CorroborationRow.next_check_at)
            .limit(limit * 3)
        ).all()
        services: dict[int, set[str]] = {}
        for event_id, service in rows:
            services.setdefault(event_id, set()).add(service)
        for event_id, names in list(services.items())[: max(0, limit - len(found))]:
            event = session.get(EventRow, event_id)
            if event is not None:
                found.append(Due(facts_of(event), frozenset(names)))
        return found

    def record(
        self, session: Session, event: EventFacts, found: Sequence[v.Verdict], now: datetime
    ) -> int:
        """Store the verdicts with their next check; queue an update alert if one earned it."""
        changed: list[v.Verdict] = []
        for verdict in found:
            previous = latest(session, event.id, verdict.service)
            session.execute(
                update(CorroborationRow)
                .where(
                    CorroborationRow.event_id == event.id,
                    CorroborationRow.service == verdict.service,
                )
                .values(next_check_at=None)
            )
            session.add(
                CorroborationRow(
                    event_id=event.id,
                    service=verdict.service,
                    checked_at=now,
                    verdict=verdict.verdict,
                    before_report=verdict.before_report,
                    summary=verdict.summary,
                    figures=verdict.figures,
                    link=_web_link(verdict.link),
                    attribution=verdict.attribution,
                    next_check_at=self.next_check(event, verdict, now),
                )
            )
            if _changes_belief(previous, verdict):
                changed.append(verdict)
        session.flush()
        if not changed or event.status == "dismissed":
            return 0
        return self._queue(session, event, changed, now)

    def next_check(self, event: EventFacts, verdict: v.Verdict, now: datetime) -> datetime | None:
        schedule = [event.reported_at + offset for offset in self.spec.rechecks]
        if verdict.verdict == v.NOT_CHECKED:
            return None
        if verdict.verdict == v.UNAVAILABLE:
            last = max(schedule, default=event.reported_at)
            retry = max(now + self.spec.retry_after, verdict.retry_at or now)
            return retry if retry <= last + GIVE_UP_AFTER else None
        return next((when for when in sorted(schedule) if when > now), None)

    def _queue(
        self, session: Session, event: EventFacts, changed: Sequence[v.Verdict], now: datetime
    ) -> int:
        words = {v.CORROBORATED: "corroborate", v.NOT_CORROBORATED: "contradict"}
        heads = sorted({words[x.verdict] for x in changed})
        who = ", ".join(v.SERVICE_NAMES[x.service] for x in changed)
        headline = f"{MEASUREMENTS_CHANGED}{' and '.join(heads)} the report ({who})"
        lines = [headline, *(x.line() for x in changed)]
        lines += [f"Data: {link}" for x in changed if (link := _web_link(x.link))]
        lines.append(
            "Sources of the data: " + "; ".join(dict.fromkeys(x.attribution for x in changed))
        )
        label = self.target_label(event.targets) if self.target_label else ""
        message = AlertMessage(
            kind="update",
            title=event.title,
            link=None,
            source="network measurements",
            country=event.country,
            categories=event.categories,
            stage=event.stage,
            score=event.max_score,
            matched_terms=(),
            evidence=(),
            published=None,
            other_sources=max(event.item_count - 1, 0),
            extra_lines=tuple(lines),
            targets=(label,) if label else (),
            event_id=event.id,
        )
        # Once per route and verdict: a verdict that flips back and forth alerts once each way.
        key = f"event:{event.id}:measurements:" + ",".join(
            f"{x.service}={x.verdict}" for x in sorted(changed, key=lambda x: x.service)
        )
        return self.outbox.queue(session, message, key, now, event_id=event.id)


def _web_link(link: str | None) -> str | None:
    """Only http(s) links are kept: Radar's linkedUrl is curated text, shown as an href."""
    return link if link and link.startswith(("https://", "http://")) else None


def _changes_belief(previous: CorroborationRow | None, verdict: v.Verdict) -> bool:
    """Decisive now and not the last decisive verdict (unavailable/no data do not count)."""
    if verdict.verdict not in v.DECISIVE:
        return False
    return previous is None or previous.verdict != verdict.verdict


def latest(session: Session, event_id: int, service: str) -> CorroborationRow | None:
    """The service's last verdict on the event that said something (not a failure)."""
    return session.scalars(
        select(CorroborationRow)
        .where(
            CorroborationRow.event_id == event_id,
            CorroborationRow.service == service,
            CorroborationRow.verdict.not_in([v.UNAVAILABLE, v.NOT_CHECKED]),
        )
        .order_by(CorroborationRow.checked_at.desc(), CorroborationRow.id.desc())
        .limit(1)
    ).first()


def latest_verdicts(session: Session, event_id: int) -> list[CorroborationRow]:
    """Each service's newest row for the event (for the CLI, the web page and alerts)."""
    rows = session.scalars(
        select(CorroborationRow)
        .where(CorroborationRow.event_id == event_id)
        .order_by(CorroborationRow.checked_at.desc(), CorroborationRow.id.desc())
    ).all()
    newest: dict[str, CorroborationRow] = {}
    for row in rows:
        newest.setdefault(row.service, row)
    order = {"ooni": 0, "ioda": 1, "radar": 2}
    return sorted(newest.values(), key=lambda r: order.get(r.service, 9))


def facts_of(row: EventRow) -> EventFacts:
    return EventFacts(
        id=row.id,
        country=row.country,
        categories=tuple(row.categories),
        targets=tuple(row.targets),
        stage=row.stage,
        reported_at=row.stage_changed_at or row.first_seen,
        title=row.title,
        status=row.status,
        max_score=row.max_score,
        item_count=row.item_count,
    )
