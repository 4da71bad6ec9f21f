"""Counts of the training corpus, as the tables in data/corpus/README.md show them.

python data/corpus/stats.py data/corpus/pages/*.jsonl [build/agnews-train.jsonl]
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

from monitor.classify import read_corpus  # noqa: E402


def _table(title: str, counts: Counter[str]) -> None:
    print(f"\n| {title} | items |\n|---|---|")
    for key, value in counts.most_common():
        print(f"| {key} | {value} |")


def main() -> None:
    """Print the corpus's counts as Markdown tables."""
    examples = [e for arg in sys.argv[1:] for e in read_corpus(arg)]
    positives = [e for e in examples if e.relevant]
    hard = sum(e.hard_negative for e in examples if not e.relevant)
    print("| measure | count |\n|---|---|")
    print(f"| items | {len(examples)} |")
    print(f"| relevant | {len(positives)} |")
    print(f"| hard negatives | {hard} |")
    print(f"| ordinary negatives | {len(examples) - len(positives) - hard} |")
    print(f"| events | {len({e.event_group for e in examples})} |")
    print(f"| outlets | {len({e.outlet for e in examples})} |")
    print(f"| languages of positives | {len({e.language for e in positives})} |")
    _table("category (positives)", Counter(c.value for e in positives for c in e.categories))
    _table("stage (positives)", Counter(e.stage.value for e in positives))
    _table("language (positives)", Counter(e.language or "?" for e in positives))
    _table("language (negatives)", Counter(e.language or "?" for e in examples if not e.relevant))


if __name__ == "__main__":
    main()
