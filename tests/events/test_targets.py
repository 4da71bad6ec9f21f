"""Targets: what a measure acts on, read from the text whatever its wording or language."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
import yaml

from monitor.errors import ModelError
from monitor.events.targets import KINDS, TargetReader, TargetSet, agree, load_targets, target_label

READER = load_targets()
ZW = "\u200c"  # Persian writes compounds with a zero-width non-joiner


@pytest.mark.parametrize(
    ("title", "categories", "expected"),
    [
        ("Pakistan blocks access to X nationwide", ["platform_block"], ["platform:x"]),
        ("X inaccessible across Pakistan after government order", ["platform_block"],
         ["platform:x"]),
        ("Twitter restricted in Turkey after the quake", ["throttling"], ["platform:x"]),
        ("Россия замедляет YouTube", ["throttling"], ["platform:youtube"]),
        ("伊朗封锁微信和抖音", ["platform_block"], ["platform:douyin", "platform:wechat"]),
        ("Vietnam threatens to shut down Facebook", ["platform_block"], ["platform:facebook"]),
        ("Bangladesh blocks social media before the vote", ["platform_block"],
         ["platforms:social-media"]),
        ("Laos orders operators to cut foreign internet connections", ["shutdown"],
         ["network:internet"]),
        ("India suspends mobile internet in Manipur", ["shutdown"],
         ["network:internet", "network:mobile-data", "region:manipur"]),
        ("Russia bans VPN services", ["vpn_restriction"], ["tool:vpn"]),
        ("Nigeria requires SIM card registration for all accounts", ["identity_verification"],
         ["accounts:accounts"]),
        # The letter X in set phrases is no platform; a law names no target of its own.
        ("Generation X voters back new media law", ["platform_regulation"], []),
        ("Throttling of Telegram reported on the internet in Iran", ["throttling"],
         ["platform:telegram"]),
        # Other languages and scripts: local spellings, inflected forms, regions.
        # ru/uk: inflected forms
        ("Роскомнадзор ограничил доступ к Ютубу и Телеграму", ["platform_block"],
         ["platform:telegram", "platform:youtube"]),
        ("Власти продвигают национальный мессенджер Max", ["platform_regulation"],
         ["platform:max"]),
        ("В Дагестане отключили мобильный интернет", ["shutdown"],
         ["network:internet", "network:mobile-data", "region:dagestan"]),
        ("У Криму зник мобільний інтернет", ["shutdown"],
         ["network:internet", "network:mobile-data", "region:crimea"]),
        ("Госдума обязала привязывать аккаунты к Госуслугам", ["identity_verification"],
         ["accounts:accounts"]),
        ("Роскомнадзор заблокировал Tor", ["vpn_restriction"], ["tool:tor"]),
        # ar, fa, ur, ps, ku
        ("السلطات تحجب تيليجرام وواتساب", ["platform_block"],
         ["platform:telegram", "platform:whatsapp"]),
        ("قطع الإنترنت في إدلب بسبب المظاهرات", ["shutdown"], ["network:internet", "region:idlib"]),
        (f"فیلترینگ اینستاگرام و واتس{ZW}اپ ادامه دارد", ["platform_block"],
         ["platform:instagram", "platform:whatsapp"]),
        ("قطع اینترنت همراه در خوزستان", ["shutdown"],
         ["network:internet", "network:mobile-data", "region:khuzestan"]),
        ("ممنوعیت فروش فیلترشکن", ["vpn_restriction"], ["tool:vpn"]),
        ("بلوچستان میں موبائل انٹرنیٹ سروس معطل", ["shutdown"],
         ["network:internet", "network:mobile-data", "region:balochistan"]),
        ("پی ٹی اے نے ٹک ٹاک اور یوٹیوب بند کر دیا", ["platform_block"],
         ["platform:tiktok", "platform:youtube"]),
        ("طالبانو ټیک ټاک بند کړ", ["platform_block"], ["platform:tiktok"]),
        ("هەرێمی کوردستان ئینتەرنێتی بڕی", ["shutdown"],
         ["network:internet", "region:kurdistan region"]),
        ("Tirkiyê torên civakî asteng kirin", ["platform_block"], ["platforms:social-media"]),
        # hi, ne, bn, ta, si
        ("मणिपुर में मोबाइल इंटरनेट सेवा निलंबित", ["shutdown"],
         ["network:internet", "network:mobile-data", "region:manipur"]),
        ("नेपालमा टिकटक प्रतिबन्ध", ["platform_block"], ["platform:tiktok"]),
        ("বাংলাদেশে ফেসবুক ও টেলিগ্রাম বন্ধ", ["platform_block"],
         ["platform:facebook", "platform:telegram"]),
        ("இலங்கையில் வாட்ஸ்அப் முடக்கம்", ["platform_block"], ["platform:whatsapp"]),
        ("ශ්‍රී ලංකාවේ ෆේස්බුක් අවහිර කරයි", ["platform_block"], ["platform:facebook"]),
        # zh, ja, ko
        ("俄罗斯限制电报和油管", ["throttling"], ["platform:telegram", "platform:youtube"]),
        ("香港封鎖電報，臉書也受影響", ["platform_block"],
         ["platform:facebook", "platform:telegram"]),
        ("中国打击翻墙软件", ["vpn_restriction"], ["tool:vpn"]),
        ("ロシア、テレグラムへのアクセスを制限", ["platform_block"], ["platform:telegram"]),
        ("정부, 텔레그램 차단 검토", ["platform_block"], ["platform:telegram"]),
        # th, my, km, lo
        ("กสทช. สั่งบล็อกเทเลแกรม", ["platform_block"], ["platform:telegram"]),
        ("ข่าวออนไลน์: รัฐบาลปิดกั้นเฟซบุ๊ก", ["platform_block"], ["platform:facebook"]),
        ("ရခိုင်ပြည်နယ်တွင် အင်တာနက် ဖြတ်တောက်", ["shutdown"],
         ["network:internet", "region:rakhine"]),
        ("စစ်ကောင်စီက ဖေ့စ်ဘွတ်ခ်ကို ပိတ်ဆို့", ["platform_block"], ["platform:facebook"]),
        ("កម្ពុជាបិទតេឡេក្រាម", ["platform_block"], ["platform:telegram"]),
        ("ລາວຈຳກັດເຟສບຸກ", ["platform_block"], ["platform:facebook"]),
        # vi, id, tr
        ("Việt Nam yêu cầu chặn Telegram", ["platform_block"], ["platform:telegram"]),
        ("Xác thực tài khoản mạng xã hội bằng số điện thoại", ["identity_verification"],
         ["accounts:accounts"]),
        ("Pemerintah memutus internet seluler di Papua", ["shutdown"],
         ["network:internet", "network:mobile-data", "region:papua"]),
        ("BTK, Instagram'a erişim engeli getirdi", ["platform_block"], ["platform:instagram"]),
        ("Türkiye'de Twitter’ın bant genişliği daraltıldı", ["throttling"], ["platform:x"]),
        # de, es, fr, pt, it, pl
        ("Türkei sperrt soziale Netzwerke", ["platform_block"], ["platforms:social-media"]),
        ("Cortes de internet móvil en el estado Zulia", ["shutdown"],
         ["network:internet", "network:mobile-data", "region:zulia"]),
        ("Le Cameroun coupe internet dans les régions anglophones", ["shutdown"],
         ["network:internet", "region:anglophone regions"]),
        ("Brasil bloqueia o X e a plataforma Rumble", ["platform_block"],
         ["platform:rumble", "platform:x"]),
        ("Garante privacy blocca DeepSeek", ["platform_block"], ["platform:deepseek"]),
        ("Rosja blokuje komunikatory internetowe", ["platform_block"], ["platforms:social-media"]),
        # sw, ha, am
        ("Serikali yazima mitandao ya kijamii", ["platform_block"], ["platforms:social-media"]),
        ("Mamlaka yazima intaneti Zanzibar", ["shutdown"], ["network:internet", "region:zanzibar"]),
        ("Gwamnati ta rufe shafukan sada zumunta", ["platform_block"], ["platforms:social-media"]),
        ("በአማራ ክልል የኢንተርኔት አገልግሎት ተቋርጧል", ["shutdown"], ["network:internet", "region:amhara"]),
        # he, ka, hy
        ("איראן חסמה את טלגרם ואת אינסטגרם", ["platform_block"],
         ["platform:instagram", "platform:telegram"]),
        ("საქართველოში ტიკტოკის დაბლოკვა", ["platform_block"], ["platform:tiktok"]),
        ("Ադրբեջանում արգելափակել են ՏիկՏոկը", ["platform_block"], ["platform:tiktok"]),
        # az, kk, uz, tg, ky
        ("Azərbaycanda sosial şəbəkələr məhdudlaşdırıldı", ["platform_block"],
         ["platforms:social-media"]),
        ("Қазақстанда мобильді интернет өшірілді", ["shutdown"],
         ["network:internet", "network:mobile-data"]),
        ("Qoraqalpogʻistonda internet oʻchirildi", ["shutdown"],
         ["network:internet", "region:karakalpakstan"]),
        ("Дар ВМКБ интернет қатъ шуд", ["shutdown"],
         ["network:internet", "region:gorno badakhshan"]),
        ("Кыргызстанда социалдык тармактар бөгөттөлдү", ["platform_block"],
         ["platforms:social-media"]),
        # Not the platform: a longer word, a set phrase, an ordinary word.
        ("The Daily Telegraph reports a ban on TikTok", ["platform_block"], ["platform:tiktok"]),
        ("Xinhua: officials discuss the new media law", ["platform_regulation"], []),
        ("The party line on media regulation hardens", ["platform_regulation"], []),
        ("Signal strength drops as the storm hits", ["throttling"], []),
        ("Steam rises over a medium-sized plant", ["platform_block"], []),
        ("Одноклассники поздравили учителя", ["platform_block"], []),
        ("정부가 유심히 지켜본다", ["identity_verification"], []),
        ("הפסקת אינטרנט בגלל רוח עזה", ["shutdown"], ["network:internet"]),
        ("Internet shut down as KP Sharma Oli resigns", ["shutdown"], ["network:internet"]),
        ("Torên civakî hatin astengkirin", ["vpn_restriction"], []),
    ],
)  # fmt: skip
def test_targets_read_from_the_text(title: str, categories: list[str], expected: list[str]) -> None:
    assert READER.read(title, "", categories).ids() == expected


def test_an_unrelated_category_does_not_pick_a_network_target() -> None:
    # A platform block whose text says "internet regulator" is about the platform.
    found = READER.read("Internet regulator blocks Telegram", "", ["platform_block"])
    assert found.ids() == ["platform:telegram"]


def test_agreement() -> None:
    x, facebook = TargetSet.from_ids(["platform:x"]), TargetSet.from_ids(["platform:facebook"])
    social = TargetSet.from_ids(["platforms:social-media"])
    internet = TargetSet.from_ids(["network:internet"])
    mobile = TargetSet.from_ids(["network:mobile-data"])
    assert agree(x, x) and not agree(x, facebook)
    assert agree(social, facebook) and agree(x, social)
    assert agree(internet, mobile)  # reports of one cut say either
    assert not agree(internet, x)
    manipur = TargetSet.from_ids(["network:internet", "region:manipur"])
    kashmir = TargetSet.from_ids(["network:internet", "region:kashmir"])
    assert not agree(manipur, kashmir)  # two regions, two cuts
    assert agree(manipur, internet)  # a report naming no region may be about either


def test_labels() -> None:
    assert target_label(READER, ["platform:x", "region:manipur"]) == "X (Twitter) in Manipur"
    assert READER.label("network:mobile-data") == "mobile data"
    assert READER.label("platform:unknown") == "unknown"


def test_a_broken_lexicon_is_refused_with_where(tmp_path: Path) -> None:
    bad = tmp_path / "targets.yaml"
    bad.write_text("targets:\n  x: {kind: planet, terms: [x]}\n", encoding="utf-8")
    with pytest.raises(ModelError, match=r"targets\.x\.kind: 'planet'"):
        load_targets(bad)
    bad.write_text("targets:\n  x: {kind: platform, terms: [twitter, '']}\n", encoding="utf-8")
    with pytest.raises(ModelError, match=r"targets\.x\.terms"):
        load_targets(bad)
    bad.write_text("targets: [\n", encoding="utf-8")
    with pytest.raises(ModelError, match="cannot read"):
        load_targets(bad)
    assert isinstance(READER, TargetReader)


def test_a_region_is_one_region_in_every_language() -> None:
    # Local-script names are synonyms of one region, so reports in two languages agree.
    english = READER.read("Mobile internet cut in Dagestan", "", ["shutdown"])
    russian = READER.read("В Дагестане отключили мобильный интернет", "", ["shutdown"])
    assert english.regions == russian.regions == {"region:dagestan"}
    assert agree(english, russian)
    persian = READER.read("قطع اینترنت در سیستان و بلوچستان", "", ["shutdown"])
    assert "region:sistan and baluchestan" in persian.regions
    assert agree(persian, READER.read("Internet cut in Zahedan", "", ["shutdown"]))


def test_the_packaged_lexicon_is_normalized_text() -> None:
    # Text is NFC and lower case before matching: a term in any other form never matches.
    path = Path(__file__).parents[2] / "monitor" / "events" / "data" / "targets.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    terms = [t for spec in data["targets"].values() for t in spec.get("terms", [])]
    for names in data["regions"].values():
        for entry in names:
            terms.extend(entry if isinstance(entry, list) else [entry])
    assert all(spec["kind"] in KINDS for spec in data["targets"].values())
    odd = [t for t in terms if t != unicodedata.normalize("NFC", t).lower() or t != t.strip()]
    assert odd == []
