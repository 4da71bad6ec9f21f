"""Country of the acting state, and the stage of the measure, from wording."""

from __future__ import annotations

import pytest

from monitor.classify.country import guess_country
from monitor.classify.rules import RuleSet, analyze, load_rules
from monitor.classify.stage import stage_scores
from monitor.domain import Stage


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules()


@pytest.mark.parametrize(
    ("title", "summary", "expected"),
    [
        ("Nepal bans dozens of Chinese gaming apps", "The list includes apps from China.", "NP"),
        ("Roskomnadzor restricts a messaging app", "", "RU"),
        ("Pakistani regulator suspends mobile data in two provinces", "", "PK"),
        ("Cục Viễn thông yêu cầu chặn ứng dụng", "", "VN"),
        ("Telegram blocked after Kenyan exam leaks", "Kenya's regulator confirmed.", "KE"),
        ("مجلس الوزراء يوجه بقطع الإنترنت في العراق", "", "IQ"),
    ],
)
def test_country_prefers_the_state_that_acts(
    rules: RuleSet, title: str, summary: str, expected: str
) -> None:
    assert guess_country(rules, analyze(rules, title, summary), None).code == expected


def test_country_falls_back_to_the_feed(rules: RuleSet) -> None:
    evidence = analyze(rules, "Ministry orders telecom operators to block a video app", "")
    assert guess_country(rules, evidence, "la").code == "LA"
    assert guess_country(rules, evidence, None).code is None


@pytest.mark.parametrize(
    ("title", "language", "expected"),
    [
        ("Ministerstwo nakazuje operatorom blokować komunikator", "pl", "PL"),
        ("Ministerie wil sociale media blokkeren", "nl-NL", "NL"),
        # Kazakh in Latin letters shares ğ and ı with Turkish: the language decides.
        ("Mınıstrlık ğalamtordı şekteýdı", "kk", "KZ"),
        # Spoken by many states' press: no guess from the language alone.
        ("El ministerio ordena bloquear la aplicación de mensajería", "es", None),
        ("Ministry orders operators to block the messaging app", "en-US", None),
    ],
)
def test_a_text_naming_no_state_falls_back_to_a_one_state_language(
    rules: RuleSet, title: str, language: str, expected: str | None
) -> None:
    evidence = analyze(rules, title, "")
    guess = guess_country(rules, evidence, None, language)
    assert guess.code == expected
    if expected:
        assert "from the language" in guess.reason
    # The feed's own country still comes first, and a named state before either.
    assert guess_country(rules, evidence, "la", language).code == "LA"
    named = analyze(rules, title + " w Rosji, Roskomnadzor", "")
    assert guess_country(rules, named, None, "pl").code == "RU"


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Ministry publishes draft decree requiring account verification", Stage.PROPOSED),
        ("Country threatens to block video platform", Stage.PROPOSED),
        ("President signs law on online platforms", Stage.ENACTED),
        ("Regulator ordered operators to block the app from Monday", Stage.ENACTED),
        ("Mobile internet cut off for a third day", Stage.ENFORCED),
        ("New platform licensing rules took effect on Friday", Stage.ENFORCED),
        ("Access to the encyclopedia restored after two-year block", Stage.LIFTED),
        ("Government denies plan to ban social media", Stage.LIFTED),
        ("Tòa án yêu cầu khôi phục internet", Stage.LIFTED),
        # Wording classes across languages. Penalties applied under a law in force are its
        # enforcement.
        ("Court fines messaging app for refusing to delete posts", Stage.ENFORCED),
        ("Parliament passes bill on online platforms", Stage.ENACTED),
        ("Government withdraws the social media bill", Stage.LIFTED),
        ("Internet is back in the capital after a week", Stage.LIFTED),
        ("Роскомнадзор снял ограничения с мессенджера", Stage.LIFTED),
        ("Die Regierung will Messenger verbieten", Stage.PROPOSED),
        ("Le gouvernement veut interdire le réseau social", Stage.PROPOSED),
        ("Kementerian berencana memblokir aplikasi", Stage.PROPOSED),
    ],
)
def test_stage_from_wording(rules: RuleSet, title: str, expected: Stage) -> None:
    assert stage_scores(rules, analyze(rules, title, "")).stage is expected


def test_a_stage_word_inside_a_longer_one_counts_once(rules: RuleSet) -> None:
    guess = stage_scores(rules, analyze(rules, "Operator says the app will be blocked", ""))
    assert guess.stage is Stage.ENACTED
    assert guess.cues == ("will be blocked->enacted",)


@pytest.mark.parametrize(
    ("title", "expected", "governed"),
    [
        ("Minister threatens to shut down the internet", Stage.PROPOSED, "shut down"),
        ("Regulator has no intention to shut down the internet", Stage.LIFTED, "shut down"),
    ],
)
def test_action_words_after_intent_or_reversal_do_not_count(
    rules: RuleSet, title: str, expected: Stage, governed: str
) -> None:
    guess = stage_scores(rules, analyze(rules, title, ""))
    assert guess.stage is expected
    assert not any(cue.startswith(governed) for cue in guess.cues)


def test_intent_does_not_reach_past_the_clause(rules: RuleSet) -> None:
    evidence = analyze(rules, "Ministry plans talks. Mobile internet cut off", "")
    assert any(cue.startswith("cut off") for cue in stage_scores(rules, evidence).cues)


def test_stage_without_cues_is_enforced(rules: RuleSet) -> None:
    assert stage_scores(rules, analyze(rules, "Quiet day", "")).stage is Stage.ENFORCED


@pytest.mark.parametrize(
    ("title", "hidden"),
    [
        # A short Arabic-script name or stage word inside an everyday word is not that term.
        ("حکومت نے انٹرنیٹ سروس فراہم کرنے والی کمپنیوں کو راضی کرلیا", "روس"),  # service
        ("مشروع شامل للإنترنت", "شام"),  # comprehensive
        ("حجب موقع إخباري", "وقع"),  # website
        ("الحكومة السودانية تقطع الإنترنت", "سود"),  # Sudanese
    ],
)
def test_short_arabic_script_terms_do_not_match_inside_words(
    rules: RuleSet, title: str, hidden: str
) -> None:
    assert hidden not in analyze(rules, title, "").terms()


def test_short_arabic_script_names_still_match_as_words(rules: RuleSet) -> None:
    evidence = analyze(rules, "روس میں ٹیلیگرام پر پابندی", "")
    assert guess_country(rules, evidence, None).code == "RU"
    # Actions keep matching with their attached particles and suffixes.
    assert "حجب" in analyze(rules, "السلطات حجبت الموقع", "").terms()


def test_short_arabic_script_names_keep_their_attached_particles(rules: RuleSet) -> None:
    evidence = analyze(rules, "السلطات بمصر تحجب الموقع", "")  # "in Egypt"
    assert guess_country(rules, evidence, None).code == "EG"
