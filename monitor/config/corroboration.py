"""The `corroboration:` section of feeds.yaml: which network-measurement services are asked,
where they live, how often and how hard.

OONI and IODA need no account, so they are on by default. Cloudflare Radar needs an API token:
it is asked only when `radar.token` names one (a `${VAR}` placeholder, filled from the
environment like route URLs) or `MONITOR_RADAR_TOKEN` is set; otherwise its verdict is a
"not checked" note. The clients and verdicts are in `monitor.signals`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from monitor.config.values import (
    PLACEHOLDER,
    HttpUrl,
    between,
    check_placeholders,
    expand_placeholders,
    parse_duration,
)

# Read when `radar.token` is not set, so a deployment can switch Radar on without editing
# feeds.yaml.
RADAR_TOKEN_VAR = "MONITOR_RADAR_TOKEN"


CacheTtl = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(between(timedelta(0), timedelta(days=2))),
]
Spacing = Annotated[float, Field(ge=0.0, le=60.0)]
Recheck = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(between(timedelta(minutes=10), timedelta(days=14))),
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OoniSpec(_Frozen):
    """OONI's aggregation API (no account; a per-IP quota of server time)."""

    enabled: bool = True
    base_url: HttpUrl = "https://api.ooni.io"
    cache_ttl: CacheTtl = timedelta(hours=1)
    min_interval: Spacing = 1.0
    # Fewer usable measurements (failures excluded) than this: "too few measurements".
    min_measurements: Annotated[int, Field(ge=1, le=100_000)] = 20


class IodaSpec(_Frozen):
    """IODA API v2 (Georgia Tech; no account, no published rate limit: self-throttled)."""

    enabled: bool = True
    base_url: HttpUrl = "https://api.ioda.inetintel.cc.gatech.edu/v2"
    cache_ttl: CacheTtl = timedelta(minutes=10)
    min_interval: Spacing = 1.0


class RadarSpec(_Frozen):
    """Cloudflare Radar (needs an API token with Account › Radar › Read)."""

    enabled: bool = True
    base_url: HttpUrl = "https://api.cloudflare.com/client/v4"
    # A ${VAR} placeholder, never the token itself: feeds.yaml is not a secret store.
    token: str | None = None
    cache_ttl: CacheTtl = timedelta(hours=1)
    min_interval: Spacing = 0.5

    @field_validator("token")
    @classmethod
    def _token_placeholder(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if not PLACEHOLDER.fullmatch(value.strip()):
            # A ValueError: the loader then shows the message without the value (a secret).
            raise ValueError(
                "write the token as a ${VAR} placeholder (e.g. ${CLOUDFLARE_RADAR_TOKEN}) "
                "and set it in the environment; value not shown"
            )
        return check_placeholders(value.strip(), info)

    def resolved_token(self, env: Mapping[str, str]) -> str | None:
        """The token from the environment; None: Radar is not configured (not checked)."""
        if not self.enabled:
            return None
        if self.token is None:
            return env.get(RADAR_TOKEN_VAR) or None
        if not all(env.get(var) for var in PLACEHOLDER.findall(self.token)):
            return None
        return expand_placeholders(self.token, env)[0]


class CorroborationSpec(_Frozen):
    """On by default for the services that need no secret."""

    enabled: bool = True
    # Checks after the first, counted from when the measure was reported (stage change):
    # measurement data lags, OONI needs probes to run, Radar curates its log later.
    rechecks: Annotated[tuple[Recheck, ...], Field(max_length=6)] = (
        timedelta(hours=6),
        timedelta(hours=24),
    )
    # A service that failed (429, 5xx, timeout) is asked again for the event after this.
    retry_after: Annotated[
        timedelta,
        BeforeValidator(parse_duration),
        AfterValidator(between(timedelta(minutes=1), timedelta(days=1))),
    ] = timedelta(minutes=30)
    # Events reported longer ago than this when first seen by the checker are left alone
    # (a database upgraded with months of events is not sent to the services at once).
    max_event_age: Annotated[
        timedelta,
        BeforeValidator(parse_duration),
        AfterValidator(between(timedelta(hours=1), timedelta(days=30))),
    ] = timedelta(days=3)
    events_per_run: Annotated[int, Field(ge=1, le=500)] = 10
    timeout: Annotated[float, Field(gt=0.0, le=120.0)] = 20.0
    ooni: OoniSpec = OoniSpec()
    ioda: IodaSpec = IodaSpec()
    radar: RadarSpec = RadarSpec()
