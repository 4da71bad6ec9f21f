"""Event identity: country + kind of measure + target + time decide, not the wording; which
stage moves alert; each item's candidates stay bounded however many events are stored."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.domain import Assessment, Category, Entry, Stage
from monitor.events.batch import BatchEvents, Probe
from monitor.events.fingerprint import text_fingerprint
from monitor.events.identity import (
    SETTLING_TIME,
    EventCandidate,
    ItemForClustering,
    identity_keys,
    match_event,
    stage_move,
)
from monitor.events.recorder import (
    FlaggedItem,
    MeasureRecorder,
    identity_lookup_keys,
    text_keys,
)
from monitor.events.targets import TargetSet, load_targets
from monitor.store import event_repo
from monitor.store.db import make_engine, make_sessions, upgrade
from monitor.store.event_repo import EventRecord

T0 = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
READER = load_targets()


def _item(title: str, categories: set[str], country: str | None = "PK", hours: float = 0,
          stage: str = "enforced") -> ItemForClustering:  # fmt: skip
    cats = frozenset(categories)
    return ItemForClustering(
        country=country,
        categories=cats,
        stage=stage,
        fingerprint=text_fingerprint(title, ""),
        published=T0 + timedelta(hours=hours),
        title=title,
        targets=READER.read(title, "", cats),
    )


def _event(event_id: int, item: ItemForClustering) -> EventCandidate:
    return EventCandidate(
        event_id, item.country, item.categories, item.stage, item.fingerprint,
        item.published, item.published, item.title, item.targets,
    )  # fmt: skip


BLOCK = _item("Pakistan blocks access to X nationwide on interior ministry orders",
              {"platform_block"})  # fmt: skip


def test_paraphrases_of_one_block_are_one_measure() -> None:
    stored = [_event(1, BLOCK)]
    for title, categories in [
        ("Pakistan restricts social media platform X, users report outages", {"throttling"}),
        ("X inaccessible across Pakistan after government order", {"platform_block"}),
        ("Pakistan restores access to X after Islamabad High Court order", {"platform_block"}),
    ]:
        found = match_event(_item(title, categories, hours=3), stored)
        assert found is not None and found.same_identity, title
        assert found.reason.startswith("same state, measure and target (PK, x)")


def test_another_target_another_state_or_another_kind_is_another_measure() -> None:
    stored = [_event(1, BLOCK)]
    assert match_event(_item("Pakistan blocks access to Telegram nationwide",
                             {"platform_block"}), stored) is None  # fmt: skip
    assert match_event(_item("India blocks access to X nationwide", {"platform_block"},
                             country="IN"), stored) is None  # fmt: skip
    vpn = _item("Pakistan orders VPN users to register", {"vpn_restriction"})
    assert match_event(vpn, stored) is None


def test_a_measure_in_force_stays_one_event_for_months_but_not_after_its_lifting() -> None:
    quiet_months = _item("Pakistan keeps X blocked", {"platform_block"}, hours=24 * 90)
    assert match_event(quiet_months, [_event(1, BLOCK)]) is not None
    lifted = dataclasses.replace(_event(1, BLOCK), stage="lifted")
    again = _item("Pakistan blocks X again", {"platform_block"}, hours=24 * 60)
    assert match_event(again, [lifted]) is None  # a new block after the lifting: new event
    soon = _item("Pakistan blocks X again", {"platform_block"}, hours=24 * 5)
    assert match_event(soon, [lifted]) is not None  # re-imposed within days: an update
    a_year = _item("Pakistan blocks X", {"platform_block"}, hours=24 * 365)
    assert match_event(a_year, [_event(1, BLOCK)]) is None


def test_without_a_country_the_target_alone_does_not_join() -> None:
    first = _item("Authorities cut the internet ahead of exams", {"shutdown"}, country=None)
    other = _item("Internet shutdown reported in the capital", {"shutdown"}, country=None)
    assert identity_keys(None, first.categories, first.targets) == []
    found = match_event(other, [_event(1, first)])
    assert found is None or not found.same_identity


def test_regional_cuts_in_two_regions_are_two_measures() -> None:
    manipur = _item("India suspends mobile internet in Manipur", {"shutdown"}, country="IN")
    kashmir = _item("India suspends mobile internet in Kashmir", {"shutdown"}, country="IN")
    assert match_event(kashmir, [_event(1, manipur)]) is None
    nationwide = _item("Internet cut extended, India says", {"shutdown"}, country="IN")
    assert match_event(nationwide, [_event(1, manipur)]) is not None


def test_stage_moves_and_which_of_them_alert() -> None:
    def move(old: str, new: str, hours: float, since_hours: float = 0) -> tuple[str, bool] | None:
        found = stage_move(old, new, event_first_seen=T0,
                           stage_since=T0 + timedelta(hours=since_hours),
                           published=T0 + timedelta(hours=hours))  # fmt: skip
        return None if found is None else (found.stage, found.alert)

    settle = SETTLING_TIME.total_seconds() / 3600
    assert move("enacted", "enforced", 2) == ("enforced", False)  # the same news, settling
    assert move("enacted", "enforced", settle + 1) == ("enforced", True)  # now in force
    assert move("proposed", "enacted", 1) == ("enacted", True)  # a threat became an order
    assert move("enforced", "lifted", 30) == ("lifted", True)
    assert move("enforced", "enacted", 30) is None  # never backwards
    # A late copy of a report from before the lifting must not re-open the block...
    assert move("lifted", "enforced", 20, since_hours=30) is None
    # ...while a new block after it does.
    assert move("lifted", "enforced", 40, since_hours=30) == ("enforced", True)


def _row(event_id: int, when: datetime, country: str = "PK") -> EventRecord:
    fingerprint = text_fingerprint(f"event {event_id}", "").to_bytes()
    return EventRecord(id=event_id, country=country, categories=["platform_block"],
                    stage="enforced", title=f"event {event_id}", fingerprint=fingerprint,
                    first_seen=when, last_seen=when, item_count=1, max_score=0.9,
                    targets=["platform:x"], stage_changed_at=None)  # fmt: skip


def test_candidates_stay_bounded_however_many_events_share_a_key() -> None:
    probe_item = _item("Pakistan blocks X", {"platform_block"}, hours=10)
    keys = text_keys("PK", probe_item.categories, probe_item.fingerprint) + identity_lookup_keys(
        "PK", probe_item.categories, probe_item.targets
    )
    rows = [_row(i, T0 + timedelta(seconds=i)) for i in range(1, 5001)]
    filed = [(row.id, key) for row in rows for key in keys]
    events = BatchEvents(event_repo.StoredEvents(rows, filed))
    probe = Probe(
        probe_item,
        text_keys("PK", probe_item.categories, probe_item.fingerprint),
        T0 - timedelta(days=21),
        identity_lookup_keys("PK", probe_item.categories, probe_item.targets),
        T0 - timedelta(days=180),
    )
    found = events.candidates(probe)
    assert len(found) <= event_repo.KEY_EVENTS_CHECKED + event_repo.NEWEST_EVENTS_CHECKED
    assert found[0].event_id == 5000  # the newest first
    # Events the batch starts are found at once, and the bound holds as they pile up.
    for i in range(5001, 7001):
        newest = events.add(
            _row(i, T0 + timedelta(hours=1, seconds=i)),
            probe_item.fingerprint,
            probe_item.targets,
            keys,
        )
    found = events.candidates(probe)
    assert found[0].event_id == newest < 0  # a new event of the batch: no database id yet
    assert len(found) <= event_repo.KEY_EVENTS_CHECKED + event_repo.NEWEST_EVENTS_CHECKED


def test_identity_keys_name_the_measure_not_the_wording() -> None:
    a = _item("Pakistan blocks access to X", {"platform_block"})
    b = _item("X inaccessible across Pakistan", {"throttling"})
    assert identity_keys("PK", a.categories, a.targets) == ["access|platform:x"]
    assert identity_keys("PK", b.categories, b.targets) == ["access|platform:x"]
    cut = TargetSet.from_ids(["network:mobile-data"])
    assert identity_keys("PK", frozenset({"shutdown"}), cut) == ["access|network"]


def test_the_recorder_keeps_a_quiet_measure_in_force_as_one_event(tmp_path: Path) -> None:
    """Months between two reports of one block: the second is found by the measure's
    identity even though the event is also among the country's newest (a text candidate
    that the shorter text window alone would drop)."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    sessions = make_sessions(make_engine(url))
    recorder = MeasureRecorder(routes=(), targets=READER)
    placed = []
    for n, (title, days) in enumerate([("China blocks Wikipedia again", 0),
                                       ("Wikipedia still inaccessible in China", 100),
                                       ("China blocks Wikipedia", 400)]):  # fmt: skip
        when = T0 + timedelta(days=days)
        entry = Entry(f"g{n}", None, title, "", when, f"h{n}")
        verdict = Assessment(True, 0.9, (Category.PLATFORM_BLOCK,), "CN", Stage.ENFORCED)
        with sessions.begin() as session:
            [(event_id, _)] = recorder.record_batch(
                session, [FlaggedItem(n, 0, "f", entry, verdict)], when
            )
        placed.append(event_id)
    assert placed[0] == placed[1] != placed[2]  # a year later: a new measure
