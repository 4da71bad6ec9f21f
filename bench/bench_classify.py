"""Classifier throughput, load time and memory (prints figures; not a timed test).

    python bench/bench_classify.py [CORPUS.jsonl] [--items 25000]

Items are the corpus's title+summary pairs repeated to the requested count, assessed in one
batch on one core, as the daemon does in its first cycle: the corpus mix (about 38% flagged),
a feed-like mix (negatives with about 3% relevant items) and negatives only. Peak RSS is read
after loading and classifying, with whether scikit-learn or scipy got imported (inference
should need numpy only).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from monitor.classify import Classifier, read_corpus
from monitor.domain import ItemText

_SYNTHETIC = [
    ItemText("Regulator orders operators to block a messaging app", "The ministry confirmed."),
    ItemText("Shares rise after the chip maker beats forecasts", "Quarterly revenue grew."),
    ItemText("Storm closes schools along the coast", "Power was cut in several towns."),
]
_FEED_RELEVANT_SHARE = 0.03


def _default_corpus() -> Path:
    """The shared dev corpus next to the checkout (MONITOR_SHARED_DIR overrides)."""
    base = os.environ.get("MONITOR_SHARED_DIR")
    root = Path(base) if base else Path(__file__).resolve().parents[1].parent / "shared"
    return root / "corpus" / "dev.jsonl"


def _repeat(items: Sequence[ItemText], count: int) -> list[ItemText]:
    """`items` cycled to `count` items."""
    return (list(items) * (count // max(len(items), 1) + 1))[:count]


def _feed_mix(
    negatives: Sequence[ItemText], relevant: Sequence[ItemText], count: int
) -> list[ItemText]:
    """Negatives with one relevant item in about every 33, spread evenly."""
    every = round(1 / _FEED_RELEVANT_SHARE)
    quiet = _repeat(negatives, count)
    loud = _repeat(relevant, count // every + 1)
    return [loud[i // every] if i % every == every - 1 else quiet[i] for i in range(count)]


def _rate(classifier: Classifier, items: Sequence[ItemText]) -> tuple[float, float]:
    """Items per second assessing `items` in one batch, and the share flagged."""
    start = time.perf_counter()
    verdicts = classifier.assess_many(items)
    seconds = time.perf_counter() - start
    return len(items) / seconds, sum(v.relevant for v in verdicts) / len(items)


def main() -> None:
    """Measure load time, batched and one-by-one throughput, and peak memory."""
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="?", type=Path, default=_default_corpus())
    parser.add_argument("--items", type=int, default=25_000)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    start = time.perf_counter()
    classifier = Classifier.load()
    load_s = time.perf_counter() - start

    if args.corpus.exists():
        examples = read_corpus(args.corpus)
        base = [e.item() for e in examples]
        negatives = [e.item() for e in examples if not e.relevant]
        relevant = [e.item() for e in examples if e.relevant]
    else:
        base = negatives = _SYNTHETIC
        relevant = _SYNTHETIC[:1]
    items = _repeat(base, args.items)
    feed = _feed_mix(negatives, relevant, args.items)
    quiet = _repeat(negatives, args.items)

    corpus_rate, corpus_flagged = _rate(classifier, items)
    feed_rate, feed_flagged = _rate(classifier, feed)
    quiet_rate, _ = _rate(classifier, quiet)
    single = items[:2000]
    start = time.perf_counter()
    for item in single:
        classifier.assess(item)
    single_s = time.perf_counter() - start

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    heavy = [name for name in ("sklearn", "scipy") if name in sys.modules]
    print(f"model {classifier.version}")
    print(f"load: {load_s * 1000:.0f} ms")
    print(
        f"batched, corpus mix ({corpus_flagged:.0%} flagged): "
        f"{corpus_rate:,.0f} items/s over {len(items):,} items"
    )
    print(f"batched, feed-like mix ({feed_flagged:.1%} flagged): {feed_rate:,.0f} items/s")
    print(f"batched, negatives only: {quiet_rate:,.0f} items/s")
    print(f"one at a time: {len(single) / single_s:,.0f} items/s")
    print(f"peak RSS after loading and classifying: {peak_mb:.0f} MB")
    print(f"scikit-learn/scipy imported: {', '.join(heavy) if heavy else 'neither'}")


if __name__ == "__main__":
    main()
