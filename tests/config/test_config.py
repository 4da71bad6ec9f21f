"""feeds.yaml validation: every error names the line and field; secrets never leak."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from monitor.config.schema import (
    COUNTRY_CODES,
    AlertKind,
    Delivery,
    MonitorConfig,
    RouteSpec,
    config_fingerprint,
    format_duration,
    load_config,
    parse_config_text,
    parse_duration,
    redact_secrets,
    redact_url,
)
from monitor.countries import COUNTRY_NAMES, PSEUDO_CODES
from monitor.domain import Category
from monitor.errors import ConfigError

SLACK = "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/s3cr3tT0kenXYZ"
ENV = {
    "SLACK_WEBHOOK_URL": SLACK,
    "SMTP_PASSWORD": "hunter2-smtp-pw",
    "API_KEY": "k-123456",
    "TWO_URLS": "json://localhost/hook mailtos://user:pw@smtp.example.org",
}

GOOD = """\
defaults:
  interval: 20m
  min_score: 0.4
  user_agent_contact: mailto:ops@example.org
  feed_broken_after: 5
feeds:
  - name: VnExpress International
    url: https://e.vnexpress.net/rss/news.rss
    country: vn
    language: EN
    tags: [vietnam]
  - name: Khmer Times
    url: https://www.khmertimeskh.com/feed/
    interval: 2h
    kind: news
    headers: {X-Api-Key: "${API_KEY}"}
alerts:
  - name: rights-team-slack
    url: ${SLACK_WEBHOOK_URL}
    countries: [VN, la]
    categories: [shutdown, platform_block]
    stages: [enacted]
    rate_limit: {count: 10, per: 1h}
    digest: {cron: "0 8 * * *", timezone: Asia/Ho_Chi_Minh}
    quiet_hours: {start: "22:00", end: "07:00", timezone: Asia/Ho_Chi_Minh}
  - name: policy-email
    url: mailtos://user:${SMTP_PASSWORD}@smtp.example.org?to=team@example.org
    min_score: 0.8
    delivery: digest
    digest: {cron: "0 8 * * mon"}
    format: html
  - name: admins
    url: json://localhost:8080/hook
    kinds: [feed_health]
"""


def parse(text: str, env: dict[str, str] | None = None) -> MonitorConfig:
    """Parse config text with the test environment."""
    return parse_config_text(text, ENV if env is None else env, "feeds.yaml")


def error_of(text: str, env: dict[str, str] | None = None) -> str:
    """The ConfigError message that text produces."""
    with pytest.raises(ConfigError) as info:
        parse(text, env)
    return str(info.value)


def test_good_config_values() -> None:
    config = parse(GOOD)
    vne, kt = config.feeds
    assert (vne.country, vne.language, vne.tags) == ("VN", "en", ("vietnam",))
    assert vne.interval == timedelta(minutes=20)  # from defaults
    assert kt.interval == timedelta(hours=2)
    assert kt.resolved_headers() == {"X-Api-Key": "k-123456"}
    slack, email, admins = config.alerts
    assert slack.min_score == 0.4  # from defaults
    assert slack.countries == ("VN", "LA")
    assert slack.categories == (Category.SHUTDOWN, Category.PLATFORM_BLOCK)
    assert slack.kinds == (AlertKind.NEW, AlertKind.UPDATE)
    assert slack.rate_limit is not None and slack.rate_limit.per == timedelta(hours=1)
    assert slack.quiet_hours is not None and slack.quiet_hours.start == time(22, 0)
    assert slack.resolved_url() == SLACK
    assert email.delivery is Delivery.DIGEST and email.min_score == 0.8
    assert admins.kinds == (AlertKind.FEED_HEALTH,)
    assert config.defaults.feed_broken_after == 5
    assert config.route("admins") is admins and config.feed("Khmer Times") is kt


def test_models_are_frozen() -> None:
    config = parse(GOOD)
    with pytest.raises(ValueError):
        config.feeds[0].name = "other"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), (600, 600)],
)
def test_parse_duration(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_format_duration() -> None:
    assert format_duration(timedelta(hours=1, minutes=30)) == "1h30m"


def test_quiet_hours_cross_midnight() -> None:
    route = parse(GOOD).alerts[0]
    assert route.quiet_hours is not None
    assert route.quiet_hours.contains(datetime(2026, 1, 1, 16, 0, tzinfo=UTC))  # 23:00 ICT
    assert not route.quiet_hours.contains(datetime(2026, 1, 1, 5, 0, tzinfo=UTC))  # 12:00 ICT


FEED = "feeds:\n  - name: A\n    url: https://a.example.org/rss\n"

ERROR_CASES = [
    pytest.param(
        FEED + "    interval: 99999999999999999999d\n",
        4,
        "feeds[0] (A).interval",
        "too long a duration",
        id="duration-overflow",
    ),
    pytest.param(
        FEED + "  - name: A\n    url: https://b.example.org/rss\n",
        4,
        "feeds[1] (A).name",
        "duplicate feed name",
        id="duplicate-name",
    ),
    pytest.param(
        FEED + "  - name: B\n    url: https://a.example.org/rss\n",
        5,
        "feeds[1] (B).url",
        "duplicate feed URL",
        id="duplicate-url",
    ),
    pytest.param(
        "feeds:\n  - name: A\n    url: ftp://a.example.org/rss\n",
        3,
        "feeds[0] (A).url",
        "not an http:// or https:// URL",
        id="bad-url-scheme",
    ),
    pytest.param(
        "feeds:\n  - name: A\n    url: https:///rss\n",
        3,
        "feeds[0] (A).url",
        "has no host",
        id="bad-url-host",
    ),
    pytest.param(
        FEED + "    intervall: 5m\n",
        4,
        "feeds[0] (A).intervall",
        'unknown key "intervall" (did you mean "interval"?)',
        id="unknown-key",
    ),
    pytest.param(
        "feed:\n  - name: A\n",
        1,
        "feed",
        'did you mean "feeds"?',
        id="unknown-top-key",
    ),
    pytest.param(
        "feeds:\n  - name: BBC Vietnamese\n    url: https://a.example.org/rss\n    interval: 5x\n",
        4,
        "feeds[0] (BBC Vietnamese).interval",
        '"5x" is not a duration (use 90s, 15m, 2h, 1d)',
        id="bad-interval",
    ),
    pytest.param(
        FEED + "    interval: 30s\n",
        4,
        "feeds[0] (A).interval",
        "30s is outside 1m..7d",
        id="interval-too-short",
    ),
    pytest.param(
        FEED + "    country: VNM\n",
        4,
        "feeds[0] (A).country",
        '"VNM" is not an ISO 3166-1 alpha-2 country code',
        id="bad-country",
    ),
    pytest.param(
        FEED + "    language: vietnamese\n",
        4,
        "feeds[0] (A).language",
        "not an ISO 639-1 language code",
        id="bad-language",
    ),
    pytest.param(
        "feeds:\n  - url: https://a.example.org/rss\n",
        2,
        "feeds[0].name",
        'required key "name" is missing',
        id="missing-name",
    ),
    pytest.param(
        "alerts:\n  - name: slack\n    url: ${NOT_SET_ANYWHERE}\n",
        3,
        "alerts[0] (slack).url",
        "environment variable NOT_SET_ANYWHERE is not set",
        id="missing-env-var",
    ),
    pytest.param(
        FEED + '    headers: {X-Key: "${NOT_SET_ANYWHERE}"}\n',
        4,
        "feeds[0] (A).headers.X-Key",
        "environment variable NOT_SET_ANYWHERE is not set",
        id="missing-env-var-header",
    ),
    pytest.param(
        "alerts:\n  - name: two\n    url: json://localhost/hook, mailto://smtp.example.org\n",
        3,
        "alerts[0] (two).url",
        "holds 2 Apprise URLs",
        id="two-urls-in-one-route",
    ),
    pytest.param(
        "alerts:\n  - name: two\n    url: json://localhost/hook;mailto://smtp.example.org\n",
        3,
        "alerts[0] (two).url",
        "holds 2 Apprise URLs",
        id="two-urls-by-semicolon",
    ),
    pytest.param(
        "alerts:\n  - name: two\n    url: ${TWO_URLS}\n",
        3,
        "alerts[0] (two).url",
        "holds 2 Apprise URLs after filling in ${TWO_URLS}",
        id="two-urls-from-the-environment",
    ),
    pytest.param(
        "alerts:\n  - name: d\n    url: json://localhost\n    delivery: digest\n",
        2,
        "alerts[0] (d).digest",
        "delivery: digest needs a digest block with a cron",
        id="digest-route-without-digest",
    ),
    pytest.param(
        "alerts:\n  - name: d\n    url: json://localhost\n    delivery: digest\n"
        "    digest:\n      timezone: UTC\n",
        5,
        "alerts[0] (d).digest.cron",
        'required key "cron" is missing',
        id="digest-without-cron",
    ),
    pytest.param(
        "alerts:\n  - name: d\n    url: json://localhost\n"
        "    digest: {cron: '0 8 * * *', timezone: Asia/Hanoi}\n",
        4,
        "alerts[0] (d).digest.timezone",
        '"Asia/Hanoi" is not a known timezone',
        id="bad-timezone",
    ),
    pytest.param(
        "alerts:\n  - name: d\n    url: json://localhost\n    digest:\n      cron: '61 8 * * *'\n",
        5,
        "alerts[0] (d).digest.cron",
        '"61 8 * * *" is not a cron expression',
        id="bad-cron",
    ),
    pytest.param(
        "alerts:\n  - name: d\n    url: json://localhost\n    digest:\n      cron: '0 8 * *'\n",
        5,
        "alerts[0] (d).digest.cron",
        "is not a cron expression",
        id="cron-wrong-field-count",
    ),
    pytest.param(
        "alerts:\n  - name: r\n    url: json://localhost\n    categories: [shutdown, censorship]\n",
        4,
        "alerts[0] (r).categories[1]",
        "censorship",
        id="bad-category",
    ),
    pytest.param(
        "alerts:\n  - name: r\n    url: json://localhost\n"
        "    quiet_hours: {start: '25:00', end: '07:00'}\n",
        4,
        "alerts[0] (r).quiet_hours.start",
        "is not a time of day",
        id="bad-quiet-hours",
    ),
    pytest.param(
        "alerts:\n  - name: r\n    url: json://localhost\n  - name: r\n    url: json://x\n",
        4,
        "alerts[1] (r).name",
        "duplicate route name",
        id="duplicate-route",
    ),
    pytest.param(
        "alerts:\n  - name: r\n    url: json://localhost\n    min_score: 1.5\n",
        4,
        "alerts[0] (r).min_score",
        "less than or equal to 1",
        id="score-out-of-range",
    ),
    pytest.param(
        "defaults:\n  max_items_per_poll: 0\n",
        2,
        "defaults.max_items_per_poll",
        "greater than or equal to 1",
        id="defaults-range",
    ),
]


@pytest.mark.parametrize(("text", "line", "field", "fragment"), ERROR_CASES)
def test_error_names_line_and_field(text: str, line: int, field: str, fragment: str) -> None:
    message = error_of(text)
    assert message.startswith(f"feeds.yaml:{line}: {field}: "), message
    assert fragment in message


def test_yaml_syntax_error_names_line() -> None:
    message = error_of("feeds:\n  - name: A\n    url: [https://a\n  - name: B\n")
    assert re.match(r"feeds\.yaml:\d+: YAML syntax error: ", message), message
    assert message.split(":")[1] in {"4", "5"}


def test_duplicate_yaml_key_names_line() -> None:
    message = error_of(FEED + "    url: https://b.example.org/rss\n")
    assert message.startswith("feeds.yaml:4: YAML syntax error: found duplicate key"), message


@pytest.mark.parametrize("text", ["", "# only a comment\n", "- a\n- b\n"])
def test_empty_or_non_mapping_file(text: str) -> None:
    assert error_of(text).startswith("feeds.yaml:1: ")


def test_several_errors_reported_in_line_order() -> None:
    text = FEED + "    intervall: 5m\n    country: XX\n"
    lines = error_of(text).splitlines()
    assert [ln.split(":")[1] for ln in lines] == ["4", "5"]


def test_missing_env_var_message_has_no_other_values() -> None:
    message = error_of(GOOD, env={"API_KEY": "k-123456"})
    assert "SLACK_WEBHOOK_URL is not set" in message
    assert "k-123456" not in message


def test_resolved_url_not_an_apprise_url_is_not_printed() -> None:
    env = {"HOOK": "not-a-url-but-secret"}
    message = error_of("alerts:\n  - name: r\n    url: ${HOOK}\n", env=env)
    assert message.startswith("feeds.yaml:3: alerts[0] (r).url: ")
    assert "not-a-url-but-secret" not in message


def test_secrets_never_in_repr_str_or_redacted() -> None:
    config = parse(GOOD)
    secrets = [SLACK, "s3cr3tT0kenXYZ", "hunter2-smtp-pw", "k-123456"]
    texts = [repr(config), str(config), *(repr(r) for r in config.alerts)]
    texts += [str(r.redacted()) for r in config.alerts] + [r.display_url for r in config.alerts]
    texts += [repr(f) for f in config.feeds]
    for text in texts:
        for secret in secrets:
            assert secret not in text
    assert config.alerts[0].display_url == "https://hooks.slack.com/***"
    assert config.alerts[1].display_url == "mailtos://smtp.example.org/***"
    assert "X-Api-Key" in repr(config.feeds[1])


def test_secret_values_and_redact_secrets() -> None:
    config = parse(GOOD)
    values = config.secret_values()
    assert SLACK in values and "hunter2-smtp-pw" in values and "k-123456" in values
    line = f"POST {SLACK} failed; auth hunter2-smtp-pw"
    assert redact_secrets(line, values) == "POST *** failed; auth ***"
    assert redact_secrets("nothing here", ["", "x" * 5]) == "nothing here"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("slack://T000/B000/XXXX", "slack://***"),
        ("tgram://123456:ABCDEF/987", "tgram://***"),
        ("mailtos://user:pw@smtp.example.org?to=a@b.org", "mailtos://smtp.example.org/***"),
        ("${SLACK_WEBHOOK_URL}", "${SLACK_WEBHOOK_URL}"),
        ("garbage", "***"),
        ("ntfy://digital-rights-vn", "ntfy://***"),  # no server: the "host" is the topic
        ("ntfys://ntfy.example.org/rights", "ntfys://ntfy.example.org/***"),
        ("ntfy://rights/vn?mode=cloud", "ntfy://***"),  # topics alone on ntfy.sh
        ("matrix://" + "t" * 64, "matrix://***"),  # t2bot: the token stands where a host would
        ("matrixs://bot:pw@matrix.example.org/#room", "matrixs://matrix.example.org/***"),
        ("rockets://AbCdEf/Tok3nXyZ@chat.example.org/#news", "rockets://***"),  # webhook form
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        "mailtos://user:pw@smtp.example.org?to=a@example.org,b@example.org",
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7F/#news,#rights",
        "json://hooks.example.org/in?note=a, b&avatar_url=https://img.example.org/x.png",
    ],
)
def test_one_apprise_url_with_commas_is_one_url(url: str) -> None:
    route = parse(f'alerts:\n  - name: one\n    url: "{url}"\n').alerts[0]
    assert route.resolved_url() == url


def test_route_built_directly_without_env() -> None:
    route = RouteSpec(name="r", url="${HOOK}")
    assert route.resolved_url({"HOOK": "json://localhost"}) == "json://localhost"
    with pytest.raises(ConfigError, match="HOOK is not set"):
        route.resolved_url()


def test_load_config_and_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(GOOD, encoding="utf-8")
    assert len(load_config(path, ENV).feeds) == 2
    first = config_fingerprint(path)
    assert first == config_fingerprint(path)
    path.write_text(GOOD + "# edited\n", encoding="utf-8")
    assert config_fingerprint(path) != first


def test_load_config_error_names_path(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(FEED + "    interval: 5x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"{path}:4: feeds[0] (A).interval")):
        load_config(path, {})


def test_load_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml", {})


def test_load_config_bad_utf8_names_line(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_bytes(b"feeds:\n  - name: \xff\n")
    with pytest.raises(ConfigError, match=r":2: not valid UTF-8"):
        load_config(path, {})


def test_every_named_country_is_a_config_country() -> None:
    """Alerts name only countries a route can filter on; pseudo-codes (EU) are the exception."""
    assert set(COUNTRY_NAMES) - PSEUDO_CODES <= COUNTRY_CODES
    assert PSEUDO_CODES.issubset(COUNTRY_NAMES)
    assert not PSEUDO_CODES & COUNTRY_CODES
    assert "XK" in COUNTRY_CODES  # Kosovo: user-assigned, but accepted in feeds.yaml


def test_quiet_hours_exceptions_reach_the_route_rules() -> None:
    from monitor.daemon.bootstrap import route_rules

    slack = parse(GOOD).alerts[0]
    assert route_rules(slack).quiet_except == frozenset({"shutdown"})  # the default
    edited = GOOD.replace(
        "timezone: Asia/Ho_Chi_Minh}\n  - name: policy-email",
        "timezone: Asia/Ho_Chi_Minh, except_categories: [throttling, vpn_restriction]}\n"
        "  - name: policy-email",
    )
    assert edited != GOOD
    rules = route_rules(parse(edited).alerts[0])
    assert rules.quiet_except == frozenset({"throttling", "vpn_restriction"})
