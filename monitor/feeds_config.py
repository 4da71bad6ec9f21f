"""feeds.yaml: the admins' list of feeds and alert routes, validated once with file:line errors.

`load_config(path, env)` reads the file with ruamel.yaml's round-trip loader (which remembers
the line of every key and list item), validates it with frozen pydantic models, and turns any
pydantic error into a `ConfigError` such as
``feeds.yaml:42: feeds[7] (BBC Vietnamese).interval: "5x" is not a duration (use 90s, 15m, ...)``.
`${VAR}` placeholders (route URLs, feed headers) are filled in from `env` at load time; the
filled-in values live in private attributes, never in repr(), str() or model_dump().
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self, Union, get_args, get_origin
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

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
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from monitor.domain import Category, Stage
from monitor.errors import ConfigError


def _words(text: str) -> frozenset[str]:
    """The whitespace-separated words of text, as a set (for code tables)."""
    return frozenset(text.split())


# ISO 3166-1 alpha-2 (officially assigned) plus XK (Kosovo, user-assigned but widely used).
COUNTRY_CODES = _words(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR
    BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ
    EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW
    GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY
    KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV
    MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY
    QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG
    TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM
    ZW XK
    """
)

# ISO 639-1 two-letter language codes.
LANGUAGE_CODES = _words(
    """
    aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy
    da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu
    hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb
    lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om
    or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw
    ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
    """
)

# Apprise schemes whose host part is a server name (safe to show); other schemes carry tokens.
_HOST_SCHEMES = _words(
    "mailto mailtos json jsons xml xmls form forms http https ntfy ntfys matrix matrixs "
    "mmost mmosts rocket rockets gotify gotifys"
)
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DURATION_PART = re.compile(r"(\d+)\s*([smhd])")
_DURATION_FULL = re.compile(r"(?:\d+\s*[smhd]\s*)+")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class FeedKind(StrEnum):
    """What sort of source a feed is."""

    NEWS = "news"
    RIGHTS_ORG = "rights-org"
    SEARCH = "search"


class AlertKind(StrEnum):
    """Which alerts a route receives."""

    NEW = "new"
    UPDATE = "update"
    FEED_HEALTH = "feed_health"


class Delivery(StrEnum):
    """Send each alert at once, or collect them into a scheduled digest."""

    INSTANT = "instant"
    DIGEST = "digest"


class MessageFormat(StrEnum):
    """Body format of the notification; auto lets Apprise pick per service."""

    AUTO = "auto"
    MARKDOWN = "markdown"
    HTML = "html"
    TEXT = "text"


class _LocatedError(ValueError):
    """A ValueError that knows the field path (relative to the model) it is about."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


# ---------------------------------------------------------------- scalar parsers


def parse_duration(value: object) -> timedelta:
    """Read "90s", "15m", "2h", "1d" (or "1h30m") or an int of seconds as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit():
            return timedelta(seconds=int(text))
        if _DURATION_FULL.fullmatch(text):
            parts = _DURATION_PART.findall(text)
            return timedelta(seconds=sum(int(n) * _UNIT_SECONDS[u] for n, u in parts))
    raise PydanticCustomError(
        "duration", '"{value}" is not a duration (use 90s, 15m, 2h, 1d)', {"value": str(value)}
    )


def format_duration(value: timedelta) -> str:
    """Write a timedelta the way feeds.yaml spells it ("1h30m", "90s")."""
    seconds = int(value.total_seconds())
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(out) or "0s"


def _between(low: timedelta, high: timedelta) -> Any:
    """Build a validator that keeps a duration within [low, high]."""

    def check(value: timedelta) -> timedelta:
        if not low <= value <= high:
            raise PydanticCustomError(
                "duration_range",
                "{value} is outside {low}..{high}",
                {
                    "value": format_duration(value),
                    "low": format_duration(low),
                    "high": format_duration(high),
                },
            )
        return value

    return check


def _country(value: object) -> str:
    """Upper-case and check an ISO 3166-1 alpha-2 code."""
    code = value.strip().upper() if isinstance(value, str) else ""
    if code not in COUNTRY_CODES:
        raise PydanticCustomError(
            "country",
            '"{value}" is not an ISO 3166-1 alpha-2 country code (e.g. VN, KH, LA, TH, MM)',
            {"value": str(value)},
        )
    return code


def _language(value: object) -> str:
    """Lower-case and check an ISO 639-1 code."""
    code = value.strip().lower() if isinstance(value, str) else ""
    if code not in LANGUAGE_CODES:
        raise PydanticCustomError(
            "language",
            '"{value}" is not an ISO 639-1 language code (e.g. vi, en, km, lo, th, my)',
            {"value": str(value)},
        )
    return code


def _http_url(value: str) -> str:
    """Accept only absolute http(s) URLs with a host."""
    url = value.strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
        parts = urlsplit("")
    if parts.scheme.lower() not in ("http", "https") or any(c.isspace() for c in url):
        raise PydanticCustomError(
            "http_url", '"{value}" is not an http:// or https:// URL', {"value": url}
        )
    if not host:
        raise PydanticCustomError("http_url", '"{value}" has no host', {"value": url})
    return url


def _timezone(value: str) -> str:
    """Check an IANA timezone name, suggesting the closest known one."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(value, sorted(available_timezones()), n=1)
        hint = f'did you mean "{close[0]}"?' if close else "e.g. Asia/Ho_Chi_Minh, UTC"
        raise PydanticCustomError(
            "timezone", '"{value}" is not a known timezone ({hint})', {"value": value, "hint": hint}
        ) from None
    return value


def _cron(value: str) -> str:
    """Check a five-field crontab expression with APScheduler's parser."""
    try:
        CronTrigger.from_crontab(value, timezone=UTC)
    except ValueError as exc:
        raise PydanticCustomError(
            "cron",
            '"{value}" is not a cron expression (minute hour day month weekday, '
            'e.g. "0 8 * * *"): {why}',
            {"value": value, "why": str(exc)},
        ) from None
    return value


def _clock_time(value: object) -> time:
    """Read "HH:MM" as a time of day."""
    if isinstance(value, time):
        return value
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip()) if isinstance(value, str) else None
    if match and int(match[1]) < 24 and int(match[2]) < 60:
        return time(int(match[1]), int(match[2]))
    raise PydanticCustomError(
        "clock_time", '"{value}" is not a time of day (use HH:MM, e.g. 22:00)', {"value": value}
    )


def _broken_after(value: object) -> timedelta | int:
    """Read feed_broken_after: a duration string, or an int count of failed polls."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise PydanticCustomError("broken_after", "failure count must be at least 1", {})
        return value
    check = _between(timedelta(minutes=1), timedelta(days=30))
    duration: timedelta = check(parse_duration(value))
    return duration


def _env_of(info: ValidationInfo) -> Mapping[str, str] | None:
    """The environment passed in the validation context, if any."""
    context = info.context
    if isinstance(context, Mapping):
        env = context.get("env")
        if isinstance(env, Mapping):
            return env
    return None


def _check_placeholders(value: str, info: ValidationInfo) -> str:
    """Fail when a ${VAR} in value is not set in the environment being loaded."""
    env = _env_of(info)
    if env is not None:
        for var in _PLACEHOLDER.findall(value):
            if not env.get(var):
                raise PydanticCustomError(
                    "env_missing", "environment variable {var} is not set", {"var": var}
                )
    return value


def expand_placeholders(template: str, env: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """Fill ${VAR} from env; return the text and the values used (the secrets)."""
    used: list[str] = []

    def fill(match: re.Match[str]) -> str:
        value = env.get(match[1])
        if not value:
            raise ConfigError(f"environment variable {match[1]} is not set")
        used.append(value)
        return value

    return _PLACEHOLDER.sub(fill, template), tuple(used)


def redact_url(url: str) -> str:
    """Show an Apprise URL's scheme (and host, when it is a server name), never its secrets."""
    text = url.strip()
    if _PLACEHOLDER.fullmatch(text):
        return text
    scheme, sep, _ = text.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        return "***"
    scheme = scheme.lower()
    if scheme in _HOST_SCHEMES:
        try:
            host = urlsplit(text).hostname
        except ValueError:
            host = None
        if host and not _PLACEHOLDER.search(host):
            return f"{scheme}://{host}/***"
    return f"{scheme}://***"


def redact_secrets(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret in text with ***, longest first."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Country = Annotated[str, BeforeValidator(_country)]
Language = Annotated[str, BeforeValidator(_language)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
Interval = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(_between(timedelta(seconds=60), timedelta(days=7))),
]
Timezone = Annotated[str, AfterValidator(_timezone)]
Cron = Annotated[str, AfterValidator(_cron)]
ClockTime = Annotated[time, BeforeValidator(_clock_time)]
Score = Annotated[float, Field(ge=0.0, le=1.0)]
BrokenAfter = Annotated[timedelta | int, BeforeValidator(_broken_after)]

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
            if not _HEADER_NAME.fullmatch(key):
                raise _LocatedError((key,), f'"{key}" is not a valid HTTP header name')
            try:
                _check_placeholders(text, info)
            except PydanticCustomError as exc:
                raise _LocatedError((key,), exc.message()) from None
        return value

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo) -> Self:
        """Fill in header placeholders from the load-time environment."""
        env = _env_of(info)
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
        AfterValidator(_between(timedelta(seconds=1), timedelta(days=7))),
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
            raise _LocatedError(("end",), "quiet hours start and end are equal")
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
        return _check_placeholders(value, info)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> Self:
        """Require a digest schedule for digest routes; resolve and sanity-check the URL."""
        if self.delivery is Delivery.DIGEST and self.digest is None:
            raise _LocatedError(
                ("digest",),
                "delivery: digest needs a digest block with a cron, "
                'e.g. digest: {cron: "0 8 * * *"}',
            )
        env = _env_of(info)
        if env is not None:
            resolved, used = expand_placeholders(self.url, env)
            if not _SCHEME.match(resolved):
                vars_ = ", ".join(f"${{{v}}}" for v in _PLACEHOLDER.findall(self.url))
                where = f" after filling in {vars_}" if vars_ else ""
                raise _LocatedError(
                    ("url",), f"is not an Apprise URL (scheme://...){where}; value not shown"
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
            raise _LocatedError(
                (section, index, field),
                f"duplicate {what}; already used by {section}[{seen[key]}]",
            )
        seen[key] = index


# ---------------------------------------------------------------- loading


def config_fingerprint(path: Path) -> str:
    """A hash of the file's bytes, so a reload can skip an unchanged file cheaply."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def load_config(path: Path, env: Mapping[str, str]) -> MonitorConfig:
    """Read and validate feeds.yaml; raise ConfigError naming file:line and field."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not valid UTF-8") from None
    return parse_config_text(text, env, str(path))


def parse_config_text(
    text: str, env: Mapping[str, str], source_name: str = "feeds.yaml"
) -> MonitorConfig:
    """Validate feeds.yaml content given as text; source_name appears in error messages."""
    document = _parse_yaml(text, source_name)
    try:
        return MonitorConfig.model_validate(_to_plain(document), context={"env": env})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, document, source_name)) from None


def _parse_yaml(text: str, source_name: str) -> CommentedMap:
    """Parse with line tracking; reject syntax errors, empty files and non-mappings."""
    try:
        document = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{source_name}:{line}: YAML syntax error: {problem}") from None
    except YAMLError as exc:
        raise ConfigError(f"{source_name}: YAML error: {exc}") from None
    if document is None:
        raise ConfigError(f"{source_name}:1: the file is empty; expected feeds: and alerts:")
    if not isinstance(document, CommentedMap):
        raise ConfigError(f"{source_name}:1: the top level must be a mapping (feeds:, alerts:)")
    return document


def _to_plain(node: Any) -> Any:
    """Turn ruamel's round-trip containers and scalar subclasses into plain Python values."""
    if isinstance(node, CommentedMap):
        return {_to_plain(k): _to_plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        return [_to_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    for plain in (str, int, float):
        if isinstance(node, plain):
            return plain(node)
    return node


def _describe(exc: ValidationError, document: CommentedMap, source_name: str) -> str:
    """One line per pydantic error: FILE:LINE: path: message, sorted by line."""
    lines: dict[str, int] = {}
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        origin = (error.get("ctx") or {}).get("error")
        if isinstance(origin, _LocatedError):
            loc += origin.loc
        line = _line_of(document, loc)
        where = _path_of(document, loc)
        text = f"{source_name}:{line}: {where}: {_message(error, loc)}"
        lines.setdefault(text, line)
    return "\n".join(sorted(lines, key=lambda t: lines[t]))


def _walk(document: Any, loc: tuple[Any, ...]) -> Iterator[tuple[Any, Any, int | None]]:
    """Follow loc into the document, yielding (part, node or None, line) for each part."""
    node = document
    for part in loc:
        child, line = None, None
        if isinstance(node, CommentedMap) and part in node:
            child, line = node[part], node.lc.key(part)[0] + 1
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            child, line = node[part], node.lc.item(part)[0] + 1
        yield part, child, line
        if line is not None:
            node = child


def _line_of(document: CommentedMap, loc: tuple[Any, ...]) -> int:
    """The 1-based line of the deepest part of loc present in the document."""
    best: int = document.lc.line + 1
    for _, _, line in _walk(document, loc):
        if line is not None:
            best = int(line)
    return best


def _path_of(document: CommentedMap, loc: tuple[Any, ...]) -> str:
    """Spell loc as feeds[7] (BBC Vietnamese).interval, dropping pydantic's union tags."""
    out = ""
    steps = list(_walk(document, loc))
    for i, (part, child, line) in enumerate(steps):
        if line is None and i < len(steps) - 1:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
            name = child.get("name") if isinstance(child, CommentedMap) else None
            if isinstance(name, str):
                out += f" ({name})"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _message(error: Any, loc: tuple[Any, ...]) -> str:
    """A readable message for one pydantic error."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return _unknown_key(str(loc[-1]), _known_keys(loc[:-1]))
    if kind == "missing":
        return f'required key "{loc[-1]}" is missing'
    msg = str(error["msg"])
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if isinstance(error.get("ctx"), dict) and kind in _CUSTOM_TYPES:
        return msg
    shown = repr(error.get("input"))
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{msg} (got {shown})"


_CUSTOM_TYPES = _words(
    "duration duration_range country language http_url timezone cron clock_time "
    "broken_after env_missing"
)


def _unknown_key(key: str, known: list[str]) -> str:
    """Name an unknown key and suggest the closest known one."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f'unknown key "{key}" (did you mean "{close[0]}"?)'
    return f'unknown key "{key}" (known keys: {", ".join(known)})'


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model that sits at loc."""
    model: type[BaseModel] | None = MonitorConfig
    for part in loc:
        if model is None:
            return []
        if isinstance(part, str) and part in model.model_fields:
            model = _model_in(model.model_fields[part].annotation)
    return list(model.model_fields) if model is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The config model inside an annotation such as tuple[FeedSpec, ...] or X | None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = get_origin(annotation)
    if origin in (tuple, list, Union, Annotated) or str(origin) == "<class 'types.UnionType'>":
        for arg in get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
