"""The corroboration: section validated like the rest of feeds.yaml; Radar's token from env."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from monitor.clock import FrozenClock
from monitor.config.corroboration import CorroborationSpec
from monitor.config.schema import load_config
from monitor.errors import ConfigError
from monitor.signals.corroborate import build_services


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_ask_ooni_and_ioda_but_not_radar_without_a_token(clock: FrozenClock) -> None:
    spec = CorroborationSpec()
    assert spec.enabled and spec.rechecks == (timedelta(hours=6), timedelta(hours=24))
    with httpx.Client() as client:
        services = build_services(spec, client, clock, {})
        assert services.ooni is not None and services.ioda is not None
        assert services.radar is None
        assert services.off_reason("radar") == "no API token configured"
        # MONITOR_RADAR_TOKEN turns Radar on without editing feeds.yaml.
        assert build_services(spec, client, clock, {"MONITOR_RADAR_TOKEN": "t"}).radar is not None
        off = CorroborationSpec.model_validate({"enabled": False})
        assert build_services(off, client, clock, {"MONITOR_RADAR_TOKEN": "t"}).ooni is None


def test_token_from_a_placeholder(tmp_path: Path) -> None:
    path = write(tmp_path, "corroboration:\n  radar:\n    token: ${RADAR_TOKEN}\n")
    config = load_config(path, {"RADAR_TOKEN": "secret-1"})
    assert config.corroboration.radar.resolved_token({"RADAR_TOKEN": "secret-1"}) == "secret-1"
    assert "secret-1" not in repr(config.corroboration)


def test_token_missing_in_env_or_written_literally_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "corroboration:\n  radar:\n    token: ${RADAR_TOKEN}\n")
    with pytest.raises(ConfigError, match=r"feeds.yaml:3.*RADAR_TOKEN is not set"):
        load_config(path, {})
    path = write(tmp_path, "corroboration:\n  radar:\n    token: abcdef123\n")
    with pytest.raises(ConfigError, match="placeholder") as caught:
        load_config(path, {})
    assert "abcdef123" not in str(caught.value)


def test_bad_values_name_their_line(tmp_path: Path) -> None:
    path = write(tmp_path, "corroboration:\n  rechecks: [6h, 5x]\n  ooni:\n    base_url: ftp://x\n")
    with pytest.raises(ConfigError, match=r"feeds.yaml:2"):
        load_config(path, {})
    path = write(tmp_path, "corroboration:\n  ooni:\n    base_url: ftp://x\n")
    with pytest.raises(ConfigError, match=r"feeds.yaml:3.*not an http"):
        load_config(path, {})
    path = write(tmp_path, "corroboration:\n  ooni:\n    enabeld: false\n")
    with pytest.raises(ConfigError, match="enabeld"):
        load_config(path, {})


def test_the_radar_token_is_among_the_secrets_scrubbed_from_logs() -> None:
    from monitor.config.schema import parse_config_text
    from monitor.daemon.bootstrap import secrets_of

    env = {"RADAR_KEY": "radar-secret-value-123"}
    text = "feeds: []\ncorroboration:\n  radar:\n    token: ${RADAR_KEY}\n"
    config = parse_config_text(text, env)
    assert "radar-secret-value-123" in secrets_of(config, env)
    assert "radar-secret-value-123" not in secrets_of(config, {})
