"""The evidence quote: the item's own sentence that shows the measure, its words marked."""

from __future__ import annotations

from monitor.alerts.quote import MAX_QUOTE_CHARS, evidence_quote


def _marked(text: str, marks: tuple[tuple[int, int], ...]) -> list[str]:
    return [text[a:b] for a, b in marks]


def test_the_summary_sentence_with_most_terms_is_chosen() -> None:
    quote = evidence_quote(
        "Vietnam acts on Telegram",
        "The weather was fine. The ministry ordered operators to block Telegram within 24 "
        "hours. Users were surprised.",
        ["ministry", "ordered", "block", "telegram"],
    )
    assert quote.text == "The ministry ordered operators to block Telegram within 24 hours."
    assert _marked(quote.text, quote.marks) == ["ministry", "ordered", "block", "Telegram"]
    assert not quote.from_title


def test_the_headline_when_the_summary_holds_fewer_terms() -> None:
    quote = evidence_quote("Vietnam orders Telegram blocked", "Reactions were mixed.",
                           ["orders", "telegram", "blocked"])  # fmt: skip
    assert quote.from_title and quote.text == "Vietnam orders Telegram blocked"
    assert _marked(quote.text, quote.marks) == ["orders", "Telegram", "blocked"]


def test_wildcards_and_whole_words() -> None:
    quote = evidence_quote("Officials blocked Xbox", "", ["block*", "x"])
    assert _marked(quote.text, quote.marks) == ["blocked"]  # no "x" inside "Xbox"


def test_long_sentences_are_clipped_around_the_marks() -> None:
    summary = "Filler words " * 40 + "the regulator blocked Telegram today " + "more " * 60
    quote = evidence_quote("Headline", summary, ["regulator", "blocked", "telegram"])
    assert len(quote.text) <= MAX_QUOTE_CHARS + 2
    assert _marked(quote.text, quote.marks) == ["regulator", "blocked", "Telegram"]


def test_non_latin_scripts() -> None:
    quote = evidence_quote("Роскомнадзор заблокировал Telegram", "", ["заблокир*", "telegram"])
    assert _marked(quote.text, quote.marks) == ["заблокировал", "Telegram"]
