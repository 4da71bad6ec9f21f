"""Classifier throughput and load time (prints figures; not a timed test).

    python bench/bench_classify.py [CORPUS.jsonl] [--items 25000]

Items are the corpus's title+summary pairs repeated to the requested count, assessed in one
batch on one core, as the daemon does in its first cycle.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from monitor.classify import Classifier, read_corpus
from monitor.domain import ItemText

_SYNTHETIC = [
    ItemText("Regulator orders operators to block a messaging app", "The ministry confirmed."),
    ItemText("Shares rise after the chip maker beats forecasts", "Quarterly revenue grew."),
    ItemText("Storm closes schools along the coast", "Power was cut in several towns."),
]


def _default_corpus() -> Path:
    """The shared dev corpus next to the checkout (MONITOR_SHARED_DIR overrides)."""
    base = os.environ.get("MONITOR_SHARED_DIR")
    root = Path(base) if base else Path(__file__).resolve().parents[1].parent / "shared"
    return root / "corpus" / "dev.jsonl"


def main() -> None:
    """Measure load time, then batched and one-by-one throughput."""
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
    else:
        base = negatives = _SYNTHETIC
    items = (base * (args.items // len(base) + 1))[: args.items]
    quiet = (negatives * (args.items // len(negatives) + 1))[: args.items]

    start = time.perf_counter()
    verdicts = classifier.assess_many(items)
    batch_s = time.perf_counter() - start
    start = time.perf_counter()
    classifier.assess_many(quiet)
    quiet_s = time.perf_counter() - start
    single = items[:2000]
    start = time.perf_counter()
    for item in single:
        classifier.assess(item)
    single_s = time.perf_counter() - start

    flagged = sum(v.relevant for v in verdicts)
    print(f"model {classifier.version}")
    print(f"load: {load_s * 1000:.0f} ms")
    print(
        f"batched, corpus mix ({flagged / len(items):.0%} flagged): "
        f"{len(items) / batch_s:,.0f} items/s over {len(items):,} items"
    )
    print(f"batched, negatives only (typical feed mix): {len(quiet) / quiet_s:,.0f} items/s")
    print(f"one at a time: {len(single) / single_s:,.0f} items/s")


if __name__ == "__main__":
    main()
