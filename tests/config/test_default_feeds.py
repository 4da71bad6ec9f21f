"""The shipped feeds.yaml loads with no env and covers the region; the docs cover every option."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel

from monitor.config.corroboration import CorroborationSpec
from monitor.config.retention import RetentionSpec
from monitor.config.schema import (
    Defaults,
    DigestSpec,
    FeedKind,
    FeedSpec,
    MonitorConfig,
    QuietHours,
    RateLimit,
    RouteSpec,
    load_config,
)
from monitor.config.silence import SilenceSpec

ROOT = Path(__file__).resolve().parents[2]
FEEDS_YAML = ROOT / "feeds.yaml"
DOCS = ROOT / "docs" / "feeds-yaml.md"
CANDIDATES = ROOT.parent / "shared" / "sources" / "candidates.yaml"


@pytest.fixture(scope="module")
def config() -> MonitorConfig:
    """The shipped configuration, loaded with an empty environment."""
    return load_config(FEEDS_YAML, {})


def test_enough_enabled_feeds(config: MonitorConfig) -> None:
    assert len(config.enabled_feeds()) >= 25


@pytest.mark.parametrize("country", ["VN", "LA", "KH", "TH", "MM"])
def test_each_focus_country_covered(config: MonitorConfig, country: str) -> None:
    assert [f for f in config.enabled_feeds() if f.country == country and f.kind == "news"]


def test_all_kinds_and_international_present(config: MonitorConfig) -> None:
    enabled = config.enabled_feeds()
    assert {f.kind for f in enabled} == set(FeedKind)
    assert len([f for f in enabled if f.kind is FeedKind.NEWS and f.country is None]) >= 5
    assert len([f for f in enabled if f.kind is FeedKind.RIGHTS_ORG]) >= 5
    searches = [f.url for f in enabled if f.kind is FeedKind.SEARCH]
    for host in ("news.google.com", "www.bing.com", "api.gdeltproject.org"):
        assert any(host in url for url in searches), host
    assert any("hl=vi" in url for url in searches)  # Vietnamese keyword searches


def test_no_alert_routes_active(config: MonitorConfig) -> None:
    assert config.alerts == ()


def test_gdelt_polled_slowly(config: MonitorConfig) -> None:
    for feed in config.feeds:
        if "gdeltproject" in feed.url:
            assert feed.interval.total_seconds() >= 3600


@pytest.mark.skipif(not CANDIDATES.exists(), reason="shared candidates list not available")
def test_every_url_comes_from_candidates(config: MonitorConfig) -> None:
    candidates = {c["url"]: c for c in yaml.safe_load(CANDIDATES.read_text(encoding="utf-8"))}
    for feed in config.feeds:
        entry = candidates.get(feed.url)
        assert entry is not None, f"{feed.name}: URL not in candidates.yaml"
        assert entry["status"] in ("ok", "doubtful"), feed.name
        if entry["status"] == "doubtful":
            assert not feed.enabled, f"{feed.name} is doubtful but enabled"


def test_doubtful_and_low_entries_are_commented() -> None:
    lines = FEEDS_YAML.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if line.strip() == "enabled: false":
            start = max(i for i in range(index) if lines[i].startswith("  - name:"))
            assert lines[start - 1].lstrip().startswith("#"), lines[start]


def _fields(model: type[BaseModel], prefix: str) -> list[str]:
    """Dotted option names of a model and of the config models nested in it."""
    names = []
    for name, info in model.model_fields.items():
        names.append(f"{prefix}.{name}")
        nested = _nested_model(info.annotation)
        if nested is not None:
            names += _fields(nested, f"{prefix}.{name}")
    return names


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The config model inside X | None, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is not None:
        for arg in get_args(annotation):
            found = _nested_model(arg)
            if found is not None:
                return found
    return None


def documented_options() -> set[str]:
    """Options that docs/feeds-yaml.md gives a heading."""
    return set(re.findall(r"^### `([^`]+)`", DOCS.read_text(encoding="utf-8"), re.MULTILINE))


def model_options() -> set[str]:
    """Every option the models accept, spelled as the docs spell them."""
    options = set(_fields(Defaults, "defaults"))
    options |= set(_fields(FeedSpec, "feeds[]"))
    options |= set(_fields(RouteSpec, "alerts[]"))
    options |= set(_fields(CorroborationSpec, "corroboration"))
    options |= set(_fields(SilenceSpec, "silence"))
    options |= set(_fields(RetentionSpec, "retention"))
    return options


def test_top_level_sections_match_docs() -> None:
    assert set(MonitorConfig.model_fields) == {
        "defaults", "feeds", "alerts", "corroboration", "silence", "retention",
    }  # fmt: skip


def test_nested_models_reached() -> None:
    options = model_options()
    models: list[tuple[type[BaseModel], str]] = [
        (DigestSpec, "alerts[].digest"),
        (RateLimit, "alerts[].rate_limit"),
        (QuietHours, "alerts[].quiet_hours"),
    ]
    for model, prefix in models:
        assert {f"{prefix}.{name}" for name in model.model_fields} <= options


def test_every_option_documented() -> None:
    missing = model_options() - documented_options()
    assert not missing, f"undocumented options: {sorted(missing)}"


def test_docs_describe_only_real_options() -> None:
    unknown = documented_options() - model_options()
    assert not unknown, f"documented but not accepted: {sorted(unknown)}"


def test_each_documented_option_has_type_default_and_example() -> None:
    text = DOCS.read_text(encoding="utf-8")
    sections = re.split(r"^### ", text, flags=re.MULTILINE)[1:]
    for section in sections:
        name = section.split("`")[1]
        assert "Example" in section, name
        assert "default" in section or "required" in section, name
