"""`monitor classify`, `eval`, `train` and `feedback`: the classifier from the command line."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from monitor.cli.common import CliContext, pass_ctx, session_for
from monitor.errors import ModelError, MonitorError


@click.command()
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


@click.command("eval")
@click.argument(
    "corpora", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
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
@click.option(
    "--by",
    type=click.Choice(["event", "outlet", "item"]),
    default="event",
    show_default=True,
    help="With --cv: keep whole events or whole outlets in one fold, or split items at random.",
)
def eval_command(
    corpora: tuple[Path, ...], as_json: bool, model: Path | None, cv: int | None, by: str
) -> None:
    """Measure the classifier on labeled JSONL corpora (figures per language too)."""
    from monitor.classify import (
        Classifier,
        cross_validate,
        evaluate,
        format_evaluation,
        read_corpus,
    )

    try:
        examples = [e for corpus in corpora for e in read_corpus(corpus)]
        if cv:
            _require_training_extra()
            report = cross_validate(examples, k=cv, by=by)
        else:
            report = evaluate(Classifier.load(model), examples)
    except MonitorError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(report) if as_json else format_evaluation(report))


@click.command()
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
    from monitor.store.feedback import feedback_examples

    _require_training_extra()
    examples = []
    try:
        for path in corpora:
            examples.extend(read_corpus(path))
    except MonitorError as exc:
        raise click.ClickException(str(exc)) from exc
    if not no_feedback:
        with session_for(obj) as session:
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


@click.command()
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
    from monitor.store.feedback import record_feedback

    cats = [c.strip() for c in (categories or "").split(",") if c.strip()]
    with session_for(obj) as session:
        try:
            record_feedback(session, item_id, relevant, cats, country, stage, datetime.now(UTC))
            session.commit()
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"feedback recorded for item {item_id}")
