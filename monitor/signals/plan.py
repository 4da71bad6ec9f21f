"""Which services can speak to an event, and what to ask them (pure).

Platform blocks go to OONI (its instant-messaging test for the platform, else web
connectivity on the platform's domains); VPN bans to OONI's circumvention tests; shutdowns
to IODA (the region when the event names one IODA knows) and Radar; throttling to Radar and
IODA. Anything else - a law proposed, a data-localisation rule - is not something network
measurements can see: no service is asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.domain import Category, Stage
from monitor.signals.ooni import OoniQuery

REGION_PREFIX = "region:"

# OONI tests per platform: the IM tests where OONI has one, else web connectivity on the
# domains as they appear in the test lists (exact match: list www. and bare forms).
PLATFORM_TESTS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "telegram": ("telegram", (), "Telegram"),
    "whatsapp": ("whatsapp", (), "WhatsApp"),
    "signal": ("signal", (), "Signal"),
    "facebook": ("facebook_messenger", (), "Facebook Messenger"),
    "x": ("web_connectivity", ("twitter.com", "x.com", "abs.twimg.com"), "X (Twitter)"),
    "instagram": ("web_connectivity", ("www.instagram.com", "instagram.com"), "Instagram"),
    "youtube": ("web_connectivity", ("www.youtube.com", "youtube.com"), "YouTube"),
    "tiktok": ("web_connectivity", ("www.tiktok.com", "tiktok.com"), "TikTok"),
    "wikipedia": ("web_connectivity", ("www.wikipedia.org", "en.wikipedia.org"), "Wikipedia"),
    "discord": ("web_connectivity", ("discord.com", "www.discord.com"), "Discord"),
    "viber": ("web_connectivity", ("www.viber.com", "viber.com"), "Viber"),
    "reddit": ("web_connectivity", ("www.reddit.com", "reddit.com"), "Reddit"),
}
TOOL_TESTS: dict[str, tuple[tuple[str, ...], str]] = {
    "vpn": (("psiphon", "tor"), "Psiphon and Tor"),
    "psiphon": (("psiphon",), "Psiphon"),
    "tor": (("tor", "torsf"), "Tor"),
}
# Stages at which a measure could show in measurements ("proposed" has not happened yet).
CHECKED_STAGES = frozenset({Stage.ENACTED, Stage.ENFORCED})
OUTAGE_CATEGORIES = frozenset({Category.SHUTDOWN, Category.THROTTLING})


@dataclass(frozen=True, slots=True)
class EventFacts:
    """What the checker needs of an event (read in a short transaction, used outside it)."""

    id: int
    country: str | None
    categories: tuple[str, ...]
    targets: tuple[str, ...]
    stage: str
    reported_at: datetime  # when the stage was reported: the report the checks are about
    title: str
    status: str = "open"
    max_score: float = 0.0
    item_count: int = 1

    @property
    def region(self) -> str | None:
        names = [t.removeprefix(REGION_PREFIX) for t in self.targets if t.startswith(REGION_PREFIX)]
        return names[0] if len(names) == 1 else None


@dataclass(frozen=True, slots=True)
class Plan:
    """The questions for one event; None where the service cannot speak to it."""

    ooni: OoniQuery | None
    outage: bool  # ask IODA and Radar
    shutdown: bool  # an outage is the claim (absence contradicts), not just throttling

    @property
    def services(self) -> tuple[str, ...]:
        return (*(("ooni",) if self.ooni else ()), *(("ioda", "radar") if self.outage else ()))


def plan_for(event: EventFacts) -> Plan:
    """The services to ask about this event."""
    if not event.country or event.stage not in CHECKED_STAGES or event.status == "dismissed":
        return Plan(None, outage=False, shutdown=False)
    categories = set(event.categories)
    query = None
    if Category.PLATFORM_BLOCK in categories or Category.THROTTLING in categories:
        query = _platform_query(event.country, event.targets)
    if query is None and Category.VPN_RESTRICTION in categories:
        query = _tool_query(event.country, event.targets)
    networks = [t for t in event.targets if t.startswith("network:")]
    shutdown = Category.SHUTDOWN in categories
    # Throttling of one platform is OONI's; throttling of the connection is an outage signal.
    outage = shutdown or (Category.THROTTLING in categories and (bool(networks) or query is None))
    return Plan(query, outage=outage, shutdown=shutdown)


def _platform_query(country: str, targets: Sequence[str]) -> OoniQuery | None:
    for target in targets:
        kind, _, name = target.partition(":")
        if kind == "platform" and name in PLATFORM_TESTS:
            test, domains, label = PLATFORM_TESTS[name]
            return OoniQuery(country, (test,), domains, label)
    return None


def _tool_query(country: str, targets: Sequence[str]) -> OoniQuery | None:
    tools = [t.partition(":")[2] for t in targets if t.startswith("tool:")]
    for name in [*tools, "vpn"]:  # a VPN ban that names no tool: the VPN tests
        if name in TOOL_TESTS:
            tests, label = TOOL_TESTS[name]
            return OoniQuery(country, tests, (), label)
    return None
