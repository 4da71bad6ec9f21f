"""Turn rule evidence and text into the model's features (hashed n-grams + rule flags).

The hashing is done here, with numpy only, so inference needs neither scipy nor scikit-learn:
a token's hash is the CRC-32 of its UTF-8 bytes; a bigram's combines its two tokens' hashes;
both go through a 64-bit mixing step and are masked to the table width. All arithmetic is on
fixed-width unsigned integers, so columns are the same in every process and on every platform.

A text's row holds the count of each column, l2-normalized, then the scaled rule flags. The
model's score is therefore (sum of weights over the text's n-grams) / (l2 norm of the counts)
plus the rule flags times their weights, which `FeatureBuilder.scores` computes for a whole
batch without building a matrix; `FeatureBuilder.transform` builds the same rows as a sparse
matrix for training (scipy is imported there only).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from monitor.domain import Category

from .rules import RuleEvidence

if TYPE_CHECKING:
    import scipy.sparse as sp

# Scripts written without spaces between words (CJK, kana, hangul, Thai, Lao, Myanmar,
# Khmer): each character is a token of its own, and bigrams of them approximate words.
_UNSPACED = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af"
# Combining marks belong to their word (Indic vowel signs, Arabic and Hebrew points, Latin
# accents left uncomposed); `\w` alone would cut "इंटरनेट" into fragments at every sign.
_MARKS = (
    "\u0300-\u036f\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed"
    "\u0900-\u0dff\u1200-\u137f"
)
CATEGORIES = tuple(Category)
TOKEN_PATTERN = f"(?u)[{_UNSPACED}]|(?:[^\\W{_UNSPACED}]|[{_MARKS}])+"
_TOKENS = re.compile(TOKEN_PATTERN)
_WHITESPACE = re.compile(r"\s\s+")

UIntArray = npt.NDArray[np.uint64]
IntArray = npt.NDArray[np.intp]
FloatArray = npt.NDArray[np.float32]

# Mixing constants (splitmix64 / murmur3 fmix64); uint64 arithmetic wraps modulo 2**64.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_CHAR_SALT = np.uint64(0x5BD1E995)  # keeps character n-grams apart from words
_TITLE_SALT = np.uint64(0x27D4EB2F165667C5)  # keeps title copies of words apart from the rest
TITLE_PREFIX = "title:"
STAGES = ("proposed", "enacted", "enforced", "lifted")
# Stage words counted up to this many per part; more says nothing new.
_STAGE_CAP = 3.0
# Token -> CRC-32 lookups kept per builder (cleared when full, to bound memory).
_HASH_CACHE_SIZE = 50_000


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """How text becomes features; saved with the model so loading rebuilds the same space."""

    word_bits: int = 18
    word_ngram_max: int = 2
    char_bits: int = 0  # 0 disables character n-grams
    char_ngram_min: int = 3
    char_ngram_max: int = 4
    rule_scale: float = 1.0  # rule flags against l2-normalized text vectors
    # The title's words hashed once more on their own, so that a word can weigh
    # differently in a headline (the news) than in a lede (often background).
    title_words: bool = False
    # Flags for each action and object class the rules see anywhere in the text, and for each
    # category whose action and object both occur (RuleSet.class_names).
    class_flags: bool = False

    @property
    def text_width(self) -> int:
        """Columns taken by hashed text features."""
        return (1 << self.word_bits) + ((1 << self.char_bits) if self.char_bits else 0)


def _fmix(keys: UIntArray) -> UIntArray:
    """Scramble 64-bit keys (murmur3's finalizer), so every bit of a column depends on all."""
    with np.errstate(over="ignore"):
        keys = keys ^ (keys >> _S33)
        keys = keys * _MIX1
        keys = keys ^ (keys >> _S33)
        keys = keys * _MIX2
        return keys ^ (keys >> _S33)


def _combine(left: UIntArray, right: UIntArray) -> UIntArray:
    """The key of an n-gram from the key of its first n-1 tokens and of its last token."""
    with np.errstate(over="ignore"):
        return left * _GOLDEN + right


def token_hashes(tokens: Sequence[str]) -> UIntArray:
    """CRC-32 of each token's UTF-8 bytes (stable across processes, unlike hash())."""
    crc = zlib.crc32
    return np.fromiter((crc(t.encode()) for t in tokens), dtype=np.uint64, count=len(tokens))


def tokenize(text: str) -> list[str]:
    """The word tokens of a normalized text."""
    return _TOKENS.findall(text)


def char_ngrams(text: str, n_min: int, n_max: int) -> list[str]:
    """Character n-grams of a text with runs of whitespace folded to one space."""
    text = _WHITESPACE.sub(" ", text)
    return [text[i : i + n] for n in range(n_min, n_max + 1) for i in range(len(text) - n + 1)]


def _word_keys(hashes: UIntArray, doc: IntArray, n_max: int) -> tuple[UIntArray, IntArray]:
    """Keys and document numbers of all word n-grams, from the batch's token hashes.

    `doc` gives each token's document, in order; n-grams never span two documents.
    """
    keys = [hashes]
    docs = [doc]
    prefix = hashes
    for n in range(2, n_max + 1):
        if len(hashes) < n:
            break
        prefix = _combine(prefix[:-1], hashes[n - 1 :])
        same = doc[: len(doc) - n + 1] == doc[n - 1 :]
        keys.append(prefix[same])
        docs.append(doc[: len(doc) - n + 1][same])
    return np.concatenate(keys), np.concatenate(docs)


@dataclass(frozen=True, slots=True)
class TextCounts:
    """A batch's text features as (document, column, count) triples, sorted by document."""

    doc: IntArray
    column: IntArray
    count: FloatArray
    norm: npt.NDArray[np.float64]  # l2 norm of each document's counts (1 for empty ones)


def rule_feature_names(
    negative_groups: Sequence[str], class_names: Sequence[str] = ()
) -> tuple[str, ...]:
    """The names of the rule columns, in order (class flags last, when given)."""
    names = ["actor", "any_pair", "any_phrase", "triple", "triple_title", "negative", "n_cats"]
    for category in Category:
        names += [f"{category.value}:{k}" for k in ("seen", "phrase", "actor")]
    names += [f"negative:{group}" for group in negative_groups]
    names += ["actor_title", "actor_acts", "platform_acts"]
    names += [f"stage:{stage}:{part}" for stage in STAGES for part in ("title", "summary")]
    names += list(class_names)
    return tuple(names)


def _stage_values(evidence: RuleEvidence) -> list[float]:
    """Capped counts of each stage's words, in the title and in the summary."""
    counts = dict.fromkeys(((s, t) for s in STAGES for t in (True, False)), 0.0)
    for cue in evidence.stage_cues:
        if cue in counts:
            counts[cue] += 1.0
    return [min(counts[(s, t)], _STAGE_CAP) / _STAGE_CAP for s in STAGES for t in (True, False)]


def rule_vector(
    evidence: RuleEvidence, negative_groups: Sequence[str], class_names: Sequence[str] = ()
) -> list[float]:
    """The rule flags of one item, in rule_feature_names order."""
    width = 7 + 3 * len(CATEGORIES) + len(negative_groups)
    present = evidence.classes
    tail = [
        float(evidence.actor_in_title),
        float(evidence.actor_acts),
        float(evidence.platform_acts),
        *_stage_values(evidence),
    ]
    tail += [1.0 if name in present else 0.0 for name in class_names]
    if not evidence.categories and not evidence.negatives:
        values = [0.0] * width
        values[0] = float(evidence.actor)
        return values + tail
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
    return values + tail


class FeatureBuilder:
    """Hashes a batch of analysed items into the model's feature space."""

    def __init__(
        self,
        config: FeatureConfig,
        negative_groups: Sequence[str],
        class_names: Sequence[str] = (),
    ) -> None:
        """Prepare for `config` (hashing is stateless); class names count if it asks."""
        self.config = config
        self.negative_groups = tuple(negative_groups)
        self.class_names = tuple(class_names) if config.class_flags else ()
        self.rule_names = rule_feature_names(self.negative_groups, self.class_names)
        self._platform_acts = self.rule_names.index("platform_acts")
        self._class_columns = {name: self.rule_names.index(name) for name in self.class_names}
        self._hash_cache: dict[str, int] = {}

    def _hashes(self, tokens: list[str]) -> UIntArray:
        """token_hashes(tokens), through a cache: feeds repeat most of their words."""
        cache = self._hash_cache
        values = list(map(cache.get, tokens))
        if None in values:
            if len(cache) >= _HASH_CACHE_SIZE:
                cache.clear()
            crc = zlib.crc32
            for i, value in enumerate(values):
                if value is None:
                    token = tokens[i]
                    values[i] = cache[token] = crc(token.encode())
        return np.array(values, dtype=np.uint64)

    @property
    def width(self) -> int:
        """Total number of feature columns."""
        return self.config.text_width + len(self.rule_names)

    def word_features(self, text: str, title_end: int = 0) -> tuple[list[str], IntArray]:
        """The word n-grams of one text (as named in explanations) and their columns.

        With title words on, the title's n-grams follow as "title:..." names.
        """
        names, keys = self._named_keys(tokenize(text), "")
        if self.config.title_words and title_end:
            title_names, title_keys = self._named_keys(tokenize(text[:title_end]), TITLE_PREFIX)
            names += title_names
            keys = np.concatenate([keys, title_keys ^ _TITLE_SALT])
        mask = np.uint64((1 << self.config.word_bits) - 1)
        columns: IntArray = (_fmix(keys) & mask).astype(np.intp)
        return names, columns

    def _named_keys(self, tokens: list[str], prefix: str) -> tuple[list[str], UIntArray]:
        """Names and unmixed keys of the word n-grams of one token list."""
        hashes = self._hashes(tokens)
        names = [prefix + t for t in tokens]
        keys = [hashes]
        previous = hashes
        for n in range(2, self.config.word_ngram_max + 1):
            if len(tokens) < n:
                break
            names += [prefix + " ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
            previous = _combine(previous[:-1], hashes[n - 1 :])
            keys.append(previous)
        return names, np.concatenate(keys)

    def rule_values(self, evidence: RuleEvidence) -> list[float]:
        """The scaled rule flags of one item."""
        scale = self.config.rule_scale
        return [v * scale for v in rule_vector(evidence, self.negative_groups, self.class_names)]

    def rule_matrix(self, evidence: Sequence[RuleEvidence]) -> FloatArray:
        """The scaled rule flags of a batch, one row per item."""
        rows = np.zeros((len(evidence), len(self.rule_names)), dtype=np.float32)
        columns = self._class_columns
        for index, e in enumerate(evidence):
            # Most items carry no rule evidence at all: their row stays zeros.
            if e.categories or e.negatives or e.actor or e.stage_cues:
                rows[index] = rule_vector(e, self.negative_groups, self.class_names)
            elif e.classes and columns:
                # Words of some class and nothing else (many ordinary items): the same row as
                # rule_vector's, whose other columns are all zero here but platform_acts.
                rows[index, [columns[name] for name in e.classes]] = 1.0
                rows[index, self._platform_acts] = float(e.platform_acts)
        scaled: FloatArray = rows * np.float32(self.config.rule_scale)
        return scaled

    def _keys(
        self, texts: Sequence[str], titles: Sequence[str]
    ) -> Iterator[tuple[UIntArray, IntArray, int]]:
        """(keys, documents, column offset) of each hashed block: words, then characters."""
        config = self.config
        yield (*self._batch_word_keys(texts), 0)
        if config.title_words:
            keys, docs = self._batch_word_keys(titles)
            yield keys ^ _TITLE_SALT, docs, 0
        if config.char_bits:
            grams = [char_ngrams(t, config.char_ngram_min, config.char_ngram_max) for t in texts]
            lengths = np.fromiter(map(len, grams), dtype=np.intp, count=len(texts))
            flat = [g for gs in grams for g in gs]
            keys = token_hashes(flat) ^ _CHAR_SALT
            docs = np.repeat(np.arange(len(texts), dtype=np.intp), lengths)
            yield keys, docs, 1 << config.word_bits

    def _batch_word_keys(self, texts: Sequence[str]) -> tuple[UIntArray, IntArray]:
        """Keys and document numbers of the word n-grams of a batch of texts."""
        token_lists = [tokenize(t) for t in texts]
        lengths = np.fromiter(map(len, token_lists), dtype=np.intp, count=len(texts))
        tokens = [t for tokens in token_lists for t in tokens]
        doc = np.repeat(np.arange(len(texts), dtype=np.intp), lengths)
        return _word_keys(self._hashes(tokens), doc, self.config.word_ngram_max)

    def text_counts(self, evidence: Sequence[RuleEvidence]) -> TextCounts:
        """Count each (document, column) of the batch and each document's l2 norm."""
        texts = [e.text for e in evidence]
        titles = [e.text[: e.title_end] for e in evidence] if self.config.title_words else []
        config = self.config
        n = len(texts)
        all_docs: list[IntArray] = []
        all_columns: list[IntArray] = []
        all_counts: list[FloatArray] = []
        squares = np.zeros(n, dtype=np.float64)
        for keys, docs, offset in self._keys(texts, titles):
            bits = config.word_bits if offset == 0 else config.char_bits
            columns = (_fmix(keys) & np.uint64((1 << bits) - 1)).astype(np.int64)
            # One sort by (document, column) finds repeated columns within a document.
            combined = np.sort((docs.astype(np.int64) << 32) | columns)
            if len(combined):
                starts = np.flatnonzero(np.diff(combined, prepend=combined[0] - 1))
            else:
                starts = np.zeros(0, dtype=np.intp)
            counts = np.diff(np.append(starts, len(combined))).astype(np.float32)
            unique = combined[starts]
            run_docs = (unique >> 32).astype(np.intp)
            squares += np.bincount(run_docs, weights=counts.astype(np.float64) ** 2, minlength=n)
            all_docs.append(run_docs)
            all_columns.append((unique & 0xFFFFFFFF).astype(np.intp) + offset)
            all_counts.append(counts)
        norm = np.sqrt(squares)
        norm[norm == 0] = 1.0
        return TextCounts(
            doc=np.concatenate(all_docs),
            column=np.concatenate(all_columns),
            count=np.concatenate(all_counts),
            norm=norm,
        )

    def scores(
        self, evidence: Sequence[RuleEvidence], weights: FloatArray, bias: FloatArray
    ) -> npt.NDArray[np.float64]:
        """Linear scores (items x heads) of a batch: weights summed over its features + bias."""
        n = len(evidence)
        counts = self.text_counts(evidence)
        text_width = self.config.text_width
        heads = weights.shape[1]
        # Sum over each document's distinct columns: count * weight row, then / norm.
        contributions = weights[counts.column].astype(np.float64) * counts.count[:, None]
        text = _sum_by_doc(contributions, counts.doc, n, heads) / counts.norm[:, None]
        rules = self.rule_matrix(evidence).astype(np.float64) @ weights[text_width:].astype(
            np.float64
        )
        result: npt.NDArray[np.float64] = text + rules + bias.astype(np.float64)
        return result

    def transform(self, evidence: Sequence[RuleEvidence]) -> sp.csr_matrix:
        """Feature rows for a batch as a sparse matrix (for training; imports scipy)."""
        import scipy.sparse as sp

        n = len(evidence)
        counts = self.text_counts(evidence)
        values = counts.count / counts.norm[counts.doc].astype(np.float32)
        text = sp.csr_matrix(
            (values.astype(np.float32), (counts.doc, counts.column)),
            shape=(n, self.config.text_width),
            dtype=np.float32,
        )
        rules = sp.csr_matrix(self.rule_matrix(evidence))
        return sp.hstack([text, rules], format="csr", dtype=np.float32)


def _sum_by_doc(
    values: npt.NDArray[Any], doc: IntArray, n: int, heads: int
) -> npt.NDArray[np.float64]:
    """Row sums of `values` grouped by `doc` (n groups; empty groups sum to 0).

    `doc` comes in runs (sorted within each hashed block), so each run is summed at once and
    the runs are added up per document.
    """
    out = np.zeros((n, heads), dtype=np.float64)
    if len(doc):
        starts = np.flatnonzero(np.diff(doc, prepend=-1))
        np.add.at(out, doc[starts], np.add.reduceat(values, starts, axis=0))
    return out
