"""Cloudflare Radar: the curated outage log (with its cause) and verified traffic anomalies.

Needs a Bearer token (Account › Radar › Read); 1200 requests per 5 minutes, then 429 with
`retry-after`. Envelope `{"success", "errors", "result"}`. Licence of the data: CC BY-NC 4.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.signals.http import ServiceError, ServiceHttp

ATTRIBUTION = "Cloudflare Radar (radar.cloudflare.com), data CC BY-NC 4.0"
OUTAGE_CENTER = "https://radar.cloudflare.com/outage-center"


@dataclass(frozen=True, slots=True)
class RadarOutage:
    """One annotation of the Outage Center."""

    id: str | None
    start: datetime
    end: datetime | None
    cause: str  # GOVERNMENT_DIRECTED, POWER_OUTAGE, CABLE_CUT, ...
    scope: str  # NATIONWIDE, REGIONAL, NETWORK, PLATFORM
    description: str
    networks: tuple[str, ...]
    link: str | None
    locations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RadarAnomaly:
    """One automatically detected traffic anomaly."""

    start: datetime
    end: datetime | None
    status: str
    kind: str


class RadarClient:
    """A thin client for `/radar/annotations/outages` and `/radar/traffic_anomalies`."""

    def __init__(self, http: ServiceHttp) -> None:
        self.http = http

    def outages(self, country: str, start: datetime, end: datetime) -> list[RadarOutage]:
        params = {"location": country, "dateStart": _iso(start), "dateEnd": _iso(end)}
        params["format"] = "json"
        found = []
        for item in _result(
            self.http.get_json("/radar/annotations/outages", params), "annotations"
        ):
            # Placeholders like {"...": "..."} and items without dates are not annotations.
            if "startDate" not in item:
                continue
            try:
                outage = item.get("outage") or {}
                names = [str(a.get("name")) for a in item.get("asnsDetails") or [] if a.get("name")]
                found.append(
                    RadarOutage(
                        id=str(item["id"]) if item.get("id") is not None else None,
                        start=_parse(item["startDate"]),
                        end=_parse(item["endDate"]) if item.get("endDate") else None,
                        cause=str(outage.get("outageCause") or "UNKNOWN"),
                        scope=str(outage.get("outageType") or ""),
                        description=str(item.get("description") or item.get("scope") or ""),
                        networks=tuple(names or (f"AS{a}" for a in item.get("asns") or [])),
                        link=item.get("linkedUrl") or None,
                        locations=tuple(str(c).upper() for c in item.get("locations") or []),
                    )
                )
            except (KeyError, TypeError, ValueError):
                continue
        return found

    def anomalies(self, country: str, start: datetime, end: datetime) -> list[RadarAnomaly]:
        params = {
            "location": country,
            "dateStart": _iso(start),
            "dateEnd": _iso(end),
            "status": "VERIFIED",
            "format": "json",
        }
        found = []
        data = self.http.get_json("/radar/traffic_anomalies", params)
        for item in _result(data, "trafficAnomalies"):
            try:
                found.append(
                    RadarAnomaly(
                        start=_parse(item["startDate"]),
                        end=_parse(item["endDate"]) if item.get("endDate") else None,
                        status=str(item.get("status", "")),
                        kind=str(item.get("type", "")),
                    )
                )
            except (KeyError, TypeError, ValueError):
                continue
        return found


def _result(envelope: Any, key: str) -> list[dict[str, Any]]:
    if not isinstance(envelope, dict):
        raise ServiceError("radar: response is not an envelope")
    if envelope.get("success") is False:
        errors = envelope.get("errors") or []
        raise ServiceError(f"radar: {str(errors)[:200]}")
    result = envelope.get("result") or {}
    items = result.get(key) if isinstance(result, dict) else None
    if not isinstance(items, list):
        raise ServiceError(f"radar: no {key} in result")
    return [item for item in items if isinstance(item, dict)]


def _parse(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
