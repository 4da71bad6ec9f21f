"""Training, saving and loading the model: deterministic, pickle-free, versioned."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from monitor.classify import Classifier, LabeledExample, load_model, save_model, train
from monitor.classify.rules import load_rules
from monitor.domain import Category, ItemText, Stage
from monitor.errors import ModelError


def _example(n: int, title: str, relevant: bool, *cats: Category) -> LabeledExample:
    stage = Stage.ENFORCED if relevant else Stage.NONE
    return LabeledExample(
        f"t{n}", title, "", "en", relevant, cats, "XX" if relevant else None, stage
    )


SYNTHETIC = [
    _example(1, "Regulator blocks a messaging app nationwide", True, Category.PLATFORM_BLOCK),
    _example(2, "Authorities shut down mobile internet in the east", True, Category.SHUTDOWN),
    _example(
        3, "Ministry orders operators to block two news websites", True, Category.PLATFORM_BLOCK
    ),
    _example(4, "Government cuts internet access during exams", True, Category.SHUTDOWN),
    _example(5, "Court orders a ban on a video app", True, Category.PLATFORM_BLOCK),
    _example(6, "Police cut off mobile data in the capital", True, Category.SHUTDOWN),
    _example(7, "Bakery wins prize for its sourdough bread", False),
    _example(8, "Football club signs a new striker", False),
    _example(9, "Storm damages crops across the valley", False),
    _example(10, "Chip maker reports higher quarterly profit", False),
    _example(11, "Museum opens an exhibition of old maps", False),
    _example(12, "Orchestra announces its winter season", False),
]


def test_training_is_deterministic_to_the_byte(tmp_path: Path) -> None:
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    save_model(train(SYNTHETIC, seed=0), first)
    save_model(train(SYNTHETIC, seed=0), second)
    assert first.read_bytes() == second.read_bytes()


def test_save_load_round_trip_keeps_weights_and_verdicts(tmp_path: Path) -> None:
    model = train(SYNTHETIC)
    path = tmp_path / "model.npz"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded.version == model.version
    assert loaded.heads == model.heads
    np.testing.assert_array_equal(loaded.weights, model.weights)
    item = ItemText("Authorities block a chat app after protests")
    rules = load_rules()
    assert Classifier(rules, model).assess(item) == Classifier(rules, loaded).assess(item)
    assert Classifier.load(path).version.startswith(model.version)


def test_loading_never_unpickles(tmp_path: Path) -> None:
    path = tmp_path / "evil.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("meta.npy", pickle.dumps({"format": 1}))
    with pytest.raises(ModelError):
        load_model(path)


@pytest.mark.parametrize("content", [b"", b"not a zip", b"PK\x03\x04broken"])
def test_corrupt_model_files_raise_model_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ModelError):
        load_model(path)


def test_missing_model_file_raises_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        Classifier.load(tmp_path / "absent.npz")


def test_tampered_weights_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    save_model(train(SYNTHETIC), path)
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["value"] = arrays["value"] * 2
    np.savez(tmp_path / "tampered.npz", **arrays)
    with pytest.raises(ModelError, match="corrupt"):
        load_model(tmp_path / "tampered.npz")


def test_model_trained_with_other_rules_is_refused(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    packaged = load_rules()
    source = Path(__file__).resolve().parents[2] / "monitor/classify/data/rules.yaml"
    rules_file.write_text(source.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    other = load_rules(rules_file)
    assert other.digest != packaged.digest
    with pytest.raises(ModelError, match="other rules"):
        Classifier(other, train(SYNTHETIC, rules=packaged))


def test_training_needs_both_labels() -> None:
    with pytest.raises(ValueError):
        train([e for e in SYNTHETIC if e.relevant])


def test_packaged_model_loads_quickly() -> None:
    import time

    start = time.perf_counter()
    classifier = Classifier.load()
    assert time.perf_counter() - start < 2.0  # the target is 1 s; slack for slow CI
    assert classifier.version.startswith("clf2-")
    assert 0.0 < classifier.threshold < 1.0


def test_feature_columns_are_pinned() -> None:
    # The hashing must give the same columns in every process and on every platform; a
    # change here silently invalidates every trained model (bump model.FORMAT with it).
    from monitor.classify.features import FeatureBuilder, FeatureConfig

    names, columns = FeatureBuilder(FeatureConfig(), ()).word_features("internet shutdown 断网")
    assert names == [
        "internet",
        "shutdown",
        "断",
        "网",
        "internet shutdown",
        "shutdown 断",
        "断 网",
    ]
    assert columns.tolist() == [125483, 189658, 228871, 162160, 238405, 153650, 48056]


def test_direct_scores_equal_the_training_matrix() -> None:
    from monitor.classify.features import FeatureBuilder, FeatureConfig
    from monitor.classify.rules import analyze

    rules = load_rules()
    model = train(SYNTHETIC)
    texts = [(e.title, "Second sentence, the the the.") for e in SYNTHETIC] + [("", "")]
    evidence = [analyze(rules, title, summary) for title, summary in texts]
    configs = (
        model.config,
        FeatureConfig(word_bits=10, word_ngram_max=3, char_bits=8),
        FeatureConfig(word_bits=12, title_words=True),
    )
    for config in configs:
        builder = FeatureBuilder(config, rules.negative_groups)
        rng = np.random.default_rng(0)
        weights = rng.normal(size=(builder.width, 3)).astype(np.float32)
        bias = np.array([0.5, -1.0, 0.0], dtype=np.float32)
        matrix = builder.transform(evidence)
        expected = matrix.astype(np.float64) @ weights.astype(np.float64) + bias
        got = builder.scores(evidence, weights, bias)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_scores_of_a_batch_are_exactly_each_items_own() -> None:
    """Scores are summed a few documents at a time; a batch spanning many such slices
    scores every item to the bit as scoring it alone would."""
    from monitor.classify.features import FeatureBuilder, FeatureConfig
    from monitor.classify.rules import analyze

    rules = load_rules()
    texts = [(e.title, f"Report {i}: {e.title.lower()} again.") for i, e in enumerate(SYNTHETIC)]
    evidence = [analyze(rules, title, summary) for title, summary in texts * 5]
    assert len(evidence) > 50
    for config in (train(SYNTHETIC).config, FeatureConfig(word_bits=10, char_bits=8)):
        builder = FeatureBuilder(config, rules.negative_groups)
        weights = np.random.default_rng(1).normal(size=(builder.width, 4)).astype(np.float32)
        bias = np.zeros(4, dtype=np.float32)
        batch = builder.scores(evidence, weights, bias)
        alone = np.vstack([builder.scores([e], weights, bias) for e in evidence])
        assert batch.shape == (len(evidence), 4)
        assert np.array_equal(batch, alone)


def test_inference_imports_neither_sklearn_nor_scipy() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from monitor.classify import Classifier\n"
        "from monitor.domain import ItemText\n"
        "Classifier.load().assess_many([ItemText('Regulator blocks a chat app'), ItemText('x')])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_a_model_of_the_old_format_is_refused_clearly(tmp_path: Path) -> None:
    import json

    path = tmp_path / "old.npz"
    save_model(train(SYNTHETIC), path)
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    meta = json.loads(bytes(arrays["meta"]).decode())
    meta["format"] = 1
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(tmp_path / "v1.npz", **arrays)
    with pytest.raises(ModelError, match="format 1, expected 2; retrain"):
        load_model(tmp_path / "v1.npz")


def test_title_words_weigh_apart_from_the_summary() -> None:
    from monitor.classify.features import FeatureBuilder, FeatureConfig
    from monitor.classify.rules import analyze

    rules = load_rules()
    builder = FeatureBuilder(FeatureConfig(title_words=True), rules.negative_groups)
    in_title = analyze(rules, "telegram blocked", "officials said")
    in_summary = analyze(rules, "officials said", "telegram blocked")
    names, columns = builder.word_features(in_title.text, in_title.title_end)
    assert "title:telegram" in names and "title:telegram blocked" in names
    plain = builder.word_features(in_summary.text, in_summary.title_end)[0]
    assert "title:telegram" not in plain and "title:officials" in plain
    # The two texts have the same words but not the same features.
    a, b = builder.transform([in_title]), builder.transform([in_summary])
    assert (a != b).nnz > 0
    assert columns[names.index("title:telegram")] != columns[names.index("telegram")]


def test_stage_comes_from_the_wording_and_without_stage_words_defaults_to_in_force() -> None:
    def staged(n: int, title: str, stage: Stage) -> LabeledExample:
        return LabeledExample(
            f"s{n}", title, "", "en", True, (Category.PLATFORM_BLOCK,), "XX", stage
        )

    # Even when every training report of an unworded kind is "proposed", no head learns to
    # override the wording: measured held out by event, such heads cost more than they won.
    proposed = [staged(i, f"Lawmakers eye app {i} curbs", Stage.PROPOSED) for i in range(6)]
    lifted = [
        staged(10 + i, f"Regulator unblocks app {i} after talks", Stage.LIFTED) for i in range(6)
    ]
    model = train(proposed + lifted + SYNTHETIC[6:])
    assert not [head for head in model.heads if head.startswith("stage:")]
    classifier = Classifier(load_rules(), model)
    cueless = classifier.assess(ItemText("Lawmakers eye app 9 curbs", ""))
    assert cueless.stage is not Stage.PROPOSED
    if cueless.relevant or cueless.categories:
        assert cueless.stage is Stage.ENFORCED
        assert any("no stage words" in reason for reason in cueless.evidence)
    worded = classifier.assess(ItemText("Regulator unblocks app 7 after talks", ""))
    assert worded.stage is Stage.LIFTED
    assert any(reason.startswith("stage lifted (stage words)") for reason in worded.evidence)
