"""Rules: one-pass term matching, actor-action-object proximity, negative contexts."""

from __future__ import annotations

import pytest

from monitor.classify.matcher import TermMatcher
from monitor.classify.rules import RuleSet, analyze, load_rules
from monitor.domain import Category


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules()


def test_matcher_finds_overlapping_terms_in_one_pass() -> None:
    matcher = TermMatcher(
        {"internet": {"object"}, "internet shutdown*": {"phrase"}, "shutdown*": {"cut"}}
    )
    hits = matcher.find("an internet shutdowns report")
    assert [(h.term, h.start, h.end) for h in hits] == [
        ("internet shutdown*", 3, 21),
        ("shutdown*", 12, 21),
    ]
    # the shorter "internet" hidden by the longer term keeps its role
    assert hits[0].roles == {"phrase", "object"}


def test_matcher_whole_words_for_latin_and_substrings_for_other_scripts() -> None:
    matcher = TermMatcher({"ban": {"a"}, "قطع": {"b"}, "断网": {"c"}, "licen_e": {"d"}})
    found = [h.term for h in matcher.find("banner bans ban; بقطع; 全省断网; license licence")]
    assert found == ["ban", "قطع", "断网", "licen_e", "licen_e"]


def test_matcher_treats_space_as_space_or_hyphen() -> None:
    matcher = TermMatcher({"real name": {"x"}})
    assert len(matcher.find("a real-name rule and a real name rule")) == 2


@pytest.mark.parametrize(
    ("title", "category"),
    [
        ("Regulator orders operators to block Signal app and two news websites", "platform_block"),
        ("Authorities cut mobile internet in the north during protests", "shutdown"),
        ("Ministry bans the sale of VPN services without a permit", "vpn_restriction"),
        ("Regulator: users must verify accounts with a phone number", "identity_verification"),
        ("Court orders platforms to remove posts within 24 hours", "content_takedown"),
        ("Parliament passes bill forcing apps to store data locally", "data_localization"),
        ("Watchdog says it has slowed down the video platform", "throttling"),
        ("Chính phủ yêu cầu chặn ứng dụng nhắn tin", "platform_block"),
        (
            "Bộ Thông tin và Truyền thông yêu cầu xác thực tài khoản bằng số điện thoại",
            "identity_verification",
        ),
        ("Власти заблокировали мессенджер", "platform_block"),
        ("الحكومة تقرر قطع الإنترنت أثناء الامتحانات", "shutdown"),
        ("网信办要求平台实名认证", "identity_verification"),
    ],
)
def test_measures_are_recognised_in_several_languages(
    rules: RuleSet, title: str, category: str
) -> None:
    evidence = analyze(rules, title, "")
    assert Category(category) in evidence.categories
    assert evidence.categories[Category(category)].actor


@pytest.mark.parametrize(
    ("title", "negative"),
    [
        ("Government shutdown looms as senators fail to agree spending bill", "budget_shutdown"),
        ("Undersea cable cut slows internet across the region", "physical_outage"),
        ("Telecom giant says hackers stole customer data in breach", "breach"),
        ("Video app removes fake accounts under its community guidelines", "own_moderation"),
        ("Shares of the social network fall after weak quarterly earnings", "business"),
        ("City council votes to ban smoking in parks", "non_internet_ban"),
    ],
)
def test_negative_contexts_are_reported(rules: RuleSet, title: str, negative: str) -> None:
    assert negative in analyze(rules, title, "").negatives


def test_budget_shutdown_is_not_an_internet_shutdown(rules: RuleSet) -> None:
    evidence = analyze(rules, "Federal government shutdown enters its third week", "")
    assert Category.SHUTDOWN not in evidence.categories


def test_terms_apart_in_title_and_summary_do_not_pair(rules: RuleSet) -> None:
    evidence = analyze(rules, "Officials blocked the road", "A new internet cafe opened nearby.")
    assert Category.SHUTDOWN not in evidence.categories
    assert Category.PLATFORM_BLOCK not in evidence.categories


def test_rules_have_a_stable_digest(rules: RuleSet) -> None:
    assert rules.digest == load_rules().digest
    assert rules.matcher.size > 1000


def test_matcher_cache_gives_the_same_hits_as_a_fresh_matcher(rules: RuleSet) -> None:
    # Spans are identified through a cache keyed by the span and its neighbours; the same
    # span with other neighbours must still get the term the full expression gives there.
    texts = [
        "internet shutdown ordered; the internet-shutdowns continue",
        "blocked access to the app, blocked",
        "xinternet shutdown and internet shutdownx",
        "Chính phủ yêu cầu chặn ứng dụng; chặn",
        "全省断网，断网",
    ]
    warm = rules.matcher
    for text in texts * 2:
        fresh = load_rules().matcher
        assert warm.find(text) == fresh.find(text)


@pytest.mark.parametrize(
    ("title", "state", "platform"),
    [
        ("Turkey blocks access to Wikipedia", True, False),
        ("Regulator orders Telegram blocked", True, False),
        ("Meta bans accounts linked to a troll farm", False, True),
        ("Netflix suspends its service in Russia", False, True),
        ("Bakery wins a prize", False, False),
        # The platform before the action is what is acted on: a passive, a noun compound.
        ("Access to Twitter is slowed in Russia", False, False),
        ("X was blocked across the country", False, False),
        ("Protest at the government's TikTok ban", True, False),
        # ... but a progressive or a possessive names the platform as the actor.
        ("Meta is restricting news links in Canada", False, True),
        ("Facebook's suspension of Trump upheld by board", False, True),
    ],
)
def test_who_acts_tells_a_state_order_from_a_platform_decision(
    rules: RuleSet, title: str, state: bool, platform: bool
) -> None:
    evidence = analyze(rules, title, "")
    assert (evidence.actor_acts, evidence.platform_acts) == (state, platform)
