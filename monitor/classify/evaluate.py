"""Figures for `monitor eval` (DESIGN.md `eval --json` shape), k-fold CV, and text output."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from monitor.domain import Assessment, Category

from .assess import Classifier
from .corpus import LabeledExample
from .rules import RuleSet, load_rules
from .training import TrainingOptions, train


def _ratio(numerator: int, denominator: int) -> float:
    """numerator/denominator, 0.0 when there is nothing to divide."""
    return numerator / denominator if denominator else 0.0


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall and F1 from counts."""
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def report(
    examples: Sequence[LabeledExample], assessments: Sequence[Assessment], seconds: float
) -> dict[str, Any]:
    """The eval figures, overall and per language (with confusion counts)."""
    result = _figures(examples, assessments, seconds)
    by_language: dict[str, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        by_language[example.language or "unknown"].append(index)
    result["per_language"] = {
        language: _language_figures(
            [examples[i] for i in indices], [assessments[i] for i in indices]
        )
        for language, indices in sorted(by_language.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    }
    return result


def _language_figures(
    examples: Sequence[LabeledExample], assessments: Sequence[Assessment]
) -> dict[str, Any]:
    """The headline figures of one language's items."""
    full = _figures(examples, assessments, 0.0)
    return {
        "items": full["items"],
        "relevant": full["relevant"],
        "confusion": full["confusion"],
        "relevance": full["relevance"],
        "category_macro_f1": full["categories"]["macro_f1"],
        "country_accuracy": full["country_accuracy"],
        "stage_accuracy": full["stage_accuracy"],
    }


def _figures(
    examples: Sequence[LabeledExample], assessments: Sequence[Assessment], seconds: float
) -> dict[str, Any]:
    """The eval figures for paired labels and verdicts.

    Category, country and stage figures are over the items labeled relevant (whatever the
    verdict on them); macro F1 averages the categories that occur in those labels.
    """
    pairs = list(zip(examples, assessments, strict=True))
    tp = sum(e.relevant and a.relevant for e, a in pairs)
    fp = sum(not e.relevant and a.relevant for e, a in pairs)
    fn = sum(e.relevant and not a.relevant for e, a in pairs)
    tn = len(pairs) - tp - fp - fn
    positives = [(e, a) for e, a in pairs if e.relevant]
    per_category: dict[str, dict[str, float]] = {}
    for category in Category:
        c_tp = sum(category in e.categories and category in a.categories for e, a in positives)
        c_fp = sum(category not in e.categories and category in a.categories for e, a in positives)
        c_fn = sum(category in e.categories and category not in a.categories for e, a in positives)
        figures: dict[str, float] = dict(_prf(c_tp, c_fp, c_fn))
        figures["support"] = c_tp + c_fn
        per_category[category.value] = figures
    present = [f["f1"] for f in per_category.values() if f["support"]]
    return {
        "items": len(pairs),
        "relevant": tp + fn,
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
        "relevance": _prf(tp, fp, fn),
        "categories": {
            "macro_f1": round(float(np.mean(present)), 4) if present else 0.0,
            "per_category": per_category,
        },
        "country_accuracy": round(
            _ratio(sum(e.country == a.country for e, a in positives), len(positives)), 4
        ),
        "stage_accuracy": round(
            _ratio(sum(e.stage == a.stage for e, a in positives), len(positives)), 4
        ),
        "items_per_second": round(_ratio(len(pairs), 1) / seconds, 1) if seconds > 0 else 0.0,
    }


def evaluate(classifier: Classifier, examples: Sequence[LabeledExample]) -> dict[str, Any]:
    """Assess every example in one batch and score the verdicts against the labels."""
    items = [e.item() for e in examples]
    start = time.perf_counter()
    assessments = classifier.assess_many(items)
    seconds = time.perf_counter() - start
    return report(examples, assessments, seconds)


def folds(examples: Sequence[LabeledExample], k: int, seed: int) -> list[list[int]]:
    """k test folds, stratified by relevance, shuffled by `seed` (deterministic)."""
    rng = np.random.default_rng(seed)
    result: list[list[int]] = [[] for _ in range(k)]
    for label in (True, False):
        indices = [i for i, e in enumerate(examples) if e.relevant is label]
        rng.shuffle(indices)
        for position, index in enumerate(indices):
            result[position % k].append(int(index))
    return [sorted(fold) for fold in result]


# How items are kept together in held-out folds: an event's reports, or an outlet's.
HOLD_OUT: dict[str, Callable[[LabeledExample], str]] = {
    "event": lambda e: e.event_group,
    "outlet": lambda e: e.outlet,
}


def group_folds(
    examples: Sequence[LabeledExample], k: int, seed: int, group: Callable[[LabeledExample], str]
) -> list[list[int]]:
    """k test folds that never split a group (an event, an outlet) across folds.

    Groups are dealt in a seeded random order to the fold with the fewest positives (or,
    for groups without any, the fewest items), so folds stay balanced. A group larger
    than half a fold (a whole news dataset counted as one outlet) is dealt item by item,
    since no fold could hold it.
    """
    members: dict[str, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        members[group(example)].append(index)
    too_big = len(examples) / (2 * k)
    units: list[list[int]] = []
    for name in sorted(members):
        indices = members[name]
        units += [[i] for i in indices] if len(indices) > too_big else [indices]
    order = np.random.default_rng(seed).permutation(len(units))
    result: list[list[int]] = [[] for _ in range(k)]
    positives = [0] * k
    for position in order.tolist():
        unit = units[position]
        hits = sum(examples[i].relevant for i in unit)
        load = positives if hits else [len(fold) for fold in result]
        target = min(range(k), key=lambda f: (load[f], len(result[f]), f))
        result[target] += unit
        positives[target] += hits
    return [sorted(fold) for fold in result]


def cross_validate(
    examples: Sequence[LabeledExample],
    k: int = 5,
    seed: int = 0,
    *,
    by: str = "item",
    rules: RuleSet | None = None,
    options: TrainingOptions | None = None,
) -> dict[str, Any]:
    """k-fold figures: each fold is judged by a model trained on the other folds only.

    `by` keeps whole events or whole outlets in one fold ("event", "outlet"), so that the
    figures say how the model does on stories and sources it has never seen; "item"
    splits at random (stratified by relevance).
    """
    if k < 2 or k > len(examples):
        raise ValueError(f"k must be between 2 and the number of examples, got {k}")
    if by != "item" and by not in HOLD_OUT:
        raise ValueError(f"cannot hold out by {by!r}: choose item, {', '.join(HOLD_OUT)}")
    rules = rules or load_rules()
    verdicts: dict[int, Assessment] = {}
    seconds = 0.0
    split = (
        folds(examples, k, seed) if by == "item" else group_folds(examples, k, seed, HOLD_OUT[by])
    )
    for test in split:
        held_out = set(test)
        training = [e for i, e in enumerate(examples) if i not in held_out]
        classifier = Classifier(rules, train(training, seed=seed, rules=rules, options=options))
        start = time.perf_counter()
        judged = classifier.assess_many([examples[i].item() for i in test])
        seconds += time.perf_counter() - start
        verdicts.update(zip(test, judged, strict=True))
    ordered = [verdicts[i] for i in range(len(examples))]
    result = report(examples, ordered, seconds)
    result["folds"] = k
    result["held_out_by"] = by
    return result


def format_evaluation(result: dict[str, Any]) -> str:
    """A human-readable table of eval figures."""
    rel = result["relevance"]
    lines = [
        f"items: {result['items']} ({result['relevant']} relevant)"
        + (
            f"  ({result['folds']}-fold CV, held out by {result.get('held_out_by', 'item')})"
            if "folds" in result
            else ""
        ),
        "confusion: " + "  ".join(f"{k} {v}" for k, v in result["confusion"].items()),
        f"relevance: precision {rel['precision']:.3f}  recall {rel['recall']:.3f}  "
        f"F1 {rel['f1']:.3f}",
        f"categories: macro F1 {result['categories']['macro_f1']:.3f}",
        f"  {'category':<22}{'prec':>7}{'recall':>8}{'F1':>7}{'support':>9}",
    ]
    for name, figures in result["categories"]["per_category"].items():
        lines.append(
            f"  {name:<22}{figures['precision']:>7.3f}{figures['recall']:>8.3f}"
            f"{figures['f1']:>7.3f}{int(figures['support']):>9d}"
        )
    lines += [
        f"country accuracy: {result['country_accuracy']:.3f}",
        f"stage accuracy: {result['stage_accuracy']:.3f}",
        f"speed: {result['items_per_second']:.0f} items/s",
        "per language:",
        f"  {'lang':<8}{'items':>6}{'rel':>5}{'tp':>5}{'fp':>5}{'fn':>5}{'prec':>7}{'recall':>8}"
        f"{'F1':>7}{'cat F1':>8}{'country':>9}{'stage':>7}",
    ]
    for language, figures in result.get("per_language", {}).items():
        c, r = figures["confusion"], figures["relevance"]
        lines.append(
            f"  {language:<8}{figures['items']:>6}{figures['relevant']:>5}{c['tp']:>5}{c['fp']:>5}"
            f"{c['fn']:>5}{r['precision']:>7.3f}{r['recall']:>8.3f}{r['f1']:>7.3f}"
            f"{figures['category_macro_f1']:>8.3f}{figures['country_accuracy']:>9.3f}"
            f"{figures['stage_accuracy']:>7.3f}"
        )
    return "\n".join(lines)


def format_assessment(assessment: Assessment) -> str:
    """The verdict and why, for `monitor classify`."""
    verdict = "RELEVANT" if assessment.relevant else "not relevant"
    lines = [
        f"{verdict}  score {assessment.score:.2f}",
        "categories: " + (", ".join(c.value for c in assessment.categories) or "-"),
        f"country: {assessment.country or '-'}   stage: {assessment.stage.value}",
        "matched terms: " + (", ".join(assessment.matched_terms) or "-"),
        "why:",
    ]
    lines += [f"  - {reason}" for reason in assessment.evidence]
    lines.append(f"model: {assessment.model_version}")
    return "\n".join(lines)
