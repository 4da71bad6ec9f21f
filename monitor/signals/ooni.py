"""OONI's aggregation API: how many measurements of one test in one country were anomalous.

`GET /api/v1/aggregation` returns four mutually exclusive counts per row (anomaly,
confirmed, failure, ok) that sum to measurement_count. Validation errors come back as
`{"msg": ...}`, sometimes with HTTP 200, so the body is checked, not only the status.
Licence of the data: CC BY-NC-SA 4.0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from monitor.signals.http import ServiceError, ServiceHttp

ATTRIBUTION = "OONI (ooni.org), data CC BY-NC-SA 4.0"
EXPLORER = "https://explorer.ooni.org/chart/mat"


@dataclass(frozen=True, slots=True)
class OoniCounts:
    """Summed counts of one query (a window or a baseline)."""

    anomaly: int = 0
    confirmed: int = 0
    failure: int = 0
    ok: int = 0
    total: int = 0
    days: int = 0  # days with at least one measurement

    @property
    def usable(self) -> int:
        """Measurements that could tell anything: failed ones are left out."""
        return self.total - self.failure

    @property
    def blocked(self) -> int:
        return self.anomaly + self.confirmed

    @property
    def share(self) -> float | None:
        return self.blocked / self.usable if self.usable else None


@dataclass(frozen=True, slots=True)
class OoniQuery:
    """One aggregation query: a test (or tests) in a country, optionally for some domains."""

    country: str
    test_names: tuple[str, ...]
    domains: tuple[str, ...] = ()
    label: str = ""  # how people name it: "Telegram"

    def params(self, since: date, until: date) -> dict[str, str]:
        """Query parameters; `until` is exclusive at day grain, so it is the day after."""
        params = {
            "probe_cc": self.country,
            "test_name": ",".join(self.test_names),
            "since": since.isoformat(),
            "until": until.isoformat(),
            "axis_x": "measurement_start_day",
            "time_grain": "day",
        }
        if self.domains:
            params["domain"] = ",".join(self.domains)
        return params

    def link(self, since: date, until: date) -> str:
        """The same figures on OONI Explorer's chart page."""
        params = self.params(since, until)
        params.pop("time_grain")
        return f"{EXPLORER}?{urlencode(params)}"


class OoniClient:
    """A thin client for `/api/v1/aggregation`."""

    def __init__(self, http: ServiceHttp) -> None:
        self.http = http

    def counts(self, query: OoniQuery, since: date, until: date) -> OoniCounts:
        """Counts of the days since..until (exclusive) for the query's country."""
        data = self.http.get_json("/api/v1/aggregation", query.params(since, until))
        rows = _rows(data)
        return sum_rows(rows, query.country, since, until)


def _rows(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, dict):
        raise ServiceError("ooni: response is not an object")
    if "result" not in data:
        raise ServiceError(f"ooni: {str(data.get('msg', 'no result in response'))[:200]}")
    result = data["result"]
    if isinstance(result, dict):
        return [result]
    if isinstance(result, list):
        return [row for row in result if isinstance(row, dict)]
    raise ServiceError("ooni: result is neither a row nor a list of rows")


def sum_rows(rows: Sequence[dict[str, Any]], country: str, since: date, until: date) -> OoniCounts:
    """Add up the rows of one country within since..until (exclusive).

    The rows are filtered again here: the API's dates are day-granular, and a row that names
    another country or day than asked for must not count (replayed or cached answers).
    """
    anomaly = confirmed = failure = ok = total = 0
    days: set[str] = set()
    for row in rows:
        cc = row.get("probe_cc")
        if cc is not None and str(cc).upper() != country.upper():
            continue
        day = str(row.get("measurement_start_day", ""))[:10]
        if day:
            try:
                when = date.fromisoformat(day)
            except ValueError:
                continue
            if not since <= when < until:
                continue
            days.add(day)
        anomaly += int(row.get("anomaly_count", 0))
        confirmed += int(row.get("confirmed_count", 0))
        failure += int(row.get("failure_count", 0))
        ok += int(row.get("ok_count", 0))
        total += int(row.get("measurement_count", 0))
    return OoniCounts(anomaly, confirmed, failure, ok, total, len(days))


def day_after(when: date) -> date:
    return when + timedelta(days=1)
