"""Targets: what a measure acts on, read from the text whatever its wording or language."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.errors import ModelError
from monitor.targets import TargetReader, TargetSet, agree, load_targets, target_label

READER = load_targets()


@pytest.mark.parametrize(
    ("title", "categories", "expected"),
    [
        ("Pakistan blocks access to X nationwide", ["platform_block"], ["platform:x"]),
        ("X inaccessible across Pakistan after government order", ["platform_block"],
         ["platform:x"]),
        ("Twitter restricted in Turkey after the quake", ["throttling"], ["platform:x"]),
        ("Россия замедляет YouTube", ["throttling"], ["platform:youtube"]),
        ("伊朗封锁微信和抖音", ["platform_block"], ["platform:douyin", "platform:wechat"]),
        ("Vietnam threatens to shut down Facebook", ["platform_block"], ["platform:facebook"]),
        ("Bangladesh blocks social media before the vote", ["platform_block"],
         ["platforms:social-media"]),
        ("Laos orders operators to cut foreign internet connections", ["shutdown"],
         ["network:internet"]),
        ("India suspends mobile internet in Manipur", ["shutdown"],
         ["network:internet", "network:mobile-data", "region:manipur"]),
        ("Russia bans VPN services", ["vpn_restriction"], ["tool:vpn"]),
        ("Nigeria requires SIM card registration for all accounts", ["identity_verification"],
         ["accounts:accounts"]),
        # The letter X in set phrases is no platform; a law names no target of its own.
        ("Generation X voters back new media law", ["platform_regulation"], []),
        ("Throttling of Telegram reported on the internet in Iran", ["throttling"],
         ["platform:telegram"]),
    ],
)  # fmt: skip
def test_targets_read_from_the_text(title: str, categories: list[str], expected: list[str]) -> None:
    assert READER.read(title, "", categories).ids() == expected


def test_an_unrelated_category_does_not_pick_a_network_target() -> None:
    # A platform block whose text says "internet regulator" is about the platform.
    found = READER.read("Internet regulator blocks Telegram", "", ["platform_block"])
    assert found.ids() == ["platform:telegram"]


def test_agreement() -> None:
    x, facebook = TargetSet.from_ids(["platform:x"]), TargetSet.from_ids(["platform:facebook"])
    social = TargetSet.from_ids(["platforms:social-media"])
    internet = TargetSet.from_ids(["network:internet"])
    mobile = TargetSet.from_ids(["network:mobile-data"])
    assert agree(x, x) and not agree(x, facebook)
    assert agree(social, facebook) and agree(x, social)
    assert agree(internet, mobile)  # reports of one cut say either
    assert not agree(internet, x)
    manipur = TargetSet.from_ids(["network:internet", "region:manipur"])
    kashmir = TargetSet.from_ids(["network:internet", "region:kashmir"])
    assert not agree(manipur, kashmir)  # two regions, two cuts
    assert agree(manipur, internet)  # a report naming no region may be about either


def test_labels() -> None:
    assert target_label(READER, ["platform:x", "region:manipur"]) == "X (Twitter) in Manipur"
    assert READER.label("network:mobile-data") == "mobile data"
    assert READER.label("platform:unknown") == "unknown"


def test_a_broken_lexicon_is_refused_with_where(tmp_path: Path) -> None:
    bad = tmp_path / "targets.yaml"
    bad.write_text("targets:\n  x: {kind: planet, terms: [x]}\n", encoding="utf-8")
    with pytest.raises(ModelError, match=r"targets\.x\.kind: 'planet'"):
        load_targets(bad)
    bad.write_text("targets:\n  x: {kind: platform, terms: [twitter, '']}\n", encoding="utf-8")
    with pytest.raises(ModelError, match=r"targets\.x\.terms"):
        load_targets(bad)
    bad.write_text("targets: [\n", encoding="utf-8")
    with pytest.raises(ModelError, match="cannot read"):
        load_targets(bad)
    assert isinstance(READER, TargetReader)
