"""Regular expressions, one per script group, that find every rule and gazetteer term.

Terms are compiled into a character trie, so the engine follows only the branches the text
allows at each position; an empty capturing group ends each term, so `lastindex` names the
term that matched and its position marks the end. Matching sits inside a lookahead, which
reports overlapping terms (for example "internet" inside "internet shutdown").

A position can only start a term whose first character it holds, so the trie is split below
its root by the script group of each term's first character (Latin/Cyrillic/Greek, Arabic,
CJK, Indic, ...; a leading word edge goes with the letter after it) and each group gets its
own expression. Each expression starts with the class of its terms' first characters, which
the engine searches for in C, so a group costs a text without those characters one quick pass,
and the trie is tried only where one of its terms can start, against its own first characters
instead of those of every script. One position holds one character, hence one group, so the
groups' hits interleave by position exactly as the single expression reported them (terms
starting with a wildcard, which fit any character, go last, as in the single trie's order).

With thousands of groups every match object is costly to build, so the text is scanned with
a copy of the expression without them, capturing just the span of the term; which term it is
(the first in the trie's order that matches there) depends only on the span's text and the
characters on either side (for the word-boundary tests), so it is looked up in a cache and
only computed, by the grouped expression at that position, the first time such a span is seen.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from functools import lru_cache
from operator import itemgetter
from typing import NamedTuple

# Atoms of a compiled term.
_WORD_EDGE = "\\b"
_SPACE = "[ \\-]"
_WILD = "\\w*"
_OPTIONAL = "\\w?"

# Scripts that separate words with spaces and take no attached particles: whole-word match.
# Span -> term lookups kept (cleared when full, so a long-running daemon stays bounded).
_CACHE_SIZE = 20_000

_WORD_SCRIPT = re.compile(r"[a-z0-9\u00c0-\u024f\u1e00-\u1eff\u0400-\u04ff]")


# Script groups by code point ranges; a term goes with the group of its first character, and
# characters outside every range (digits, punctuation, symbols, rarer scripts) share "other".
# Any split is correct (a position holds one character); this one keeps each group's
# first-character class small for the scripts a text is usually written in.
_SCRIPT_RANGES: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = (
    (
        "latin",  # with Cyrillic and Greek: letters, marks, phonetic and extended blocks
        (
            (0x41, 0x5A),
            (0x61, 0x7A),
            (0xAA, 0xAA),
            (0xB5, 0xB5),
            (0xBA, 0xBA),
            (0xC0, 0x52F),
            (0x1C80, 0x1C8F),
            (0x1D00, 0x1DFF),
            (0x1E00, 0x1FFF),
            (0x2C60, 0x2C7F),
            (0x2DE0, 0x2DFF),
            (0xA640, 0xA69F),
            (0xA720, 0xA7FF),
            (0xAB30, 0xAB6F),
            (0xFB00, 0xFB06),
        ),
    ),
    ("caucasus", ((0x530, 0x58F), (0x10A0, 0x10FF), (0x1C90, 0x1CBF), (0x2D00, 0x2D2F))),
    ("hebrew", ((0x590, 0x5FF), (0xFB1D, 0xFB4F))),
    (
        "arabic",  # with Syriac and Thaana
        ((0x600, 0x7BF), (0x860, 0x8FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF)),
    ),
    ("indic", ((0x900, 0xDFF), (0x1CD0, 0x1CFF), (0xA8E0, 0xA8FF))),
    (
        "southeast",  # Thai, Lao, Myanmar, Khmer
        ((0xE00, 0xEFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x19E0, 0x19FF), (0xA9E0, 0xAA7F)),
    ),
    ("ethiopic", ((0x1200, 0x139F), (0x2D80, 0x2DDF), (0xAB00, 0xAB2F))),
    (
        "cjk",  # Han, kana, Hangul, CJK punctuation and full-width forms
        (
            (0x1100, 0x11FF),
            (0x2E80, 0x2FFF),
            (0x3000, 0x9FFF),
            (0xA960, 0xA97F),
            (0xAC00, 0xD7FF),
            (0xF900, 0xFAFF),
            (0xFE30, 0xFE4F),
            (0xFF00, 0xFFEF),
            (0x20000, 0x3FFFF),
        ),
    ),
)
_OTHER = "other"
# Terms starting with a wildcard atom can start at any character: scanned last, as a group.
_ANYWHERE = "anywhere"


def script_group(char: str) -> str:
    """The script group of one character (see _SCRIPT_RANGES)."""
    code = ord(char)
    for name, ranges in _SCRIPT_RANGES:
        for low, high in ranges:
            if low <= code <= high:
                return name
    return _OTHER


class Hit(NamedTuple):
    """One term found in a text: where, which, and what roles the rules give it."""

    start: int
    end: int
    term: str
    roles: frozenset[str]


def term_atoms(term: str, whole_word: bool = False) -> tuple[str, ...]:
    """The regex atoms of one term written in the rules' syntax (see rules.yaml).

    Terms of word scripts match whole words; `whole_word` asks it of a term in another
    script too (at its ends that are letters).
    """
    term = " ".join(term.lower().split())
    atoms: list[str] = []
    if term and (_WORD_SCRIPT.match(term[0]) or (whole_word and term[0].isalnum())):
        atoms.append(_WORD_EDGE)
    atoms += map(_char_atom, term)
    last = term[-1:]
    if last and last not in "*_" and (_WORD_SCRIPT.match(last) or (whole_word and last.isalnum())):
        atoms.append(_WORD_EDGE)
    return tuple(atoms)


_SYNTAX_ATOMS = {" ": _SPACE, "*": _WILD, "_": _OPTIONAL}


@lru_cache(maxsize=8192)
def _char_atom(char: str) -> str:
    """The atom of one character of a term (terms share their characters: computed once)."""
    return _SYNTAX_ATOMS.get(char) or re.escape(char)


class _Node:
    """A trie node: children by atom, and the term index ending here, if any."""

    __slots__ = ("children", "terminal")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.terminal: int | None = None


_ATOM_ORDER = {_WILD: 2, _OPTIONAL: 2, _WORD_EDGE: 1}


def _atom_order(child: tuple[str, _Node]) -> int:
    """Literal atoms before edges and wildcards, so the longest literal term wins."""
    return _ATOM_ORDER.get(child[0], 0)


def _render(node: _Node, group_of: dict[int, int] | None) -> str:
    """Regex source for the sub-trie below `node` (no groups when `group_of` is None)."""
    children = node.children
    # Most nodes have one child (the rest of a word): nothing to order.
    ordered = sorted(children.items(), key=_atom_order) if len(children) > 1 else children.items()
    branches = [atom + _render(child, group_of) for atom, child in ordered]
    if node.terminal is not None:
        if group_of is None:
            branches.append("")
        else:
            branches.append("()")
            group_of[len(group_of) + 1] = node.terminal
    if len(branches) == 1:
        return branches[0]
    return "(?:" + "|".join(branches) + ")"


def _render_root(root: _Node, group_of: dict[int, int] | None) -> str:
    """Regex source for the whole trie, with cheap guards that reject most positions fast.

    Whole-word terms can only start where `\\b` holds; the other scripts' terms only at a
    character outside ASCII/Latin, so one character-class test skips their branches.
    """
    words = root.children.get(_WORD_EDGE)
    others = _Node()
    others.children = {a: c for a, c in root.children.items() if a != _WORD_EDGE}
    branches = []
    if words is not None:
        branches.append(_WORD_EDGE + _render(words, group_of))
    if others.children:
        branches.append("(?=[^\\x00-\\u024f])" + _render(others, group_of))
    return "(?:" + "|".join(branches) + ")" if branches else "(?!)"


class _Group:
    """The expressions of one script group's terms, and its span -> term cache."""

    __slots__ = ("scan", "_source", "_regex", "group_term", "term_at")

    def __init__(self, root: _Node, term_at: dict[tuple[str, str, str], int]) -> None:
        # The grouped expression names a span's term only the first time that span is seen,
        # so it is compiled then, from its source: half the compile time moves off loading,
        # a script no text uses is never compiled twice, and the trie (a dict per node, some
        # 15 MB for the packaged rules) is not kept for it.
        group_of: dict[int, int] = {}
        self._source = _render_root(root, group_of)
        # Group numbers are assigned left to right in the source, as `_render` counted.
        self.group_term = group_of
        self._regex: re.Pattern[str] | None = None
        body = "(?=(" + _without_groups(self._source) + "))"
        firsts = _first_chars(root)
        if firsts is not None:
            # Match the first character (a class the engine searches for in C), then, from
            # behind it, the trie as a lookahead; the match consumes just that character, so
            # every position is still tried, and the term's span is group 1 as before.
            body = "[" + "".join(sorted(map(re.escape, firsts))) + "](?<=" + body + "[\\s\\S])"
        self.scan = re.compile(body)
        self.term_at = term_at

    @property
    def regex(self) -> re.Pattern[str]:
        """The expression with one empty group per term (compiled on first use)."""
        regex = self._regex
        if regex is None:
            regex = self._regex = re.compile(self._source)
        return regex


# An escaped character, or the empty group that marks where a term ends.
_ESCAPE_OR_END_GROUP = re.compile(r"\\.|\(\)", re.DOTALL)


def _without_groups(source: str) -> str:
    """The grouped expression's source without its empty groups: the same trie, no captures."""
    return _ESCAPE_OR_END_GROUP.sub(lambda m: "" if m.group() == "()" else m.group(), source)


def _first_chars(root: _Node) -> set[str] | None:
    """The characters every term below `root` starts with (None when one may start anywhere)."""
    firsts: set[str] = set()
    for atom, child in root.children.items():
        if atom == _WORD_EDGE:
            firsts.update(_atom_char(a) for a in child.children)
        elif atom in (_WILD, _OPTIONAL, _SPACE):
            return None
        else:
            firsts.add(_atom_char(atom))
    return firsts


def _atom_char(atom: str) -> str:
    """The character a literal atom (one `re.escape`d character) stands for."""
    return atom[-1]


def _split_by_script(root: _Node) -> dict[str, _Node]:
    """The trie's root split into one root per script group of the terms' first characters.

    Below the first character every sub-trie is shared as it is, and each root keeps the
    children in the trie's order, so each group's expression tries its terms in the same order
    as the whole trie did.
    """
    roots: dict[str, _Node] = {}
    for atom, child in root.children.items():
        if atom == _WORD_EDGE:
            for first, node in child.children.items():
                group = roots.setdefault(script_group(_atom_char(first)), _Node())
                edge = group.children.setdefault(_WORD_EDGE, _Node())
                edge.children[first] = node
        elif atom in (_WILD, _OPTIONAL, _SPACE):
            roots.setdefault(_ANYWHERE, _Node()).children[atom] = child
        else:
            roots.setdefault(script_group(_atom_char(atom)), _Node()).children[atom] = child
    anywhere = roots.pop(_ANYWHERE, None)
    if anywhere is not None:  # last: the whole trie tried these after every literal
        roots[_ANYWHERE] = anywhere
    return roots


class TermMatcher:
    """Finds all known terms in a normalized text with one compiled expression per script."""

    def __init__(
        self, terms: Mapping[str, Iterable[str]], whole_words: Collection[str] = ()
    ) -> None:
        """Compile `terms` (term -> roles); identical terms from several lists merge roles.
        Terms in `whole_words` match whole words whatever their script."""
        root = _Node()
        self._terms: list[str] = []
        roles: list[set[str]] = []
        index_of_atoms: dict[tuple[str, ...], int] = {}
        atoms_of: list[tuple[str, ...]] = []
        for term, term_roles in terms.items():
            atoms = term_atoms(term, term in whole_words)
            if not atoms:
                continue
            index = index_of_atoms.get(atoms)
            if index is None:
                index = len(self._terms)
                index_of_atoms[atoms] = index
                self._terms.append(term)
                roles.append(set())
                atoms_of.append(atoms)
                node = root
                for atom in atoms:
                    node = node.children.setdefault(atom, _Node())
                node.terminal = index
            roles[index].update(term_roles)
        # Thousands of terms share a few hundred role sets: one frozenset each (~3 MB saved).
        distinct: dict[frozenset[str], frozenset[str]] = {}
        self._roles = [
            distinct.setdefault(frozen, frozen)
            for frozen in map(frozenset, self._closed_roles(root, atoms_of, roles))
        ]
        # A span's first character names its group, so the literal groups share one cache;
        # spans of wildcard-led terms keep their own (another group may report the same span).
        shared: dict[tuple[str, str, str], int] = {}
        roots = _split_by_script(root)
        self._groups = [
            _Group(node, {} if name == _ANYWHERE else shared) for name, node in roots.items()
        ]
        self._anywhere = _ANYWHERE in roots

    @staticmethod
    def _closed_roles(
        root: _Node, atoms_of: list[tuple[str, ...]], roles: list[set[str]]
    ) -> list[set[str]]:
        """Give each term the roles of shorter terms matching its beginning too.

        The engine reports only the longest term at a position; walking each term's own path
        in the trie once finds the shorter terms it hides ("blocked access to" hides
        "blocked"), so their roles are not lost.
        """
        closed = [set(r) for r in roles]
        for index, atoms in enumerate(atoms_of):
            node = root
            for position, atom in enumerate(atoms):
                node = node.children[atom]
                children = node.children
                if (
                    node.terminal is None
                    and _WORD_EDGE not in children
                    and _WILD not in children
                    and _OPTIONAL not in children
                ):
                    continue  # no term ends here: nothing to hide (most nodes)
                following = atoms[position + 1] if position + 1 < len(atoms) else None
                closed[index].update(_hidden_roles(node, following, roles))
        return closed

    def find(self, text: str) -> list[Hit]:
        """All terms in `text` (already normalized), in order of position."""
        hits: list[Hit] = []
        sources = 0
        for group in self._groups:
            before = len(hits)
            self._find_in(group, text, hits)
            if len(hits) > before:
                sources += 1
        if sources > 1:
            # One position, one character, one literal group: starts only tie with a
            # wildcard-led term, which the whole trie tried last (the sort is stable).
            hits.sort(key=_START)
            if self._anywhere:
                hits = [h for i, h in enumerate(hits) if i == 0 or hits[i - 1].start != h.start]
        return hits

    def _find_in(self, group: _Group, text: str, hits: list[Hit]) -> None:
        """Append the hits of one group's terms in `text`, in order of position."""
        term_at = group.term_at
        terms, roles = self._terms, self._roles
        for match in group.scan.finditer(text):
            start, end = match.span(1)
            key = (text[start - 1 : start], text[start:end], text[end : end + 1])
            index = term_at.get(key)
            if index is None:
                index = _identify(group, text, start, end)
                if index is None:
                    continue
                if len(term_at) >= _CACHE_SIZE:
                    term_at.clear()
                term_at[key] = index
            hits.append(Hit(start, end, terms[index], roles[index]))

    def role_sets(self) -> set[frozenset[str]]:
        """Every distinct set of roles a hit can carry."""
        return set(self._roles)

    @property
    def size(self) -> int:
        """How many distinct terms were compiled."""
        return len(self._terms)


_START = itemgetter(0)


def _identify(group: _Group, text: str, start: int, end: int) -> int | None:
    """The term the group's grouped expression finds at `start` (it ends at `end`)."""
    match = group.regex.match(text, start)
    if match is None or match.lastindex is None:  # pragma: no cover - scan found it
        return None
    number = match.lastindex
    if match.start(number) != end:  # pragma: no cover - same expression, same span
        return None
    return group.group_term[number]


def _hidden_roles(node: _Node, following: str | None, roles: list[set[str]]) -> set[str]:
    """Roles of terms ending at `node` that would also match where a longer term continues."""
    found: set[str] = set()
    word_continues = following is not None and following not in (_SPACE, _WORD_EDGE)
    if node.terminal is not None and following is not None:
        found.update(roles[node.terminal])
    edge = node.children.get(_WORD_EDGE)
    if edge is not None and edge.terminal is not None and not word_continues:
        found.update(roles[edge.terminal])
    for atom in (_WILD, _OPTIONAL):
        wild = node.children.get(atom)
        if wild is not None and wild.terminal is not None and following is not None:
            found.update(roles[wild.terminal])
    return found
