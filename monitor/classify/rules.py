"""Rules as data: load rules.yaml and gazetteer.yaml, and read the rule evidence of a text.

A measure is recognised when an action and an object of one category stand near each other
(or a phrase names the measure outright), best with a state actor next to them; negative
contexts (budget shutdowns, cable cuts, breaches, business news, platforms' own moderation)
count against it.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from monitor.domain import Category
from monitor.errors import ModelError

from .matcher import Hit, TermMatcher, script_group
from .stage_words import counted_stage_words
from .text import join_item

ACTOR = "actor"
ACTION = "action:"
OBJECT = "object:"
PHRASE = "phrase:"
NEGATIVE = "negative:"
STAGE = "stage:"
COUNTRY = "country:"

# Gazetteer kinds: n names, d demonyms, p places, b bodies (ministries, regulators, leaders).
COUNTRY_KINDS = ("n", "d", "p", "b")
# Names and bodies of a state act as the actor of a sentence ("Turkey blocks ...").
_ACTOR_KINDS = frozenset({"n", "b"})


@dataclass(frozen=True, slots=True)
class CategoryRule:
    """Which action and object classes make up one category."""

    actions: frozenset[str]
    objects: frozenset[str]


@dataclass(frozen=True, slots=True)
class Roles:
    """A term's roles split by kind once at load time, so analysis does no string parsing."""

    actor: bool
    actions: tuple[str, ...]
    objects: tuple[str, ...]
    phrases: tuple[str, ...]
    negatives: tuple[str, ...]
    stages: tuple[str, ...]
    countries: tuple[tuple[str, str], ...]  # (alpha-2, gazetteer kind)


def parse_roles(roles: frozenset[str]) -> Roles:
    """Split role names such as "action:block" or "country:VN:n" by kind."""

    def named(prefix: str) -> tuple[str, ...]:
        return tuple(sorted(r[len(prefix) :] for r in roles if r.startswith(prefix)))

    countries = tuple((code, kind) for code, _, kind in (c.partition(":") for c in named(COUNTRY)))
    return Roles(
        actor=ACTOR in roles,
        actions=named(ACTION),
        objects=named(OBJECT),
        phrases=named(PHRASE),
        negatives=named(NEGATIVE),
        stages=named(STAGE),
        countries=countries,
    )


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The compiled rules: one matcher plus how to combine what it finds."""

    matcher: TermMatcher
    roles: Mapping[frozenset[str], Roles]  # every role set the matcher can report, parsed
    proximity: int
    categories: Mapping[Category, CategoryRule]
    stage_weights: Mapping[str, float]
    negative_groups: tuple[str, ...]
    digest: str  # sha256 of the rule files, so a model knows which rules it was trained with
    # Names of the class flags (`RuleEvidence.classes`): each action and object class seen
    # anywhere in the text (and in the title), and each category whose action and object both
    # occur however far apart (and with a state actor named). Wording differs by language;
    # which kinds of words occur, and together, carries across languages and stories.
    class_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CategoryEvidence:
    """How strongly the rules see one category in a text."""

    pair: bool  # an action and an object of the category near each other
    phrase: bool  # a phrase that names the measure
    actor: bool  # a state actor near the action or phrase
    in_title: bool


@dataclass(frozen=True, slots=True)
class RuleEvidence:
    """Everything the rules found in one text, for the model, country, stage and reasons."""

    text: str
    title_end: int
    hits: tuple[Hit, ...]
    categories: Mapping[Category, CategoryEvidence]
    negatives: tuple[str, ...]
    actor: bool
    # The stage words that count (stage_words.py), and (stage, in title) of each of them.
    stage_words: tuple[Hit, ...] = ()
    stage_cues: tuple[tuple[str, bool], ...] = ()
    actor_in_title: bool = False
    actor_acts: bool = False  # a state body is the subject of an action ("Turkey blocks")
    platform_acts: bool = False  # a platform is, and no state body is ("Meta bans accounts")
    classes: frozenset[str] = frozenset()  # class flags present (RuleSet.class_names)

    def terms(self) -> tuple[str, ...]:
        """Distinct matched surface texts, in order, for the recipient."""
        seen: dict[str, None] = {}
        for hit in self.hits:
            seen.setdefault(self.text[hit.start : hit.end], None)
        return tuple(seen)


def _read_yaml(path: Path | None, name: str) -> tuple[dict[str, Any], bytes]:
    """Parsed YAML and its bytes, from `path` or the packaged data file `name`."""
    if path is None:
        raw = resources.files("monitor.classify").joinpath("data").joinpath(name).read_bytes()
    else:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read rules file {path}: {exc}") from exc
    try:
        # libyaml's loader when PyYAML was built with it: the rules load several times faster.
        data = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ModelError(f"invalid YAML in {path or name}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path or name}: expected a mapping at the top level")
    return data, raw


def _by_language(block: Any, where: str) -> list[str]:
    """All terms of a {language: [terms]} block (a plain list is accepted too)."""
    if isinstance(block, list):
        return [str(t) for t in block]
    if not isinstance(block, dict):
        raise ModelError(f"rules: {where} must map languages to lists of terms")
    terms: list[str] = []
    for language, items in block.items():
        if language == "weight":
            continue
        if not isinstance(items, list):
            raise ModelError(f"rules: {where}.{language} must be a list of terms")
        terms.extend(str(t) for t in items)
    return terms


def _collect_terms(rules: dict[str, Any], gazetteer: dict[str, Any]) -> dict[str, set[str]]:
    """Term -> roles from every section of the rules and the gazetteer."""
    terms: dict[str, set[str]] = defaultdict(set)
    for term in _by_language(rules.get("actors", {}), "actors"):
        terms[term].add(ACTOR)
    sections: tuple[tuple[str, str], ...] = (
        ("actions", ACTION),
        ("objects", OBJECT),
        ("phrases", PHRASE),
        ("negatives", NEGATIVE),
        ("stages", STAGE),
    )
    for section, prefix in sections:
        for name, block in (rules.get(section) or {}).items():
            for term in _by_language(block, f"{section}.{name}"):
                terms[term].add(prefix + str(name))
    for code, entry in (gazetteer.get("countries") or {}).items():
        for kind in COUNTRY_KINDS:
            for term in entry.get(kind, []):
                terms[str(term)].add(f"{COUNTRY}{code}:{kind}")
                if kind in _ACTOR_KINDS:
                    terms[str(term)].add(ACTOR)
    return terms


# Part of the digest: bumped whenever the matcher (or the reading of stage words, which the
# model's features count) reads the same terms differently, so a model trained on the old
# reading is refused rather than fed other evidence. 4: stage words as stage_words.py counts.
_MATCHING_VERSION = b"matching-4"
_SHORT_TERM = 3  # letters
_ANYWHERE_ROLES = (ACTION, OBJECT, PHRASE)


def _short_arabic_script_names(terms: Mapping[str, set[str]]) -> frozenset[str]:
    """Names, stage words and negative cues of a few letters in Arabic script: matched as
    whole words.

    Arabic-script terms match inside words, for the particles Arabic attaches; a short one
    then hides in everyday words: "شام" in "شامل" (comprehensive), "مصر" in "مصرف" (bank),
    "روس" in Urdu "سروس" (service), "وقع" (signed) in "موقع" (website), "سود" in "السودان".
    Actions and objects keep matching anywhere: their inflected forms carry suffixes
    ("حجبت", she blocked).
    """
    return frozenset(
        term
        for term, roles in terms.items()
        if term
        and script_group(term[0]) == "arabic"  # its terms otherwise match inside words
        and len(term.replace(" ", "")) <= _SHORT_TERM
        and not any(role.startswith(_ANYWHERE_ROLES) for role in roles)
    )


# One-letter particles Arabic writes onto the next word: and, so, with/in, for, like.
_ATTACHED_PARTICLES = "وفبلك"


def _with_attached_particles(terms: dict[str, set[str]]) -> frozenset[str]:
    """The short Arabic-script terms to match as whole words, each also written with an
    attached particle ("بمصر", in Egypt; "وقرر", and decided), added to `terms`."""
    whole = set(_short_arabic_script_names(terms))
    for term in sorted(whole):
        for particle in _ATTACHED_PARTICLES:
            terms.setdefault(particle + term, set()).update(terms[term])
            whole.add(particle + term)
    return frozenset(whole)


def _merge_names(gazetteer: dict[str, Any], names: dict[str, Any]) -> None:
    """Add the generated names file's names (kind n) to the gazetteer's states."""
    countries = gazetteer.setdefault("countries", {})
    for code, entry in (names.get("countries") or {}).items():
        if code not in countries:
            raise ModelError(f"country_names.yaml: {code} is not a state of the gazetteer")
        known = countries[code].setdefault("n", [])
        seen = set(known)
        known.extend(n for n in entry.get("n", []) if n not in seen)


def load_rules(
    rules_path: Path | None = None,
    gazetteer_path: Path | None = None,
    names_path: Path | None = None,
) -> RuleSet:
    """Compile the rule and gazetteer files (None = the packaged ones) into a RuleSet.

    The packaged gazetteer comes with the packaged state names in many languages
    (country_names.yaml, generated from CLDR); another gazetteer only with `names_path`.
    """
    rules, rules_raw = _read_yaml(rules_path, "rules.yaml")
    gazetteer, gazetteer_raw = _read_yaml(gazetteer_path, "gazetteer.yaml")
    if names_path is not None or gazetteer_path is None:
        names, names_raw = _read_yaml(names_path, "country_names.yaml")
        _merge_names(gazetteer, names)
        gazetteer_raw += b"\0" + names_raw
    categories: dict[Category, CategoryRule] = {}
    for name, spec in (rules.get("categories") or {}).items():
        try:
            category = Category(name)
        except ValueError as exc:
            raise ModelError(f"rules: unknown category {name!r}") from exc
        categories[category] = CategoryRule(
            frozenset(spec.get("actions", [])), frozenset(spec.get("objects", []))
        )
    stage_weights = {
        str(name): float(block.get("weight", 1.0)) for name, block in rules["stages"].items()
    }
    digest = hashlib.sha256(
        _MATCHING_VERSION + b"\0" + rules_raw + b"\0" + gazetteer_raw
    ).hexdigest()
    kinds = [f"act:{name}" for name in rules.get("actions") or {}]
    kinds += [f"obj:{name}" for name in rules.get("objects") or {}]
    loose = [f"loose:{category.value}" for category in categories]
    class_names = tuple(
        kinds + [f"title:{k}" for k in kinds] + loose + [f"actor+{k}" for k in loose]
    )
    terms = _collect_terms(rules, gazetteer)
    matcher = TermMatcher(terms, whole_words=_with_attached_particles(terms))
    return RuleSet(
        matcher=matcher,
        roles={roles: parse_roles(roles) for roles in matcher.role_sets()},
        proximity=int(rules.get("proximity", 70)),
        categories=categories,
        stage_weights=stage_weights,
        negative_groups=tuple(rules.get("negatives", {})),
        digest=digest,
        class_names=class_names,
    )


def _near(a: Hit, b: Hit, title_end: int, proximity: int) -> bool:
    """Whether two hits sit in the same part (title or summary) within `proximity` chars."""
    if (a.start < title_end) != (b.start < title_end):
        return False
    gap = max(b.start - a.end, a.start - b.end, 0)
    return gap <= proximity


def _category_evidence(
    rule: CategoryRule,
    phrases: list[Hit],
    actions: dict[str, list[Hit]],
    objects: dict[str, list[Hit]],
    actors: list[Hit],
    title_end: int,
    proximity: int,
) -> CategoryEvidence | None:
    """The evidence for one category, or None when the rules see nothing of it."""
    anchors: list[Hit] = list(phrases)
    pair = False
    for action_class in rule.actions:
        for action in actions.get(action_class, ()):
            for object_class in rule.objects:
                for obj in objects.get(object_class, ()):
                    if obj is not action and _near(action, obj, title_end, proximity):
                        pair = True
                        anchors.append(action)
                        break
    if not anchors:
        return None
    actor = any(_near(anchor, who, title_end, proximity) for anchor in anchors for who in actors)
    in_title = any(anchor.start < title_end for anchor in anchors)
    return CategoryEvidence(pair=pair, phrase=bool(phrases), actor=actor, in_title=in_title)


# Subject and verb stand this close ("regulator orders", "Meta bans", "X, the platform, said").
_SUBJECT_GAP = 25


def _subject_of(action: Hit, candidates: list[Hit], title_end: int) -> Hit | None:
    """The nearest candidate standing just before an action, in the same part."""
    best = None
    for hit in candidates:
        same_part = (hit.start < title_end) == (action.start < title_end)
        before = hit.end <= action.start and action.start - hit.end <= _SUBJECT_GAP
        if same_part and before and (best is None or hit.end > best.end):
            best = hit
    return best


# A platform named just before an action may be what is acted on, not who acts: "the
# government's TikTok ban", "Access to Twitter is slowed", "X was blocked".
_PASSIVE_BETWEEN = re.compile(r"\b(?:is|was|are|were|be|been|being|gets|got|remains)\b")
_ACTION_NOUN = re.compile(
    r"(?:ban|block|blocking|blockade|shutdown|throttling|slowdown|restriction|restrictions|"
    r"blackout|outage|censorship|suspension)"
)


def _acted_on(text: str, platform: Hit, action: Hit) -> bool:
    """Whether the platform before `action` is its object: a passive or a noun compound.

    "X is blocking accounts" is active (a progressive, unless "being" says passive), and
    "Facebook's suspension of" names the actor: only a bare compound ("TikTok ban") counts.
    """
    between = text[platform.end : action.start]
    word = text[action.start : action.end]
    if _PASSIVE_BETWEEN.search(between):
        return not word.endswith("ing") or "being" in between
    return not between.strip(" -") and _ACTION_NOUN.fullmatch(word) is not None


def _who_acts(
    text: str,
    actions: dict[str, list[Hit]],
    actors: list[Hit],
    platforms: list[Hit],
    title_end: int,
) -> tuple[bool, bool]:
    """Whether a state body, or only a platform, is the subject of some action."""
    state = platform = False
    for hits in actions.values():
        for action in hits:
            by_state = _subject_of(action, actors, title_end)
            by_platform = _subject_of(action, platforms, title_end)
            if by_platform is not None and _acted_on(text, by_platform, action):
                by_platform = None
            if by_state is not None and (by_platform is None or by_state.end >= by_platform.end):
                state = True
            elif by_platform is not None:
                platform = True
    return state, platform and not state


_NO_FLAGS: frozenset[str] = frozenset()


def _class_flags(
    rules: RuleSet,
    actions: Mapping[str, list[Hit]],
    objects: Mapping[str, list[Hit]],
    actor: bool,
    title_end: int,
) -> frozenset[str]:
    """The class flags of a text (RuleSet.class_names) from its action and object hits."""
    if not actions and not objects:
        return _NO_FLAGS  # most items: no word of any class
    flags = {f"act:{name}" for name in actions} | {f"obj:{name}" for name in objects}
    for prefix, by_class in (("act:", actions), ("obj:", objects)):
        for name, class_hits in by_class.items():
            if any(hit.start < title_end for hit in class_hits):
                flags.add(f"title:{prefix}{name}")
    for category, rule in rules.categories.items():
        if not rule.actions.isdisjoint(actions) and not rule.objects.isdisjoint(objects):
            flags.add(f"loose:{category.value}")
            if actor:
                flags.add(f"actor+loose:{category.value}")
    return frozenset(flags)


def analyze(rules: RuleSet, title: str, summary: str) -> RuleEvidence:
    """Run the rules over one item's title and summary."""
    text, title_end = join_item(title, summary)
    hits = rules.matcher.find(text)
    actions: dict[str, list[Hit]] = defaultdict(list)
    objects: dict[str, list[Hit]] = defaultdict(list)
    phrases: dict[str, list[Hit]] = defaultdict(list)
    negatives: set[str] = set()
    actors: list[Hit] = []
    staged: list[Hit] = []
    for hit in hits:
        roles = rules.roles[hit.roles]
        if roles.actor:
            actors.append(hit)
        if roles.stages:
            staged.append(hit)
        for name in roles.actions:
            actions[name].append(hit)
        for name in roles.objects:
            objects[name].append(hit)
        for name in roles.phrases:
            phrases[name].append(hit)
        negatives.update(roles.negatives)
    stage_words = (
        counted_stage_words(staged, lambda hit: rules.roles[hit.roles].stages, text, title_end)
        if staged
        else ()
    )
    actor_acts, platform_acts = _who_acts(
        text,
        actions,
        actors,
        [h for h in objects.get("platform", ()) if h not in actors],
        title_end,
    )
    categories: dict[Category, CategoryEvidence] = {}
    if actions or phrases:
        for category, rule in rules.categories.items():
            category_phrases = phrases.get(category.value, [])
            if not category_phrases and rule.actions.isdisjoint(actions):
                continue  # neither a phrase nor an action of this category: no evidence
            found = _category_evidence(
                rule,
                category_phrases,
                actions,
                objects,
                actors,
                title_end,
                rules.proximity,
            )
            if found is not None:
                categories[category] = found
    return RuleEvidence(
        text=text,
        title_end=title_end,
        hits=tuple(hits),
        categories=categories,
        negatives=tuple(sorted(negatives)),
        actor=bool(actors),
        stage_words=stage_words,
        stage_cues=tuple(
            (name, hit.start < title_end)
            for hit in stage_words
            for name in rules.roles[hit.roles].stages
        ),
        actor_in_title=any(hit.start < title_end for hit in actors),
        actor_acts=actor_acts,
        platform_acts=platform_acts,
        classes=_class_flags(rules, actions, objects, bool(actors), title_end),
    )
