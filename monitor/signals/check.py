"""Ask the services about one event and turn their answers into verdicts (no database).

Windows: OONI counts the days from the day before the report to today against the 7 days
before that (the baseline); IODA and Radar look from 6 h (IODA) or 24 h (Radar) before
the report to now. A service that is off, unconfigured or failing gives a note, never an
exception: corroboration must cost the alerts nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.countries import country_name
from monitor.signals import verdicts as v
from monitor.signals.http import ServiceError, ServiceUnavailable
from monitor.signals.ioda import IodaClient, IodaEntity
from monitor.signals.ooni import OoniClient, day_after
from monitor.signals.plan import EventFacts, Plan, plan_for
from monitor.signals.radar import OUTAGE_CENTER, RadarClient

logger = logging.getLogger(__name__)

BASELINE_DAYS = 7
IODA_LEAD = timedelta(hours=6)
RADAR_LEAD = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Services:
    """The configured clients; a None client is a service off or not configured, and why."""

    ooni: OoniClient | None = None
    ioda: IodaClient | None = None
    radar: RadarClient | None = None
    min_measurements: int = 20
    off_reasons: tuple[tuple[str, str], ...] = ()

    def off_reason(self, service: str) -> str:
        return dict(self.off_reasons).get(service, "turned off")


class Checker:
    """One check of one event against every service that can speak to it."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def check(
        self, event: EventFacts, now: datetime, only: frozenset[str] | None = None
    ) -> list[v.Verdict]:
        """A verdict per service in the event's plan (`only`: just those services)."""
        plan = plan_for(event)
        found: list[v.Verdict] = []
        for service in plan.services:
            if only is not None and service not in only:
                continue
            found.append(self._one(service, event, plan, now))
        return found

    def _one(self, service: str, event: EventFacts, plan: Plan, now: datetime) -> v.Verdict:
        try:
            if service == "ooni":
                return self._ooni(event, plan, now)
            if service == "ioda":
                return self._ioda(event, plan, now)
            return self._radar(event, now)
        except ServiceUnavailable as exc:
            return v.unavailable(service, exc.reason, exc.retry_at)
        except ServiceError as exc:
            # Answered, but not usefully (bad parameters, token refused): say so, ask later.
            logger.warning("corroboration %s for event %d: %s", service, event.id, exc)
            return v.unavailable(service, str(exc).partition(": ")[2][:120] or "bad answer", None)

    def _ooni(self, event: EventFacts, plan: Plan, now: datetime) -> v.Verdict:
        client, query = self.services.ooni, plan.ooni
        if client is None or query is None:
            return v.not_checked("ooni", self.services.off_reason("ooni"))
        start = (event.reported_at - timedelta(hours=24)).date()
        until = day_after(now.date())
        baseline_start = start - timedelta(days=BASELINE_DAYS)
        window = client.counts(query, start, until)
        baseline = client.counts(query, baseline_start, start)
        hours = max(
            1, round((now - (event.reported_at - timedelta(hours=24))).total_seconds() / 3600)
        )
        return v.ooni_verdict(
            query.label,
            query.country,
            window,
            baseline,
            hours=hours,
            min_measurements=self.services.min_measurements,
            link=query.link(start, until),
        )

    def _ioda(self, event: EventFacts, plan: Plan, now: datetime) -> v.Verdict:
        client, country = self.services.ioda, str(event.country)
        if client is None:
            return v.not_checked("ioda", self.services.off_reason("ioda"))
        entity = IodaEntity("country", country, country_name(country) or country)
        if event.region:
            # A regional cut is asked of the region when IODA knows it by that name.
            entity = client.region(country, event.region) or entity
        start = event.reported_at - IODA_LEAD
        events = client.events(entity, start, now)
        alerts = client.alerts(entity, start, now) if events else []
        where = f"{entity.name or entity.code} ({entity.kind}/{entity.code})"
        return v.ioda_verdict(
            where, events, alerts, shutdown=plan.shutdown, link=entity.link(start, now)
        )

    def _radar(self, event: EventFacts, now: datetime) -> v.Verdict:
        client, country = self.services.radar, str(event.country)
        if client is None:
            return v.not_checked("radar", self.services.off_reason("radar"))
        start = event.reported_at - RADAR_LEAD
        outages = client.outages(country, start, now)
        # Keep the annotations of this country that overlap the window: a cached or
        # replayed answer, or one for an ASN seen in several countries, may hold others.
        outages = [
            o
            for o in outages
            if (not o.locations or country.upper() in o.locations)
            and o.start <= now
            and (o.end is None or o.end >= start)
        ]
        anomalies = [] if outages else client.anomalies(country, start, now)
        return v.radar_verdict(
            country, outages, anomalies, link=f"{OUTAGE_CENTER}?location={country.lower()}"
        )
