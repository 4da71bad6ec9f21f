"""One regular expression that finds every rule and gazetteer term in a single pass.

Terms are compiled into a character trie, so the engine follows only the branches the text
allows at each position; an empty capturing group ends each term, so `lastindex` names the
term that matched and its position marks the end. Matching sits inside a lookahead, which
reports overlapping terms (for example "internet" inside "internet shutdown").

With thousands of groups every match object is costly to build, so the text is scanned with
a copy of the expression without them, capturing just the span of the term; which term it is
(the first in the trie's order that matches there) depends only on the span's text and the
characters on either side (for the word-boundary tests), so it is looked up in a cache and
only computed, by the grouped expression at that position, the first time such a span is seen.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
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


class Hit(NamedTuple):
    """One term found in a text: where, which, and what roles the rules give it."""

    start: int
    end: int
    term: str
    roles: frozenset[str]


def term_atoms(term: str) -> tuple[str, ...]:
    """The regex atoms of one term written in the rules' syntax (see rules.yaml)."""
    term = " ".join(term.lower().split())
    atoms: list[str] = []
    if term and _WORD_SCRIPT.match(term[0]):
        atoms.append(_WORD_EDGE)
    for ch in term:
        if ch == " ":
            atoms.append(_SPACE)
        elif ch == "*":
            atoms.append(_WILD)
        elif ch == "_":
            atoms.append(_OPTIONAL)
        else:
            atoms.append(re.escape(ch))
    if term and term[-1] not in "*_" and _WORD_SCRIPT.match(term[-1]):
        atoms.append(_WORD_EDGE)
    return tuple(atoms)


class _Node:
    """A trie node: children by atom, and the term index ending here, if any."""

    __slots__ = ("children", "terminal")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.terminal: int | None = None


def _atom_order(atom: str) -> int:
    """Literal atoms before edges and wildcards, so the longest literal term wins."""
    return {_WILD: 2, _OPTIONAL: 2, _WORD_EDGE: 1}.get(atom, 0)


def _render(node: _Node, group_of: dict[int, int] | None) -> str:
    """Regex source for the sub-trie below `node` (no groups when `group_of` is None)."""
    branches = [
        atom + _render(child, group_of)
        for atom, child in sorted(node.children.items(), key=lambda kv: _atom_order(kv[0]))
    ]
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


class TermMatcher:
    """Finds all known terms in a normalized text with one compiled regular expression."""

    def __init__(self, terms: Mapping[str, Iterable[str]]) -> None:
        """Compile `terms` (term -> roles); identical terms from several lists merge roles."""
        root = _Node()
        self._terms: list[str] = []
        roles: list[set[str]] = []
        index_of_atoms: dict[tuple[str, ...], int] = {}
        atoms_of: list[tuple[str, ...]] = []
        for term, term_roles in terms.items():
            atoms = term_atoms(term)
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
        self._roles = [frozenset(r) for r in self._closed_roles(root, atoms_of, roles)]
        group_of: dict[int, int] = {}
        source = _render_root(root, group_of)
        # Group numbers are assigned left to right in the source, as `_render` counted them.
        self._group_term = group_of
        self._regex = re.compile(source)
        self._scan = re.compile("(?=(" + _render_root(root, None) + "))")
        self._term_at: dict[tuple[str, str, str], int] = {}

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
                following = atoms[position + 1] if position + 1 < len(atoms) else None
                closed[index].update(_hidden_roles(node, following, roles))
        return closed

    def find(self, text: str) -> list[Hit]:
        """All terms in `text` (already normalized), in order of position."""
        hits: list[Hit] = []
        term_at = self._term_at
        terms, roles = self._terms, self._roles
        for match in self._scan.finditer(text):
            start, end = match.span(1)
            key = (text[start - 1 : start], text[start:end], text[end : end + 1])
            index = term_at.get(key)
            if index is None:
                index = self._identify(text, start, end)
                if index is None:
                    continue
                if len(term_at) >= _CACHE_SIZE:
                    term_at.clear()
                term_at[key] = index
            hits.append(Hit(start, end, terms[index], roles[index]))
        return hits

    def _identify(self, text: str, start: int, end: int) -> int | None:
        """The term the grouped expression finds at `start` (it ends at `end`)."""
        match = self._regex.match(text, start)
        if match is None or match.lastindex is None:  # pragma: no cover - scan found it
            return None
        group = match.lastindex
        if match.start(group) != end:  # pragma: no cover - same expression, same span
            return None
        return self._group_term[group]

    def role_sets(self) -> set[frozenset[str]]:
        """Every distinct set of roles a hit can carry."""
        return set(self._roles)

    @property
    def size(self) -> int:
        """How many distinct terms were compiled."""
        return len(self._terms)


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
