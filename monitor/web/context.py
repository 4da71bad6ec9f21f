"""What the web app is built from: the database, the clock, and seams into the daemon."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.daemon.status import DaemonState
from monitor.daemon.telemetry import Telemetry
from monitor.events.targets import TargetReader, load_targets


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
    # When this process began serving (the status's uptime).
    started_at: datetime | None = None
    # Per-app caches: the metrics registry, feed aggregates, the classifier's threshold.
    extras: dict[str, Any] = field(default_factory=dict)
    _targets: TargetReader | None = field(default=None, repr=False)

    def targets(self) -> TargetReader:
        """The target lexicon for labels ('X (Twitter)'), read once per app (about 0.2 s)."""
        if self._targets is None:
            self._targets = load_targets()
        return self._targets
