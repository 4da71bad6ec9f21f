"""Held-out figures of the classifier: whole events, and whole outlets, kept out of training.

    python bench/bench_heldout.py CORPUS.jsonl... [--folds 5] [--test DEV.jsonl] [--json]

For each way of holding out (by event, by outlet) the corpora are split into folds that
never share an event (or an outlet); each fold is judged by a model trained on the others.
With --test, a model trained on all the corpora is also judged on a corpus it has not seen
(the shared dev set, say). Prints the `monitor eval` table for each, per language too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from monitor.classify import Classifier, cross_validate, evaluate, read_corpus, train  # noqa: E402
from monitor.classify.evaluate import format_evaluation  # noqa: E402
from monitor.classify.rules import load_rules  # noqa: E402


def main() -> None:
    """Print held-out-by-event and held-out-by-outlet figures (and on --test)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("corpora", nargs="+", type=Path)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--test", type=Path, help="a corpus to judge with a model trained on all")
    parser.add_argument("--by", nargs="+", default=["event", "outlet"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    examples = [e for path in args.corpora for e in read_corpus(path)]
    rules = load_rules()
    results = {}
    for by in args.by:
        results[by] = cross_validate(examples, k=args.folds, by=by, rules=rules)
    if args.test:
        classifier = Classifier(rules, train(examples, rules=rules))
        results["test"] = evaluate(classifier, read_corpus(args.test))
    if args.json:
        print(json.dumps(results))
        return
    for name, result in results.items():
        title = (
            f"held out by {name}" if name != "test" else f"trained on all, judged on {args.test}"
        )
        print(f"== {title}\n{format_evaluation(result)}\n")


if __name__ == "__main__":
    main()
