"""The `monitor` command: thin click wrappers over bootstrap and the stages."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.bootstrap import Runtime, Settings, build_runtime, secrets_of, settings_from_env
from monitor.errors import ConfigError, ModelError, MonitorError
from monitor.feeds_config import MonitorConfig, load_config
from monitor.logsetup import SecretFilter, configure_logging
from monitor.store import db
from monitor.store.models import AlertRow, AssessmentRow, EventRow, FeedRow, ItemRow


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
        self.secret_filter.update(secrets_of(runtime.config))
        return runtime


pass_ctx = click.make_pass_decorator(CliContext)


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
@pass_ctx
def run(obj: CliContext, no_migrate: bool) -> None:
    """Run the daemon: poll, classify, alert, until SIGTERM/SIGINT."""
    from monitor.scheduler import Daemon

    if not no_migrate:
        db.upgrade(obj.settings.db_url)
    runtime = obj.runtime()
    runtime.sync_feeds()
    click.echo(f"monitor: database {db.redact_db_url(obj.settings.db_url)}", err=True)
    daemon = Daemon(runtime, obj.secret_filter)
    daemon.install_signal_handlers()
    daemon.run_until_stopped()
    sys.stdout.flush()
    sys.stderr.flush()
    # Fetch threads blocked on a slow server must not hold the exit past the 10 s budget;
    # every write is already committed or rolled back at this point.
    os._exit(0)


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
        click.echo(
            f"polled {report.polled} feeds ({report.failed} failed): {report.new_items} new "
            f"items, {report.flagged} flagged, {report.alerts_queued} alerts queued, "
            f"{delivered.sent} sent, {delivered.failed} failed"
        )


@main.command()
@pass_ctx
def healthcheck(obj: CliContext) -> None:
    """Exit 0 when the database answers and a poll happened lately (Docker HEALTHCHECK)."""
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


@feeds.command("status")
@pass_ctx
def feeds_status(obj: CliContext) -> None:
    """Per feed: last poll, failures, last error, next poll."""
    db.upgrade(obj.settings.db_url)
    engine = db.make_engine(obj.settings.db_url)
    with db.make_sessions(engine)() as session:
        rows = list(session.scalars(select(FeedRow).order_by(FeedRow.name)))
        for row in rows:
            if not row.enabled:
                state = "disabled"
            elif row.gone:
                state = "GONE"
            elif row.last_error_kind == "offline":
                state = "offline"
            elif row.consecutive_failures:
                state = f"FAILING x{row.consecutive_failures}"
            else:
                state = "ok"
            last = f"{row.last_polled_at:%Y-%m-%d %H:%M}" if row.last_polled_at else "never"
            click.echo(
                f"{row.name:40.40}  {state:14}  last {last}  next {row.next_poll_at:%H:%M}"
                + (f"  error: {row.last_error}" if row.last_error else "")
                + (f"  malformed: {row.malformed}" if row.malformed else "")
            )
    engine.dispose()


@feeds.command("import-opml")
@click.argument("opml_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def feeds_import_opml(opml_file: Path) -> None:
    """Print feeds.yaml entries for the feeds of an OPML file (append them to feeds.yaml)."""
    import yaml

    from monitor.opml import import_opml

    try:
        feeds_found = import_opml(opml_file.read_bytes())
    except MonitorError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(yaml.safe_dump(feeds_found, allow_unicode=True, sort_keys=False), nl=False)


@feeds.command("export-opml")
@pass_ctx
def feeds_export_opml(obj: CliContext) -> None:
    """Write the watch list as OPML 2.0 to stdout."""
    from monitor.opml import export_opml

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
    from monitor.alerts.render import format_for_url, render
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
    with _session(obj) as session:
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


# ---------------------------------------------------------------------------- items, events


@contextmanager
def _session(obj: CliContext) -> Iterator[Session]:
    db.upgrade(obj.settings.db_url)
    engine = db.make_engine(obj.settings.db_url)
    try:
        with db.make_sessions(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    from monitor.feeds_config import parse_duration

    try:
        return datetime.now(UTC) - parse_duration(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r}: use a duration (2d, 6h) or a date") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@main.group()
def items() -> None:
    """What was collected."""


@items.command("list")
@click.option("--feed", "feed_name", help="Only items first seen in this feed.")
@click.option("--flagged", is_flag=True, help="Only items the classifier flagged.")
@click.option("--since", help="A duration (2d, 6h) or an ISO date.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def items_list(
    obj: CliContext,
    feed_name: str | None,
    flagged: bool,
    since: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List stored items, newest first, with their verdict."""
    with _session(obj) as session:
        query = (
            select(ItemRow, AssessmentRow, FeedRow.name)
            .join(AssessmentRow, AssessmentRow.item_id == ItemRow.id, isouter=True)
            .join(FeedRow, FeedRow.id == ItemRow.feed_id)
            .order_by(ItemRow.fetched_at.desc(), ItemRow.id.desc())
            .limit(limit)
        )
        if feed_name:
            query = query.where(FeedRow.name == feed_name)
        if flagged:
            query = query.where(AssessmentRow.relevant.is_(True))
        when = _since(since)
        if when is not None:
            query = query.where(ItemRow.fetched_at >= when)
        for item, verdict, feed in session.execute(query):
            record = {
                "id": item.id,
                "feed": feed,
                "title": item.title,
                "url": item.url,
                "published": item.published.isoformat(),
                "relevant": verdict.relevant if verdict else None,
                "score": round(verdict.score, 3) if verdict else None,
                "categories": verdict.categories if verdict else [],
                "country": verdict.country if verdict else None,
                "stage": verdict.stage if verdict else None,
                "event_id": item.event_id,
                "sources": item.source_count,
            }
            if as_json:
                click.echo(json.dumps(record, ensure_ascii=False))
            else:
                mark = "!" if record["relevant"] else " "
                click.echo(f"{mark} #{item.id:<6} {feed:24.24} {record['score']}  {item.title}")


@main.group()
def events() -> None:
    """Measures: items grouped into events."""


@events.command("list")
@click.option("--since", help="A duration (7d) or an ISO date.")
@click.option("--country", help="Alpha-2 code.")
@click.option("--category", help="A taxonomy category.")
@click.option("--limit", default=50, show_default=True)
@pass_ctx
def events_list(
    obj: CliContext, since: str | None, country: str | None, category: str | None, limit: int
) -> None:
    """List events, most recently seen first."""
    with _session(obj) as session:
        query = select(EventRow).order_by(EventRow.last_seen.desc()).limit(limit * 4)
        when = _since(since)
        if when is not None:
            query = query.where(EventRow.last_seen >= when)
        if country:
            query = query.where(EventRow.country == country.upper())
        shown = 0
        for row in session.scalars(query):
            if category and category not in row.categories:
                continue
            click.echo(
                f"#{row.id:<5} {row.country or '--'}  {row.stage:9} items={row.item_count:<3} "
                f"{','.join(row.categories):30.30}  {row.title}"
            )
            shown += 1
            if shown >= limit:
                break


# ---------------------------------------------------------------------------- classifier


@main.command()
@click.argument("text", required=False)
@click.option("--country", "feed_country", help="Fallback country (as a feed would give).")
@click.option("--model", type=click.Path(exists=True, path_type=Path), envvar="MONITOR_MODEL")
def classify(text: str | None, feed_country: str | None, model: Path | None) -> None:
    """Assess one text (title, then summary after a blank line); `-` or nothing reads stdin."""
    from monitor.classify import Classifier, format_assessment
    from monitor.domain import ItemText

    if text is None or text == "-":
        text = sys.stdin.read()
    title, _, summary = text.strip().partition("\n")
    try:
        classifier = Classifier.load(model)
    except ModelError as exc:
        raise click.ClickException(str(exc)) from exc
    verdict = classifier.assess(ItemText(title.strip(), summary.strip(), None, feed_country))
    click.echo(format_assessment(verdict))


@main.command("eval")
@click.argument("corpus", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the DESIGN.md JSON object.")
@click.option(
    "--model",
    type=click.Path(exists=True, path_type=Path),
    envvar="MONITOR_MODEL",
    help="Model file [env MONITOR_MODEL; the packaged model].",
)
@click.option(
    "--cv",
    type=click.IntRange(min=2),
    help="K-fold cross-validation: train on K-1 folds, score the held-out one (for a corpus "
    "the model was trained on).",
)
def eval_command(corpus: Path, as_json: bool, model: Path | None, cv: int | None) -> None:
    """Measure the classifier on a labeled JSONL corpus."""
    from monitor.classify import (
        Classifier,
        cross_validate,
        evaluate,
        format_evaluation,
        read_corpus,
    )

    try:
        examples = read_corpus(corpus)
        if cv:
            _require_training_extra()
            report = cross_validate(examples, k=cv)
            report.pop("folds", None)
        else:
            report = evaluate(Classifier.load(model), examples)
    except MonitorError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(report) if as_json else format_evaluation(report))


@main.command()
@click.argument("corpora", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("model.npz"),
    show_default=True,
    help="Where to write the model; point MONITOR_MODEL at it to use it.",
)
@click.option("--no-feedback", is_flag=True, help="Ignore operator feedback in the database.")
@pass_ctx
def train(obj: CliContext, corpora: tuple[Path, ...], out: Path, no_feedback: bool) -> None:
    """Train the model from labeled JSONL plus the operators' feedback."""
    from monitor.classify import read_corpus, save_model
    from monitor.classify import train as train_model
    from monitor.feedback import feedback_examples

    _require_training_extra()
    examples = []
    try:
        for path in corpora:
            examples.extend(read_corpus(path))
    except MonitorError as exc:
        raise click.ClickException(str(exc)) from exc
    if not no_feedback:
        with _session(obj) as session:
            extra = feedback_examples(session)
        examples.extend(extra)
        click.echo(f"{len(extra)} feedback verdicts from the database")
    model = train_model(examples)
    save_model(model, out)
    click.echo(f"trained on {len(examples)} examples -> {out} (use it: MONITOR_MODEL={out})")


def _require_training_extra() -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise click.ClickException(
            'training needs scikit-learn: pip install "monitor[train]" (or ".[train]")'
        ) from exc


@main.command()
@click.argument("item_id", type=int)
@click.option("--relevant/--irrelevant", required=True)
@click.option("--categories", help="Comma-separated categories (for --relevant).")
@click.option("--country", help="Alpha-2 code of the acting state.")
@click.option("--stage", help="proposed, enacted, enforced or lifted.")
@pass_ctx
def feedback(
    obj: CliContext,
    item_id: int,
    relevant: bool,
    categories: str | None,
    country: str | None,
    stage: str | None,
) -> None:
    """Record an operator's verdict on an item; the next `monitor train` learns from it."""
    from monitor.feedback import record_feedback

    cats = [c.strip() for c in (categories or "").split(",") if c.strip()]
    with _session(obj) as session:
        try:
            record_feedback(session, item_id, relevant, cats, country, stage, datetime.now(UTC))
            session.commit()
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"feedback recorded for item {item_id}")
