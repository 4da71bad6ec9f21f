"""What a running daemon reports about itself: for health checks and the system page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class JobInfo:
    """One scheduler job and when it runs next."""

    name: str
    next_run_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReloadStatus:
    """The last look at an edited feeds.yaml: accepted, or rejected with the loader's message
    (which names the file, line and field at fault)."""

    at: datetime
    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class DaemonState:
    scheduler_running: bool
    last_tick_at: datetime | None
    tick_seconds: float
    jobs: tuple[JobInfo, ...] = ()
    reload: ReloadStatus | None = None
