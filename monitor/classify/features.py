"""Turn rule evidence and text into the model's feature matrix (hashed n-grams + rule flags)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer

from monitor.domain import Category

from .rules import RuleEvidence

# Words, plus each CJK/kana/hangul character as its own token, since those scripts do not
# separate words with spaces; bigrams of such tokens approximate their words.
CATEGORIES = tuple(Category)
TOKEN_PATTERN = (
    r"(?u)[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[^\W\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]+"
)


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """How text becomes features; saved with the model so loading rebuilds the same space."""

    word_bits: int = 18
    word_ngram_max: int = 2
    char_bits: int = 0  # 0 disables character n-grams
    char_ngram_min: int = 3
    char_ngram_max: int = 4
    rule_scale: float = 1.0  # rule flags against l2-normalized text vectors

    @property
    def text_width(self) -> int:
        """Columns taken by hashed text features."""
        return (1 << self.word_bits) + ((1 << self.char_bits) if self.char_bits else 0)


def rule_feature_names(negative_groups: Sequence[str]) -> tuple[str, ...]:
    """The names of the rule columns, in order."""
    names = ["actor", "any_pair", "any_phrase", "triple", "triple_title", "negative", "n_cats"]
    for category in Category:
        names += [f"{category.value}:{k}" for k in ("seen", "phrase", "actor")]
    names += [f"negative:{group}" for group in negative_groups]
    return tuple(names)


def rule_vector(evidence: RuleEvidence, negative_groups: Sequence[str]) -> list[float]:
    """The rule flags of one item, in rule_feature_names order."""
    cats = evidence.categories.values()
    triple = any(c.actor and (c.pair or c.phrase) for c in cats)
    values = [
        float(evidence.actor),
        float(any(c.pair for c in cats)),
        float(any(c.phrase for c in cats)),
        float(triple),
        float(any(c.actor and c.in_title for c in cats)),
        float(bool(evidence.negatives)),
        min(len(evidence.categories), 3) / 3.0,
    ]
    for category in CATEGORIES:
        found = evidence.categories.get(category)
        if found is None:
            values += [0.0, 0.0, 0.0]
        else:
            values += [1.0, float(found.phrase), float(found.actor)]
    negatives = set(evidence.negatives)
    values += [float(group in negatives) for group in negative_groups]
    return values


class FeatureBuilder:
    """Builds the sparse feature matrix for a batch of analysed items."""

    def __init__(self, config: FeatureConfig, negative_groups: Sequence[str]) -> None:
        """Prepare the (stateless) hashing vectorizers for `config`."""
        self.config = config
        self.negative_groups = tuple(negative_groups)
        self.rule_names = rule_feature_names(self.negative_groups)
        self._words = HashingVectorizer(
            n_features=1 << config.word_bits,
            ngram_range=(1, config.word_ngram_max),
            token_pattern=TOKEN_PATTERN,
            lowercase=False,
            alternate_sign=False,
            norm="l2",
            dtype=np.float32,
        )
        self._chars = (
            HashingVectorizer(
                n_features=1 << config.char_bits,
                analyzer="char",
                ngram_range=(config.char_ngram_min, config.char_ngram_max),
                lowercase=False,
                alternate_sign=False,
                norm="l2",
                dtype=np.float32,
            )
            if config.char_bits
            else None
        )

    def word_analyzer(self) -> Callable[[str], list[str]]:
        """The word n-gram analyzer, to name the features of one text."""
        analyzer: Callable[[str], list[str]] = self._words.build_analyzer()
        return analyzer

    def rule_values(self, evidence: RuleEvidence) -> list[float]:
        """The scaled rule flags of one item."""
        scale = self.config.rule_scale
        return [v * scale for v in rule_vector(evidence, self.negative_groups)]

    @property
    def width(self) -> int:
        """Total number of feature columns."""
        return self.config.text_width + len(self.rule_names)

    def transform(self, evidence: Sequence[RuleEvidence]) -> sp.csr_matrix:
        """Feature rows for a batch: hashed words (and characters), then rule flags."""
        texts = [e.text for e in evidence]
        blocks = [self._words.transform(texts)]
        if self._chars is not None:
            blocks.append(self._chars.transform(texts))
        rules = np.array(
            [rule_vector(e, self.negative_groups) for e in evidence], dtype=np.float32
        ).reshape(len(evidence), len(self.rule_names))
        blocks.append(sp.csr_matrix(rules * np.float32(self.config.rule_scale)))
        return sp.hstack(blocks, format="csr", dtype=np.float32)
