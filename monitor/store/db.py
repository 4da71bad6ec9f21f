"""Engines, sessions and migrations; nothing global, callers hold what they build."""

from __future__ import annotations

import importlib.util
import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)

DEFAULT_DB_URL = "sqlite:///monitor.db"


def make_engine(url: str, *, pool_size: int = 5, max_overflow: int = 5) -> Engine:
    """Build an engine; SQLite gets WAL, a busy timeout and foreign keys.

    The web surface builds its own, smaller one: a heavy dashboard query must not take the
    connections the poll writers need.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # timeout: wait for a writer lock instead of failing at once with "database is locked".
        # cached_statements: IN lists and multi-row INSERTs make a new statement per length,
        # up to 1.5 MB each; the default cache of 128 held 11 MB of them (bench_scale).
        connect_args = {"timeout": 30, "check_same_thread": False, "cached_statements": 32}
        engine = create_engine(url, connect_args=connect_args)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    # pool_pre_ping: a PostgreSQL restart must cost one failed ping, not a crashed poll.
    return create_engine(parsed, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def migrations_dir() -> Path:
    """Where the Alembic scripts are: packaged as monitor.migrations, or ./alembic in a checkout."""
    spec = importlib.util.find_spec("monitor.migrations")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if (Path(location) / "env.py").is_file():
                return Path(location)
    return Path(__file__).resolve().parents[2] / "alembic"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our scripts and the given database."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision`; safe to run on every start."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def upgrade_in_child(url: str) -> None:
    """`upgrade` in a short-lived child process, for the daemon: Alembic and the scripts it
    loads (about 10 MB) then never stay in the memory of a process that runs for months.
    A plain child, not multiprocessing, which would leave its resource-tracker process
    (15 MB) beside the daemon. The URL goes over stdin (never argv: it may hold a password),
    and the child's error is raised here, as `upgrade` would raise it."""
    done = subprocess.run(
        [sys.executable, "-c", _MIGRATE_MAIN], input=url.encode(), stdout=subprocess.PIPE
    )
    if done.returncode == 0:
        return
    try:
        error = pickle.loads(done.stdout)
    except Exception:  # noqa: BLE001 - the child died before it could say why
        error = RuntimeError(f"database migration failed (exit {done.returncode})")
    raise error


_MIGRATE_MAIN = "from monitor.store.db import migrate_stdio; migrate_stdio()"


def migrate_stdio() -> None:
    """The migration child: URL on stdin; on failure, the pickled exception on stdout."""
    answer = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # Alembic's output must not mix in
    try:
        upgrade(sys.stdin.read())
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        answer.write(pickle.dumps(exc))
        answer.flush()
        sys.exit(1)


def redact_db_url(url: str) -> str:
    """The URL with its password hidden, for logs and status output."""
    return make_url(url).render_as_string(hide_password=True)
