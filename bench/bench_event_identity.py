"""How real coverage becomes events: alerts per measure, and measures merged, on real news.

Run: python bench/bench_event_identity.py [data/corpus/pages/*.jsonl]   (~1 min)

The page corpus (data/corpus/pages/, real headlines and ledes, see data/corpus/README.md)
labels each relevant item with the measure it reports (`event`, e.g. ng-twitter-ban-2021):
127 of its 268 measures are covered by two or more items, from different outlets, in up to 20
languages. Every relevant item goes through the real `MeasureRecorder.record_batch` on a
SQLite file, one item per batch, in publication order (the item's date where the page gave
one, else mid-year of the year its measure is labelled with, an item a day apart). Once with
the items' labelled country, categories and stage (clustering alone), once with the packaged
classifier's (the daemon's path), and each once with targets and once without them (text
only, as before event identity), so the figures show what identity adds.

Reported: measures, events made, events per measure (1.0 is one "new" alert per measure on
an instant route), measures that got one event, B-cubed precision (do an event's items report
one measure?) and recall (are a measure's items in one event?), and items placed in an event
of another measure. Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.classify import Classifier  # noqa: E402
from monitor.domain import Assessment, Category, Entry, ItemText, Stage  # noqa: E402
from monitor.events.recorder import FlaggedItem, MeasureRecorder  # noqa: E402
from monitor.events.targets import TargetReader, load_targets  # noqa: E402
from monitor.store.db import make_engine, make_sessions, upgrade  # noqa: E402

_YEAR = re.compile(r"(?:19|20)\d\d")


@dataclass(frozen=True, slots=True)
class Labelled:
    """One relevant corpus item, its measure, and when it is taken to be published."""

    event: str
    entry: Entry
    gold: Assessment


def load(paths: Sequence[str]) -> list[Labelled]:
    items: list[Labelled] = []
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            data: dict[str, Any] = json.loads(line)
            if not data.get("relevant") or not data.get("event"):
                continue
            items.append(_labelled(data))
    # Publication order, as a running daemon meets them.
    return sorted(items, key=lambda it: (it.entry.published, it.entry.guid))


def _labelled(data: dict[str, Any]) -> Labelled:
    event = str(data["event"])
    published = _published(data.get("published"), event, str(data["id"]))
    text = f"{data['title']}\n{data.get('summary', '')}"
    entry = Entry(
        guid=str(data["id"]),
        url=data.get("url"),
        title=str(data["title"]),
        summary=str(data.get("summary") or ""),
        published=published,
        content_hash=hashlib.sha256(text.encode()).hexdigest(),
        language=data.get("language"),
    )
    gold = Assessment(
        relevant=True,
        score=1.0,
        categories=tuple(Category(c) for c in data.get("categories", [])),
        country=data.get("country"),
        stage=Stage(data.get("stage") or "none"),
    )
    return Labelled(event, entry, gold)


def _published(value: object, event: str, item_id: str) -> datetime:
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
    year = _YEAR.search(event)
    base = datetime(int(year.group()) if year else 2020, 7, 1, tzinfo=UTC)
    # Items of one measure a day or so apart, in a stable order.
    offset = int(hashlib.blake2b(item_id.encode(), digest_size=2).hexdigest(), 16) % 72
    return base + timedelta(hours=offset)


def cluster(
    items: Sequence[Labelled],
    assess: Callable[[Labelled], Assessment],
    targets: TargetReader,
) -> dict[str, int]:
    """Run every item through the recorder; item id -> event id."""
    with tempfile.TemporaryDirectory(prefix="bench-identity-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'monitor.db'}"
        upgrade(url)
        engine = make_engine(url)
        sessions = make_sessions(engine)
        recorder = MeasureRecorder(routes=(), targets=targets)
        placed: dict[str, int] = {}
        for it in items:
            flagged = FlaggedItem(0, 0, "bench", it.entry, assess(it))
            now = it.entry.published + timedelta(minutes=5)
            with sessions.begin() as session:
                [(event_id, _)] = recorder.record_batch(session, [flagged], now)
            placed[it.entry.guid] = event_id
        engine.dispose()
    return placed


@dataclass(frozen=True, slots=True)
class Scores:
    measures: int
    events: int
    one_event: int  # measures whose items all landed in one event
    precision: float  # B-cubed
    recall: float
    merged_items: int  # items in an event whose majority is another measure


def score(items: Sequence[Labelled], placed: dict[str, int]) -> Scores:
    gold = {it.entry.guid: it.event for it in items}
    by_event: dict[int, list[str]] = defaultdict(list)
    by_measure: dict[str, list[str]] = defaultdict(list)
    for guid, event_id in placed.items():
        by_event[event_id].append(guid)
        by_measure[gold[guid]].append(guid)
    precision = recall = 0.0
    for guid, event_id in placed.items():
        same_event = by_event[event_id]
        same_measure = set(by_measure[gold[guid]])
        shared = sum(1 for g in same_event if g in same_measure)
        precision += shared / len(same_event)
        recall += shared / len(same_measure)
    merged = 0
    for members in by_event.values():
        counts = Counter(gold[g] for g in members)
        merged += len(members) - counts.most_common(1)[0][1]
    one_event = sum(1 for members in by_measure.values() if len({placed[g] for g in members}) == 1)
    n = len(placed)
    return Scores(len(by_measure), len(by_event), one_event, precision / n, recall / n, merged)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="*", help="page corpus files (default: data/corpus/pages)")
    args = parser.parse_args()
    paths = args.corpus or sorted(
        glob.glob(str(Path(__file__).parents[1] / "data/corpus/pages/*.jsonl"))
    )
    if not paths:
        print("no corpus files found: pass data/corpus/pages/*.jsonl")
        return
    started = time.perf_counter()
    items = load(paths)
    multi = sum(1 for n in Counter(it.event for it in items).values() if n > 1)
    print(f"{len(items)} relevant items of {len({it.event for it in items})} labelled measures "
          f"({multi} covered by 2+ items), {len({it.entry.language for it in items})} "
          f"languages, from {len(paths)} files")  # fmt: skip
    classifier = Classifier.load()
    verdicts = dict(
        zip(
            (it.entry.guid for it in items),
            classifier.assess_many(
                [ItemText(it.entry.title, it.entry.summary, it.entry.language) for it in items]
            ),
            strict=True,
        )
    )
    with_targets = load_targets()
    no_targets = TargetReader({"targets": {}})
    runs = [
        ("labelled country/category/stage, identity", lambda it: it.gold, with_targets),
        ("labelled country/category/stage, text only", lambda it: it.gold, no_targets),
        ("classifier's verdicts, identity", lambda it: verdicts[it.entry.guid], with_targets),
        ("classifier's verdicts, text only", lambda it: verdicts[it.entry.guid], no_targets),
    ]
    print(f"\n{'run':<46} {'events':>6} {'per measure':>11} {'one event':>9} "
          f"{'B3 P':>5} {'B3 R':>5} {'B3 F':>5} {'merged':>6}")  # fmt: skip
    for label, assess, targets in runs:
        s = score(items, cluster(items, assess, targets))
        f1 = 2 * s.precision * s.recall / (s.precision + s.recall)
        print(f"{label:<46} {s.events:>6} {s.events / s.measures:>11.2f} "
              f"{s.one_event / s.measures:>9.0%} {s.precision:>5.3f} {s.recall:>5.3f} "
              f"{f1:>5.3f} {s.merged_items:>6}")  # fmt: skip
    print(
        f"\n(measures: {len({it.event for it in items})}; per measure 1.00 and one event 100% "
        f"would be one 'new' alert per measure; merged = items filed under another measure)"
    )
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
