"""The operator commands, run in-process through click against real local servers and files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from monitor.cli.main import main
from tests.support.feedserver import FeedServer, rss
from tests.support.receivers import WebhookReceiver
from tests.support.stack import write_config

MEASURE = {
    "title": "Myanmar junta orders telecom operators to block Facebook",
    "description": "The military government ordered all mobile operators and internet "
    "providers to block Facebook until further notice.",
    "guid": "mm-1",
    "link": "https://news.example.org/mm/facebook",
}
OTHER = {
    "title": "Rice prices rise after a poor harvest",
    "description": "Farmers expect prices to stay high until spring.",
    "guid": "rice-1",
    "link": "https://news.example.org/economy/rice",
}


@pytest.fixture
def stack(tmp_path: Path, feed_server: FeedServer, webhook: WebhookReceiver) -> dict[str, str]:
    feed_server.serve("/mm.xml", rss([MEASURE, OTHER]))
    routes = [{"name": "team", "url": "${HOOK_URL}"}]
    config = write_config(
        tmp_path / "feeds.yaml", [{"name": "MM", "url": feed_server.url("/mm.xml")}], routes
    )
    return {
        "config": str(config),
        "db": f"sqlite:///{tmp_path / 'cli.db'}",
        "HOOK_URL": webhook.apprise_url(),
        "MONITOR_HOST_SPACING": "0",
    }


def _run(stack: dict[str, str], *args: str, input: str | None = None) -> Result:
    env = {"HOOK_URL": stack["HOOK_URL"], "MONITOR_HOST_SPACING": "0"}
    result = CliRunner().invoke(
        main, ["--config", stack["config"], "--db", stack["db"], *args], env=env, input=input
    )
    return result


def test_poll_then_items_events_and_alerts_lists(
    stack: dict[str, str], webhook: WebhookReceiver
) -> None:
    polled = _run(stack, "poll", "--once")
    assert polled.exit_code == 0, polled.output
    assert "2 new items, 1 flagged, 1 alerts queued, 1 sent" in polled.output
    post = webhook.wait_for(1)[0]
    assert post["title"] == "Myanmar: platform block · Facebook · enacted"
    assert MEASURE["title"] in post["message"]

    items = _run(stack, "items", "list", "--json")
    records = [json.loads(line) for line in items.output.splitlines()]
    assert {r["title"] for r in records} == {MEASURE["title"], OTHER["title"]}
    flagged = _run(stack, "items", "list", "--flagged", "--json")
    (only,) = [json.loads(line) for line in flagged.output.splitlines()]
    assert only["country"] == "MM" and "platform_block" in only["categories"]

    events = _run(stack, "events", "list", "--country", "mm", "--since", "30d")
    assert events.exit_code == 0 and "platform_block" in events.output
    assert _run(stack, "events", "list", "--category", "shutdown").output == ""
    assert "facebook" in events.output  # the target, part of the measure's identity

    # The event's record keeps what messages leave out: the classifier's reasons.
    event_id = only["event_id"]
    shown = _run(stack, "events", "show", str(event_id))
    assert shown.exit_code == 0, shown.output
    assert "targets: platform:facebook" in shown.output and "rule platform_block" in shown.output
    assert "model features: " in shown.output
    record = json.loads(_run(stack, "events", "show", str(event_id), "--json").output)
    assert record["targets"] == ["platform:facebook"] and len(record["reports"]) == 1
    assert record["alerts"] == [
        {
            "route": "team",
            "kind": "new",
            "status": "sent",
            "sent_at": record["alerts"][0]["sent_at"],
        }
    ]
    missing = _run(stack, "events", "show", "999")
    assert missing.exit_code != 0 and "no event #999" in missing.output

    alerts = _run(stack, "alerts", "list")
    assert "sent" in alerts.output and "team" in alerts.output
    assert stack["HOOK_URL"] not in alerts.output


def test_feeds_list_and_status_hide_secrets(stack: dict[str, str]) -> None:
    listed = _run(stack, "feeds", "list")
    assert listed.exit_code == 0
    assert "route team: json://127.0.0.1" in listed.output
    assert stack["HOOK_URL"] not in listed.output
    _run(stack, "poll", "--once")
    status = _run(stack, "feeds", "status")
    assert "MM" in status.output and " ok " in status.output


def test_alerts_test_sends_through_the_named_route(
    stack: dict[str, str], webhook: WebhookReceiver
) -> None:
    sent = _run(stack, "alerts", "test", "team")
    assert sent.exit_code == 0, sent.output
    assert "test alert" in webhook.wait_for(1)[0]["title"]
    unknown = _run(stack, "alerts", "test", "nobody")
    assert unknown.exit_code != 0 and "no alert route named 'nobody'" in unknown.output


def test_classify_explains_its_verdict(stack: dict[str, str]) -> None:
    text = MEASURE["title"] + "\n" + MEASURE["description"]
    result = _run(stack, "classify", "-", input=text)
    assert result.exit_code == 0
    assert "RELEVANT" in result.output and "MM" in result.output
    calm = _run(stack, "classify", OTHER["title"])
    assert "RELEVANT" not in calm.output.split("\n")[0]


def test_eval_json_has_the_design_keys(tmp_path: Path, stack: dict[str, str]) -> None:
    corpus = tmp_path / "tiny.jsonl"
    rows = [
        {
            "id": "t1",
            "title": MEASURE["title"],
            "summary": MEASURE["description"],
            "language": "en",
            "relevant": True,
            "categories": ["platform_block"],
            "country": "MM",
            "stage": "enacted",
        },
        {
            "id": "t2",
            "title": OTHER["title"],
            "summary": OTHER["description"],
            "language": "en",
            "relevant": False,
            "categories": [],
            "country": None,
            "stage": "none",
        },
    ]
    corpus.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    result = _run(stack, "eval", str(corpus), "--json")
    report = json.loads(result.output)
    assert report["items"] == 2
    assert report["relevance"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert report["country_accuracy"] == 1.0
    assert set(report) >= {"categories", "stage_accuracy", "items_per_second"}
    assert "macro_f1" in report["categories"] and "per_category" in report["categories"]

    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(rows[0]) + "\n{not json\n", encoding="utf-8")
    failed = _run(stack, "eval", str(broken))
    assert failed.exit_code != 0 and "line 2" in failed.output


def test_feedback_is_learned_by_train(tmp_path: Path, stack: dict[str, str], shared: Path) -> None:
    corpus = shared / "corpus" / "dev.jsonl"
    if not corpus.exists():
        pytest.skip(f"dev corpus not found at {corpus}")
    _run(stack, "poll", "--once")
    listing = _run(stack, "items", "list", "--json").output
    items = [json.loads(line) for line in listing.splitlines()]
    rice = next(r for r in items if r["title"] == OTHER["title"])
    bad = _run(stack, "feedback", str(rice["id"]), "--relevant", "--categories", "nonsense")
    assert bad.exit_code != 0 and "unknown categories nonsense" in bad.output
    ok = _run(stack, "feedback", str(rice["id"]), "--irrelevant")
    assert ok.exit_code == 0, ok.output
    model = tmp_path / "retrained.npz"
    trained = _run(stack, "train", str(corpus), "--out", str(model))
    assert trained.exit_code == 0, trained.output
    assert "1 feedback verdicts" in trained.output and model.stat().st_size > 1000
    reused = _run(stack, "classify", "--model", str(model), MEASURE["title"])
    assert reused.exit_code == 0 and "RELEVANT" in reused.output


def test_opml_round_trip(tmp_path: Path, stack: dict[str, str]) -> None:
    exported = _run(stack, "feeds", "export-opml")
    assert exported.exit_code == 0 and "xmlUrl" in exported.output
    opml = tmp_path / "feeds.opml"
    opml.write_text(exported.output, encoding="utf-8")
    imported = _run(stack, "feeds", "import-opml", str(opml))
    assert imported.exit_code == 0 and "/mm.xml" in imported.output


def test_tokens_are_shown_once_listed_without_their_text_and_revoked(
    stack: dict[str, str],
) -> None:
    made = _run(stack, "tokens", "create", "--name", "alice-laptop", "--scope", "read,write")
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[0]
    assert token.startswith("mon_") and "not shown again" in made.stderr
    listed = _run(stack, "tokens", "list")
    assert "alice-laptop" in listed.output and "read,write" in listed.output
    assert token not in listed.output
    wrong = _run(stack, "tokens", "create", "--name", "x", "--scope", "admin")
    assert wrong.exit_code != 0 and "unknown scope admin" in wrong.output
    assert _run(stack, "tokens", "revoke", "alice-laptop").exit_code == 0
    assert "revoked" in _run(stack, "tokens", "list").output
    again = _run(stack, "tokens", "revoke", "alice-laptop")
    assert again.exit_code != 0 and "no active token" in again.output
