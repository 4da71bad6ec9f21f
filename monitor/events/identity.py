"""Which event a report belongs to: one event per government measure, however many reports.

Pure code, no I/O. An event's identity is what the measure is: the state (country), the kind
of measure (category), the target (a platform, the internet, VPNs, a region; see
`monitor.events.targets`) and time (the window). A report that agrees on all four joins the
event however it is worded; a report that names another target is another measure. Where a
report names no target (or no country), the text decides (`monitor.events.fingerprint`): a
near-duplicate (syndicated wire copy), or text similar enough while sharing specific key
terms (a follow-up). Also here: how a report moves its event's stage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.domain import Category, Stage
from monitor.events.fingerprint import TextFingerprint, similarities
from monitor.events.targets import NO_TARGETS, TargetSet, agree, kind_of

__all__ = [
    "DEFAULT_WINDOW",
    "LONGEST_WINDOW",
    "NEAR_DUPLICATE_THRESHOLD",
    "RELATED_THRESHOLD",
    "SETTLING_TIME",
    "EventCandidate",
    "ItemForClustering",
    "Match",
    "StageMove",
    "advance_stage",
    "identity_keys",
    "identity_window",
    "match_event",
    "stage_move",
]

DEFAULT_WINDOW = timedelta(days=21)

# Thresholds on estimated Jaccard of the shingle sets (title words count twice, see
# event_text.shingles). Chosen on synthetic wire/follow-up/distinct-measure pairs in
# tests/events/test_events.py: syndicated copies with an edited title or a trimmed summary score
# 0.55-1.0 while distinct measures with templated wording stay below 0.35; stage follow-ups of
# one measure score only 0.10-0.35, so they need the shared-key-term path, whose floor
# only rejects stories that share a platform name and nothing else. With 64 permutations the
# estimate's standard error is <= 0.0625, so the floors keep about two errors of margin.
NEAR_DUPLICATE_THRESHOLD = 0.5
RELATED_THRESHOLD = 0.08
# Two stories that name different things (Telegram vs Signal, one decree vs another) are two
# measures even when their wording is templated alike (short wire texts that differ only in the
# name score 0.8 and more), unless the texts are all but identical.
DISTINCT_TERMS_THRESHOLD = 0.95


@dataclass(frozen=True, slots=True)
class EventCandidate:
    """A stored event as the matcher sees it."""

    event_id: int
    country: str | None
    categories: frozenset[str]
    stage: str
    fingerprint: TextFingerprint
    first_seen: datetime
    last_seen: datetime
    title: str
    targets: TargetSet = NO_TARGETS


@dataclass(frozen=True, slots=True)
class ItemForClustering:
    """A classified relevant item waiting to be placed in an event."""

    country: str | None
    categories: frozenset[str]
    stage: str
    fingerprint: TextFingerprint
    published: datetime
    title: str
    targets: TargetSet = NO_TARGETS


@dataclass(frozen=True, slots=True)
class Match:
    """The event an item joins, with the evidence a reader can check."""

    event_id: int
    similarity: float
    reason: str
    shared_terms: tuple[str, ...] = ()
    near_duplicate: bool = False
    same_identity: bool = False  # country, kind of measure and target agree


# Blocking a platform, throttling it and cutting the network are one family: reports of one
# measure call it each of these ("X restricted", "X blocked", "outages"), so with the same
# target they are one measure.
_ACCESS = frozenset({Category.SHUTDOWN, Category.THROTTLING, Category.PLATFORM_BLOCK})


def identity_keys(country: str | None, categories: frozenset[str], targets: TargetSet) -> list[str]:
    """'family|target' keys under which every report of one measure is filed, however worded.

    Only in a named country: without one, a shared target ("internet") says nothing. Network
    targets share one key, as `agree` treats the internet and mobile data as one; regions are
    left to `agree`, so a nationwide report still finds a regional cut.
    """
    if country is None or targets.empty:
        return []
    families = {"access" if c in _ACCESS else c for c in categories} or {"-"}
    kinds = {"network" if kind_of(t) == "network" else t for t in targets.targets}
    return sorted(f"{family}|{what}" for family in families for what in kinds)


def _in_window(item: ItemForClustering, event: EventCandidate, window: timedelta) -> bool:
    """Tell whether the item falls near the event's life span (items may arrive out of order)."""
    return event.first_seen - window <= item.published <= event.last_seen + window


def identity_window(stage: str) -> timedelta:
    """How long a measure stays open to reports of its identity after its last one.

    A block or a law in force is the same measure months later, however quiet the news was
    in between; once lifted, a new block after the usual window is a new measure.
    """
    return _IDENTITY_WINDOWS.get(stage, DEFAULT_WINDOW)


_IDENTITY_WINDOWS: dict[str, timedelta] = {
    Stage.PROPOSED: timedelta(days=90),
    Stage.ENACTED: timedelta(days=180),
    Stage.ENFORCED: timedelta(days=180),
}
LONGEST_WINDOW = max(_IDENTITY_WINDOWS.values())


def _compatible(item: ItemForClustering, event: EventCandidate, window: timedelta) -> bool:
    """Cheap structural checks, done before any text comparison."""
    if item.country != event.country:
        return False
    # Beyond the text window only a report of the same identity may join.
    outside = not _in_window(item, event, window)
    if outside and not (
        _identity_applies(item, event) and _in_window(item, event, identity_window(event.stage))
    ):
        return False
    if not item.categories and not event.categories:
        return True  # both unlabelled: only the text can decide
    if not item.categories.isdisjoint(event.categories):
        return True
    return (
        not item.categories.isdisjoint(_ACCESS)
        and not event.categories.isdisjoint(_ACCESS)
        and _same_target(item, event)
    )


def _identity_applies(item: ItemForClustering, event: EventCandidate) -> bool:
    """Identity decides where both name a target, in a named country."""
    return item.country is not None and not item.targets.empty and not event.targets.empty


def _same_target(item: ItemForClustering, event: EventCandidate) -> bool:
    return not item.targets.empty and not event.targets.empty and agree(item.targets, event.targets)


def _judge(
    item: ItemForClustering, event: EventCandidate, window: timedelta, score: float
) -> Match | None:
    """Decide whether a structurally compatible event is the same measure: by identity where
    both name a target in a named country, else on the text."""
    common = item.fingerprint.terms & event.fingerprint.terms
    shared = tuple(sorted(common)) if common else ()
    if _identity_applies(item, event):
        if agree(item.targets, event.targets):
            what = ", ".join(t.partition(":")[2] for t in sorted(event.targets.targets))
            reason = f"same state, measure and target ({item.country}, {what})"
            near = score >= NEAR_DUPLICATE_THRESHOLD
            return Match(event.event_id, score, reason, shared, near, same_identity=True)
        if score < DISTINCT_TERMS_THRESHOLD:
            return None  # another target: another measure, unless the text is all but a copy
    if not _in_window(item, event, window):
        return None  # beyond the text window only the identity could join it
    names_other_things = bool(item.fingerprint.terms and event.fingerprint.terms and not shared)
    if names_other_things and score < DISTINCT_TERMS_THRESHOLD:
        return None
    if score >= NEAR_DUPLICATE_THRESHOLD:
        return Match(event.event_id, score, f"near-duplicate text {score:.2f}", shared, True)
    if shared and score >= RELATED_THRESHOLD:
        categories = ", ".join(sorted(item.categories & event.categories)) or "unlabelled"
        reason = (
            f"same country+category ({categories}), similarity {score:.2f}, "
            f"shared terms: {', '.join(shared)}"
        )
        return Match(event.event_id, score, reason, shared)
    return None


def match_event(
    item: ItemForClustering,
    candidates: Iterable[EventCandidate],
    *,
    window: timedelta = DEFAULT_WINDOW,
) -> Match | None:
    """Pick the event this item reports on, or None when it is a new measure."""
    events = list(candidates)
    if not events:
        return None
    scores = similarities(item.fingerprint, [event.fingerprint for event in events])
    # Most similar first; stable, so candidates that tie keep their given order, and the
    # first of equal keys still wins. The best key ranks similarity right after "same
    # identity or copy", so once a match is in hand a less similar event can only beat it
    # by identity; where none can have one (no country or no target named), the rest are
    # not judged: with ~40 candidates per item and a match among the first, that is most
    # of the work of a report joining an event.
    order = sorted(range(len(events)), key=scores.__getitem__, reverse=True)
    identity_possible = item.country is not None and not item.targets.empty
    best: Match | None = None
    best_key: tuple[bool, float, int, datetime] | None = None
    for index in order:
        event, score = events[index], scores[index]
        if best_key is not None and score < best_key[1]:
            if best_key[0] or not identity_possible:
                break
            if event.targets.empty:
                continue  # no identity: it cannot beat the match in hand on text
        if not identity_possible and score < RELATED_THRESHOLD:
            break  # the text path needs at least this much; identity cannot apply
        if not _compatible(item, event, window):
            continue
        found = _judge(item, event, window, score)
        if found is None:
            continue
        # Same identity or copies first, then text similarity, shared evidence, and recency.
        key = (
            found.same_identity or found.near_duplicate,
            found.similarity,
            len(found.shared_terms),
            event.last_seen,
        )
        if best_key is None or key > best_key:
            best, best_key = found, key
    return best


_STAGE_ORDER = {Stage.PROPOSED: 0, Stage.ENACTED: 1, Stage.ENFORCED: 2, Stage.LIFTED: 3}


def advance_stage(old: str, new: str) -> str | None:
    """Return the stage an event moves to when an item reports `new`, if that merits an update.

    Forward moves count (proposed -> enacted/enforced/lifted, enacted -> enforced/lifted,
    enforced -> lifted), as does re-imposition (lifted -> enacted/enforced). An event whose
    stage was unknown (`none`) gaining a real stage counts; an item at `none` never does.
    """
    if new == Stage.NONE or new == old or new not in _STAGE_ORDER:
        return None
    if old == Stage.NONE:
        return new
    if old not in _STAGE_ORDER:
        return None
    if old == Stage.LIFTED:
        return new if new in (Stage.ENACTED, Stage.ENFORCED) else None
    return new if _STAGE_ORDER[Stage(new)] > _STAGE_ORDER[Stage(old)] else None


# The first reports of a measure call it "ordered" and "in effect" in one breath (a block and
# the order behind it come the same day); only later is "now in effect" news of its own.
SETTLING_TIME = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class StageMove:
    """An event's move to a new stage, and whether recipients should hear of it."""

    stage: str
    alert: bool


def stage_move(
    event_stage: str,
    item_stage: str,
    *,
    event_first_seen: datetime,
    stage_since: datetime,
    published: datetime,
) -> StageMove | None:
    """Where a report moves its event's stage, if anywhere, and whether that is an update.

    A report published before the event's current stage began cannot move it back: a late
    copy of the block's first report must not re-open a lifted block. Between "ordered" and
    "in force" the stage moves quietly while the measure is still settling (SETTLING_TIME).
    """
    moved_to = advance_stage(event_stage, item_stage)
    if moved_to is None:
        return None
    if event_stage == Stage.LIFTED and published < stage_since:
        return None
    order_then_force = {event_stage, moved_to} == {Stage.ENACTED, Stage.ENFORCED}
    settling = published - event_first_seen < SETTLING_TIME
    return StageMove(moved_to, alert=not (order_then_force and settling))
