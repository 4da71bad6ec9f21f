"""Benchmark event matching: EventIndex lookup + match versus a full scan, at 1k/5k/10k events.

Run: python bench/bench_events.py   (synthetic texts, fixed seed, finishes in well under 60 s)
Prints per-item cost and ratios measured in one run; absolute times depend on the machine.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.domain import Category  # noqa: E402
from monitor.events.identity import (  # noqa: E402
    DEFAULT_WINDOW,
    EventCandidate,
    EventIndex,
    ItemForClustering,
    Match,
    match_event,
    text_fingerprint,
)

SIZES = (1_000, 5_000, 10_000)
QUERIES = 300
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


def per_item_us(
    items: Sequence[ItemForClustering], run: Callable[[ItemForClustering], object]
) -> float:
    """Mean wall time of one lookup+match, in microseconds (best of three passes)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for it in items:
            run(it)
        best = min(best, time.perf_counter() - start)
    return best / len(items) * 1e6


def main() -> None:
    started = time.perf_counter()
    corpus = Corpus(seed=20250601)
    summaries: dict[int, str] = {}
    events: list[EventCandidate] = []
    for event_id in range(max(SIZES)):
        ev, summaries[event_id] = corpus.event(event_id)
        events.append(ev)
    built = time.perf_counter() - started
    items = [corpus.item(events[: SIZES[0]], summaries) for _ in range(QUERIES)]

    print(f"{len(events)} synthetic events fingerprinted in {built:.1f} s; {QUERIES} new items")
    print(f"{'events':>7} {'index us':>9} {'scan us':>9} {'scan/index':>10} "
          f"{'cands':>6} {'joined':>7} {'agree':>6}")  # fmt: skip
    base_index = base_scan = 0.0
    for size in SIZES:
        stored = events[:size]
        index = EventIndex()
        for ev in stored:
            index.add(ev)

        def indexed(it: ItemForClustering, index: EventIndex = index) -> Match | None:
            return match_event(it, index.candidates_for(it))

        def scan(it: ItemForClustering, stored: list[EventCandidate] = stored) -> Match | None:
            return match_event(it, stored)

        t_index, t_scan = per_item_us(items, indexed), per_item_us(items, scan)
        cands = sum(len(index.candidates_for(it)) for it in items) / len(items)
        results = [(indexed(it), scan(it)) for it in items]
        joined = sum(1 for a, _ in results if a is not None) / len(items)
        agree = sum(1 for a, b in results if (a and a.event_id) == (b and b.event_id))
        base_index, base_scan = base_index or t_index, base_scan or t_scan
        print(f"{size:>7} {t_index:>9.1f} {t_scan:>9.1f} {t_scan / t_index:>9.1f}x "
              f"{cands:>6.1f} {joined:>6.0%} {agree / len(items):>6.1%}")  # fmt: skip
    growth = f"index {t_index / base_index:.2f}x, scan {t_scan / base_scan:.2f}x"
    print(f"growth 1k->10k (10x events): {growth}; total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
