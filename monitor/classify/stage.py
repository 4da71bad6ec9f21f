"""How far a measure has gone, read from the wording (draft -> ordered -> in force -> lifted)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from monitor.domain import Stage

from .rules import RuleEvidence, RuleSet

# Headlines state the news; the summary often recalls the background (an earlier block).
_TITLE_FACTOR = 2.0
# Most reports describe a measure in force, so wording must outweigh this to say otherwise.
_PRIOR = {Stage.ENFORCED: 0.6}
# Ties go to the rarer, more specific stage.
_TIE_ORDER = (Stage.LIFTED, Stage.PROPOSED, Stage.ENACTED, Stage.ENFORCED)


@dataclass(frozen=True, slots=True)
class StageGuess:
    """The stage, the score of each stage, and the cue words behind it."""

    stage: Stage
    scores: Mapping[Stage, float]
    cues: tuple[str, ...]


def stage_scores(rules: RuleSet, evidence: RuleEvidence) -> StageGuess:
    """Score each stage from the stage words that count (stage_words.py); the title counts
    double."""
    weights = rules.stage_weights
    scores: dict[Stage, float] = defaultdict(float, _PRIOR)
    cues: list[str] = []
    for hit in evidence.stage_words:
        for name in rules.roles[hit.roles].stages:
            factor = _TITLE_FACTOR if hit.start < evidence.title_end else 1.0
            scores[Stage(name)] += weights.get(name, 1.0) * factor
            cues.append(f"{evidence.text[hit.start : hit.end]}->{name}")
    best = max(_TIE_ORDER, key=lambda stage: (scores[stage], -_TIE_ORDER.index(stage)))
    return StageGuess(best, dict(scores), tuple(cues))
