"""Synthetic stored events and new items for the clustering benchmarks (bench_events_db.py).

Stories with a country, labels, a named subject (real platform names take half the mentions,
so popular keys get crowded as in life) and varied filler words. Fixed seeds: the same
corpus every run.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.domain import Category  # noqa: E402
from monitor.events.fingerprint import text_fingerprint  # noqa: E402
from monitor.events.identity import (  # noqa: E402
    DEFAULT_WINDOW,
    EventCandidate,
    ItemForClustering,
)

NOW = datetime(2025, 6, 1, tzinfo=UTC)

COUNTRIES = {
    "VN": "Vietnam", "CN": "China", "RU": "Russia", "IR": "Iran", "IN": "India",
    "PK": "Pakistan", "TR": "Turkey", "ET": "Ethiopia", "NG": "Nigeria", "KE": "Kenya",
    "UG": "Uganda", "TZ": "Tanzania", "SD": "Sudan", "EG": "Egypt", "SA": "Saudi Arabia",
    "AE": "UAE", "IQ": "Iraq", "SY": "Syria", "MM": "Myanmar", "TH": "Thailand",
    "KH": "Cambodia", "LA": "Laos", "ID": "Indonesia", "BD": "Bangladesh", "BY": "Belarus",
    "KZ": "Kazakhstan", "UZ": "Uzbekistan", "VE": "Venezuela", "CU": "Cuba", "BR": "Brazil",
}  # fmt: skip
PLATFORMS = (
    "Telegram", "Facebook", "WhatsApp", "TikTok", "YouTube", "Instagram", "Viber", "WeChat",
    "Zalo", "Google", "Starlink", "Wikipedia", "Discord", "Snapchat", "LinkedIn", "Skype",
)  # fmt: skip
VERBS = ("orders", "plans", "drafts", "announces", "confirms", "approves", "weighs", "extends")
OBJECTS = ("block", "ban", "rules", "curbs", "checks", "limits", "registry", "mandate")


def pseudo_words(rng: random.Random, count: int, capital: bool = False) -> list[str]:
    """Make distinct pronounceable nonsense words, so texts vary like real vocabulary."""
    syllables = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]
    words: set[str] = set()
    while len(words) < count:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        words.add(word.capitalize() if capital else word)
    return sorted(words)


class Corpus:
    """Synthetic stories: a country, labels, a named subject and varied filler words."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.vocab = pseudo_words(self.rng, 4_000)
        # Real platforms take half the mentions, so popular buckets get crowded as in life.
        self.names = list(PLATFORMS) + pseudo_words(self.rng, 400, capital=True)
        self.weights = [20.0] * len(PLATFORMS) + [0.8] * 400
        self.categories = [c.value for c in Category]

    def filler(self, n: int) -> str:
        return " ".join(self.rng.choice(self.vocab) for _ in range(n))

    def story(self, country: str, name: str) -> tuple[str, str]:
        rng = self.rng
        title = f"{COUNTRIES[country]} {rng.choice(VERBS)} {name} {rng.choice(OBJECTS)}"
        summary = (
            f"Officials said on {rng.choice(('Monday', 'Friday'))} that {name} "
            f"{self.filler(12)}. The {self.filler(3)} follows {self.filler(8)}."
        )
        return title, summary

    def subject(self) -> tuple[str, frozenset[str], str]:
        country = self.rng.choice(list(COUNTRIES))
        cats = frozenset(self.rng.sample(self.categories, self.rng.choice((1, 1, 2))))
        name = self.rng.choices(self.names, self.weights)[0]
        return country, cats, name

    def event(self, event_id: int) -> tuple[EventCandidate, str]:
        """A stored event seen somewhere in the window, and its summary for wire copies."""
        country, cats, name = self.subject()
        title, summary = self.story(country, name)
        seen = NOW - timedelta(seconds=self.rng.uniform(0, DEFAULT_WINDOW.total_seconds()))
        fp = text_fingerprint(title, summary)
        return EventCandidate(event_id, country, cats, "enacted", fp, seen, seen, title), summary

    def item(
        self, events: Sequence[EventCandidate], summaries: dict[int, str]
    ) -> ItemForClustering:
        """A wire copy (40%), a follow-up (30%) of an existing event, or a new story (30%)."""
        roll = self.rng.random()
        if roll < 0.7:
            target = self.rng.choice(events)
            country, cats = target.country or "VN", target.categories
            name = next(n for n in self.names if n in target.title.split())
            if roll < 0.4:
                title = f"UPDATE 2-{target.title} - sources"
                summary = summaries[target.event_id]
            else:
                title, summary = self.story(country, name)
        else:
            country, cats, name = self.subject()
            title, summary = self.story(country, name)
        fp = text_fingerprint(title, summary)
        return ItemForClustering(country, cats, "enforced", fp, NOW, title)
