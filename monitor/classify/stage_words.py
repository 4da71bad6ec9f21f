"""Which stage words of a text count: the reading shared by the stage guess and the model.

A stage word inside a longer one is not read twice, and an action word governed by a word of
intent or reversal before it tells what is threatened or undone, not what is in force. Both
the stage guess (stage.py) and the model's stage features (features.py) read the words left.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .matcher import Hit

# Words of intent or reversal govern the action words that follow them in their clause:
# "threatens to block", "plans to ban", "no intention to shut down", "restored after the
# blackout".
_GOVERNING = frozenset({"proposed", "lifted"})
_GOVERNED = frozenset({"enacted", "enforced"})
_SCOPE_CHARS = 30
_CLAUSE_END = frozenset(".;!?\n")

StagesOf = Callable[[Hit], tuple[str, ...]]


def _outermost(hits: Sequence[Hit]) -> list[Hit]:
    """The hits not lying inside a longer one.

    "will be blocked" (enacted) also contains "blocked" (enforced): the longer term is the
    reading meant, and counting both would let the shorter one outvote it.
    """
    return [
        hit
        for k, hit in enumerate(hits)
        if not any(
            j != k
            and other.start <= hit.start
            and hit.end <= other.end
            and other.end - other.start > hit.end - hit.start
            for j, other in enumerate(hits)
        )
    ]


def _governed(
    hit: Hit, before: Sequence[Hit], stages_of: StagesOf, text: str, title_end: int
) -> bool:
    """Whether an action word stands just after a word of intent or reversal, same clause."""
    stages = stages_of(hit)
    if _GOVERNING.intersection(stages) or not _GOVERNED.intersection(stages):
        return False
    in_title = hit.start < title_end
    return any(
        other.end <= hit.start
        and hit.start - other.end <= _SCOPE_CHARS
        and (other.start < title_end) == in_title
        and _GOVERNING.intersection(stages_of(other))
        and _CLAUSE_END.isdisjoint(text[other.end : hit.start])
        for other in before
    )


def counted_stage_words(
    hits: Sequence[Hit], stages_of: StagesOf, text: str, title_end: int
) -> tuple[Hit, ...]:
    """The stage words (hits with stages) that count, in order of position."""
    words = _outermost(hits)
    return tuple(
        hit
        for k, hit in enumerate(words)
        if not _governed(hit, words[:k], stages_of, text, title_end)
    )
