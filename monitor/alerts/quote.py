"""The sentence of an item that best shows the measure, with its deciding words marked.

Pure code. The classifier reports which of its terms it found (`Assessment.matched_terms`,
normalised lower case, in the rules' term syntax); this module finds them again in the
item's own words, picks the sentence that holds the most of them, and returns it with the
spans to mark. Renderers mark the spans in their own markup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from monitor.classify.matcher import term_atoms

__all__ = ["MAX_QUOTE_CHARS", "Quote", "evidence_quote"]

MAX_QUOTE_CHARS = 300
# Marking every term the rules know would mark half a sentence; the longest say the most.
MAX_MARKS = 5
# Sentence ends in the scripts monitor reads: Latin/Cyrillic, CJK, Devanagari, Arabic, Thai
# has none (its spaces end clauses, which is close enough once the sentence is clipped).
_SENTENCE_END = re.compile(r"(?<=[.!?;。！？।؟])\s+|(?<=[。！？])")


@dataclass(frozen=True, slots=True)
class Quote:
    """A sentence of the item and the (start, end) spans of its deciding words."""

    text: str
    marks: tuple[tuple[int, int], ...] = ()
    from_title: bool = False


@lru_cache(maxsize=8192)
def _term_pattern(term: str) -> re.Pattern[str] | None:
    atoms = term_atoms(term)
    if not atoms:
        return None
    return re.compile("".join(atoms), re.IGNORECASE)


def _spans(sentence: str, patterns: Sequence[re.Pattern[str]]) -> tuple[int, list[tuple[int, int]]]:
    """How many distinct terms the sentence holds, and the merged spans of the longest."""
    spans: list[tuple[int, int]] = []
    found = 0
    for pattern in patterns:
        hits = [m.span() for m in pattern.finditer(sentence) if m.end() > m.start()]
        if hits:
            found += 1
            spans.extend(hits)
    merged = _merge(spans)
    longest = sorted(merged, key=lambda span: span[0] - span[1])[:MAX_MARKS]
    return found, sorted(longest)


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _clip(text: str, marks: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """Cut a long sentence around its first deciding words, moving the marks with it."""
    if len(text) <= MAX_QUOTE_CHARS:
        return text, marks
    first = marks[0][0] if marks else 0
    start = max(0, min(first - 60, len(text) - MAX_QUOTE_CHARS))
    end = start + MAX_QUOTE_CHARS
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    shift = len(prefix) - start
    kept = [(a + shift, min(b, end) + shift) for a, b in marks if a >= start and a < end]
    return prefix + text[start:end].strip() + suffix, kept


def evidence_quote(title: str, summary: str, terms: Sequence[str]) -> Quote:
    """The sentence (from the summary if it is as strong as the headline) that holds most of
    the deciding terms, with their spans; the headline when nothing else does."""
    title = " ".join(title.split())
    patterns = [p for term in dict.fromkeys(terms) if (p := _term_pattern(term)) is not None]
    best_count, title_marks = _spans(title, patterns)
    best = Quote(title, tuple(title_marks), from_title=True)
    for raw in _SENTENCE_END.split(" ".join(summary.split())):
        sentence = raw.strip()
        if not sentence:
            continue
        count, marks = _spans(sentence, patterns)
        # The headline is shown anyway: a summary sentence as strong says more.
        if count > 0 and count >= best_count and (best.from_title or count > best_count):
            text, kept = _clip(sentence, marks)
            best, best_count = Quote(text, tuple(kept)), count
    if best.from_title:
        text, kept = _clip(best.text, list(best.marks))
        return Quote(text, tuple(kept), from_title=True)
    return best
