"""feeds.yaml: the admins' list of feeds and alert routes, validated once with file:line errors.

`load_config(path, env)` reads the file, validates it with the frozen pydantic models below and
turns any pydantic error into a `ConfigError` such as
``feeds.yaml:42: feeds[7] (BBC Vietnamese).interval: "5x" is not a duration (use 90s, 15m, ...)``.
`${VAR}` placeholders (route URLs, feed headers) are filled in from `env` at load time; the
filled-in values live in private attributes, never in repr(), str() or model_dump().

This is the public module and holds the models. Imports run one way, so there is no cycle:
`config_values` (code tables, scalar parsers, enums, redaction, Annotated field types) <-
`config_loader` (YAML -> any pydantic model, errors mapped to file:line; the root model is an
argument, not an import) <- `feeds_config`. Names moved out of here are re-exported (`__all__`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from monitor.config.corroboration import CorroborationSpec
from monitor.config.loader import config_fingerprint, read_config_file, validate_yaml
from monitor.config.retention import RetentionSpec
from monitor.config.silence import SilenceSpec
from monitor.config.values import (
    COUNTRY_CODES,
    HEADER_NAME,
    LANGUAGE_CODES,
    PLACEHOLDER,
    SCHEME,
    URL_START,
    AlertKind,
    BrokenAfter,
    ClockTime,
    Country,
    Cron,
    Delivery,
    FeedKind,
    HttpUrl,
    Interval,
    Language,
    LocatedError,
    MessageFormat,
    Name,
    Score,
    Tag,
    Timezone,
    between,
    check_placeholders,
    env_of,
    expand_placeholders,
    format_duration,
    parse_duration,
    redact_secrets,
    redact_url,
)
from monitor.domain import Category, Stage

__all__ = [
    "COUNTRY_CODES",
    "DEFAULT_INTERVAL",
    "DEFAULT_MIN_SCORE",
    "LANGUAGE_CODES",
    "AlertKind",
    "BrokenAfter",
    "ClockTime",
    "Country",
    "Cron",
    "Defaults",
    "Delivery",
    "DigestSpec",
    "FeedKind",
    "FeedSpec",
    "HttpUrl",
    "Interval",
    "Language",
    "MessageFormat",
    "MonitorConfig",
    "Name",
    "QuietHours",
    "RateLimit",
    "RetentionSpec",
    "RouteSpec",
    "Score",
    "Tag",
    "Timezone",
    "config_fingerprint",
    "expand_placeholders",
    "format_duration",
    "load_config",
    "parse_config_text",
    "parse_duration",
    "redact_secrets",
    "redact_url",
]


DEFAULT_INTERVAL = timedelta(minutes=15)
DEFAULT_MIN_SCORE = 0.5


# ---------------------------------------------------------------- models


class _Frozen(BaseModel):
    """Base for every config model: immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class FeedSpec(_Frozen):
    """One feed to poll, as an admin wrote it in feeds.yaml."""

    name: Name
    url: HttpUrl
    country: Country | None = None
    language: Language | None = None
    interval: Interval = DEFAULT_INTERVAL
    tags: tuple[Tag, ...] = ()
    enabled: bool = True
    kind: FeedKind | None = None
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    _resolved_headers: dict[str, str] | None = PrivateAttr(default=None)
    _secrets: tuple[str, ...] = PrivateAttr(default=())

    @field_validator("headers")
    @classmethod
    def _headers_ok(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        """Check header names and that their ${VAR} placeholders are set."""
        for key, text in value.items():
            if not HEADER_NAME.fullmatch(key):
                raise LocatedError((key,), f'"{key}" is not a valid HTTP header name')
            try:
                check_placeholders(text, info)
            except PydanticCustomError as exc:
                raise LocatedError((key,), exc.message()) from None
        return value

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo) -> Self:
        """Fill in header placeholders from the load-time environment."""
        env = env_of(info)
        if env is not None:
            resolved = {k: expand_placeholders(v, env) for k, v in self.headers.items()}
            self._resolved_headers = {k: text for k, (text, _) in resolved.items()}
            self._secrets = tuple(s for _, used in resolved.values() for s in used)
        return self

    def resolved_headers(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """Extra request headers with ${VAR} filled in (from env if given, else load time)."""
        if env is not None:
            return {k: expand_placeholders(v, env)[0] for k, v in self.headers.items()}
        if self._resolved_headers is not None:
            return dict(self._resolved_headers)
        return {k: expand_placeholders(v, {})[0] for k, v in self.headers.items()}

    def secret_values(self) -> tuple[str, ...]:
        """The environment values filled into headers, for log redaction."""
        return self._secrets

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Show header names only, never their values."""
        yield from super().__repr_args__()
        yield "headers", sorted(self.headers)


class DigestSpec(_Frozen):
    """When a route's collected alerts are sent as one message."""

    cron: Cron
    timezone: Timezone = "UTC"

    def trigger(self) -> CronTrigger:
        """The APScheduler trigger for this digest."""
        return CronTrigger.from_crontab(self.cron, timezone=ZoneInfo(self.timezone))


class RateLimit(_Frozen):
    """At most `count` instant alerts per `per`; the overflow goes to the next digest."""

    count: Annotated[int, Field(ge=1)]
    per: Annotated[
        timedelta,
        BeforeValidator(parse_duration),
        AfterValidator(between(timedelta(seconds=1), timedelta(days=7))),
    ]


class QuietHours(_Frozen):
    """A nightly window in which instant alerts wait (except the listed categories)."""

    start: ClockTime
    end: ClockTime
    timezone: Timezone = "UTC"
    except_categories: tuple[Category, ...] = (Category.SHUTDOWN,)

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        """Reject a window that starts and ends at the same minute."""
        if self.start == self.end:
            raise LocatedError(("end",), "quiet hours start and end are equal")
        return self

    def contains(self, moment: datetime) -> bool:
        """Whether an aware datetime falls inside the quiet window."""
        local = moment.astimezone(ZoneInfo(self.timezone)).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class RouteSpec(_Frozen):
    """One alert destination (an Apprise URL) with the filters deciding what it receives."""

    name: Name
    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] = Field(repr=False)
    min_score: Score = DEFAULT_MIN_SCORE
    countries: tuple[Country, ...] = ()
    categories: tuple[Category, ...] = ()
    stages: tuple[Stage, ...] = ()
    kinds: Annotated[tuple[AlertKind, ...], Field(min_length=1)] = (
        AlertKind.NEW,
        AlertKind.UPDATE,
    )
    delivery: Delivery = Delivery.INSTANT
    digest: DigestSpec | None = None
    rate_limit: RateLimit | None = None
    quiet_hours: QuietHours | None = None
    format: MessageFormat = MessageFormat.AUTO
    _resolved_url: str | None = PrivateAttr(default=None)
    _secrets: tuple[str, ...] = PrivateAttr(default=())

    @field_validator("url")
    @classmethod
    def _url_placeholders(cls, value: str, info: ValidationInfo) -> str:
        """Fail early, at the url line, when a ${VAR} in the URL is not set."""
        return check_placeholders(value, info)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> Self:
        """Require a digest schedule for digest routes; resolve and sanity-check the URL."""
        if self.delivery is Delivery.DIGEST and self.digest is None:
            raise LocatedError(
                ("digest",),
                "delivery: digest needs a digest block with a cron, "
                'e.g. digest: {cron: "0 8 * * *"}',
            )
        env = env_of(info)
        if env is not None:
            resolved, used = expand_placeholders(self.url, env)
            vars_ = ", ".join(f"${{{v}}}" for v in PLACEHOLDER.findall(self.url))
            where = f" after filling in {vars_}" if vars_ else ""
            if not SCHEME.match(resolved):
                raise LocatedError(
                    ("url",), f"is not an Apprise URL (scheme://...){where}; value not shown"
                )
            count = len(URL_START.findall(resolved))
            if count > 1:
                # Apprise would take them all, but a failure of one would retry the route's
                # send to every one of them, and the others would get the alert twice.
                raise LocatedError(
                    ("url",),
                    f"holds {count} Apprise URLs{where}; give each its own route (an alert is "
                    "sent, and retried, per route); value not shown",
                )
            self._resolved_url = resolved
            self._secrets = (*used, resolved)
        return self

    @property
    def display_url(self) -> str:
        """The URL with secrets hidden, e.g. "slack://***" or "mailtos://smtp.example.org/***"."""
        return redact_url(self._resolved_url or self.url)

    def resolved_url(self, env: Mapping[str, str] | None = None) -> str:
        """The Apprise URL with ${VAR} filled in; hand it to Apprise, never to a log."""
        if env is not None:
            return expand_placeholders(self.url, env)[0]
        if self._resolved_url is not None:
            return self._resolved_url
        return expand_placeholders(self.url, {})[0]

    def secret_values(self) -> tuple[str, ...]:
        """The resolved URL and environment values in it, for log redaction."""
        return self._secrets

    def redacted(self) -> dict[str, Any]:
        """A JSON-ready summary of the route, the URL shown as display_url."""
        data = self.model_dump(mode="json")
        data["url"] = self.display_url
        return data

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Show the redacted URL instead of the URL."""
        for key, value in super().__repr_args__():
            yield key, value
            if key == "name":
                yield "url", self.display_url


class Defaults(_Frozen):
    """Values used where a feed or route does not set its own."""

    interval: Interval = DEFAULT_INTERVAL
    min_score: Score = DEFAULT_MIN_SCORE
    user_agent_contact: Annotated[str, StringConstraints(strip_whitespace=True)] | None = None
    max_items_per_poll: Annotated[int, Field(ge=1, le=10_000)] = 200
    feed_broken_after: BrokenAfter = timedelta(hours=6)
    allow_private_addresses: bool = False


class MonitorConfig(_Frozen):
    """The whole of feeds.yaml."""

    defaults: Defaults = Defaults()
    feeds: tuple[FeedSpec, ...] = ()
    alerts: tuple[RouteSpec, ...] = ()
    corroboration: CorroborationSpec = CorroborationSpec()
    silence: SilenceSpec = SilenceSpec()
    retention: RetentionSpec = RetentionSpec()

    @model_validator(mode="before")
    @classmethod
    def _apply_defaults(cls, data: Any) -> Any:
        """Copy defaults.interval / defaults.min_score into feeds and routes that omit them."""
        if not isinstance(data, Mapping) or not isinstance(data.get("defaults"), Mapping):
            return data
        defaults = data["defaults"]
        out = dict(data)
        try:
            interval = Defaults(interval=defaults.get("interval", DEFAULT_INTERVAL)).interval
            if "feeds" in data:
                out["feeds"] = _fill(data["feeds"], "interval", interval)
        except ValidationError:
            pass  # reported at defaults.interval
        try:
            score = Defaults(min_score=defaults.get("min_score", DEFAULT_MIN_SCORE)).min_score
            if "alerts" in data:
                out["alerts"] = _fill(data["alerts"], "min_score", score)
        except ValidationError:
            pass  # reported at defaults.min_score
        return out

    @model_validator(mode="after")
    def _unique(self) -> Self:
        """Reject duplicate feed names, feed URLs and route names."""
        _first_duplicate("feeds", "name", [f.name.casefold() for f in self.feeds], "feed name")
        _first_duplicate("feeds", "url", [_url_key(f.url) for f in self.feeds], "feed URL")
        _first_duplicate("alerts", "name", [r.name.casefold() for r in self.alerts], "route name")
        return self

    def enabled_feeds(self) -> tuple[FeedSpec, ...]:
        """Feeds the scheduler should poll."""
        return tuple(f for f in self.feeds if f.enabled)

    def feed(self, name: str) -> FeedSpec | None:
        """The feed with this name, if any."""
        return next((f for f in self.feeds if f.name == name), None)

    def route(self, name: str) -> RouteSpec | None:
        """The alert route with this name, if any."""
        return next((r for r in self.alerts if r.name == name), None)

    def secret_values(self) -> tuple[str, ...]:
        """Every resolved secret in the config, for `redact_secrets` in log filters."""
        found = [s for r in self.alerts for s in r.secret_values()]
        found += [s for f in self.feeds for s in f.secret_values()]
        return tuple(dict.fromkeys(found))


def _fill(items: Any, key: str, value: object) -> Any:
    """Return items with `key: value` added to each mapping that lacks it."""
    if not isinstance(items, list | tuple):
        return items
    return [
        {**item, key: value} if isinstance(item, Mapping) and key not in item else item
        for item in items
    ]


def _url_key(url: str) -> str:
    """A URL reduced for duplicate detection (case-insensitive scheme and host)."""
    parts = urlsplit(url)
    return parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()).geturl()


def _first_duplicate(section: str, field: str, keys: list[str], what: str) -> None:
    """Raise a located error at the second occurrence of any repeated key."""
    seen: dict[str, int] = {}
    for index, key in enumerate(keys):
        if key in seen:
            raise LocatedError(
                (section, index, field),
                f"duplicate {what}; already used by {section}[{seen[key]}]",
            )
        seen[key] = index


# ---------------------------------------------------------------- loading


def load_config(path: Path, env: Mapping[str, str]) -> MonitorConfig:
    """Read and validate feeds.yaml; raise ConfigError naming file:line and field."""
    return parse_config_text(read_config_file(path), env, str(path))


def parse_config_text(
    text: str, env: Mapping[str, str], source_name: str = "feeds.yaml"
) -> MonitorConfig:
    """Validate feeds.yaml content given as text; source_name appears in error messages."""
    return validate_yaml(text, MonitorConfig, {"env": env}, source_name)
