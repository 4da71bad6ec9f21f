"""Which state imposes the measure: gazetteer hits scored to prefer the state that acts."""

from __future__ import annotations

import re
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

# When a text names no state, its script often still tells where it was written: scripts
# (or letters) used by one state's press. Checked in order; kana before Han, Urdu's own
# letters before the Persian ones it shares. Scripts shared by many states (Latin, Arabic,
# Cyrillic, Devanagari) say nothing and are left out.
_SCRIPT_COUNTRY = tuple(
    (re.compile(pattern), code)
    for pattern, code in (
        ("[\u3040-\u30ff]", "JP"),
        ("[\uac00-\ud7af]", "KR"),
        ("[\u0e00-\u0e7f]", "TH"),
        ("[\u0e80-\u0eff]", "LA"),
        ("[\u1780-\u17ff]", "KH"),
        ("[\u1000-\u109f]", "MM"),
        ("[\u0d80-\u0dff]", "LK"),
        ("[\u10a0-\u10ff]", "GE"),
        ("[\u0530-\u058f]", "AM"),
        ("[\u0590-\u05ff]", "IL"),
        ("[\u1200-\u137f]", "ET"),
        ("[\u0980-\u09ff]", "BD"),
        ("[\u0370-\u03ff]", "GR"),
        ("[\u0679\u0688\u0691\u06ba\u06be\u06d2]", "PK"),
        ("[\u067e\u0686\u0698\u06af]", "IR"),
        ("[\u0454\u0457\u0491]", "UA"),
        ("[\u01a1\u01b0\u0111\u1ea0-\u1ef9]", "VN"),
        ("[\u0259]", "AZ"),  # Azerbaijani schwa, before the letters it shares with Turkish
        ("[\u0131\u011f]", "TR"),
        ("[\u3400-\u9fff]", "CN"),
    )
)

# Likewise a language whose press is, overwhelmingly, one state's: a Polish report that names
# no state is about Poland far more often than not. Languages of many states' press (English,
# Arabic, Spanish, French, Portuguese, Russian, Chinese, Swahili, Tamil, Kurdish...) are left
# out, as are a tag's region subtags (a CMS's default "en-US" says nothing of the outlet).
_LANGUAGE_COUNTRY = {
    "az": "AZ", "be": "BY", "bg": "BG", "cs": "CZ", "da": "DK", "de": "DE", "et": "EE",
    "fa": "IR", "fi": "FI", "fil": "PH", "gu": "IN", "ha": "NG", "hi": "IN", "hr": "HR",
    "hu": "HU", "id": "ID", "ig": "NG", "is": "IS", "it": "IT", "kk": "KZ", "kn": "IN",
    "ky": "KG", "lt": "LT", "lv": "LV", "mk": "MK", "ml": "IN", "mn": "MN", "mr": "IN",
    "ms": "MY", "nb": "NO", "ne": "NP", "nl": "NL", "nn": "NO", "no": "NO", "pl": "PL",
    "ps": "AF", "ro": "RO", "sk": "SK", "sl": "SI", "sq": "AL", "sr": "RS", "sv": "SE",
    "te": "IN", "tg": "TJ", "tk": "TM", "tl": "PH", "tr": "TR", "uk": "UA", "ur": "PK",
    "uz": "UZ", "vi": "VN", "yo": "NG",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CountryGuess:
    """The chosen state and why."""

    code: str | None
    reason: str


def _acts(state: Hit, action: Hit, title_end: int) -> bool:
    """Whether a state mention is the subject of an action: just before it, same part."""
    same_part = (state.start < title_end) == (action.start < title_end)
    return same_part and 0 <= action.start - state.end <= _NEAR


def guess_country(
    rules: RuleSet, evidence: RuleEvidence, feed_country: str | None, language: str | None = None
) -> CountryGuess:
    """The alpha-2 code of the acting state, else the feed's country, else the one its
    language or script points to, else None."""
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
        # The language first: Kazakh or Azerbaijani written in Latin letters shares some
        # with Turkish, and a listed language is one state's whatever its letters.
        if by_language := language_country(language):
            return CountryGuess(
                by_language, f"country {by_language} from the language {language} (no state named)"
            )
        if by_script := script_country(evidence.text):
            return CountryGuess(by_script, f"country {by_script} from the script (no state named)")
        return CountryGuess(None, "no state named")
    scores[first_seen[0]] += _FIRST_BONUS
    if feed_country and feed_country.upper() in scores:
        scores[feed_country.upper()] += _FEED_BONUS
    best = max(sorted(scores), key=lambda code: scores[code])
    return CountryGuess(best, f"country {best} (score {scores[best]:.1f} of {len(scores)} named)")


def script_country(text: str) -> str | None:
    """The state whose press alone writes in the text's script, if there is one."""
    if text.isascii():
        return None
    for pattern, code in _SCRIPT_COUNTRY:
        if pattern.search(text):
            return code
    return None


def language_country(language: str | None) -> str | None:
    """The state whose press alone writes in this language (its primary subtag), if one."""
    if not language:
        return None
    return _LANGUAGE_COUNTRY.get(language.lower().replace("_", "-").split("-", 1)[0])
