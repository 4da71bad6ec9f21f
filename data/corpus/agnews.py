"""Ordinary news from the AG News test split, as labeled corpus rows, built on this machine.

The dataset's text is not kept in this repository: bring its public repository in
(`mhjabreel/CharCnn_Keras`, file `data/ag_news_csv/test.csv`) and point this script at the
CSV. Rows are labeled not relevant unless `agnews_labels.jsonl` (hand labels, by line
number, with a rationale each) says otherwise.

The split is fixed by line number so that training and the noise benchmark never share a
row: odd lines train, even lines are the held-out noise set (bench/bench_noise.py).

    python data/corpus/agnews.py PATH/TO/test.csv --split train --out build/agnews-train.jsonl
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SOURCE = "mhjabreel/CharCnn_Keras:data/ag_news_csv/test.csv (AG News test split)"
LABELS = Path(__file__).with_name("agnews_labels.jsonl")
CLASSES = {"1": "world", "2": "sports", "3": "business", "4": "scitech"}

# The dataset's own escaping artifacts, undone (nothing else in the text is changed).
_ARTIFACTS = (
    (re.compile(r"#39;"), "'"),
    (re.compile(r"quot;"), '"'),
    (re.compile(r"#36;|\\\$"), "$"),
    (re.compile(r"&lt;b&gt;(.*?)&lt;/b&gt;"), r"\1"),
    (re.compile(r"\\"), " "),
)


def clean(text: str) -> str:
    """The row's text without the dataset's escaping artifacts."""
    for pattern, replacement in _ARTIFACTS:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())


def read_labels(path: Path = LABELS) -> dict[int, dict[str, Any]]:
    """Hand labels by line number (rows not listed are ordinary negatives)."""
    if not path.exists():
        return {}
    labels = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            labels[int(record["line"])] = record
    return labels


def rows(csv_path: Path, split: str = "all") -> Iterator[dict[str, Any]]:
    """Corpus records of the chosen split ("train": odd lines, "noise": even, or "all")."""
    labels = read_labels()
    with csv_path.open(encoding="utf-8", newline="") as handle:
        for number, (klass, title, description) in enumerate(csv.reader(handle), start=1):
            if (split == "train" and number % 2 == 0) or (split == "noise" and number % 2 == 1):
                continue
            label = labels.get(number, {})
            yield {
                "id": f"agnews-{number:04d}",
                "title": clean(title),
                "summary": clean(description),
                "url": None,
                "source": f"{SOURCE}, line {number}",
                "published": None,
                "language": "en",
                "relevant": bool(label.get("relevant", False)),
                "categories": label.get("categories", []),
                "country": label.get("country"),
                "stage": label.get("stage", "none"),
                "rationale": label.get(
                    "rationale", f"Ordinary {CLASSES.get(klass, 'general')} news; not screened in."
                ),
                "hard_negative": bool(label.get("hard_negative", False)),
                "event": label.get("event", f"agnews-{number:04d}"),
            }


def main() -> None:
    """Write the chosen split as JSON Lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("csv", type=Path, help="AG News test.csv")
    parser.add_argument("--split", choices=("train", "noise", "all"), default="train")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as out:
        count = 0
        for record in rows(args.csv, args.split):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    print(f"{count} rows -> {args.out}")


if __name__ == "__main__":
    main()
