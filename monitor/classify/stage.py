"""How far a measure has gone, read from the wording (draft -> ordered -> in force -> lifted)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from monitor.domain import Stage

from .matcher import Hit
from .rules import RuleEvidence, RuleSet

# Headlines state the news; the summary often recalls the background (an earlier block).
_TITLE_FACTOR = 2.0
# Most reports describe a measure in force, so wording must outweigh this to say otherwise.
_PRIOR = {Stage.ENFORCED: 0.6}
# Ties go to the rarer, more specific stage.
_TIE_ORDER = (Stage.LIFTED, Stage.PROPOSED, Stage.ENACTED, Stage.ENFORCED)
# A word of intent or of reversal governs the action words that follow it in its clause:
# "threatens to block", "plans to ban", "no intention to shut down", "restored after the
# blackout". Those actions then tell what is threatened or undone, not what is in force.
_SCOPING = frozenset({"proposed", "lifted"})
_SCOPED = frozenset({"enacted", "enforced"})
_SCOPE_CHARS = 30
_CLAUSE_END = frozenset(".;!?\n")


@dataclass(frozen=True, slots=True)
class StageGuess:
    """The stage, the score of each stage, and the cue words behind it."""

    stage: Stage
    scores: Mapping[Stage, float]
    cues: tuple[str, ...]


def _stage_hits(rules: RuleSet, evidence: RuleEvidence) -> list[Hit]:
    """The stage words of a text, less those inside a longer stage word.

    "will be blocked" (enacted) also contains "blocked" (enforced): the longer term is the
    reading meant, and counting both would let the shorter one outvote it.
    """
    hits = [hit for hit in evidence.hits if rules.roles[hit.roles].stages]
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


def _scoped(rules: RuleSet, evidence: RuleEvidence, hit: Hit, earlier: list[Hit]) -> bool:
    """Whether an action word stands just after a word of intent or reversal, same clause."""
    stages = rules.roles[hit.roles].stages
    if _SCOPING.intersection(stages) or not _SCOPED.intersection(stages):
        return False
    in_title = hit.start < evidence.title_end
    for other in earlier:
        if (
            hit.start - other.end <= _SCOPE_CHARS
            and (other.start < evidence.title_end) == in_title
            and _SCOPING.intersection(rules.roles[other.roles].stages)
            and _CLAUSE_END.isdisjoint(evidence.text[other.end : hit.start])
        ):
            return True
    return False


def stage_scores(rules: RuleSet, evidence: RuleEvidence) -> StageGuess:
    """Score each stage from its cue words; the title counts double."""
    weights = rules.stage_weights
    scores: dict[Stage, float] = defaultdict(float, _PRIOR)
    cues: list[str] = []
    hits = _stage_hits(rules, evidence)
    for k, hit in enumerate(hits):
        if _scoped(rules, evidence, hit, [h for h in hits[:k] if h.end <= hit.start]):
            continue
        for name in rules.roles[hit.roles].stages:
            factor = _TITLE_FACTOR if hit.start < evidence.title_end else 1.0
            scores[Stage(name)] += weights.get(name, 1.0) * factor
            cues.append(f"{evidence.text[hit.start : hit.end]}->{name}")
    best = max(_TIE_ORDER, key=lambda stage: (scores[stage], -_TIE_ORDER.index(stage)))
    return StageGuess(best, dict(scores), tuple(cues))
