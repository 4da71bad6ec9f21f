"""IODA API v2: outage events and alerts for a country or region (BGP, active probing,
telescope, Google traffic).

Every answer is the v2 envelope `{type, metadata, requestParameters, error, perf, data,
copyright}`; a bad request is HTTP 400 with `error` set and `data: null`, so `error` is
checked even on 200. The dashboard always sends `ignoreMethods=*.sarima`; so does this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitor.signals.http import ServiceError, ServiceHttp

ATTRIBUTION = "IODA (ioda.inetintel.cc.gatech.edu), © Georgia Tech Research Corporation"
DASHBOARD = "https://ioda.inetintel.cc.gatech.edu"
# How people name IODA's datasources.
DATASOURCE_LABELS = {
    "bgp": "BGP",
    "ping-slash24": "active probing",
    "merit-nt": "telescope",
    "gtr": "Google traffic",
}
# Datasources that see reachability directly; the telescope alone is weak evidence.
STRONG_DATASOURCES = frozenset({"bgp", "ping-slash24", "gtr"})


@dataclass(frozen=True, slots=True)
class IodaEvent:
    """One outage event (codf format)."""

    datasource: str
    start: datetime
    duration_s: int
    score: float
    location: str


@dataclass(frozen=True, slots=True)
class IodaAlert:
    """One alert: a datasource's value against its history at a time."""

    datasource: str
    time: datetime
    level: str  # critical, warning, normal
    value: float
    history: float

    @property
    def ratio(self) -> float | None:
        return self.value / self.history if self.history else None


@dataclass(frozen=True, slots=True)
class IodaEntity:
    """What IODA is asked about: ("country", "IR") or ("region", "4416")."""

    kind: str
    code: str
    name: str = ""

    def link(self, start: datetime, end: datetime) -> str:
        return f"{DASHBOARD}/{self.kind}/{self.code}?from={_ts(start)}&until={_ts(end)}"


class IodaClient:
    """A thin client for `/outages/events`, `/outages/alerts` and `/entities/query`."""

    def __init__(self, http: ServiceHttp) -> None:
        self.http = http

    def _window(self, entity: IodaEntity, start: datetime, end: datetime) -> dict[str, str | int]:
        return {
            "entityType": entity.kind,
            "entityCode": entity.code,
            "from": _ts(start),
            "until": _ts(end),
            "ignoreMethods": "*.sarima",
        }

    def events(self, entity: IodaEntity, start: datetime, end: datetime) -> list[IodaEvent]:
        params = {**self._window(entity, start, end), "format": "codf"}
        found = []
        for item in _data(self.http.get_json("/outages/events", params)):
            try:
                found.append(
                    IodaEvent(
                        datasource=str(item.get("datasource", "")),
                        start=datetime.fromtimestamp(int(item["start"]), UTC),
                        duration_s=int(item.get("duration") or 0),
                        score=float(item.get("score") or 0.0),
                        location=str(item.get("location", "")),
                    )
                )
            except (KeyError, TypeError, ValueError):
                continue  # one malformed item must not hide the others
        return found

    def alerts(self, entity: IodaEntity, start: datetime, end: datetime) -> list[IodaAlert]:
        found = []
        for item in _data(self.http.get_json("/outages/alerts", self._window(entity, start, end))):
            try:
                # Swagger says historicValue; the server's normalizer emits historyValue.
                history = item.get("historyValue", item.get("historicValue"))
                found.append(
                    IodaAlert(
                        datasource=str(item.get("datasource", "")),
                        time=datetime.fromtimestamp(int(item["time"]), UTC),
                        level=str(item.get("level", "")),
                        value=float(item["value"]),
                        history=float(history or 0.0),
                    )
                )
            except (KeyError, TypeError, ValueError):
                continue
        return found

    def region(self, country: str, name: str) -> IodaEntity | None:
        """The IODA region of a country whose name matches, if it knows one."""
        params = {"entityType": "region", "relatedTo": f"country/{country}", "search": name}
        for item in _data(self.http.get_json("/entities/query", params)):
            code, found = item.get("code"), str(item.get("name", ""))
            if code is not None and found.casefold() == name.casefold():
                return IodaEntity("region", str(code), found)
        return None


def _data(envelope: Any) -> list[dict[str, Any]]:
    if not isinstance(envelope, dict):
        raise ServiceError("ioda: response is not an envelope")
    if envelope.get("error"):
        raise ServiceError(f"ioda: {str(envelope['error'])[:200]}")
    data = envelope.get("data")
    if data is None:
        return []
    if not isinstance(data, list):
        raise ServiceError("ioda: data is not a list")
    return [item for item in data if isinstance(item, dict)]


def _ts(when: datetime) -> int:
    return int(when.timestamp())
