"""`monitor serve` and `monitor tokens`: the web surface and who may use it."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from monitor.cli.common import CliContext, pass_ctx, session_for
from monitor.daemon.status import DaemonState
from monitor.errors import ConfigError
from monitor.store import db, tokens
from monitor.web.server import (
    DEFAULT_LISTEN,
    ListenAddress,
    WebServer,
    parse_listen,
    serve_until_signalled,
)

if TYPE_CHECKING:
    from monitor.daemon.telemetry import Telemetry
    from monitor.events.targets import TargetReader
    from monitor.web.build import WebSurface


def listen_option(function: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--listen",
        default=lambda: os.environ.get("MONITOR_LISTEN", DEFAULT_LISTEN),
        show_default=f"env MONITOR_LISTEN or {DEFAULT_LISTEN}",
        help="Address of the web surface (HOST:PORT).",
    )(function)


def listen_address(value: str) -> ListenAddress:
    try:
        return parse_listen(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from exc


def announce_login(obj: CliContext, address: ListenAddress) -> None:
    """Print where the dashboard is, and on a first run the one-time link that opens it."""
    base = os.environ.get("MONITOR_BASE_URL", address.url).rstrip("/")
    with session_for(obj) as session:
        token = tokens.first_run_login_token(session, datetime.now(UTC))
        session.commit()
    if token is not None:
        # Printed once, on the console only (not through logging); spent by its first use.
        click.echo(f"monitor: dashboard {base}/login?token={token}  (one-time link)", err=True)
    else:
        click.echo(
            f"monitor: dashboard {base}  (log in with a token: monitor tokens create)", err=True
        )


def start_web(
    obj: CliContext,
    address: ListenAddress,
    daemon_state: Callable[[], DaemonState | None],
    telemetry: Telemetry | None = None,
    targets: TargetReader | None = None,
) -> tuple[WebServer, WebSurface]:
    """Bind and serve beside the daemon; a taken port fails here, before polling starts."""
    # Imported here, not at the top: `--no-web` and the other commands skip the web stack
    # (about 14 MB of modules).
    from monitor.web.build import build_web

    surface = build_web(
        obj.settings,
        daemon_state=daemon_state,
        base_url=os.environ.get("MONITOR_BASE_URL"),
        telemetry=telemetry,
        targets=targets,
    )
    server = WebServer(surface.app, address)
    try:
        server.start()
    except ConfigError as exc:
        surface.close()
        raise click.ClickException(str(exc)) from exc
    return server, surface


@click.command()
@listen_option
@pass_ctx
def serve(obj: CliContext, listen: str) -> None:
    """Serve the web surface alone, against the same database (a second box, a replica)."""
    from monitor.web.build import build_web
    from monitor.web.context import no_daemon

    address = listen_address(listen)
    db.upgrade(obj.settings.db_url)
    surface = build_web(
        obj.settings, daemon_state=no_daemon, base_url=os.environ.get("MONITOR_BASE_URL")
    )
    announce_login(obj, address)
    try:
        serve_until_signalled(surface.app, address)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        surface.close()


@click.group("tokens")
def tokens_group() -> None:
    """Access tokens for the dashboard, the API, feeds out and /metrics."""


@tokens_group.command("create")
@click.option("--name", required=True, help="Who or what uses it (alice-laptop, grafana).")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    default=("read",),
    show_default=True,
    help=f"One or more of {', '.join(tokens.SCOPES)} (comma-separated or repeated).",
)
@pass_ctx
def tokens_create(obj: CliContext, name: str, scopes: tuple[str, ...]) -> None:
    """Make a token and print it: the only time it is shown."""
    with session_for(obj) as session:
        try:
            token = tokens.create_token(session, name, scopes, datetime.now(UTC))
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc
        session.commit()
    click.echo(token)
    click.echo(f"token {name!r} created; it is not shown again", err=True)


@tokens_group.command("list")
@pass_ctx
def tokens_list(obj: CliContext) -> None:
    """Every token: id, name, scopes, last use, revoked or not (never the token itself)."""
    with session_for(obj) as session:
        listing = tokens.list_tokens(session)
    for row in listing:
        state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
        if row.one_time and not row.revoked_at:
            state = "one-time, used" if row.used_at else "one-time, unused"
        used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
        click.echo(
            f"#{row.id:<4} {row.name:24.24} {','.join(row.scopes):26} used {used:16} {state}"
        )


@tokens_group.command("revoke")
@click.argument("name_or_id")
@pass_ctx
def tokens_revoke(obj: CliContext, name_or_id: str) -> None:
    """Revoke a token by name or id; its browser sessions end with it."""
    with session_for(obj) as session:
        count = tokens.revoke_token(session, name_or_id, datetime.now(UTC))
        session.commit()
    if count == 0:
        raise click.ClickException(f"no active token named {name_or_id!r} (monitor tokens list)")
    click.echo(f"revoked {count} token(s)")
