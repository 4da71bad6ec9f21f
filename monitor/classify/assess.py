"""The Classifier: rules and model combined into explainable Assessments, in batches.

Inference needs numpy only: features.py hashes the text and sums the model's weights
directly, so neither scipy nor scikit-learn is imported to load a model or assess items.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

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
_NO_STAGE_WORDS = "no stage words: reports mostly tell of a measure in force"
_MAX_TERMS = 20
CATEGORIES = tuple(Category)
_TOP_FEATURES = 3
# Items are scored in chunks, which bounds the memory of the intermediate arrays.
_CHUNK = 1024


def _sigmoid(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Logistic function, elementwise (in float32 precision, as the scores are reported)."""
    out: npt.NDArray[np.float64] = (1.0 / (1.0 + np.exp(-x.astype(np.float32)))).astype(np.float64)
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
        self._features = FeatureBuilder(model.config, rules.negative_groups, rules.class_names)
        if self._features.rule_names != model.rule_names:
            raise ModelError("the model's rule features do not match these rules; retrain it")
        if model.weights.shape[0] != self._features.width:
            raise ModelError("the model's width does not match its feature configuration")
        self._weights: FloatArray = np.ascontiguousarray(model.weights, dtype=np.float32)
        self._bias: FloatArray = model.bias.astype(np.float32)
        relevant_head = model.head(RELEVANT) or 0
        self._relevant_head = relevant_head
        self._relevant_weights: FloatArray = np.ascontiguousarray(self._weights[:, relevant_head])
        self._category_heads = tuple(
            (category, model.head(CATEGORY_HEAD + category.value)) for category in CATEGORIES
        )
        self.threshold = model.threshold
        self.version = f"{model.version}+rules-{rules.digest[:8]}"

    @classmethod
    def load(cls, path: Path | None = None) -> Classifier:
        """Load a model file (None = the packaged default) with the packaged rules."""
        return cls(load_rules(), load_model(path if path is not None else DEFAULT_MODEL))

    def assess(self, item: ItemText) -> Assessment:
        """The verdict on one item."""
        return self.assess_many([item])[0]

    def assess_many(self, items: Sequence[ItemText], *, explain: bool = True) -> list[Assessment]:
        """Verdicts on a batch; model scores are computed for chunks of items at once.

        `explain=False` leaves out the model features behind a relevant verdict (the rules,
        stage and country reasons stay): the daemon's writer does not need them, and they
        are a third of the cost of a flagged item; `monitor classify` and `monitor events
        show` compute them when asked.
        """
        verdicts: list[Assessment] = []
        for start in range(0, len(items), _CHUNK):
            verdicts += self._assess_chunk(items[start : start + _CHUNK], explain)
        return verdicts

    def _assess_chunk(self, items: Sequence[ItemText], explain: bool) -> list[Assessment]:
        """Verdicts on up to _CHUNK items."""
        rules = self.rules
        evidence = [analyze(rules, item.title, item.summary) for item in items]
        logits = self._features.scores(evidence, self._weights, self._bias)
        probabilities = _sigmoid(logits).tolist()
        return [
            self._assessment(item, ev, probs, explain)
            for item, ev, probs in zip(items, evidence, probabilities, strict=True)
        ]

    def _assessment(
        self, item: ItemText, evidence: RuleEvidence, probs: list[float], explain: bool
    ) -> Assessment:
        """Assemble one Assessment from its rule evidence and head probabilities."""
        score = probs[self._relevant_head]
        relevant = score >= self.threshold
        categories = self._categories(evidence, probs, relevant)
        country = guess_country(self.rules, evidence, item.feed_country, item.language)
        reasons = _rule_reasons(evidence)
        reasons.append(f"model: relevance {score:.2f} (threshold {self.threshold:.2f})")
        if relevant and explain:
            reasons.append("model features: " + ", ".join(self._top_features(evidence)))
        stage = Stage.NONE
        if categories or relevant:
            guess = stage_scores(self.rules, evidence)
            stage = guess.stage
            why = "stage words" if guess.cues else _NO_STAGE_WORDS
            reasons.append(f"stage {stage.value} ({why}): " + (", ".join(guess.cues[:6]) or "-"))
            reasons.append(country.reason)
        return Assessment(
            relevant=relevant,
            score=round(score, 4),
            categories=categories,
            country=country.code,
            stage=stage,
            matched_terms=evidence.terms()[:_MAX_TERMS] if evidence.hits else (),
            evidence=tuple(reasons),
            model_version=self.version,
        )

    def _categories(
        self, evidence: RuleEvidence, probs: list[float], relevant: bool
    ) -> tuple[Category, ...]:
        """Categories the rules see (unless the model rejects them) or the model is sure of."""
        chosen: list[Category] = []
        best: tuple[float, Category] | None = None
        seen_by_rules = evidence.categories
        for category, head in self._category_heads:
            p = None if head is None else probs[head]
            seen = seen_by_rules.get(category) if seen_by_rules else None
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
        names, columns = self._features.word_features(evidence.text, evidence.title_end)
        weights = self._relevant_weights[columns]
        if len(names) > _TOP_FEATURES:
            # Only words tied with or above the k-th largest weight can make the top k.
            floor = np.partition(weights, -_TOP_FEATURES)[-_TOP_FEATURES]
            keep = np.flatnonzero(weights >= floor).tolist()
        else:
            keep = list(range(len(names)))
        values = weights.tolist()
        contributions = {names[i]: values[i] for i in keep}
        offset = self.model.config.text_width
        flags = self._features.rule_values(evidence)
        for k, name in enumerate(self.model.rule_names):
            if flags[k]:
                contributions[f"[{name}]"] = float(self._relevant_weights[offset + k]) * flags[k]
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
