"""What the web app is built from: the database, the clock, and seams into the daemon."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.daemon.status import DaemonState
from monitor.daemon.telemetry import Telemetry


def no_daemon() -> DaemonState | None:
    """`monitor serve`: the web alone, no scheduler in this process."""
    return None


@dataclass
class WebContext:
    """Everything the app needs; tests build one around a temporary database."""

    sessions: sessionmaker[Session]
    clock: Clock
    version: str
    db_backend: str
    config_path: Path | None = None
    # Absolute links in feeds out; None: from the request's own address.
    base_url: str | None = None
    daemon_state: Callable[[], DaemonState | None] = no_daemon
    # The daemon's counters when it runs in this process (`monitor run`); None under
    # `monitor serve`, whose /metrics then has the database gauges and its own HTTP metrics.
    telemetry: Telemetry | None = None
    # /metrics reads the database at most this often (seconds; 0: at every scrape).
    metrics_refresh_s: float = 60.0
    # Filled by monitor.web.metrics when the app is built (the registry and its collector).
    extras: dict[str, Any] = field(default_factory=dict)
