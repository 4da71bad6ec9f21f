"""TermMatcher with one expression per script group finds what a single trie expression finds.

The reference here is the plain definition the matcher implements: every term compiled into
one trie-shaped expression (literal atoms before word edges before wildcards, a term ending
at a node tried after the longer ones), matched at every position of the text, the hit at a
position being the first term of the trie that matches there. It is written out again below
without the matcher's scan expressions, script split, merge or cache; a second, per-term
check confirms that no position where some term matches on its own goes without a hit.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from monitor.classify.matcher import Hit, TermMatcher, script_group, term_atoms
from monitor.classify.rules import (
    RuleSet,
    _collect_terms,
    _merge_names,
    _read_yaml,
    _with_attached_particles,
    load_rules,
)
from monitor.classify.text import join_item, normalize
from monitor.events.targets import load_targets

REPO = Path(__file__).resolve().parents[2]
_EDGE, _WILD, _OPTIONAL = "\\b", "\\w*", "\\w?"
# Terms not led by a word edge may only start at a character outside ASCII/Latin.
_NON_LATIN = "(?=[^\\x00-\\u024f])"

Span = tuple[int, int, str]


class _Node:
    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.term: int | None = None


class Reference:
    """The single-expression matcher, spelled out: one `match` per position, named groups."""

    def __init__(self, terms: Iterable[str], whole_words: frozenset[str] = frozenset()) -> None:
        root = _Node()  # children keep the order the terms were added in
        self.terms: list[str] = []
        self.atoms: list[tuple[str, ...]] = []
        for term in terms:
            atoms = term_atoms(term, term in whole_words)
            if not atoms or atoms in self.atoms:
                continue
            self.terms.append(term)
            self.atoms.append(atoms)
            node = root
            for atom in atoms:
                node = node.children.setdefault(atom, _Node())
            node.term = len(self.terms) - 1
        words = root.children.get(_EDGE)
        others = _Node()
        others.children = {a: n for a, n in root.children.items() if a != _EDGE}
        branches = []
        if words is not None:
            branches.append(_EDGE + self._render(words))
        if others.children:
            branches.append(_NON_LATIN + self._render(others))
        self.regex = re.compile("(?:" + "|".join(branches) + ")" if branches else "(?!)")

    def _render(self, node: _Node) -> str:
        def order(atom: str) -> int:
            return 2 if atom in (_WILD, _OPTIONAL) else 1 if atom == _EDGE else 0

        parts = [
            atom + self._render(child)
            for atom, child in sorted(node.children.items(), key=lambda item: order(item[0]))
        ]
        if node.term is not None:
            parts.append(f"(?P<t{node.term}>)")
        return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"

    def find(self, text: str) -> list[Span]:
        found = []
        for position in range(len(text) + 1):
            match = self.regex.match(text, position)
            if match is not None and match.lastgroup is not None:
                index = int(match.lastgroup[1:])
                found.append((position, match.start(match.lastgroup), self.terms[index]))
        return found

    def unmatched_starts(self, text: str, starts: set[int]) -> list[tuple[int, str]]:
        """Positions where a term matches on its own but no hit starts (should be none)."""
        missing = []
        for term, atoms in zip(self.terms, self.atoms, strict=True):
            literal = []
            for atom in atoms[1:] if atoms[0] == _EDGE else atoms:
                if len(atom) > 2 or atom in (_EDGE, _WILD, _OPTIONAL):
                    break
                literal.append(atom[-1])
            if literal and "".join(literal) not in text:
                continue  # quick filter: the term's leading letters are not in the text
            lead = "" if atoms[0] == _EDGE else _NON_LATIN
            pattern = re.compile("(?=" + lead + "".join(atoms) + ")")
            missing += [
                (m.start(), term) for m in pattern.finditer(text) if m.start() not in starts
            ]
        return missing


def _spans(hits: list[Hit]) -> list[Span]:
    return [(h.start, h.end, h.term) for h in hits]


def _check(matcher: TermMatcher, reference: Reference, texts: Iterable[str]) -> int:
    """Compare every text twice (cold and warm cache); returns how many hits were compared."""
    compared = 0
    roles_of: dict[str, frozenset[str]] = {}
    for text in texts:
        expected = reference.find(text)
        for _ in range(2):
            hits = matcher.find(text)
            assert _spans(hits) == expected, text
        for hit in hits:
            assert roles_of.setdefault(hit.term, hit.roles) == hit.roles
        compared += len(expected)
    return compared


def _corpus_texts() -> list[str]:
    shared = Path(os.environ.get("MONITOR_SHARED_DIR", REPO.parent / "shared"))
    files = sorted((REPO / "data" / "corpus" / "pages").glob("*.jsonl"))
    files += [p for p in [shared / "corpus" / "dev.jsonl"] if p.is_file()]
    texts = []
    for path in files:
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    item = json.loads(line)
                    texts.append(join_item(item["title"], item.get("summary") or "")[0])
    return texts


# Filler words of many scripts, for texts built around real terms.
_FILLER_TEXT = {
    "latin": "the report said on monday that officials were asked about it",
    "cyrillic": "в понедельник власти сообщили об этом решении",
    "greek": "η κυβέρνηση ανακοίνωσε σήμερα νέα μέτρα",
    "arabic": "قالت السلطات يوم الاثنين إن القرار نهائي",
    "persian": "مقامات روز دوشنبه اعلام کردند",
    "hebrew": "הממשלה הודיעה היום על ההחלטה",
    "cjk": "政府 周一 表示 该 决定 已经 生效 。",
    "japanese": "政府は 月曜日 発表した 。",
    "korean": "정부는 월요일 발표했다",
    "devanagari": "सरकार ने सोमवार को कहा",
    "bengali": "সরকার সোমবার জানিয়েছে",
    "thai": "รัฐบาล ประกาศ วันจันทร์ ว่า",
    "myanmar": "အစိုးရ က ကြေညာ ခဲ့သည်",
    "khmer": "រដ្ឋាភិបាល បាន ប្រកាស",
    "amharic": "መንግስት ሰኞ አስታወቀ",
    "georgian": "მთავრობამ ორშაბათს განაცხადა",
    "armenian": "կառավարությունը երկուշաբթի հայտարարեց",
    "digits": "2024 5g ٢٠٢٤ 10% #1 (3) — 4g/5g",
}
_FILLER = {script: words.split() for script, words in _FILLER_TEXT.items()}
_BRANDS = ["whatsapp", "telegram", "x", "tiktok", "youtube", "vpn", "5g", "4g", "internet"]


def _instance(term: str, rng: random.Random) -> str:
    """One spelling a term matches: wildcards filled in, spaces as space or hyphen."""
    out = []
    for ch in " ".join(term.lower().split()):
        if ch == "*":
            out.append(rng.choice(["", "s", "ed", "ية", "ов"]))
        elif ch == "_":
            out.append(rng.choice(["", "e", "ا"]))
        elif ch == " ":
            out.append(rng.choice([" ", " ", "-"]))
        else:
            out.append(ch)
    return "".join(out)


def _synthetic_texts(terms: list[str], count: int, seed: int) -> Iterator[str]:
    """Texts mixing filler of one script, real terms of any script, brands and digits."""
    rng = random.Random(seed)
    scripts = list(_FILLER)
    for _ in range(count):
        base = _FILLER[rng.choice(scripts)]
        words = [rng.choice(base) for _ in range(rng.randint(3, 12))]
        for _ in range(rng.randint(1, 5)):
            piece = rng.choice(
                [_instance(rng.choice(terms), rng), rng.choice(_BRANDS)]
                + [rng.choice(_FILLER[rng.choice(scripts)])]
            )
            at = rng.randint(0, len(words))
            if rng.random() < 0.3 and words:  # attached to a neighbour: no word edge
                at = min(at, len(words) - 1)
                words[at] = rng.choice([words[at] + piece, piece + words[at]])
            else:
                words.insert(at, piece)
        yield normalize(" ".join(words))


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules()


@pytest.fixture(scope="module")
def rule_table() -> tuple[list[str], frozenset[str]]:
    """The packaged rules' terms, as load_rules compiles them, and those matched as words."""
    rules_data, _ = _read_yaml(None, "rules.yaml")
    gazetteer, _ = _read_yaml(None, "gazetteer.yaml")
    _merge_names(gazetteer, _read_yaml(None, "country_names.yaml")[0])
    terms = _collect_terms(rules_data, gazetteer)
    whole_words = _with_attached_particles(terms)
    return list(terms), whole_words


@pytest.fixture(scope="module")
def rule_terms(rule_table: tuple[list[str], frozenset[str]]) -> list[str]:
    return rule_table[0]


@pytest.fixture(scope="module")
def rule_whole_words(rule_table: tuple[list[str], frozenset[str]]) -> frozenset[str]:
    return rule_table[1]


def test_rule_matcher_equals_the_single_expression_on_synthetic_texts(
    rules: RuleSet, rule_terms: list[str], rule_whole_words: frozenset[str]
) -> None:
    assert rule_whole_words  # short Arabic-script names are compiled as whole words
    reference = Reference(rule_terms, rule_whole_words)
    assert rules.matcher.size == len(reference.terms)
    texts = list(_synthetic_texts(rule_terms, 400, seed=14))
    assert _check(rules.matcher, reference, texts) > 1000
    for text in texts[:150]:
        starts = {h.start for h in rules.matcher.find(text)}
        assert reference.unmatched_starts(text, starts) == [], text


def test_rule_matcher_equals_the_single_expression_on_the_corpus(
    rules: RuleSet, rule_terms: list[str], rule_whole_words: frozenset[str]
) -> None:
    texts = _corpus_texts()
    if not texts:
        pytest.skip("no corpus texts (data/corpus/pages/*.jsonl, ../shared/corpus/dev.jsonl)")
    reference = Reference(rule_terms, rule_whole_words)
    assert _check(rules.matcher, reference, texts) > 1000
    for text in texts[::4]:
        starts = {h.start for h in rules.matcher.find(text)}
        assert reference.unmatched_starts(text, starts) == [], text


def test_rule_hits_keep_their_roles(rules: RuleSet) -> None:
    rules_data, _ = _read_yaml(None, "rules.yaml")
    gazetteer, _ = _read_yaml(None, "gazetteer.yaml")
    _merge_names(gazetteer, _read_yaml(None, "country_names.yaml")[0])
    direct: dict[tuple[str, ...], set[str]] = {}
    for term, roles in _collect_terms(rules_data, gazetteer).items():
        direct.setdefault(term_atoms(term), set()).update(roles)
    texts = ["turkey blocks access to wikipedia", "全省断网，警方称", "حجب تطبيق تيليجرام في إيران"]
    hits = [h for text in texts for h in rules.matcher.find(text)]
    assert hits
    for hit in hits:
        assert direct[term_atoms(hit.term)] <= hit.roles
        assert hit.roles in rules.matcher.role_sets()
    assert set(rules.roles) == rules.matcher.role_sets()


def test_target_matcher_equals_the_single_expression() -> None:
    matcher = load_targets()._matcher
    reference = Reference(matcher._terms)
    texts = list(_synthetic_texts(matcher._terms, 250, seed=41)) + _corpus_texts()[::3]
    assert _check(matcher, reference, texts) > 300


def test_latin_brands_digits_and_mixed_terms_inside_other_scripts() -> None:
    terms = {
        "whatsapp": {"platform"},
        "telegram*": {"platform"},
        "حجب": {"block"},
        "断网": {"shutdown"},
        "5g": {"mobile"},
        "4g*": {"mobile"},
        "2024年": {"date"},
        "x 断网": {"mixed"},
        "vpn禁令": {"mixed"},
        "断网x": {"mixed"},
        "حجب whatsapp": {"phrase"},
        "ยูทูบ": {"platform"},
        "γ": {"greek"},
        "блок*": {"block"},
    }
    matcher = TermMatcher(terms)
    reference = Reference(terms)
    expected = {
        "حجب whatsapp و telegram في 2024": ["حجب whatsapp", "whatsapp", "telegram*"],
        "حجبwhatsapp بالكامل": ["حجب"],  # attached: no word edge before the brand
        "全省断网, whatsapp 和 telegram 被封, 5g 与 4g网络": [
            "断网",
            "whatsapp",
            "telegram*",
            "5g",
            "4g*",
        ],
        "全省断网，whatsapp和telegram被封": ["断网"],  # Han letters are word characters
        "2024年全省断网x 和 x断网 x-断网 vpn禁令": [
            "2024年",
            "断网x",
            "断网",
            "x 断网",
            "断网",
            "vpn禁令",
        ],
        "ไทยสั่งปิดยูทูบ 5g ยูทูบwhatsapp": ["ยูทูบ", "5g", "ยูทูบ"],
        "власти блокируют whatsapp; блокировка telegram-каналов 5g": [
            "блок*",
            "whatsapp",
            "блок*",
            "telegram*",
            "5g",
        ],
        "γ5g 5gγ 15g 5g1 ٥g αγ": ["γ", "γ", "γ"],
    }
    assert _check(matcher, reference, expected) > 0
    for text, terms_found in expected.items():
        assert [h.term for h in matcher.find(text)] == terms_found, text
    hits = matcher.find("حجب whatsapp و telegram في 2024")
    assert [(h.start, h.end) for h in hits] == [(0, 12), (4, 12), (15, 23)]
    assert hits[0].roles == {"phrase", "block"}  # keeps the hidden "حجب"'s role


def test_wildcard_led_terms_keep_their_own_span_cache() -> None:
    # At 0 in the first text "*网" spans "断网" (before "络") behind the longer "断网络x"; in
    # the second the same span and neighbours are the literal group's "断网", not "*网".
    terms = {"断网络x": {"a"}, "断网": {"b"}, "*网": {"c"}}
    matcher, reference = TermMatcher(terms), Reference(terms)
    texts = ["断网络x", "断网络", "x断网络", "断网"]
    _check(matcher, reference, texts)
    assert [h.term for h in matcher.find("断网络")] == ["断网", "*网"]


@pytest.mark.parametrize("seed", range(6))
def test_random_terms_and_texts_over_mixed_alphabets(seed: int) -> None:
    # Wildcard-led, punctuation-led, hyphen and edge cases the real lexicons do not have yet.
    rng = random.Random(seed)
    term_chars = "ab 断网ب1#é*_-жαx"
    text_chars = "ab 断网ب1#é-жαx."
    for _ in range(60):
        terms = {
            "".join(rng.choice(term_chars) for _ in range(rng.randint(1, 4))): {str(i)}
            for i in range(rng.randint(1, 12))
        }
        matcher = TermMatcher(terms)
        reference = Reference(terms)
        texts = [
            "".join(rng.choice(text_chars) for _ in range(rng.randint(0, 24))) for _ in "12345"
        ]
        _check(matcher, reference, texts)


def test_script_groups() -> None:
    assert {script_group(c) for c in "aéжαẞ"} == {"latin"}
    assert script_group("1") == script_group("#") == "other"
    assert script_group("ب") == script_group("پ") == "arabic"
    assert script_group("断") == script_group("カ") == script_group("한") == "cjk"
    assert script_group("ก") == script_group("ກ") == script_group("က") == "southeast"
    assert script_group("क") == script_group("ক") == script_group("த") == "indic"
    assert {script_group(c) for c in "אሀაա"} == {"hebrew", "ethiopic", "caucasus"}


def test_the_scan_expression_is_the_grouped_one_without_its_groups() -> None:
    """The scan source is derived from the grouped source by dropping its empty groups: equal
    to rendering the trie without groups, escaped parentheses included."""
    from monitor.classify import matcher as m

    terms = ["a()", "b\\", "c\\()", "d(", "(e)", "block*", "internet shutdown", "حجب", "断网"]
    for wanted in (terms, _WORDS_OF_EVERY_SCRIPT):
        root = m._Node()
        for index, term in enumerate(wanted):
            node = root
            for atom in m.term_atoms(term):
                node = node.children.setdefault(atom, m._Node())
            node.terminal = index
        for group_root in m._split_by_script(root).values():
            grouped = m._render_root(group_root, {})
            assert m._without_groups(grouped) == m._render_root(group_root, None)
            re.compile(grouped)


_WORDS_OF_EVERY_SCRIPT = [words.split()[0] for words in _FILLER_TEXT.values()]
