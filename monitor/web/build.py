"""Build the web surface for a command: its own small engine on the same database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from monitor import __version__
from monitor.clock import Clock, SystemClock
from monitor.daemon.bootstrap import Settings
from monitor.daemon.status import DaemonState
from monitor.daemon.telemetry import Telemetry
from monitor.events.targets import TargetReader
from monitor.store.db import make_engine, make_sessions
from monitor.web.app import create_app
from monitor.web.context import WebContext, no_daemon

# Two connections and two more at a peak: the poll writers keep the rest of the database's.
WEB_POOL_SIZE = 2
WEB_MAX_OVERFLOW = 2


@dataclass
class WebSurface:
    app: FastAPI
    context: WebContext
    engine: Engine

    def close(self) -> None:
        self.engine.dispose()


def build_web(
    settings: Settings,
    *,
    clock: Clock | None = None,
    daemon_state: Callable[[], DaemonState | None] = no_daemon,
    base_url: str | None = None,
    telemetry: Telemetry | None = None,
    targets: TargetReader | None = None,
) -> WebSurface:
    engine = make_engine(settings.db_url, pool_size=WEB_POOL_SIZE, max_overflow=WEB_MAX_OVERFLOW)
    clock = clock or SystemClock()
    context = WebContext(
        sessions=make_sessions(engine),
        clock=clock,
        started_at=clock.now(),
        version=__version__,
        db_backend=make_url(settings.db_url).get_backend_name(),
        config_path=settings.config_path,
        base_url=base_url.rstrip("/") if base_url else None,
        daemon_state=daemon_state,
        telemetry=telemetry,
        # Beside the daemon: its lexicon, not a second copy read from targets.yaml.
        _targets=targets,
        metrics_refresh_s=settings.metrics_refresh_s,
    )
    return WebSurface(app=create_app(context), context=context, engine=engine)
