"""What every `monitor` subcommand shares: the global options and a database session."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import click
from sqlalchemy.orm import Session

from monitor.config.schema import parse_duration
from monitor.daemon.bootstrap import Runtime, Settings, build_runtime, secrets_of
from monitor.daemon.logsetup import SecretFilter
from monitor.errors import ConfigError
from monitor.store import db


@dataclass
class CliContext:
    """Global options, resolved once."""

    settings: Settings
    secret_filter: SecretFilter

    def runtime(self, **overrides: object) -> Runtime:
        try:
            runtime = build_runtime(self.settings, **overrides)  # type: ignore[arg-type]
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        self.secret_filter.update(secrets_of(runtime.config, runtime.env))
        return runtime


pass_ctx = click.make_pass_decorator(CliContext)


@contextmanager
def session_for(obj: CliContext) -> Iterator[Session]:
    """A session on the (migrated) database named by the global options."""
    db.upgrade(obj.settings.db_url)
    engine = db.make_engine(obj.settings.db_url)
    try:
        with db.make_sessions(engine)() as session:
            yield session
    finally:
        engine.dispose()


def parse_since(value: str | None) -> datetime | None:
    """A `--since` value: a duration back from now (2d, 6h) or an ISO date."""
    if value is None:
        return None
    try:
        return datetime.now(UTC) - parse_duration(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r}: use a duration (2d, 6h) or a date") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
