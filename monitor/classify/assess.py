"""The Classifier: rules and model combined into explainable Assessments, in batches."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.utils import murmurhash3_32

from monitor.domain import Assessment, Category, ItemText, Stage
from monitor.errors import ModelError

from .country import guess_country
from .features import FeatureBuilder
from .model import RELEVANT, FloatArray, TrainedModel, load_model
from .rules import RuleEvidence, RuleSet, analyze, load_rules
from .stage import stage_scores
from .training import CATEGORY_HEAD, DEFAULT_MODEL

# A category the rules see is kept unless the model is fairly sure it is not there; one the
# rules do not see needs the model to be sure it is.
_CATEGORY_KEEP = 0.2
_CATEGORY_ADD = 0.6
_MAX_TERMS = 20
CATEGORIES = tuple(Category)
_TOP_FEATURES = 3


def _sigmoid(x: FloatArray) -> FloatArray:
    """Logistic function, elementwise."""
    out: FloatArray = (1.0 / (1.0 + np.exp(-x))).astype(np.float32)
    return out


class Classifier:
    """Judges news items: is this a new government internet-control measure, and which."""

    def __init__(self, rules: RuleSet, model: TrainedModel) -> None:
        """Pair compiled rules with a model trained on them (ModelError if they differ)."""
        if model.rules_digest != rules.digest:
            raise ModelError(
                "the model was trained with other rules; retrain it "
                "(python -m monitor.classify CORPUS.jsonl)"
            )
        self.rules = rules
        self.model = model
        self._features = FeatureBuilder(model.config, rules.negative_groups)
        if self._features.rule_names != model.rule_names:
            raise ModelError("the model's rule features do not match these rules; retrain it")
        self._word_analyzer = self._features.word_analyzer()
        self.threshold = model.threshold
        self.version = f"{model.version}+rules-{rules.digest[:8]}"

    @classmethod
    def load(cls, path: Path | None = None) -> Classifier:
        """Load a model file (None = the packaged default) with the packaged rules."""
        return cls(load_rules(), load_model(path if path is not None else DEFAULT_MODEL))

    def assess(self, item: ItemText) -> Assessment:
        """The verdict on one item."""
        return self.assess_many([item])[0]

    def assess_many(self, items: Sequence[ItemText]) -> list[Assessment]:
        """Verdicts on a batch; features and model scores are computed as matrices."""
        if not items:
            return []
        evidence = [analyze(self.rules, item.title, item.summary) for item in items]
        x = self._features.transform(evidence)
        logits = np.asarray(x @ self.model.weights) + self.model.bias
        probabilities = _sigmoid(logits.astype(np.float32))
        return [
            self._assessment(item, ev, probs)
            for item, ev, probs in zip(items, evidence, probabilities, strict=True)
        ]

    def _assessment(self, item: ItemText, evidence: RuleEvidence, probs: FloatArray) -> Assessment:
        """Assemble one Assessment from its rule evidence and head probabilities."""
        score = float(probs[0])
        relevant = score >= self.threshold
        categories = self._categories(evidence, probs, relevant)
        stage = stage_scores(self.rules, evidence)
        country = guess_country(self.rules, evidence, item.feed_country)
        reasons = _rule_reasons(evidence)
        reasons.append(f"model: relevance {score:.2f} (threshold {self.threshold:.2f})")
        if relevant:
            reasons.append("model features: " + ", ".join(self._top_features(evidence)))
        if categories or relevant:
            reasons.append(f"stage {stage.stage.value}: " + ", ".join(stage.cues[:6]))
            reasons.append(country.reason)
        return Assessment(
            relevant=relevant,
            score=round(score, 4),
            categories=categories,
            country=country.code,
            stage=stage.stage if (categories or relevant) else Stage.NONE,
            matched_terms=evidence.terms()[:_MAX_TERMS],
            evidence=tuple(reasons),
            model_version=self.version,
        )

    def _categories(
        self, evidence: RuleEvidence, probs: FloatArray, relevant: bool
    ) -> tuple[Category, ...]:
        """Categories the rules see (unless the model rejects them) or the model is sure of."""
        chosen: list[Category] = []
        best: tuple[float, Category] | None = None
        for category in CATEGORIES:
            head = self.model.head(CATEGORY_HEAD + category.value)
            p = None if head is None else float(probs[head])
            seen = evidence.categories.get(category)
            rule_ok = seen is not None and (seen.phrase or seen.actor or seen.pair)
            if (rule_ok and (p is None or p >= _CATEGORY_KEEP)) or (
                p is not None and p >= _CATEGORY_ADD
            ):
                chosen.append(category)
            if p is not None and (best is None or p > best[0]):
                best = (p, category)
        if relevant and not chosen and best is not None:
            chosen.append(best[1])
        return tuple(chosen)

    def _top_features(self, evidence: RuleEvidence) -> list[str]:
        """The item's words and rule flags that pushed its relevance score most."""
        weights = self.model.weights[:, self.model.head(RELEVANT) or 0]
        contributions: dict[str, float] = {}
        width = 1 << self.model.config.word_bits
        for gram in set(self._word_analyzer(evidence.text)):
            column = murmurhash3_32(gram, seed=0, positive=True) % width
            contributions[gram] = float(weights[column])
        offset = self.model.config.text_width
        flags = self._features.rule_values(evidence)
        for k, name in enumerate(self.model.rule_names):
            if flags[k]:
                contributions[f"[{name}]"] = float(weights[offset + k]) * flags[k]
        top = sorted(contributions.items(), key=lambda kv: (-kv[1], kv[0]))[:_TOP_FEATURES]
        return [f"{name} {value:+.2f}" for name, value in top]


def _rule_reasons(evidence: RuleEvidence) -> list[str]:
    """Human-readable lines for the rules that fired."""
    reasons = []
    for category, seen in evidence.categories.items():
        how = "phrase" if seen.phrase else "action near object"
        who = " with state actor" if seen.actor else ", no state actor"
        reasons.append(f"rule {category.value}: {how}{who}")
    if evidence.negatives:
        reasons.append("negative context: " + ", ".join(evidence.negatives))
    return reasons
