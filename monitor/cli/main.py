"""The `monitor` command: thin click wrappers over bootstrap and the stages."""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from monitor.cli.classify import classify, eval_command, feedback, train
from monitor.cli.common import CliContext, pass_ctx, session_for
from monitor.cli.records import events, items
from monitor.cli.web import (
    announce_login,
    listen_address,
    listen_option,
    serve,
    start_web,
    tokens_group,
)
from monitor.clock import SystemClock
from monitor.config.schema import MonitorConfig, load_config
from monitor.daemon.bootstrap import Runtime, settings_from_env
from monitor.daemon.logsetup import configure_logging
from monitor.errors import ConfigError, MonitorError
from monitor.intake.fetch import redact_url
from monitor.store import db, repo
from monitor.store.models import AlertRow, FeedRow


@click.group()
@click.option("--config", "config_path", help="feeds.yaml to use [env MONITOR_CONFIG].")
@click.option("--db", "db_url", help="Database URL [env MONITOR_DB_URL; sqlite:///monitor.db].")
@click.option("--log-level", default=lambda: os.environ.get("MONITOR_LOG_LEVEL", "INFO"))
@click.pass_context
def main(ctx: click.Context, config_path: str | None, db_url: str | None, log_level: str) -> None:
    """Watch news feeds for new government internet-control measures and alert on them."""
    secret_filter = configure_logging(log_level)
    ctx.obj = CliContext(settings_from_env(config_path, db_url, os.environ), secret_filter)


@contextmanager
def _runtime(obj: CliContext, migrate: bool = True) -> Iterator[Runtime]:
    if migrate:
        db.upgrade(obj.settings.db_url)
    runtime = obj.runtime()
    try:
        yield runtime
    finally:
        runtime.close()


# ---------------------------------------------------------------------------- daemon


@main.command()
@click.option("--no-migrate", is_flag=True, help="Do not apply database migrations at start.")
@listen_option
@click.option(
    "--no-web",
    is_flag=True,
    default=lambda: os.environ.get("MONITOR_WEB", "1") == "0",
    help="Do not serve the web surface [env MONITOR_WEB=0].",
)
@pass_ctx
def run(obj: CliContext, no_migrate: bool, listen: str, no_web: bool) -> None:
    """Run the daemon: poll, classify, alert, serve the dashboard, until SIGTERM/SIGINT."""
    from monitor.daemon.bootstrap import tune_process_for_service
    from monitor.daemon.scheduler import Daemon

    address = None if no_web else listen_address(listen)
    if not no_migrate:
        _when_database_answers(lambda: db.upgrade_in_child(obj.settings.db_url))
    runtime = obj.runtime()
    _when_database_answers(runtime.sync_feeds)
    runtime.load_classifier()
    tune_process_for_service()
    click.echo(f"monitor: database {db.redact_db_url(obj.settings.db_url)}", err=True)
    daemon = Daemon(runtime, obj.secret_filter)
    daemon.install_signal_handlers()
    web = None
    if address is not None:
        web, _surface = start_web(
            obj, address, daemon.state, runtime.telemetry, runtime.measure_targets
        )
        announce_login(obj, web.address)
    # The web stops first, so no request is answered after the database is closed.
    daemon.run_until_stopped(before_stop=web.stop if web is not None else None)
    sys.stdout.flush()
    sys.stderr.flush()
    # Fetch threads blocked on a slow server must not hold the exit past the 10 s budget;
    # every write is already committed or rolled back at this point.
    os._exit(0)


def _when_database_answers(action: Callable[[], None], max_wait_s: float = 30.0) -> None:
    """Run a start-up step, waiting for a database that is not reachable yet (a server still
    starting beside the daemon, a volume not mounted yet) instead of exiting."""
    delay = 1.0
    while True:
        try:
            action()
            return
        except OperationalError as exc:
            if not _not_reachable_yet(exc):
                raise  # a wrong password or a broken migration: waiting would not help
            reason = " ".join(str(exc.orig or exc).split())[:200]
            logging.getLogger("monitor").warning(
                "database not reachable at start (%s); retrying in %.0f s", reason, delay
            )
        time.sleep(delay)
        delay = min(delay * 2, max_wait_s)


def _not_reachable_yet(exc: OperationalError) -> bool:
    """Whether a start-up error means the database is not there yet, rather than refusing us.

    SQLite: the file cannot be opened (its volume not mounted yet) or is locked. PostgreSQL:
    no server answers, or it says it is starting up (class 08, 57P03). The driver reports
    connection failures without a SQLSTATE, so their text tells them apart from a refusal
    such as a wrong password or a missing database, which waiting would not cure.
    """
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_BUSY)
    state = getattr(orig, "sqlstate", None)
    if isinstance(state, str):
        return state.startswith("08") or state == "57P03"
    text = str(orig if orig is not None else exc).lower()
    return any(sign in text for sign in _NOT_UP_YET)


_NOT_UP_YET = (
    "connection refused",
    "could not connect",
    "timeout expired",
    "timed out",
    "is starting up",
    "is shutting down",
    "no such file or directory",
    "could not translate host name",
    "name or service not known",
    "temporary failure in name resolution",
    "network is unreachable",
    "no route to host",
)


@main.command()
@click.option("--once", is_flag=True, required=True, help="Poll once and exit (required).")
@click.option("--feed", "feed_name", help="Poll only this feed, due or not.")
@pass_ctx
def poll(obj: CliContext, once: bool, feed_name: str | None) -> None:
    """Poll every enabled feed once, store, classify, queue and send alerts, then exit."""
    with _runtime(obj) as runtime:
        runtime.sync_feeds()
        report = runtime.poller.run_once(only=feed_name)
        delivered = runtime.delivery.deliver_due()
        held = f", {report.held_back} held back (their host said 429)" if report.held_back else ""
        click.echo(
            f"polled {report.polled} feeds ({report.failed} failed{held}): {report.new_items} "
            f"new items, {report.flagged} flagged, {report.alerts_queued} alerts queued, "
            f"{delivered.sent} sent, {delivered.failed} failed"
        )


@main.command()
@click.option("--url", help="Ask this liveness URL instead (the web surface's /healthz).")
@pass_ctx
def healthcheck(obj: CliContext, url: str | None) -> None:
    """Exit 0 when the daemon is healthy (Docker HEALTHCHECK).

    With --url, the running daemon's own /healthz answers; without it, the database must
    answer and a poll must have happened lately.
    """
    if url is not None:
        _check_url(url)
        return
    engine = db.make_engine(obj.settings.db_url)
    try:
        with engine.connect() as connection:
            last = connection.execute(select(func.max(FeedRow.last_polled_at))).scalar()
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        raise click.ClickException(f"database unreachable: {type(exc).__name__}") from exc
    finally:
        engine.dispose()
    if last is not None and last.replace(tzinfo=UTC) < datetime.now(UTC) - timedelta(hours=2):
        raise click.ClickException(f"no poll since {last:%Y-%m-%d %H:%M} UTC")
    click.echo("ok")


def _check_url(url: str) -> None:
    import httpx

    try:
        response = httpx.get(url, timeout=10.0)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"{url}: {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise click.ClickException(f"{url}: HTTP {response.status_code} {response.text[:40]}")
    click.echo("ok")


# ---------------------------------------------------------------------------- feeds


def _load_config(obj: CliContext) -> MonitorConfig:
    """feeds.yaml, or a clean error naming the line and field at fault."""
    try:
        return load_config(obj.settings.config_path, os.environ)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@main.group()
def feeds() -> None:
    """Check and inspect the watch list."""


@feeds.command("validate")
@pass_ctx
def feeds_validate(obj: CliContext) -> None:
    """Check feeds.yaml; errors name the line and field."""
    config = _load_config(obj)
    enabled = sum(feed.enabled for feed in config.feeds)
    click.echo(
        f"{obj.settings.config_path}: OK, {len(config.feeds)} feeds ({enabled} enabled), "
        f"{len(config.alerts)} alert routes"
    )


@feeds.command("list")
@pass_ctx
def feeds_list(obj: CliContext) -> None:
    """List the configured feeds and alert routes (secrets hidden)."""
    config = _load_config(obj)
    for feed in config.feeds:
        state = "" if feed.enabled else "  [disabled]"
        click.echo(
            f"{feed.name:40.40}  {feed.country or '--':2}  {feed.language or '--':2}  "
            f"{int(feed.interval.total_seconds() // 60):>4}m  {feed.url}{state}"
        )
    for route in config.alerts:
        click.echo(f"route {route.name}: {route.display_url} ({route.delivery})")


# How far back `feeds status` looks for a feed held back by its host's wait (at most 1 h).
HELD_BACK_LOOKBACK = timedelta(hours=2)


@feeds.command("status")
@pass_ctx
def feeds_status(obj: CliContext) -> None:
    """Per feed: last poll, failures, last error, next poll."""
    db.upgrade(obj.settings.db_url)
    engine = db.make_engine(obj.settings.db_url)
    with db.make_sessions(engine)() as session:
        rows = list(session.scalars(select(FeedRow).order_by(FeedRow.name)))
        # A held feed is asked again within the hour: older log rows cannot say it is held.
        held_back = repo.held_back_feeds(session, HELD_BACK_LOOKBACK)
        now = SystemClock().now()
        for row in rows:
            if not row.enabled:
                state = "disabled"
            elif row.gone:
                state = "GONE"
            elif row.last_error_kind == "offline":
                state = "offline"
            elif row.consecutive_failures:
                state = f"FAILING x{row.consecutive_failures}"
            elif row.id in held_back:
                state = "held (429)"  # its host asked for a wait: asked again at "next"
            else:
                state = "ok"
            last = f"{row.last_polled_at:%Y-%m-%d %H:%M}" if row.last_polled_at else "never"
            click.echo(
                f"{row.name:40.40}  {state:14}  last {last}  next {row.next_poll_at:%H:%M}"
                + (f"  error: {row.last_error}" if row.last_error else "")
                + (f"  malformed: {row.malformed}" if row.malformed else "")
                + (
                    f"  being polled by {row.lease_holder} (lease until {row.lease_until:%H:%M:%S})"
                    if row.lease_holder and row.lease_until and row.lease_until > now
                    else ""
                )
                + (
                    f"  moved to {redact_url(row.moved_to)} for good: update its url in feeds.yaml"
                    if row.moved_to
                    else ""
                )
            )
    engine.dispose()


@feeds.command("import-opml")
@click.argument("opml_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def feeds_import_opml(opml_file: Path) -> None:
    """Print feeds.yaml entries for the feeds of an OPML file (append them to feeds.yaml)."""
    import yaml

    from monitor.config.opml import import_opml

    try:
        feeds_found = import_opml(opml_file.read_bytes())
    except MonitorError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(yaml.safe_dump(feeds_found, allow_unicode=True, sort_keys=False), nl=False)


@feeds.command("export-opml")
@pass_ctx
def feeds_export_opml(obj: CliContext) -> None:
    """Write the watch list as OPML 2.0 to stdout."""
    from monitor.config.opml import export_opml

    config = _load_config(obj)
    sys.stdout.buffer.write(export_opml(config.feeds))


# ---------------------------------------------------------------------------- db


@main.group("db")
def db_group() -> None:
    """Database maintenance."""


@db_group.command("upgrade")
@pass_ctx
def db_upgrade(obj: CliContext) -> None:
    """Apply Alembic migrations up to the newest schema."""
    db.upgrade(obj.settings.db_url)
    click.echo(f"database {db.redact_db_url(obj.settings.db_url)} is up to date")


# ---------------------------------------------------------------------------- alerts


@main.group()
def alerts() -> None:
    """Alert routes and the outbox."""


@alerts.command("test")
@click.argument("route")
@pass_ctx
def alerts_test(obj: CliContext, route: str) -> None:
    """Send a test message through ROUTE now."""
    from monitor.alerts.markup import format_for_url
    from monitor.alerts.render import render
    from monitor.domain import AlertMessage

    with _runtime(obj, migrate=False) as runtime:
        target = runtime.targets.get(route)
        if target is None:
            known = ", ".join(sorted(runtime.targets)) or "none"
            raise click.ClickException(f"no alert route named {route!r} (routes: {known})")
        message = AlertMessage(
            kind="test",
            title=f"monitor test alert for route {route}",
            link=None,
            source="monitor",
            country=None,
            categories=(),
            stage="none",
            score=0.0,
            matched_terms=(),
            evidence=("sent by `monitor alerts test`",),
            published=runtime.clock.now(),
        )
        rendered = render(message, format_for_url(target.url, target.body_format))
        try:
            runtime.notifier_for(target).send(target.url, rendered)
        except MonitorError as exc:
            raise click.ClickException(f"route {route}: {exc}") from exc
        click.echo(f"test alert sent through {route}")


@alerts.command("list")
@click.option("--status", help="Only alerts in this state (pending, digest, sent, dead).")
@click.option("--limit", default=50, show_default=True)
@pass_ctx
def alerts_list(obj: CliContext, status: str | None, limit: int) -> None:
    """The newest outbox rows with their state and last error."""
    with session_for(obj) as session:
        query = select(AlertRow).order_by(AlertRow.id.desc()).limit(limit)
        if status:
            query = query.where(AlertRow.status == status)
        for row in session.scalars(query):
            title = str(row.payload.get("title", ""))[:70]
            error = f"  error: {row.last_error}" if row.last_error else ""
            click.echo(
                f"#{row.id:<6} {row.status:8} {row.route:20.20} {row.kind:15} "
                f"tries={row.attempts}  {title}{error}"
            )


@alerts.command("retry")
@click.option("--route", help="Only this route.")
@pass_ctx
def alerts_retry(obj: CliContext, route: str | None) -> None:
    """Queue dead-lettered alerts again."""
    from monitor.alerts.delivery import retry_dead

    engine = db.make_engine(obj.settings.db_url)
    count = retry_dead(db.make_sessions(engine), datetime.now(UTC), route)
    engine.dispose()
    click.echo(f"{count} alerts queued again")


# ---------------------------------------------------------------------------- the rest

main.add_command(items)
main.add_command(events)
main.add_command(classify)
main.add_command(eval_command)
main.add_command(train)
main.add_command(feedback)
main.add_command(serve)
main.add_command(tokens_group)
