"""Noise: how often the shipped classifier flags ordinary news it was never trained on.

    python bench/bench_noise.py [PATH/TO/ag_news_csv/test.csv] [--show 20] [--model PATH]

The items are the held-out half of the AG News test split (even lines, 3,800 items of
2004-2005 world, sports, business and science news; data/corpus/agnews.py keeps the odd
lines for training). Its text is not kept in this repository: the CSV is looked up at the
given path, then $MONITOR_AGNEWS_CSV, then the copy `fetch` brings
(/work/.mirror/mhjabreel+CharCnn_Keras, read with git). Flags are counted per 1,000 items;
a flag is false unless data/corpus/agnews_labels.jsonl labels that line relevant.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout
sys.path.insert(0, str(ROOT / "data" / "corpus"))

import agnews  # noqa: E402

from monitor.classify import Classifier, load_model  # noqa: E402
from monitor.classify.corpus import parse_example  # noqa: E402
from monitor.classify.rules import load_rules  # noqa: E402

_MIRROR = Path("/work/.mirror/mhjabreel+CharCnn_Keras/repo")
_MIRROR_PATH = "data/ag_news_csv/test.csv"


def find_csv(given: Path | None) -> Path | None:
    """The AG News test CSV: as given, from the environment, or out of the fetched repo."""
    for candidate in (given, os.environ.get("MONITOR_AGNEWS_CSV")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    if _MIRROR.is_dir():
        shown = subprocess.run(
            ["git", "-C", str(_MIRROR), "show", f"HEAD:{_MIRROR_PATH}"],
            capture_output=True,
            check=False,
        )
        if shown.returncode == 0:
            out = Path(tempfile.gettempdir()) / "monitor-agnews-test.csv"
            out.write_bytes(shown.stdout)
            return out
    return None


def main() -> None:
    """Print flags per 1,000 held-out ordinary items, false flags per 1,000, and speed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("csv", nargs="?", type=Path)
    parser.add_argument("--show", type=int, default=20, help="list this many flagged items")
    parser.add_argument("--model", type=Path, help="model file (default: the packaged one)")
    args = parser.parse_args()
    path = find_csv(args.csv)
    if path is None:
        print("skipped: no AG News test.csv (give its path, set MONITOR_AGNEWS_CSV, or fetch")
        print("         github:mhjabreel/CharCnn_Keras)")
        return
    examples = [parse_example(row) for row in agnews.rows(path, split="noise")]
    classifier = (
        Classifier.load()
        if args.model is None
        else Classifier(load_rules(), load_model(args.model))
    )
    start = time.perf_counter()
    verdicts = classifier.assess_many([e.item() for e in examples])
    seconds = time.perf_counter() - start
    flagged = [(e, v) for e, v in zip(examples, verdicts, strict=True) if v.relevant]
    false = [(e, v) for e, v in flagged if not e.relevant]
    per_mille = 1000 / len(examples)
    print(f"model {classifier.version}")
    print(f"items: {len(examples)} held-out ordinary news items (AG News test, even lines)")
    print(f"labeled relevant among them: {sum(e.relevant for e in examples)}")
    print(f"flagged: {len(flagged)}  = {len(flagged) * per_mille:.2f} per 1,000")
    print(f"false flags: {len(false)}  = {len(false) * per_mille:.2f} per 1,000 (target <= 0.5)")
    print(f"speed: {len(examples) / seconds:,.0f} items/s (one batch, one core)")
    for example, verdict in flagged[: args.show]:
        mark = "ok " if example.relevant else "FALSE"
        cats = ",".join(c.value for c in verdict.categories)
        print(f"  {mark} {verdict.score:.2f} {cats:<24} {example.id}: {example.title[:80]}")


if __name__ == "__main__":
    main()
