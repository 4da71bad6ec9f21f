"""Build monitor/classify/data/country_names.yaml: each state's name in many languages.

The names are CLDR's, as published per locale by the public repository
`umpirsky/country-list` (MIT licence; `data/<locale>/country.json`). Country names are data,
not anyone's prose. Only the states the hand-written gazetteer knows are kept; English is
left to the gazetteer (its names were chosen against English ordinary news).

    python data/gazetteer/country_names.py /path/to/country-list [--out FILE]

Inflecting languages name a state in many forms ("Россия", "в России", "Türkiye'de",
"Azərbaycanda"): for those, forms are added by rules of thumb (a wildcard on long stems,
the common case endings of short Slavic names), kept short of stems that are other words.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
GAZETTEER = ROOT / "monitor" / "classify" / "data" / "gazetteer.yaml"
OUT = ROOT / "monitor" / "classify" / "data" / "country_names.yaml"

# Locales read (CLDR code -> language): the languages of the press watched; English is the
# gazetteer's. Each name costs compile time when the rules load, so the list stays short.
LOCALES = {
    "ru": "ru",
    "uk": "uk",
    "be": "be",
    "kk": "kk",
    "ky": "ky",
    "uz_Latn": "uz",
    "uz_Cyrl": "uz",
    "az_Latn": "az",
    "tr": "tr",
    "hy": "hy",
    "ka": "ka",
    "ar": "ar",
    "fa": "fa",
    "ps": "ps",
    "ur": "ur",
    "ku": "ku",
    "he": "he",
    "zh_Hans": "zh",
    "zh_Hant": "zh",
    "ja": "ja",
    "ko": "ko",
    "vi": "vi",
    "th": "th",
    "lo": "lo",
    "km": "km",
    "my": "my",
    "id": "id",
    "ms": "ms",
    "es": "es",
    "pt": "pt",
    "fr": "fr",
    "de": "de",
    "it": "it",
    "nl": "nl",
    "pl": "pl",
    "ro": "ro",
    "el": "el",
    "hi": "hi",
    "bn": "bn",
    "ne": "ne",
    "si": "si",
    "ta": "ta",
    "am": "am",
    "sw": "sw",
    "ha": "ha",
    "so": "so",
}
# Languages whose names take case endings or suffixes written onto the word.
SLAVIC = {"ru", "uk", "be", "pl"}
AGGLUTINATIVE = {"tr", "az", "kk", "ky", "uz"}
# Names that are also everyday words in some language (Turkish "mali" = financial, Polish
# "mali" = small, "chad", "jordan" as given names...): a state is not named by them alone.
AMBIGUOUS = {
    "mali",
    "chad",
    "čad",
    "jordan",
    "georgia",
    "guinea",
    "togo",
    "niger",
    "peru",
    "oman",
    "samoa",
    "tonga",
    "nauru",
    "dominica",
    "kuba",
    "chile",
    "kongo",
    "congo",
    "cuba",
    "malta",
    "benin",
    "gabon",
    "iran",
    "china",
    "india",
    "japan",
    "korea",
    "israel",
}
_VOWEL_END = re.compile(r"[aeiouyıəаяеиоуыьйэюєії]$")
_SLAVIC_A = ("ы", "е", "у", "ой", "и", "ю", "і")
_SLAVIC_CONSONANT = ("а", "е", "у", "ом", "і")
_WHOLE_WORDS = re.compile(r"[a-z0-9\u00c0-\u024f\u1e00-\u1eff\u0400-\u04ff]")
_CJK = re.compile(
    r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff]"
)


def _forms(name: str, language: str) -> list[str]:
    """The name as written, and the inflected forms worth matching."""
    name = " ".join(name.lower().replace("\u2019", "'").split())
    words = name.split(" ")
    last = words[-1]
    head = " ".join(words[:-1] + [""])
    forms = [name]
    latin = last.isascii() or not re.search("[а-яёіїєў]", last)
    if language in SLAVIC and latin and len(last) >= 6 and last.isalpha():
        # Polish: the stem without its final vowel ("polsk*": Polski, Polsce is lost). Shorter
        # stems would be English words too ("chin*" finds "chinese").
        forms.append(head + (last[:-1] if _VOWEL_END.search(last) else last) + "*")
    elif language in SLAVIC and latin and len(last) >= 4 and last.endswith("a"):
        forms += [head + last[:-1] + ending for ending in ("i", "ę", "ą", "y", "ie")]
    elif language in SLAVIC and len(last) >= 4 and last.isalpha():
        if len(last) >= 7:
            forms.append(head + (last[:-1] if _VOWEL_END.search(last) else last) + "*")
        elif last[-1] in "ая":
            forms += [head + last[:-1] + ending for ending in _SLAVIC_A]
        elif not _VOWEL_END.search(last):
            forms += [head + last + ending for ending in _SLAVIC_CONSONANT]
    elif language in AGGLUTINATIVE and len(last) >= 5 and last.isalpha():
        forms.append(head + last + "*")
    elif language == "de" and last.isalpha() and not last.endswith("s"):
        forms.append(head + last + "s")
    return forms


def _read_locale(repo: Path, locale: str) -> dict[str, str]:
    """Code -> name of one locale, from a checkout or a bare mirror of the repository."""
    relative = f"data/{locale}/country.json"
    if (repo / relative).is_file():
        text = (repo / relative).read_text(encoding="utf-8")
    else:
        text = subprocess.run(
            ["git", "-C", str(repo), "show", f"HEAD:{relative}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    names: dict[str, str] = json.loads(text)
    return names


def build(repo: Path) -> dict[str, list[str]]:
    """Code -> sorted names and forms, for the gazetteer's states."""
    known = yaml.safe_load(GAZETTEER.read_text(encoding="utf-8"))["countries"]
    names: dict[str, set[str]] = {code: set() for code in known if code != "EU"}
    # A term the hand-written gazetteer already has keeps its kind there ("chinese" is a
    # demonym in English even if another language names the state so).
    placed = {str(t).lower() for entry in known.values() for terms in entry.values() for t in terms}
    per_locale: dict[str, dict[str, str]] = {}
    for locale, language in LOCALES.items():
        table = {code: n for code, n in _read_locale(repo, locale).items() if code in names}
        per_locale[locale] = table
        written_together = [n.lower() for n in table.values() if _CJK.search(n)]
        for code, name in table.items():
            name = re.sub(r"\s*[(（].*?[)）]\s*", " ", name).strip()  # "Congo (Kinshasa)"
            plain = name.lower()
            # Short names in scripts matched as whole words are too often other words or
            # names ("sin", "đức"); the hand-written gazetteer has the ones worth keeping.
            if plain in AMBIGUOUS or (len(plain) < 5 and _WHOLE_WORDS.match(plain)):
                continue
            # Written without spaces, a name inside another's is found there too ("马里"
            # in "索马里"): such a name is left to the hand-written gazetteer.
            if _CJK.search(plain) and any(plain != o and plain in o for o in written_together):
                continue
            names[code].update(f for f in _forms(name, language) if f not in placed)
    return {code: sorted(forms) for code, forms in sorted(names.items()) if forms}


def main() -> None:
    """Write the names file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("repo", type=Path, help="checkout or git mirror of umpirsky/country-list")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    countries = build(args.repo)
    header = (
        "# Generated by data/gazetteer/country_names.py: do not edit by hand.\n"
        "# State names in many languages, from CLDR as published by umpirsky/country-list\n"
        "# (MIT licence). They count as gazetteer names (kind n) of each state.\n"
    )
    body = yaml.safe_dump(
        {"version": 1, "countries": {c: {"n": n} for c, n in countries.items()}},
        allow_unicode=True,
        sort_keys=True,
        width=100,
        default_flow_style=None,
    )
    args.out.write_text(header + body, encoding="utf-8")
    total = sum(len(n) for n in countries.values())
    print(f"{total} names of {len(countries)} states -> {args.out}")


if __name__ == "__main__":
    main()
