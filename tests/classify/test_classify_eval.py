"""Corpus reading, eval figures on a tiny corpus worked out by hand, and output formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.classify import (
    CorpusError,
    LabeledExample,
    cross_validate,
    format_assessment,
    format_evaluation,
    read_corpus,
)
from monitor.classify.evaluate import HOLD_OUT, folds, group_folds, report
from monitor.domain import Assessment, Category, Stage

PB, SD, VPN = Category.PLATFORM_BLOCK, Category.SHUTDOWN, Category.VPN_RESTRICTION


def _labeled(
    n: int,
    relevant: bool,
    cats: tuple[Category, ...] = (),
    country: str | None = None,
    stage: Stage = Stage.NONE,
) -> LabeledExample:
    return LabeledExample(f"e{n}", f"title {n}", "", "en", relevant, cats, country, stage)


def test_report_matches_figures_computed_by_hand() -> None:
    examples = [
        _labeled(1, True, (PB,), "VN", Stage.ENFORCED),
        _labeled(2, True, (SD,), "IR", Stage.ENACTED),
        _labeled(3, True, (PB, VPN), "RU", Stage.PROPOSED),
        _labeled(4, False),
        _labeled(5, False),
    ]
    verdicts = [
        Assessment(True, 0.9, (PB,), "VN", Stage.ENFORCED),  # all right
        Assessment(False, 0.2, (SD, PB), "IQ", Stage.ENACTED),  # missed; extra PB
        Assessment(True, 0.8, (PB,), "RU", Stage.ENFORCED),  # VPN missed, wrong stage
        Assessment(True, 0.7, (PB,), "CN", Stage.ENFORCED),  # false positive
        Assessment(False, 0.1),
    ]
    result = report(examples, verdicts, seconds=0.5)
    # relevance: tp 2, fp 1, fn 1 -> P 2/3, R 2/3, F1 2/3
    assert result["relevance"] == {"precision": 0.6667, "recall": 0.6667, "f1": 0.6667}
    per = result["categories"]["per_category"]
    # platform_block over relevant items: predicted on 1,2,3; true on 1,3 -> tp 2 fp 1 fn 0
    assert per["platform_block"] == {"precision": 0.6667, "recall": 1.0, "f1": 0.8, "support": 2}
    assert per["shutdown"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert per["vpn_restriction"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert per["throttling"]["support"] == 0
    assert result["categories"]["macro_f1"] == pytest.approx((0.8 + 1.0 + 0.0) / 3, abs=1e-4)
    assert result["country_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert result["stage_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert result["items"] == 5
    assert result["items_per_second"] == 10.0
    assert result["confusion"] == {"tp": 2, "fp": 1, "fn": 1, "tn": 1}
    assert set(result) == {
        "items",
        "relevant",
        "confusion",
        "per_language",
        "relevance",
        "categories",
        "country_accuracy",
        "stage_accuracy",
        "items_per_second",
    }
    assert "macro F1 0.600" in format_evaluation(result)


def test_report_gives_each_language_its_own_figures() -> None:
    examples = [
        _labeled(1, True, (PB,), "VN", Stage.ENFORCED),
        LabeledExample("v1", "t", "", "vi", True, (PB,), "VN", Stage.PROPOSED),
        LabeledExample("v2", "t", "", "vi", False),
    ]
    verdicts = [
        Assessment(True, 0.9, (PB,), "VN", Stage.ENFORCED),
        Assessment(False, 0.3),
        Assessment(True, 0.6, (PB,), "VN", Stage.ENFORCED),
    ]
    per_language = report(examples, verdicts, seconds=1.0)["per_language"]
    assert list(per_language) == ["vi", "en"]  # most items first
    vi = per_language["vi"]
    assert vi["confusion"] == {"tp": 0, "fp": 1, "fn": 1, "tn": 0}
    assert vi["relevance"]["f1"] == 0.0 and vi["country_accuracy"] == 0.0
    assert per_language["en"]["confusion"] == {"tp": 1, "fp": 0, "fn": 0, "tn": 0}
    assert per_language["en"]["stage_accuracy"] == 1.0


def test_group_folds_never_split_a_group() -> None:
    examples = [
        LabeledExample(
            f"i{i}",
            "t",
            "",
            "en",
            i % 2 == 0,
            url=f"https://site{i % 11}.example/a",
            event=f"ev{i % 10}",
        )
        for i in range(40)
    ]
    for key in ("event", "outlet"):
        split = group_folds(examples, 4, seed=3, group=HOLD_OUT[key])
        assert sorted(i for fold in split for i in fold) == list(range(40))
        owner = {}
        for number, fold in enumerate(split):
            for i in fold:
                assert owner.setdefault(HOLD_OUT[key](examples[i]), number) == number
    assert examples[3].outlet == "site3.example"


def test_folds_are_stratified_disjoint_and_deterministic() -> None:
    examples = [_labeled(i, i % 3 == 0) for i in range(20)]
    split = folds(examples, 5, seed=1)
    assert sorted(i for fold in split for i in fold) == list(range(20))
    assert split == folds(examples, 5, seed=1)
    assert all(sum(examples[i].relevant for i in fold) in (1, 2) for fold in split)


def test_cross_validate_has_the_eval_shape() -> None:
    relevant = [
        "Regulator blocks a chat app",
        "Authorities cut mobile internet",
        "Ministry orders a ban on a video site",
        "Police shut down the internet",
        "Court orders operators to block a news site",
    ]
    other = [
        "Bakery wins bread prize",
        "Team signs striker",
        "Storm hits coast",
        "Profit rises at chip firm",
        "Museum opens map show",
    ]
    examples = [_labeled(i, True, (PB,), "XX", Stage.ENFORCED) for i in range(5)]
    examples = [
        LabeledExample(e.id, t, "", "en", True, e.categories, None, e.stage)
        for e, t in zip(examples, relevant, strict=True)
    ]
    examples += [LabeledExample(f"n{i}", t, "", "en", False) for i, t in enumerate(other)]
    result = cross_validate(examples, k=5, seed=0)
    assert result["items"] == 10 and result["folds"] == 5
    assert 0.0 <= result["relevance"]["f1"] <= 1.0
    with pytest.raises(ValueError):
        cross_validate(examples, k=1)


def test_read_corpus_names_file_and_line(tmp_path: Path) -> None:
    good = {
        "id": "a",
        "title": "T",
        "summary": None,
        "relevant": True,
        "categories": ["shutdown"],
        "country": "ir",
        "stage": "enforced",
    }
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + '{"id": "b", "title": "x"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"c\.jsonl, line 3: missing field 'relevant'"):
        read_corpus(path)
    path.write_text(json.dumps(good) + "\n", encoding="utf-8")
    (example,) = read_corpus(path)
    assert example.country == "IR" and example.categories == (SD,) and example.summary == ""
    path.write_text("{broken\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="line 1"):
        read_corpus(path)
    bad_label = dict(good, categories=["weather"])
    path.write_text(json.dumps(bad_label) + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="unknown label"):
        read_corpus(path)
    with pytest.raises(CorpusError, match="cannot read"):
        read_corpus(tmp_path / "absent.jsonl")


def test_format_assessment_says_verdict_and_why() -> None:
    text = format_assessment(
        Assessment(
            True, 0.93, (PB,), "VN", Stage.ENACTED, ("chặn",), ("rule platform_block",), "clf1-x"
        )
    )
    assert text.startswith("RELEVANT  score 0.93")
    assert "platform_block" in text and "VN" in text and "enacted" in text
    assert "rule platform_block" in text and "clf1-x" in text
