"""Event clustering: which reports are the same measure, which stage moves alert."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.events.fingerprint import (
    BANDS,
    NUM_PERM,
    TextFingerprint,
    band_keys,
    merge_fingerprints,
    similarity,
    text_fingerprint,
)
from monitor.events.identity import (
    NEAR_DUPLICATE_THRESHOLD,
    EventCandidate,
    ItemForClustering,
    advance_stage,
    match_event,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]

# Synthetic stories written for these tests.
BLOCK_TITLE = "Vietnam orders nationwide block of Telegram messaging app"
BLOCK_SUMMARY = (
    "Vietnam's technology ministry has told internet providers to block Telegram, saying the "
    "app is used by fraud and drug rings. Providers must report back by the end of the month."
)
THREAT = (
    "Vietnam threatens to block Telegram over fraud groups",
    "Officials in Hanoi warned that Telegram could be shut out unless it helps remove groups "
    "trading stolen data.",
)
BLOCKED = (
    "Vietnam blocks Telegram as providers cut access",
    "Users across Vietnam reported that Telegram stopped loading on Tuesday after carriers "
    "complied with a ministry order.",
)
LIFTED = (
    "Vietnam lifts Telegram block after company agrees to cooperate",
    "Telegram is reachable again in Vietnam after the firm promised to respond to takedown "
    "requests within a day.",
)
DECREE = (
    "Vietnam drafts decree requiring verified accounts",
    "A draft decree would force social network users to verify their accounts with a phone "
    "number or national ID before posting comments.",
)


def event(
    event_id: int,
    title: str,
    summary: str,
    *,
    country: str | None = "VN",
    categories: tuple[str, ...] = ("platform_block",),
    stage: str = "enacted",
    seen: datetime = T0,
) -> EventCandidate:
    return EventCandidate(
        event_id=event_id,
        country=country,
        categories=frozenset(categories),
        stage=stage,
        fingerprint=text_fingerprint(title, summary),
        first_seen=seen,
        last_seen=seen,
        title=title,
    )


def item(
    title: str,
    summary: str,
    *,
    country: str | None = "VN",
    categories: tuple[str, ...] = ("platform_block",),
    stage: str = "enacted",
    published: datetime = T0 + timedelta(days=1),
) -> ItemForClustering:
    return ItemForClustering(
        country=country,
        categories=frozenset(categories),
        stage=stage,
        fingerprint=text_fingerprint(title, summary),
        published=published,
        title=title,
    )


def test_wire_copy_with_edited_title_joins() -> None:
    stored = event(1, BLOCK_TITLE, BLOCK_SUMMARY)
    copy = item("UPDATE 1-Hanoi tells carriers to block Telegram app", BLOCK_SUMMARY)
    found = match_event(copy, [stored])
    assert found is not None and found.event_id == 1
    assert found.near_duplicate and found.similarity >= NEAR_DUPLICATE_THRESHOLD
    assert found.reason.startswith("near-duplicate text")


def test_trimmed_syndicated_summary_still_joins() -> None:
    stored = event(1, BLOCK_TITLE, BLOCK_SUMMARY)
    trimmed = BLOCK_SUMMARY.split(". ")[0] + "."
    found = match_event(item("Vietnam orders block of Telegram app - document", trimmed), [stored])
    assert found is not None and found.event_id == 1


def test_different_measures_same_country_same_week_stay_apart() -> None:
    block = event(1, *BLOCKED)
    decree = item(*DECREE, categories=("identity_verification", "platform_regulation"))
    assert match_event(decree, [block]) is None
    # Even if the classifier put both under the same label, the text and terms differ.
    same_label = item(*DECREE, categories=("platform_block",))
    assert match_event(same_label, [block]) is None


def test_same_category_different_platform_stays_apart() -> None:
    viber = event(
        1,
        "Russia blocks Viber citing terrorism concerns",
        "The media regulator said it restricted access to Viber because the service failed to "
        "comply with laws.",
        country="RU",
    )
    signal = item(
        "Russia restricts access to Signal messenger",
        "The regulator announced it had blocked the encrypted messenger Signal for breaching "
        "anti-terrorism laws.",
        country="RU",
    )
    assert match_event(signal, [viber]) is None


@pytest.mark.parametrize(
    ("old", "new", "old_stage", "new_stage"),
    [(THREAT, BLOCKED, "proposed", "enforced"), (BLOCKED, LIFTED, "enforced", "lifted")],
)
def test_stage_follow_up_joins_and_alerts(
    old: tuple[str, str], new: tuple[str, str], old_stage: str, new_stage: str
) -> None:
    stored = event(7, *old, stage=old_stage)
    follow_up = item(*new, stage=new_stage, published=T0 + timedelta(days=9))
    found = match_event(follow_up, [stored])
    assert found is not None and found.event_id == 7
    assert not found.near_duplicate and "telegram" in found.shared_terms
    assert "shared terms: telegram" in found.reason
    assert advance_stage(stored.stage, follow_up.stage) is not None


def test_follow_up_prefers_the_right_event_among_several() -> None:
    events = [
        event(1, *THREAT, stage="proposed"),
        event(2, *DECREE, categories=("identity_verification",), stage="proposed"),
        event(3, BLOCK_TITLE, BLOCK_SUMMARY, country="LA"),
    ]
    found = match_event(item(*BLOCKED, stage="enforced"), events)
    assert found is not None and found.event_id == 1


def test_different_country_never_joins() -> None:
    stored = event(1, BLOCK_TITLE, BLOCK_SUMMARY, country="VN")
    assert match_event(item(BLOCK_TITLE, BLOCK_SUMMARY, country="LA"), [stored]) is None
    assert match_event(item(BLOCK_TITLE, BLOCK_SUMMARY, country=None), [stored]) is None
    unknown = event(2, BLOCK_TITLE, BLOCK_SUMMARY, country=None)
    found = match_event(item(BLOCK_TITLE, BLOCK_SUMMARY, country=None), [unknown])
    assert found is not None and found.event_id == 2


def test_outside_window_starts_new_event() -> None:
    stored = event(1, BLOCK_TITLE, BLOCK_SUMMARY)
    late = item(BLOCK_TITLE, BLOCK_SUMMARY, published=T0 + timedelta(days=22))
    assert match_event(late, [stored]) is None
    assert match_event(late, [stored], window=timedelta(days=30)) is not None
    inside = item(BLOCK_TITLE, BLOCK_SUMMARY, published=T0 + timedelta(days=20))
    assert match_event(inside, [stored]) is not None


def test_fingerprint_round_trip() -> None:
    fp = text_fingerprint(BLOCK_TITLE, BLOCK_SUMMARY)
    blob = fp.to_bytes()
    assert TextFingerprint.from_bytes(blob) == fp
    assert len(blob) < 2 + 4 * NUM_PERM + 200
    empty = text_fingerprint("", "  ")
    assert empty.empty and band_keys(empty) == []
    assert TextFingerprint.from_bytes(empty.to_bytes()) == empty
    assert similarity(empty, empty) == 0.0
    with pytest.raises(ValueError):
        TextFingerprint.from_bytes(b"\x09\x40garbage")


def test_fingerprint_is_identical_in_another_process() -> None:
    code = (
        "import sys; from monitor.events.fingerprint import band_keys, text_fingerprint; "
        "fp = text_fingerprint(sys.argv[1], sys.argv[2]); "
        "print(fp.to_bytes().hex()); print(','.join(band_keys(fp)))"
    )
    # A different hash seed proves nothing depends on Python's salted hash().
    env = {"PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code, BLOCK_TITLE, BLOCK_SUMMARY],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=REPO,
    ).stdout.split()
    fp = text_fingerprint(BLOCK_TITLE, BLOCK_SUMMARY)
    assert out == [fp.to_bytes().hex(), ",".join(band_keys(fp))]
    assert len(band_keys(fp)) == BANDS


def test_vietnamese_with_and_without_diacritics_joins() -> None:
    accented = (
        "Việt Nam yêu cầu chặn ứng dụng Telegram",
        "Bộ Khoa học và Công nghệ đề nghị các nhà mạng chặn Telegram vì nhiều nhóm lừa đảo "
        "hoạt động trên nền tảng này.",
    )
    plain = (
        "Viet Nam yeu cau chan ung dung Telegram",
        "Bo Khoa hoc va Cong nghe de nghi cac nha mang chan Telegram vi nhieu nhom lua dao "
        "hoat dong tren nen tang nay.",
    )
    assert text_fingerprint(*accented) == text_fingerprint(*plain)
    found = match_event(item(*plain), [event(1, *accented)])
    assert found is not None and found.near_duplicate
    # Ministry syllables are not evidence of the same measure; the platform is.
    assert text_fingerprint(*accented).terms == frozenset({"telegram"})


def test_unspaced_script_uses_character_ngrams() -> None:
    summary = "工业和信息化部表示，所有应用必须在年底前完成备案，否则将被下架。"
    first = text_fingerprint("应用商店须下架未备案的应用程序", summary)
    second = text_fingerprint("工信部：应用商店须下架未备案应用", summary)
    other = text_fingerprint("当局限制境外虚拟专用网络服务", "多家翻墙服务在周末无法连接。")
    assert similarity(first, second) >= NEAR_DUPLICATE_THRESHOLD
    assert similarity(first, other) < 0.1


def test_key_terms_pick_names_not_headline_capitals() -> None:
    fp = text_fingerprint(
        "Government Orders Providers To Block Zangi Messenger",
        "The ministry said Zangi ignored requests; decree 147/2024 gives providers 48 hours.",
    )
    assert fp.terms == frozenset({"zangi", "147/2024"})


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("proposed", "enacted", "enacted"),
        ("proposed", "enforced", "enforced"),
        ("proposed", "lifted", "lifted"),
        ("enacted", "enforced", "enforced"),
        ("enacted", "lifted", "lifted"),
        ("enforced", "lifted", "lifted"),
        ("lifted", "enforced", "enforced"),
        ("lifted", "enacted", "enacted"),
        ("lifted", "proposed", None),
        ("enforced", "proposed", None),
        ("enforced", "enacted", None),
        ("enacted", "enacted", None),
        ("enforced", "none", None),
        ("none", "none", None),
        ("none", "enacted", "enacted"),
        ("enacted", "bogus", None),
    ],
)
def test_stage_moves(old: str, new: str, expected: str | None) -> None:
    assert advance_stage(old, new) == expected


def test_merge_keeps_event_terms_and_newest_text() -> None:
    old = text_fingerprint(*THREAT)
    new = text_fingerprint(*BLOCKED)
    merged = merge_fingerprints(old, new)
    assert merged.signature == new.signature
    assert merged.terms == old.terms | new.terms


def test_templated_stories_naming_different_platforms_are_different_measures() -> None:
    """Wire templates make 'blocks Telegram' and 'blocks Signal' read alike; the names differ."""
    now = datetime(2026, 11, 23, tzinfo=UTC)
    body = "The ministry ordered all internet providers to block the messaging app nationwide."
    first = text_fingerprint("Vietnam orders providers to block Telegram", body + " Telegram")
    second = text_fingerprint("Vietnam orders providers to block Signal", body + " Signal")
    stored = EventCandidate(
        event_id=1,
        country="VN",
        categories=frozenset({"platform_block"}),
        stage="enacted",
        fingerprint=first,
        first_seen=now,
        last_seen=now,
        title="Vietnam orders providers to block Telegram",
    )
    probe = ItemForClustering(
        country="VN",
        categories=frozenset({"platform_block"}),
        stage="enacted",
        fingerprint=second,
        published=now,
        title="Vietnam orders providers to block Signal",
    )
    assert similarity(first, second) >= 0.5  # near-duplicate wording ...
    assert match_event(probe, [stored]) is None  # ... but another platform: another measure
    copy = ItemForClustering(
        country="VN",
        categories=frozenset({"platform_block"}),
        stage="enacted",
        fingerprint=text_fingerprint("Vietnam orders ISPs to block Telegram", body + " Telegram"),
        published=now,
        title="Vietnam orders ISPs to block Telegram",
    )
    match = match_event(copy, [stored])
    assert match is not None and match.event_id == 1
