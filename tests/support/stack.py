"""Builds a real monitor runtime against local servers: a feeds.yaml, a database, receivers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from monitor.clock import Clock
from monitor.daemon.bootstrap import Runtime, Settings, build_runtime
from monitor.intake.hostgate import HostGate


def write_config(
    path: Path,
    feeds: Sequence[Mapping[str, str]],
    routes: Sequence[Mapping[str, object]] = (),
    defaults: str = "",
    extra: str = "",
) -> Path:
    """Write a feeds.yaml with the given feeds (name, url, country...) and alert routes.

    Corroboration is off unless `extra` says otherwise: its services are outside hosts, and
    no test may contact one (a daemon running a minute would start asking them).
    """
    lines = []
    if defaults:
        lines += ["defaults:", *(f"  {line}" for line in defaults.strip().splitlines())]
    lines.append("feeds:")
    for feed in feeds:
        lines.append(f"  - name: {feed['name']}")
        for key, value in feed.items():
            if key != "name":
                lines.append(f"    {key}: {value}")
    lines.append("alerts:" if routes else "alerts: []")
    for route in routes:
        lines.append(f"  - name: {route['name']}")
        for key, value in route.items():
            if key != "name":
                lines.append(f"    {key}: {value}")
    if "corroboration:" not in extra:
        lines += ["corroboration:", "  enabled: false"]
    if extra:
        lines += extra.strip().splitlines()
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_runtime(
    config_path: Path, db_url: str, clock: Clock, env: Mapping[str, str] | None = None
) -> Runtime:
    """A runtime with test-friendly politeness (no spacing between requests to 127.0.0.1)."""
    settings = Settings(
        config_path=config_path, db_url=db_url, workers=4, per_host=8, host_spacing_s=0.0
    )
    runtime = build_runtime(settings, env=dict(env or {}), clock=clock)
    # The hosts' waits (a 429's Retry-After) pass with the test's clock, as the feeds' do.
    runtime.poller.fetch_context.gate = HostGate(
        settings.per_host, settings.host_spacing_s, clock=lambda: clock.now().timestamp()
    )
    runtime.sync_feeds()
    return runtime
