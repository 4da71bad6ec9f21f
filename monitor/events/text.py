"""Event text: fold, stem and tokenise item text into shingles and the key terms of a measure.

Pure code, no I/O, imports nothing from monitor. `events` builds MinHash fingerprints from
`shingles()` and keeps `key_terms()` as the evidence two reports share; this module only
decides which words count. Word lists are folded and stemmed once at import, exactly like the
text they are checked against, so 'Việt Nam', 'Viet Nam' and 'viet nam' all agree.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = [
    "GENERIC_TERMS",
    "LEXICON",
    "STOPWORDS",
    "fold",
    "key_terms",
    "key_terms_of",
    "shingles",
    "shingles_of",
    "stem",
    "words",
]

# Function words that say nothing about the story: English, a few Romance, Vietnamese (unaccented).
_STOPWORDS_RAW = """
a an the and or but of to in on at by for from with without into over after before
about as is are was were be been being has have had do does did will would shall should
can could may might must it its this that these those there their they them he she his
her we our you your i not no yes new says said say also than then more most less least
up down out off per via amid against under between during since until while who whom
which what when where why how all any some such very just only other another each both
de la le les des du et en el los las y que di il per un une una
cua va cac nhung da duoc la cho voi trong nay co khong mot nguoi se tai ve theo
"""

# Capitalised words that name no particular measure: countries and demonyms (the country is
# already matched), institutions (also the Vietnamese syllables of ministry and state names),
# calendar words and news agencies. A shared "Vietnam" or
# "Ministry" must not make two different measures look like one.
_GENERIC_TERMS_RAW = """
afghanistan albania algeria angola argentina armenia australia austria azerbaijan bahrain
bangladesh belarus belgium benin bolivia brazil bulgaria burkina faso burundi cambodia cameroon
canada chad chile china colombia congo cuba cyprus czech denmark djibouti ecuador egypt eritrea
ethiopia finland france gabon gambia georgia germany ghana greece guatemala guinea haiti
honduras hungary india indonesia iran iraq ireland israel italy jamaica japan jordan kazakhstan
kenya korea kuwait kyrgyzstan laos latvia lebanon liberia libya lithuania malawi malaysia mali
mauritania mexico moldova mongolia morocco mozambique myanmar burma namibia nepal netherlands
nicaragua niger nigeria oman pakistan palestine panama paraguay peru philippines poland
portugal qatar romania russia rwanda saudi arabia senegal serbia sierra leone somalia sudan
spain sri lanka syria taiwan tajikistan tanzania thailand togo tunisia turkey turkiye
turkmenistan uganda ukraine uae emirates uk britain england usa america uruguay uzbekistan
venezuela vietnam viet nam yemen zambia zimbabwe hong kong macau crimea kashmir tigray gaza
afghan algerian argentine australian belarusian brazilian british burmese cambodian chinese
cuban egyptian ethiopian european french german indian indonesian iranian iraqi israeli
kazakh kenyan korean laotian lao malaysian mexican nigerian pakistani palestinian philippine
filipino russian saudi sudanese syrian tanzanian thai turkish ugandan ukrainian uzbek
venezuelan vietnamese zimbabwean american
government ministry minister president prime parliament authority authorities police court
supreme national state federal council assembly committee commission agency department
office bureau regulator official officials people public republic kingdom union party
democratic socialist islamic united north south east west central city province region
internet online digital information communication communications security cyber cyberspace
telecom telecommunications network mobile data media social platform platforms app apps
isp isps vpn vpns sim id law decree bill act order rule rules regulation
january february march april may june july august september october november december
jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday friday
saturday sunday today yesterday week month year
reuters afp ap bbc cnn xinhua tass news press update updated breaking exclusive report mr ms
bo khoa hoc cong nghe thong tin truyen chinh phu quoc hoi thu tuong an ninh so
"""

# Platforms recognised even in lower case or at a sentence start; names that are also common
# words (Signal, Line, Threads, Meta) are left to the capitalisation heuristic.
_LEXICON_RAW = """
telegram facebook whatsapp tiktok youtube instagram twitter viber wechat weibo zalo google
gmail starlink wikipedia discord snapchat linkedin netflix skype reddit bluesky mastodon psiphon
douyin kakaotalk vkontakte odnoklassniki yandex baidu microsoft openai chatgpt deepseek roblox
"""

_UNSPACED_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x0F00, 0x0FFF),  # Tibetan
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x2FA1F),  # CJK extensions B-F and supplement
)

# Letters that NFKD does not decompose but readers treat as their base letter.
_FOLD_EXTRA = str.maketrans({"đ": "d", "ð": "d", "ø": "o", "ł": "l", "ß": "ss", "æ": "ae"})
_TOKEN_RE = re.compile(r"[^\W_]+")
_SENTENCE_RE = re.compile(r"(?<=[.!?;:])\s+")
_COMPOUND_NUMBER_RE = re.compile(r"\b\d+(?:[/\-.]\d+)+\b")
_YEAR_RE = re.compile(r"(?:19|20)\d\d")
_UNSPACED_RE = re.compile(
    "([" + "".join(f"{chr(low)}-{chr(high)}" for low, high in _UNSPACED_RANGES) + "]+)"
)


def fold(text: str) -> str:
    """Casefold and strip accents, so 'Việt Nam' and 'Viet Nam' give the same words."""
    if text.isascii():  # most feed text: nothing to decompose or strip
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD_EXTRA))
    if decomposed.isascii():
        return decomposed
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=131_072)
def stem(word: str) -> str:
    """Strip common English inflections so 'blocks', 'blocked' and 'blocking' agree."""
    if not word.isascii() or not word.isalpha() or len(word) < 5:
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("ing") and len(word) >= 6:
        return word[:-3]
    if word.endswith("ed"):
        return word[:-2]
    if word.endswith("es") and word[-3] in "sxz":
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    """Split folded text into words, and unspaced-script runs into character bigrams."""
    folded = fold(text)
    if folded.isascii():
        return [stem(token) for token in _TOKEN_RE.findall(folded)]
    out: list[str] = []
    for token in _TOKEN_RE.findall(folded):
        if _UNSPACED_RE.search(token) is None:
            out.append(stem(token))
            continue
        # The capturing split alternates plain parts and unspaced runs (e.g. Chinese + "5G").
        for index, part in enumerate(_UNSPACED_RE.split(token)):
            if not part:
                continue
            if index % 2 == 0:
                out.append(stem(part))
            else:
                # Character bigrams stand in for words where there are no spaces.
                out.extend(
                    part if len(part) == 1 else map("".join, zip(part, part[1:], strict=False))
                )
    return out


def _normalize_set(raw: str) -> frozenset[str]:
    """Fold and stem a whitespace-separated word list once, at import."""
    return frozenset(w for token in raw.split() for w in words(token))


STOPWORDS = _normalize_set(_STOPWORDS_RAW)  # stemmed like the words they are checked against
GENERIC_TERMS = _normalize_set(_GENERIC_TERMS_RAW)
LEXICON = _normalize_set(_LEXICON_RAW)


def shingles(title: str, summary: str) -> set[str]:
    """Content words of title and summary; title words also as '^word' so they weigh double."""
    return shingles_of(words(title), words(summary))


def shingles_of(title_words: list[str], summary_words: list[str]) -> set[str]:
    """`shingles` from words already split (`words`)."""
    head = [w for w in title_words if w not in STOPWORDS]
    body = [w for w in summary_words if w not in STOPWORDS]
    return {*head, *body, *("^" + w for w in head)}


def _is_title_case(title: str) -> bool:
    """Tell whether a headline capitalises most words, which hides which ones are names."""
    long_words = [w for w in title.split() if len(w) >= 4 and w[0].isalpha()]
    capitalised = sum(1 for w in long_words if w[0].isupper())
    return len(long_words) >= 3 and capitalised >= 0.6 * len(long_words)


def _name_like(text: str) -> list[str]:
    """The raw words that look like names: acronyms anywhere, capitalised words away from
    sentence starts (where a capital says nothing)."""
    found: list[str] = []
    for sentence in _SENTENCE_RE.split(text):
        tokens = _TOKEN_RE.findall(sentence)
        if not tokens:
            continue
        first = tokens[0]
        if len(first) >= 2 and first.isupper() and first.isalpha():
            found.append(first)
        found.extend(w for w in tokens[1:] if w[0].isupper())
    return found


@lru_cache(maxsize=65_536)
def _word_forms(word: str) -> tuple[str, ...]:
    """The words one raw token gives (names recur across items: computed once each)."""
    return tuple(words(word))


def key_terms(title: str, summary: str) -> frozenset[str]:
    """Pick the words that identify a measure: names, platforms, acronyms, decree numbers."""
    return key_terms_of(title, summary, words(title), words(summary))


def key_terms_of(
    title: str, summary: str, title_words: list[str], summary_words: list[str]
) -> frozenset[str]:
    """`key_terms`, given the words of title and summary already split (`words`)."""
    terms: set[str] = set()
    for number in _COMPOUND_NUMBER_RE.findall(f"{title} {summary}"):
        terms.add(fold(number).replace(".", "/").replace("-", "/"))
    summary_names: set[str] = set()
    for word in _name_like(summary):
        summary_names.update(_word_forms(word))
    title_case = _is_title_case(title)
    for word in _name_like(title):
        folded = _word_forms(word)
        # In a Title Case headline a capital says nothing; trust it only if the summary agrees.
        if not title_case or word.isupper() or summary_names.issuperset(folded):
            summary_names.update(folded)
    terms.update(LEXICON.intersection(title_words))
    terms.update(LEXICON.intersection(summary_words))
    for word in summary_names:
        if word.isdigit():
            if len(word) >= 3 and not _YEAR_RE.fullmatch(word):
                terms.add(word)
        elif len(word) >= 2 and not _UNSPACED_RE.match(word):
            terms.add(word)
    return frozenset(t for t in terms if t not in GENERIC_TERMS and t not in STOPWORDS)
