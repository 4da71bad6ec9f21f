"""feeds.yaml values: code tables, enums, scalar parsers and the Annotated field types.

Bottom of the three config modules; imports only `monitor.errors` from monitor. The import
graph runs one way, so there is no cycle:

    config_values  <-  config_loader  (YAML text -> validated model, errors at file:line)
    config_values  <-  feeds_config   (the pydantic models; the public module, re-exports both)

Here live the ISO country/language code sets, duration parsing and formatting, `${VAR}`
placeholder expansion, URL/secret redaction, the validators for single values (country,
language, URL, timezone, cron, HH:MM) and the enums the models use. `LocatedError` and
`CUSTOM_ERROR_TYPES` are the contract with the loader: the first carries a field path out of a
model validator, the second names error types whose messages are already written for people.
Every name that used to be public in `monitor.config.schema` is still importable from there.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, time, timedelta
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StringConstraints,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

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

# Apprise schemes whose host part is a server name (safe to show); other schemes carry tokens
# there (slack://TokenA/..., discord://webhook_id/..., tgram://bot_token/...).
HOST_SCHEMES = _words(
    "mailto mailtos json jsons xml xmls form forms http https ntfy ntfys gotify gotifys "
    "matrix matrixs mmost mmosts rocket rockets apprise apprises mqtt mqtts nctalk nctalks "
    "ncloud nclouds zulip"
)
# Schemes whose path segments are topics: whoever knows one reads the alerts, however short.
# `ntfy://topic` has no server at all, and its "host" is the topic.
TOPIC_SCHEMES = _words("ntfy ntfys")
_MATRIX_SCHEMES = _words("matrix matrixs")
_ROCKET_SCHEMES = _words("rocket rockets")
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DURATION_PART = re.compile(r"(\d+)\s*([smhd])")
_DURATION_FULL = re.compile(r"(?:\d+\s*[smhd]\s*)+")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S")
# Where an Apprise URL begins in a string that may list several (Apprise splits on spaces,
# commas and semicolons).
URL_START = re.compile(r"(?:^|[\s,;])[A-Za-z][A-Za-z0-9+.-]*://")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class LocatedError(ValueError):
    """A ValueError that knows the field path (relative to the model) it is about."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


# ---------------------------------------------------------------- enums


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
    # Most of a country's sources silent at once (a possible shutdown), and their return.
    SIGNAL = "signal"


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


# ---------------------------------------------------------------- scalar parsers


# Longer than any setting allows, and far below timedelta's own limit (999,999,999 days).
_DURATION_MAX_S = 100 * 365 * 86400


def parse_duration(value: object) -> timedelta:
    """Read "90s", "15m", "2h", "1d" (or "1h30m") or an int of seconds as a timedelta."""
    if isinstance(value, timedelta):
        return value
    seconds: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        text = value.strip().lower()
        if text.isascii() and text.isdigit():
            seconds = int(text)
        elif _DURATION_FULL.fullmatch(text):
            parts = _DURATION_PART.findall(text)
            seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds is None:
        raise PydanticCustomError(
            "duration", '"{value}" is not a duration (use 90s, 15m, 2h, 1d)', {"value": str(value)}
        )
    if abs(seconds) > _DURATION_MAX_S:
        raise PydanticCustomError(
            "duration", '"{value}" is too long a duration', {"value": str(value)[:40]}
        )
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Write a timedelta the way feeds.yaml spells it ("1h30m", "90s")."""
    seconds = int(value.total_seconds())
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(out) or "0s"


def between(low: timedelta, high: timedelta) -> Any:
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
    check = between(timedelta(minutes=1), timedelta(days=30))
    duration: timedelta = check(parse_duration(value))
    return duration


def env_of(info: ValidationInfo) -> Mapping[str, str] | None:
    """The environment passed in the validation context, if any."""
    context = info.context
    if isinstance(context, Mapping):
        env = context.get("env")
        if isinstance(env, Mapping):
            return env
    return None


def check_placeholders(value: str, info: ValidationInfo) -> str:
    """Fail when a ${VAR} in value is not set in the environment being loaded."""
    env = env_of(info)
    if env is not None:
        for var in PLACEHOLDER.findall(value):
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

    return PLACEHOLDER.sub(fill, template), tuple(used)


def redact_url(url: str) -> str:
    """Show an Apprise URL's scheme (and host, when it is a server name), never its secrets."""
    text = url.strip()
    if PLACEHOLDER.fullmatch(text):
        return text
    scheme, sep, _ = text.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        return "***"
    scheme = scheme.lower()
    host = shown_host(scheme, text)
    if host and not PLACEHOLDER.search(host):
        return f"{scheme}://{host}/***"
    return f"{scheme}://***"


def shown_host(scheme: str, url: str) -> str | None:
    """The host of an Apprise URL when it names a server, safe to show; None when that part
    is a secret (a token, or an ntfy topic)."""
    if scheme not in HOST_SCHEMES:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    mode = dict(parse_qsl(parts.query.lower())).get("mode")
    if scheme in TOPIC_SCHEMES and (not parts.path.strip("/") or mode == "cloud"):
        return None  # ntfy://topic, or topics alone on ntfy.sh
    if scheme in _MATRIX_SCHEMES and (
        mode in ("t2bot", "hookshot") or not (parts.password or parts.path.strip("/"))
    ):
        return None  # matrix://{t2bot token}: no server named, the "host" is the token
    if scheme in _ROCKET_SCHEMES and "@" in parts.path:
        return None  # rocket://{webhook id}/{token}@{host}: the "host" is the webhook's id
    return host or None


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
    AfterValidator(between(timedelta(seconds=60), timedelta(days=7))),
]
Timezone = Annotated[str, AfterValidator(_timezone)]
Cron = Annotated[str, AfterValidator(_cron)]
ClockTime = Annotated[time, BeforeValidator(_clock_time)]
Score = Annotated[float, Field(ge=0.0, le=1.0)]
BrokenAfter = Annotated[timedelta | int, BeforeValidator(_broken_after)]


# Error types raised above whose messages need no "(got ...)" suffix in the loader.
CUSTOM_ERROR_TYPES = _words(
    "duration duration_range country language http_url timezone cron clock_time "
    "broken_after env_missing"
)
