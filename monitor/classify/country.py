"""Which state imposes the measure: gazetteer hits scored to prefer the state that acts."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .matcher import Hit
from .rules import RuleEvidence, RuleSet

# How much one mention counts, by gazetteer kind: a regulator or ministry names the acting
# state most surely; a demonym or a capital may just describe something ("Chinese apps").
_KIND_WEIGHT = {"b": 3.0, "n": 2.0, "d": 1.2, "p": 1.0}
_TITLE_BONUS = 1.0
_NEAR_ACTION_BONUS = 1.5  # the state just before the verb is the one acting
_FIRST_BONUS = 0.5
_FEED_BONUS = 0.5  # a tie goes to the feed's own country
_NEAR = 40


@dataclass(frozen=True, slots=True)
class CountryGuess:
    """The chosen state and why."""

    code: str | None
    reason: str


def _acts(state: Hit, action: Hit, title_end: int) -> bool:
    """Whether a state mention is the subject of an action: just before it, same part."""
    same_part = (state.start < title_end) == (action.start < title_end)
    return same_part and 0 <= action.start - state.end <= _NEAR


def guess_country(rules: RuleSet, evidence: RuleEvidence, feed_country: str | None) -> CountryGuess:
    """The alpha-2 code of the acting state, else the feed's country, else None."""
    scores: dict[str, float] = defaultdict(float)
    parsed = [(hit, rules.roles[hit.roles]) for hit in evidence.hits]
    actions = [hit for hit, roles in parsed if roles.actions or roles.phrases]
    first_seen: list[str] = []
    for hit, roles in parsed:
        for code, kind in roles.countries:
            weight = _KIND_WEIGHT.get(kind, 1.0)
            if hit.start < evidence.title_end:
                weight += _TITLE_BONUS
            if any(_acts(hit, act, evidence.title_end) for act in actions if act is not hit):
                weight += _NEAR_ACTION_BONUS
            scores[code] += weight
            if code not in first_seen:
                first_seen.append(code)
    if not scores:
        if feed_country:
            return CountryGuess(feed_country.upper(), "feed country (text names no state)")
        return CountryGuess(None, "no state named")
    scores[first_seen[0]] += _FIRST_BONUS
    if feed_country and feed_country.upper() in scores:
        scores[feed_country.upper()] += _FEED_BONUS
    best = max(sorted(scores), key=lambda code: scores[code])
    return CountryGuess(best, f"country {best} (score {scores[best]:.1f} of {len(scores)} named)")
