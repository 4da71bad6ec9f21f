"""Pure rules: from a service's figures to a verdict, its one-line summary and its figures.

Verdicts (stored in `corroborations.verdict`):
  corroborated      the data shows the measure (OONI: most measurements anomalous; IODA: an
                    outage in a reachability datasource; Radar: a government-directed outage)
  partial           some sign of it (OONI: 20-50 % anomalous; IODA: telescope only; Radar: a
                    verified traffic anomaly without a curated outage)
  not_corroborated  enough data and no sign, or a cause other than a government order: the
                    data contradicts the report
  no_data           too few measurements, or nothing in data that would not show it anyway
  unavailable       the service did not answer (checked again later)
  not_checked       the service is off or not configured, or cannot speak to the event

Wording says "consistent with", never "proves": an OONI anomaly is not proof of censorship.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.countries import country_name
from monitor.signals import ioda, ooni, radar
from monitor.signals.ioda import DATASOURCE_LABELS, STRONG_DATASOURCES, IodaAlert, IodaEvent
from monitor.signals.ooni import OoniCounts
from monitor.signals.radar import RadarAnomaly, RadarOutage

CORROBORATED = "corroborated"
PARTIAL = "partial"
NOT_CORROBORATED = "not_corroborated"
NO_DATA = "no_data"
UNAVAILABLE = "unavailable"
NOT_CHECKED = "not_checked"
# Verdicts that change what a recipient should believe: an update alert when reached.
DECISIVE = frozenset({CORROBORATED, NOT_CORROBORATED})

ATTRIBUTIONS = {"ooni": ooni.ATTRIBUTION, "ioda": ioda.ATTRIBUTION, "radar": radar.ATTRIBUTION}
SERVICE_NAMES = {"ooni": "OONI", "ioda": "IODA", "radar": "Cloudflare Radar"}

BLOCKED_SHARE = 0.5
PARTIAL_SHARE = 0.2
NEW_RISE = 0.3  # window share minus baseline share: a block that is new since the report


@dataclass(frozen=True, slots=True)
class Verdict:
    """One service's verdict on one event at one check."""

    service: str
    verdict: str
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)
    link: str | None = None
    before_report: bool = False
    retry_at: datetime | None = None  # unavailable: when the service may be asked again

    @property
    def attribution(self) -> str:
        return ATTRIBUTIONS[self.service]

    def line(self) -> str:
        """'OONI: 71 of 71 ...' as alerts and the CLI show it."""
        return f"{SERVICE_NAMES[self.service]}: {self.summary}"


def not_checked(service: str, why: str) -> Verdict:
    return Verdict(service, NOT_CHECKED, f"not checked ({why})")


def unavailable(service: str, reason: str, retry_at: datetime | None) -> Verdict:
    return Verdict(service, UNAVAILABLE, f"service unreachable ({reason})", retry_at=retry_at)


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{round(share * 100)}%"


def _counts(counts: OoniCounts) -> dict[str, int]:
    return {
        "anomaly": counts.anomaly,
        "confirmed": counts.confirmed,
        "failure": counts.failure,
        "ok": counts.ok,
        "measurements": counts.total,
        "days": counts.days,
    }


def ooni_verdict(
    label: str,
    country: str,
    window: OoniCounts,
    baseline: OoniCounts,
    *,
    hours: int,
    min_measurements: int,
    link: str,
) -> Verdict:
    """OONI: share of usable (not failed) measurements that were anomalous or confirmed.

    The baseline (the 7 days before the report) tells a long-standing block from a new one.
    """
    figures: dict[str, Any] = {
        "window": _counts(window),
        "baseline": _counts(baseline),
        "window_hours": hours,
        "share": window.share,
        "baseline_share": baseline.share,
    }
    what = f"{label} measurements in {country}"
    failed = f", {window.failure} failed" if window.failure else ""
    if window.usable < min_measurements:
        summary = (
            f"no measurement data: {window.usable} usable {what} in the last {hours} h "
            f"(at least {min_measurements} needed){failed}"
        )
        return Verdict("ooni", NO_DATA, summary, figures, link)
    head = f"{window.blocked} of {window.usable} {what} anomalous in the last {hours} h{failed}"
    base = (
        f"7-day baseline: {baseline.blocked} of {baseline.usable}"
        if baseline.usable
        else "no 7-day baseline"
    )
    share = window.share or 0.0
    if window.confirmed > 0:
        verdict, meaning = CORROBORATED, f"{window.confirmed} confirmed by a blockpage"
    elif share >= BLOCKED_SHARE:
        verdict, meaning = CORROBORATED, "consistent with blocking"
    elif share >= PARTIAL_SHARE:
        verdict, meaning = PARTIAL, "partial: some networks"
    else:
        verdict, meaning = NOT_CORROBORATED, "no sign of blocking"
    before = False
    if verdict in (CORROBORATED, PARTIAL) and baseline.usable >= min_measurements:
        base_share = baseline.share or 0.0
        before = base_share >= PARTIAL_SHARE and share - base_share < NEW_RISE
        meaning += "; already blocked before this report" if before else "; new since the baseline"
    return Verdict("ooni", verdict, f"{head} ({base}) – {meaning}", figures, link, before)


def ioda_verdict(
    where: str,
    events: Sequence[IodaEvent],
    alerts: Sequence[IodaAlert],
    *,
    shutdown: bool,
    link: str,
) -> Verdict:
    """IODA: an outage event from a reachability datasource corroborates a shutdown."""
    sources = sorted({e.datasource for e in events})
    drops = [a for a in alerts if a.level in ("critical", "warning")]
    figures: dict[str, Any] = {
        "events": len(events),
        "datasources": sources,
        "max_score": max((e.score for e in events), default=0.0),
        "alerts": len(drops),
        "min_ratio": {
            ds: round(min(r for a in drops if a.datasource == ds and (r := a.ratio) is not None), 3)
            for ds in sorted({a.datasource for a in drops if a.ratio is not None})
        },
    }
    if not events:
        if shutdown:
            return Verdict(
                "ioda",
                NOT_CORROBORATED,
                f"no outage events for {where} in the window",
                figures,
                link,
            )
        # Mild throttling rarely shows in reachability data: absence says little.
        return Verdict(
            "ioda",
            NO_DATA,
            f"no outage events for {where} (throttling seldom shows)",
            figures,
            link,
        )
    since = min(e.start for e in events)
    named = ", ".join(DATASOURCE_LABELS.get(ds, ds) for ds in sources)
    worst = min(drops, key=lambda a: a.ratio if a.ratio is not None else 1.0, default=None)
    if worst is not None and worst.ratio is not None:
        level = worst.level
        what = DATASOURCE_LABELS.get(worst.datasource, worst.datasource)
        head = f"{level} drop in {what} for {where} since {since:%H:%M} UTC {since:%d %b}"
        head += f" ({_pct(worst.ratio)} of normal)"
    else:
        head = f"outage for {where} since {since:%H:%M} UTC {since:%d %b}"
    head += f"; {len(sources)} datasource{'s' if len(sources) != 1 else ''}: {named}"
    verdict = CORROBORATED if STRONG_DATASOURCES & set(sources) else PARTIAL
    if verdict == PARTIAL:
        head += " (telescope only: weak)"
    return Verdict("ioda", verdict, head, figures, link)


def radar_verdict(
    country: str,
    outages: Sequence[RadarOutage],
    anomalies: Sequence[RadarAnomaly],
    *,
    link: str,
) -> Verdict:
    """Radar: a curated outage's cause corroborates (government-directed) or contradicts."""
    where = country_name(country) or country
    figures: dict[str, Any] = {
        "outages": [
            {"id": o.id, "cause": o.cause, "scope": o.scope, "start": o.start.isoformat()}
            for o in outages
        ],
        "verified_anomalies": len(anomalies),
    }
    government = [o for o in outages if o.cause in ("GOVERNMENT_DIRECTED", "BLOCKING")]
    if government:
        o = government[0]
        span = (
            f"{o.start:%d %b %H:%M}–{o.end:%H:%M} UTC"
            if o.end
            else f"since {o.start:%d %b %H:%M} UTC"
        )
        hours = f", {(o.end - o.start).total_seconds() / 3600:.1f} h" if o.end else ""
        nets = f", {', '.join(o.networks[:4])}" if o.networks else ""
        scope = o.scope.lower() or "outage"
        return Verdict(
            "radar",
            CORROBORATED,
            f"curated: government-directed {scope} outage in {where}{nets}, {span}{hours}",
            figures,
            o.link or link,
        )
    if outages:
        o = outages[0]
        cause = o.cause.replace("_", " ").lower()
        return Verdict(
            "radar",
            NOT_CORROBORATED,
            f"curated outage in {where} attributed to {cause}, not to a government order",
            figures,
            o.link or link,
        )
    if anomalies:
        return Verdict(
            "radar",
            PARTIAL,
            f"{len(anomalies)} verified traffic anomal{'y' if len(anomalies) == 1 else 'ies'} "
            f"in {where}, no curated outage yet",
            figures,
            link,
        )
    return Verdict(
        "radar", NO_DATA, f"no outage annotation or verified anomaly for {where}", figures, link
    )
