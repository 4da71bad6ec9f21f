"""Text fingerprints of news items: MinHash signatures of their words and the key terms of a
measure, LSH band keys to find similar texts without comparing with every one, similarity.

Pure code, no I/O. Which words count (folding, stemming, stopwords, key terms) is decided in
`monitor.events.text`; persisted signatures depend on the constants here, which must never
change.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from monitor.events.text import key_terms_of, shingles_of, words

__all__ = [
    "BANDS",
    "NUM_PERM",
    "ROWS_PER_BAND",
    "TextFingerprint",
    "band_keys",
    "merge_fingerprints",
    "similarities",
    "similarity",
    "text_fingerprint",
]

NUM_PERM = 64
BANDS = 16
ROWS_PER_BAND = NUM_PERM // BANDS
_FORMAT_VERSION = 1
_MAX_TERMS = 24  # bounds the stored blob and keeps merged events from collecting noise
_EMPTY = 0xFFFFFFFF  # signature value for "no shingle": never equal to a real hash (< prime)
_PRIME = 4294967291  # largest prime below 2**32: a*x + b stays below 2**64 in uint64


def _coefficients() -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """Derive the universal-hash coefficients from fixed labels so every process agrees."""
    values = []
    for i in range(2 * NUM_PERM):
        digest = hashlib.blake2b(f"monitor.events.minhash.{i}".encode(), digest_size=8).digest()
        values.append(int.from_bytes(digest, "little") % (_PRIME - 1) + 1)
    a = np.array(values[:NUM_PERM], dtype=np.uint64)
    b = np.array(values[NUM_PERM:], dtype=np.uint64)
    a.flags.writeable = False
    b.flags.writeable = False
    return a, b


# Read-only constants: persisted signatures depend on them, so they must never change.
_A, _B = _coefficients()


@dataclass(frozen=True, slots=True, eq=False)
class TextFingerprint:
    """A MinHash signature of an item's words plus its key terms, storable in one DB column.

    The signature is held as an array only: as a tuple of Python ints it took 2.5 kB a
    fingerprint, and the writer keeps thousands of stored events' fingerprints at hand.
    """

    # NUM_PERM uint32 minima, read-only; all _EMPTY for a text with no words.
    array: npt.NDArray[np.uint32] = field(repr=False)
    terms: frozenset[str]
    empty: bool = field(init=False)  # no words: it cannot be compared or banded

    def __post_init__(self) -> None:
        array = self.array
        if array.dtype != np.uint32 or array.flags.writeable:
            array = np.array(array, dtype=np.uint32)  # a copy of our own, read-only
            array.flags.writeable = False
            object.__setattr__(self, "array", array)
        if array.shape != (NUM_PERM,):
            raise ValueError(f"a signature has {NUM_PERM} values, not shape {array.shape}")
        # Only an empty text's first value is _EMPTY (a real hash is below the prime).
        object.__setattr__(self, "empty", int(array[0]) == _EMPTY and bool((array == _EMPTY).all()))

    @property
    def signature(self) -> tuple[int, ...]:
        """The signature's values as Python ints."""
        return tuple(self.array.tolist())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TextFingerprint):
            return NotImplemented
        return self.terms == other.terms and bool(np.array_equal(self.array, other.array))

    def __hash__(self) -> int:
        return hash((self.array.tobytes(), self.terms))

    def to_bytes(self) -> bytes:
        """Serialize compactly: version, signature as little-endian uint32, sorted terms."""
        terms = "\x1f".join(sorted(self.terms)).encode()
        header = struct.pack("<BB", _FORMAT_VERSION, len(self.array))
        return header + self.array.astype("<u4").tobytes() + terms

    @classmethod
    def from_bytes(cls, data: bytes) -> TextFingerprint:
        """Rebuild a fingerprint stored by to_bytes; ValueError on a foreign or broken blob."""
        if len(data) < 2:
            raise ValueError("fingerprint blob too short")
        version, count = struct.unpack_from("<BB", data)
        if version != _FORMAT_VERSION or count != NUM_PERM or len(data) < 2 + 4 * count:
            raise ValueError(f"unsupported fingerprint blob (version {version}, {count} values)")
        raw_terms = data[2 + 4 * count :].decode()
        terms = frozenset(raw_terms.split("\x1f")) if raw_terms else frozenset()
        array = np.frombuffer(data, dtype="<u4", count=count, offset=2).astype(np.uint32)
        array.flags.writeable = False
        return cls(array, terms)


_EMPTY_SIGNATURE = np.full(NUM_PERM, _EMPTY, dtype=np.uint32)
_EMPTY_SIGNATURE.flags.writeable = False


@lru_cache(maxsize=131_072)
def _shingle_hash(shingle: str) -> int:
    """A stable 32-bit hash of one shingle (words recur across items: computed once each)."""
    return int.from_bytes(hashlib.blake2b(shingle.encode(), digest_size=4).digest(), "little")


def text_fingerprint(title: str, summary: str) -> TextFingerprint:
    """Fingerprint an item's text so reports of the same story can be found and compared."""
    title_words, summary_words = words(title), words(summary)
    shingle_set = shingles_of(title_words, summary_words)
    all_terms = key_terms_of(title, summary, title_words, summary_words)
    if not shingle_set:
        return TextFingerprint(_EMPTY_SIGNATURE, all_terms)
    base = np.fromiter(map(_shingle_hash, shingle_set), dtype=np.uint64, count=len(shingle_set))
    minima = _minhash(base).astype(np.uint32)
    minima.flags.writeable = False
    terms = sorted(all_terms)[:_MAX_TERMS]
    return TextFingerprint(minima, frozenset(terms))


# numpy lets go of the GIL for an operation over more than 500 elements, and the writer, which
# shares the process with the fetch threads, then waits to get it back: a minhash of 40
# shingles (40 x 64 values at once) took 16 us alone and 700 us beside three busy threads.
# So the hot paths work in blocks of at most 500 values, which keep the GIL: about twice the
# CPU, a fraction of the wall time.
_GIL_BLOCK = 500 // NUM_PERM  # signatures' rows per numpy operation
_PRIME_U64 = np.uint64(_PRIME)


def _minhash(base: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """The minimum of (a * x + b) mod p over the shingle hashes x, for each permutation."""
    minima = _block_minima(base[:_GIL_BLOCK])
    for start in range(_GIL_BLOCK, len(base), _GIL_BLOCK):
        np.minimum(minima, _block_minima(base[start : start + _GIL_BLOCK]), out=minima)
    return minima


def _block_minima(base: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    block = np.multiply.outer(base, _A)
    block += _B
    block %= _PRIME_U64
    minima: npt.NDArray[np.uint64] = block.min(axis=0)
    return minima


def band_keys(fp: TextFingerprint) -> list[str]:
    """LSH keys ('band:hash'): texts with Jaccard s share at least one with p = 1-(1-s^4)^16."""
    if fp.empty:
        return []  # every empty text would collide with every other
    # The signature's little-endian bytes, as struct.pack("<4I") packs each band's rows.
    packed = np.asarray(fp.array, dtype="<u4").tobytes()
    width = 4 * ROWS_PER_BAND
    blake2b = hashlib.blake2b
    return [
        label + blake2b(packed[start : start + width], digest_size=6).hexdigest()
        for label, start in zip(_BAND_LABELS, range(0, len(packed), width), strict=True)
    ]


_BAND_LABELS = [f"{band:02d}:" for band in range(BANDS)]


def similarity(a: TextFingerprint, b: TextFingerprint) -> float:
    """Estimate the Jaccard similarity of two texts' shingle sets (0 when either is empty)."""
    return similarities(a, [b])[0]


def similarities(item: TextFingerprint, others: Sequence[TextFingerprint]) -> list[float]:
    """`similarity` of one text to each of many, in one array operation."""
    if item.empty or not others:
        return [0.0] * len(others)
    signatures = np.stack([other.array for other in others])  # a copy: keeps the GIL
    same: list[int] = []
    for start in range(0, len(others), _GIL_BLOCK):  # comparisons that keep it (_GIL_BLOCK)
        same += (signatures[start : start + _GIL_BLOCK] == item.array).sum(axis=1).tolist()
    return [
        0.0 if other.empty else count / NUM_PERM for other, count in zip(others, same, strict=True)
    ]


def merge_fingerprints(event: TextFingerprint, item: TextFingerprint) -> TextFingerprint:
    """Carry an event forward: the newest text (follow-ups resemble it) plus the event's terms."""
    terms = sorted(event.terms) + sorted(item.terms - event.terms)
    return TextFingerprint(item.array, frozenset(terms[:_MAX_TERMS]))
