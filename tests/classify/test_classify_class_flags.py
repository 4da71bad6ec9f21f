"""Class flags: which kinds of rule words occur, however far apart, as model features."""

from __future__ import annotations

import numpy as np

from monitor.classify.features import FeatureBuilder, FeatureConfig, rule_vector
from monitor.classify.model import _config_meta
from monitor.classify.rules import analyze, load_rules
from monitor.classify.training import TrainingOptions


def test_classes_name_action_and_object_kinds_and_loose_pairs() -> None:
    rules = load_rules()
    evidence = analyze(
        rules,
        "Regulator acts against a messaging app",
        "Weeks later, after a long dispute over fees and many hearings in the capital's courts, "
        "the app was finally blocked.",
    )
    assert {"act:block", "obj:platform", "title:obj:platform"} <= evidence.classes
    assert "title:act:block" not in evidence.classes
    assert "loose:platform_block" in evidence.classes
    assert "actor+loose:platform_block" in evidence.classes
    assert set(evidence.classes) <= set(rules.class_names)
    assert analyze(rules, "Orchestra announces its winter season", "").classes == frozenset()


def test_the_batch_matrix_has_each_items_rule_vector() -> None:
    """rule_matrix fills rows with class words only without rule_vector; same values."""
    rules = load_rules()
    builder = FeatureBuilder(
        FeatureConfig(title_words=True, class_flags=True), rules.negative_groups, rules.class_names
    )
    texts = [
        ("Shares of the app maker rise", "The internet company grew."),
        ("Ministry orders operators to block two news websites", ""),
        ("Storm cuts power in the valley", "Lines were cut."),
        ("Museum opens an exhibition of old maps", ""),
    ]
    evidence = [analyze(rules, title, summary) for title, summary in texts]
    rows = builder.rule_matrix(evidence)
    for row, e in zip(rows, evidence, strict=True):
        expected = rule_vector(e, rules.negative_groups, builder.class_names)
        np.testing.assert_array_equal(row, np.array(expected, dtype=np.float32))


def test_class_flags_off_leave_older_model_files_their_version() -> None:
    """A configuration without class flags is stored as before the option existed."""
    assert "class_flags" not in _config_meta(FeatureConfig(title_words=True))
    assert _config_meta(TrainingOptions().features)["class_flags"] is True
    builder = FeatureBuilder(FeatureConfig(), load_rules().negative_groups, ("act:block",))
    assert "act:block" not in builder.rule_names  # off: the names are not columns
