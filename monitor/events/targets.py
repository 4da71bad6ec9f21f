"""What a measure acts on: read the target (a platform, the internet, VPNs, accounts, a region)
from an item's text, so reports of one measure are recognised however they are worded.

Pure code after loading: `TargetReader.read` takes the text and the item's categories and
returns the targets that identify the measure. Which words name which target is data, in
`monitor/events/data/targets.yaml`; terms are matched with the classifier's term matcher, so the
same term syntax and normalisation apply.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from monitor.classify.matcher import TermMatcher
from monitor.classify.text import join_item
from monitor.domain import Category
from monitor.errors import ModelError

__all__ = [
    "NO_TARGETS",
    "KIND_PREFERENCE",
    "TargetReader",
    "TargetSet",
    "agree",
    "kind_of",
    "load_targets",
    "target_label",
]

REGION_PREFIX = "region:"
KINDS = ("platform", "platforms", "network", "tool", "accounts")

# Which kinds of target name the measure, per category, in order of preference: a
# throttling report that names Telegram is about Telegram even if it also says "internet".
KIND_PREFERENCE: Mapping[str, tuple[str, ...]] = {
    Category.SHUTDOWN: ("network",),
    Category.THROTTLING: ("platform", "platforms", "network"),
    Category.PLATFORM_BLOCK: ("platform", "platforms"),
    Category.VPN_RESTRICTION: ("tool",),
    Category.IDENTITY_VERIFICATION: ("platform", "accounts"),
    Category.CONTENT_TAKEDOWN: ("platform", "platforms"),
    Category.SURVEILLANCE: ("platform", "tool"),
    Category.DATA_LOCALIZATION: ("platform",),
    Category.PLATFORM_REGULATION: ("platform",),
}
# Categories whose measures are often confined to part of a country.
_REGIONAL = frozenset({Category.SHUTDOWN, Category.THROTTLING})
# A standalone capital X names the platform except in these set phrases.
_NOT_PLATFORM_X = re.compile(
    r"\b(?:generation|gen|malcolm|article|chapter|part|phase|model|windows|mac os|type|"
    r"factor|project|space|brand|mr|ms|planet|class|series|day|version)\s*$",
    re.IGNORECASE,
)
_MAX_TARGETS = 6  # an event's target set stays small enough to mean something


@dataclass(frozen=True, slots=True)
class TargetSet:
    """The targets that identify one report's measure: what it acts on, and where."""

    # "kind:id" of targets.yaml ("platform:x", "network:mobile-data"), so a stored list
    # is read without the lexicon; regions as "region:<name>".
    targets: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not self.targets

    def ids(self) -> list[str]:
        """Targets then regions, sorted: the form stored on an event."""
        return sorted(self.targets) + sorted(self.regions)

    @classmethod
    def from_ids(cls, ids: Iterable[str]) -> TargetSet:
        ids = list(ids)
        return cls(
            frozenset(i for i in ids if not i.startswith(REGION_PREFIX)),
            frozenset(i for i in ids if i.startswith(REGION_PREFIX)),
        )

    def merged(self, other: TargetSet) -> TargetSet:
        """The union, bounded: an event gains the targets of reports that join it."""
        targets = sorted(self.targets) + sorted(other.targets - self.targets)
        regions = sorted(self.regions) + sorted(other.regions - self.regions)
        return TargetSet(frozenset(targets[:_MAX_TARGETS]), frozenset(regions[:_MAX_TARGETS]))


NO_TARGETS = TargetSet()


@dataclass(frozen=True, slots=True)
class _Target:
    id: str
    kind: str
    label: str


class TargetReader:
    """Finds the targets a text names; built once from targets.yaml."""

    def __init__(self, data: Mapping[str, Any], source: str = "targets.yaml") -> None:
        self._targets: dict[str, _Target] = {}
        self._exact: list[tuple[re.Pattern[str], str]] = []
        terms: dict[str, set[str]] = {}
        for target_id, spec in _mapping(data.get("targets"), f"{source}: targets").items():
            where = f"{source}: targets.{target_id}"
            spec = _mapping(spec, where)
            kind = spec.get("kind")
            if kind not in KINDS:
                raise ModelError(f"{where}.kind: {kind!r} is not one of {', '.join(KINDS)}")
            full_id = f"{kind}:{target_id}"
            self._targets[full_id] = _Target(full_id, kind, str(spec.get("label", target_id)))
            for term in _strings(spec.get("terms", []), f"{where}.terms"):
                terms.setdefault(term, set()).add(full_id)
            for form in _strings(spec.get("exact", []), f"{where}.exact", lower=False):
                pattern = re.compile(r"(?<![\w.\-/@#])" + re.escape(form) + r"(?![\w\-/])")
                self._exact.append((pattern, full_id))
        self._regions: dict[str, str] = {}  # region term -> "region:<canonical>"
        for country, names in _mapping(data.get("regions", {}), f"{source}: regions").items():
            for entry in _sequence(names, f"{source}: regions.{country}"):
                group = _strings(entry if isinstance(entry, list) else [entry], country)
                canonical = REGION_PREFIX + " ".join(group[0].replace("*", "").split())
                for name in group:
                    self._regions[name] = canonical
                    terms.setdefault(name, set()).add(canonical)
        self._matcher = TermMatcher({term: frozenset(ids) for term, ids in terms.items()})

    def label(self, target_id: str) -> str:
        """How a recipient reads a target: 'X (Twitter)', 'mobile data', 'Manipur'."""
        if target_id.startswith(REGION_PREFIX):
            return target_id[len(REGION_PREFIX) :].title()
        found = self._targets.get(target_id)
        return found.label if found else target_id.partition(":")[2] or target_id

    def mentions(self, title: str, summary: str) -> set[str]:
        """Every target and region the text names, whatever the measure."""
        text, _ = join_item(title, summary)
        found: set[str] = set()
        for hit in self._matcher.find(text):
            found.update(hit.roles)
        raw = f"{title}\n{summary}"
        for pattern, target_id in self._exact:
            for match in pattern.finditer(raw):
                if not _NOT_PLATFORM_X.search(raw[max(0, match.start() - 12) : match.start()]):
                    found.add(target_id)
                    break
        return found

    def read(self, title: str, summary: str, categories: Iterable[str]) -> TargetSet:
        """The targets that identify this report's measure, given what kind of measure it is."""
        found = self.mentions(title, summary)
        by_kind: dict[str, set[str]] = {}
        for target_id in found:
            target = self._targets.get(target_id)
            if target is not None:
                by_kind.setdefault(target.kind, set()).add(target_id)
        chosen: set[str] = set()
        regional = False
        for category in categories:
            for kind in KIND_PREFERENCE.get(category, ("platform",)):
                if by_kind.get(kind):
                    chosen |= by_kind[kind]
                    break
            regional = regional or category in _REGIONAL
        regions = {t for t in found if t.startswith(REGION_PREFIX)} if regional else set()
        return TargetSet(frozenset(chosen), frozenset(regions))


def kind_of(target_id: str) -> str:
    """The kind a stored target id carries: 'platform' for 'platform:x'."""
    return target_id.partition(":")[0]


def agree(a: TargetSet, b: TargetSet) -> bool:
    """Tell whether two reports' targets can be one measure's.

    They agree when they share a target, or when one names a whole class the other's target
    belongs to (social media and Facebook; the internet and mobile data, which reports of one
    cut use interchangeably). Named regions must overlap when both name some: cuts in two
    regions are two measures, while a report that names none may be about either.
    """
    if a.regions and b.regions and a.regions.isdisjoint(b.regions):
        return False
    if not a.targets.isdisjoint(b.targets):
        return True
    kinds_a = {kind_of(t) for t in a.targets}
    kinds_b = {kind_of(t) for t in b.targets}
    if "network" in kinds_a and "network" in kinds_b:
        return True
    return ("platforms" in kinds_a and "platform" in kinds_b) or (
        "platforms" in kinds_b and "platform" in kinds_a
    )


def target_label(reader: TargetReader, targets: Iterable[str]) -> str:
    """'X (Twitter), Telegram in Manipur' for a stored target list; '' when there is none."""
    ids = list(targets)
    names = [reader.label(t) for t in ids if not t.startswith(REGION_PREFIX)]
    places = [reader.label(t) for t in ids if t.startswith(REGION_PREFIX)]
    text = ", ".join(names)
    if places:
        text = f"{text} in {', '.join(places)}" if text else ", ".join(places)
    return text


def load_targets(path: Path | None = None) -> TargetReader:
    """The packaged target lexicon, or one from `path`; a clear error names what is wrong."""
    name = str(path) if path else "monitor/events/data/targets.yaml"
    try:
        raw = (
            path.read_bytes()
            if path
            else resources.files("monitor.events").joinpath("data/targets.yaml").read_bytes()
        )
        data = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError) as exc:
        raise ModelError(f"cannot read {name}: {exc}") from exc
    return TargetReader(_mapping(data, name), name)


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ModelError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _sequence(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ModelError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _strings(value: object, where: str, *, lower: bool = True) -> list[str]:
    items = _sequence(value, where)
    bad = [v for v in items if not isinstance(v, str) or not v.strip()]
    if bad:
        raise ModelError(f"{where}: every term must be a non-empty string, got {bad[0]!r}")
    return [v.strip().lower() if lower else v.strip() for v in items]
