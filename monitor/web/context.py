"""What the web app is built from: the database, the clock, and seams into the daemon."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.daemon.status import DaemonState


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
    # Filled by monitor.web.metrics when the app is built (the registry and its collector).
    extras: dict[str, Any] = field(default_factory=dict)
