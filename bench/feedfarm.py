"""A local feed farm for the benchmarks: many loopback hosts, RSS with ETag/304, faults, a webhook.

`FeedFarm(spec).start()` runs the server as its own process (this file as a script), so the
serving costs no CPU time, GIL or memory in the process being measured. It binds one port on
127.0.0.2 ... 127.0.0.(1 + hosts) (loopback only) and serves feed `i` at
`http://127.0.0.{2 + i % hosts}:PORT/feeds/{i:04d}.xml`: RSS 2.0 with `items` entries, an ETag
and 304 answers, gzip when asked, every feed response delayed by `latency_s` (asyncio, so one
slow answer never holds another). About 3% of the stories report internet-control measures
(`measure_share`); `measure_states` says which states they name: "mixed" (12 states, the
default), "one" (80% Pakistan) or "none" (no state at all, as keyword-search feeds carry).

A share of the feeds can be faulty (500, 404, hang, malformed XML, oversize, gzip bomb,
connection reset). Control endpoints on 127.0.0.1:PORT: `POST /_farm/advance?cycle=N` adds
new items to some healthy feeds, `GET /_farm/served` lists the GUIDs served with status 200
(those a document carries whole: not the stories past the cut of a malformed one),
`GET /_farm/requests` each feed's request times,
`POST /hook` is a JSON webhook (Apprise `json://`) and `GET /_farm/posts` returns its posts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import hashlib
import json
import random
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

FAULT_KINDS = ("http_500", "not_found", "hang", "malformed", "oversize", "gzip_bomb", "reset")
HANG_MAX_S = 60.0
OVERSIZE_BYTES = 3 * 1024 * 1024
BOMB_BYTES = 64 * 1024 * 1024

# -- synthetic stories ----------------------------------------------------------------------

STATES = (
    ("Vietnam", "the Ministry of Information and Communications"),
    ("Pakistan", "the Pakistan Telecommunication Authority"),
    ("Russia", "Roskomnadzor, the communications regulator,"),
    ("Iran", "the Supreme Council of Cyberspace"),
    ("Ethiopia", "the federal government"),
    ("Turkey", "the telecoms regulator BTK"),
    ("India", "the Ministry of Electronics and Information Technology"),
    ("Myanmar", "the military government"),
    ("Bangladesh", "the telecom regulator BTRC"),
    ("Kenya", "the Communications Authority"),
    ("Indonesia", "the Ministry of Communication and Digital Affairs"),
    ("Belarus", "the Ministry of Information"),
)
PLATFORMS = ("Telegram", "Facebook", "WhatsApp", "TikTok", "YouTube", "X", "Signal", "Instagram")
REGIONS = ("the northern provinces", "the capital region", "the border districts", "the east")
MEASURES = (
    (
        "{state} orders internet providers to block {platform}",
        "{actor} told operators in a letter seen by reporters to cut access to {platform} "
        "within {hours} hours. Decision No. {n} gives no reason and no end date.",
    ),
    (
        "{state} shuts down mobile internet in {region} ahead of protests",
        "{actor} ordered telecom operators to suspend mobile data in {region} for {hours} "
        "hours under order No. {n}, residents and monitoring groups said.",
    ),
    (
        "{state} regulator throttles {platform} nationwide",
        "Users said {platform} barely loaded after {actor} restricted its bandwidth under "
        "directive No. {n}; the slowdown is to last {hours} days.",
    ),
    (
        "{state} bans VPN services without a state licence",
        "{actor} said unlicensed VPN providers will be blocked from next month under "
        "regulation No. {n} and app stores must remove their apps.",
    ),
    (
        "{state} requires ID verification for {platform} accounts",
        "Under decree No. {n}, {actor} will require every {platform} user to verify the "
        "account with a national ID number within {hours} days or lose access.",
    ),
    (
        "{state} orders {platform} to take down posts within 24 hours",
        "{actor} issued takedown order No. {n} demanding that {platform} delete posts "
        "critical of officials, and threatened to block the service if it refuses.",
    ),
    (
        "{state} adopts law forcing platforms to store user data locally",
        "Lawmakers approved bill No. {n}; {actor} said {platform} and other services must "
        "keep data of local users on servers inside the country within {hours} months.",
    ),
)
# -- measure stories in the "one" and "none" mixes ----------------------------------------
# Reports of one measure by many outlets: several headlines and leads per kind of measure, a
# closing sentence with the story's own figures, and one decree number per measure. A share
# of the stories is about a few big measures per state (or per "no state"); the rest spread
# over every kind, platform and region, each with a decree number of its own.

MEASURE_STATES = ("mixed", "one", "none")
ONE_STATE = "Pakistan"  # named by most measure stories when measure_states="one"
ONE_STATE_SHARE = 0.8
BIG_STORY_SHARE = 0.3  # of the measure stories: one of BIG_STORIES big measures of the state
BIG_STORIES = 3
BIG_STORY_WEIGHTS = (3, 2, 1)
# Who acts when the text names no state: (headline subject, plural?) and the acting body.
SUBJECTS = (
    ("Authorities", True),
    ("The government", False),
    ("Regulators", True),
    ("Officials", True),
    ("The telecoms regulator", False),
    ("The interior ministry", False),
)
ACTORS = (
    "the communications regulator",
    "the telecoms authority",
    "the interior ministry",
    "the cabinet",
    "the ministry of digital affairs",
    "security officials",
)
# Per kind (the order of MEASURES): headlines, then leads. {who} acts, {s} agrees with it.
VARIED_MEASURES = (
    (
        (
            "{who} order{s} internet providers to block {platform}",
            "{who} move{s} to block {platform}, telling operators to cut access",
            "Access to {platform} cut off on orders of {who_l}",
            "{platform} blocked on orders of {who_l}",
        ),
        (
            "{Actor} told operators in a letter seen by reporters to cut access to {platform} "
            "within {hours} hours. Decision No. {decree} gives no reason and no end date.",
            "Operators were ordered to block {platform} under decision No. {decree}, according "
            "to a letter from {actor} seen by reporters.",
        ),
    ),
    (
        (
            "{who} shut{s} down mobile internet in {region} ahead of protests",
            "Mobile data cut in {region} on orders of {who_l}",
            "Internet shutdown ordered in {region}",
        ),
        (
            "{Actor} ordered telecom operators to suspend mobile data in {region} for {hours} "
            "hours under order No. {decree}, residents and monitoring groups said.",
            "Phones in {region} lost internet access after {actor} issued order No. {decree} "
            "suspending mobile data for {hours} hours.",
        ),
    ),
    (
        (
            "{who} throttle{s} {platform} nationwide",
            "{platform} slowed to a crawl under a bandwidth cap set by {who_l}",
            "Users report {platform} throttled after order from {who_l}",
        ),
        (
            "Users said {platform} barely loaded after {actor} restricted its bandwidth under "
            "directive No. {decree}; the slowdown is to last {days} days.",
            "{Actor} confirmed that directive No. {decree} limits the bandwidth of {platform} "
            "for {days} days.",
        ),
    ),
    (
        (
            "{who} ban{s} VPN services without a state licence",
            "Unlicensed VPN services to be blocked under a rule from {who_l}",
            "VPN ban: app stores told to remove unlicensed apps",
        ),
        (
            "{Actor} said unlicensed VPN providers will be blocked from next month under "
            "regulation No. {decree} and app stores must remove their apps.",
            "Under regulation No. {decree}, {actor} will block VPN services that hold no "
            "licence and fine app stores that keep offering them.",
        ),
    ),
    (
        (
            "{who} require{s} ID verification for {platform} accounts",
            "{platform} users must verify accounts with a national ID under a rule from {who_l}",
            "ID checks for every {platform} account ordered by {who_l}",
        ),
        (
            "Under decree No. {decree}, {actor} will require every {platform} user to verify "
            "the account with a national ID number within {days} days or lose access.",
            "{Actor} said decree No. {decree} gives {platform} users {days} days to link their "
            "accounts to a national ID number or be cut off.",
        ),
    ),
    (
        (
            "{who} order{s} {platform} to take down posts within 24 hours",
            "{platform} told to delete posts critical of officials or face a block",
            "Takedown order from {who_l}: {platform} must remove posts",
        ),
        (
            "{Actor} issued takedown order No. {decree} demanding that {platform} delete posts "
            "critical of officials, and threatened to block the service if it refuses.",
            "Takedown order No. {decree} from {actor} gives {platform} 24 hours to remove the "
            "posts or be blocked.",
        ),
    ),
    (
        (
            "{who} adopt{s} law forcing platforms to store user data locally",
            "Data localization law passed: {platform} must keep user data at home",
            "New law orders {platform} and others to move user data onto local servers",
        ),
        (
            "Lawmakers approved bill No. {decree}; {actor} said {platform} and other services "
            "must keep data of local users on servers inside the country within {months} months.",
            "Under bill No. {decree}, approved by lawmakers, {platform} has {months} months to "
            "store local users' data on servers inside the country, {actor} said.",
        ),
    ),
)
TRAILERS = (
    "Residents said about {count} subscribers had lost the service by {clock} local time.",
    "Operators were given {hours} hours to comply; the move affects an estimated {count} users.",
    "Rights groups criticised the measure, which they said would cut off {count} people.",
    "Network data showed traffic down sharply by {clock}, based on {count} measurements.",
    "The order was published at {clock}; an industry group put the users affected at {count}.",
)
CITIES = (
    "Lisbon", "Osaka", "Nairobi", "Lima", "Tallinn", "Porto Alegre", "Cebu", "Accra",
    "Krakow", "Adelaide", "Monterrey", "Tbilisi", "Dakar", "Hanoi", "Izmir", "Quito",
)  # fmt: skip
TEAMS = ("United", "Rovers", "Athletic", "City", "Wanderers", "Dynamo", "Sporting", "Olympic")
NEWS = (
    (
        "{city} marathon draws {n} runners",
        "Organisers said the course through the old town was flat and fast, and the winner "
        "finished in two hours and {a} minutes despite a strong headwind.",
    ),
    (
        "{city} {team} beat {team2} {a}-{b} to reach the cup semi-final",
        "A crowd of {n} watched the home side come from behind after the break; the coach "
        "praised the defence and said the squad would rest before the next round.",
    ),
    (
        "Central bank in {city} keeps key rate at {a}.{b} percent",
        "Economists had expected the decision after inflation eased for a third month; the "
        "bank said exports of {n} tonnes of coffee supported the currency.",
    ),
    (
        "Heatwave pushes temperatures to {a} degrees in {city}",
        "Forecasters said the hot spell would last until the weekend; hospitals treated {n} "
        "people for heat exhaustion and parks stayed open late.",
    ),
    (
        "{city} opens new metro line with {a} stations",
        "The line cuts the trip from the airport to the centre to {b} minutes and is expected "
        "to carry {n} passengers a day once the last stations open.",
    ),
    (
        "Researchers in {city} catalogue {n} species of beetle",
        "The survey of the coastal forest took {a} years; the team found {b} species that "
        "had never been described and will publish the full list in spring.",
    ),
    (
        "Film festival in {city} gives top prize to a debut director",
        "The jury praised the film's quiet portrait of a fishing family; {n} tickets were "
        "sold over {a} days, a record for the festival.",
    ),
    (
        "Port of {city} handles a record {n} containers in a month",
        "Port officials credited the new cranes and longer opening hours; average waiting time "
        "for ships fell to {a} hours from {b} a year earlier.",
    ),
    (
        "Farmers near {city} expect a large rice harvest",
        "Good rains and cheaper fertiliser lifted yields, growers said; the cooperative plans "
        "to buy {n} tonnes and store it in {a} new warehouses.",
    ),
    (
        "Museum in {city} reopens after a {a}-year renovation",
        "The restored galleries show {n} objects, including a collection of maps that had not "
        "been on display for decades; entry is free for the first {b} days.",
    ),
)


def story(feed: int, number: int, measure: bool, states: str = "mixed") -> tuple[str, str]:
    """A deterministic title and summary; the numbers make every story's text unique.

    `states` is FarmSpec.measure_states: "mixed" gives today's measure stories (12 states,
    one wording per kind); "one" and "none" give `varied_measure` stories.
    """
    rng = random.Random(f"story:{feed}:{number}")
    serial = feed * 10_000 + number
    if measure and states != "mixed":
        return varied_measure(rng, serial, states)
    if measure:
        title, summary = rng.choice(MEASURES)
        state, actor = rng.choice(STATES)
        values = {
            "state": state,
            "actor": actor[0].upper() + actor[1:],
            "platform": rng.choice(PLATFORMS),
            "region": rng.choice(REGIONS),
            "hours": rng.randint(2, 96),
            "n": f"{serial}/QD-{rng.randint(10, 99)}",
        }
    else:
        title, summary = rng.choice(NEWS)
        team, team2 = rng.sample(TEAMS, 2)
        values = {
            "city": rng.choice(CITIES),
            "team": team,
            "team2": team2,
            "a": rng.randint(2, 40),
            "b": rng.randint(0, 9),
            "n": f"{10_000 + serial * 3:,}",
        }
    return title.format(**values), summary.format(**values)


def varied_measure(rng: random.Random, serial: int, states: str) -> tuple[str, str]:
    """A measure story in the wording of one outlet: "one" names Pakistan in ONE_STATE_SHARE
    of the stories (another state otherwise), "none" names no state (who acts is
    "Authorities", "The government", "Regulators" ...). BIG_STORY_SHARE of the stories
    report one of the state's big measures, which share kind, platform, region and decree
    number; the others draw all of those. The figures in the last sentence make it unique."""
    if states == "none":
        state = None
    elif states == "one":
        others = [name for name, _ in STATES if name != ONE_STATE]
        state = ONE_STATE if rng.random() < ONE_STATE_SHARE else rng.choice(others)
    else:
        raise ValueError(f"unknown measure_states {states!r}")
    if rng.random() < BIG_STORY_SHARE:
        big = rng.choices(range(BIG_STORIES), weights=BIG_STORY_WEIGHTS)[0]
        kind, platform, region, decree = _big_measure(state, big)
    else:
        kind, platform, region = (
            rng.randrange(len(MEASURES)),
            rng.choice(PLATFORMS),
            rng.choice(REGIONS),
        )
        decree = f"{rng.randint(10, 999)}/{rng.choice(('2025', '2026'))}"
    if state is None:
        who, plural = rng.choice(SUBJECTS)
        who_l = who[0].lower() + who[1:]
        actor = rng.choice(ACTORS)
    else:
        who, plural, who_l = state, False, f"the authorities in {state}"
        actor = dict(STATES)[state]
    titles, leads = VARIED_MEASURES[kind]
    values = {
        "who": who,
        "who_l": who_l,
        "s": "" if plural else "s",
        "Actor": actor[0].upper() + actor[1:],
        "actor": actor,
        "platform": platform,
        "region": region,
        "decree": decree,
        "hours": rng.randint(2, 96),
        "days": rng.randint(3, 60),
        "months": rng.randint(3, 24),
        "count": f"{serial * 10 + rng.randint(0, 9):,}",
        "clock": f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
    }
    title = rng.choice(titles).format(**values)
    summary = rng.choice(leads).format(**values) + " " + rng.choice(TRAILERS).format(**values)
    return title, summary


def _big_measure(state: str | None, index: int) -> tuple[int, str, str, str]:
    """Kind, platform, region and decree number of big measure `index` of a state (or None)."""
    rng = random.Random(f"big:{state}:{index}")
    kind = rng.randrange(len(MEASURES))
    decree = f"{rng.randint(10, 999)}/{rng.choice(('2025', '2026'))}"
    return kind, rng.choice(PLATFORMS), rng.choice(REGIONS), decree


# -- the farm's content ---------------------------------------------------------------------


@dataclass(frozen=True)
class FarmSpec:
    """What the farm serves; the same spec gives the same feeds, stories and faults."""

    feeds: int = 1000
    items: int = 25
    hosts: int = 250
    latency_s: float = 0.05
    faulty_share: float = 0.0
    measure_share: float = 0.03  # of the initial stories
    measure_states: str = "mixed"  # which states measure stories name: see MEASURE_STATES
    grow_share: float = 0.10  # of healthy feeds that gain stories per advance
    new_measure_share: float = 0.20  # of the stories added by an advance
    seed: int = 7

    def __post_init__(self) -> None:
        if self.measure_states not in MEASURE_STATES:
            raise ValueError(f"measure_states must be one of {MEASURE_STATES}")

    def faults(self) -> dict[int, str]:
        """Feed index → fault kind, spread evenly over the feeds and over the kinds."""
        count = round(self.feeds * self.faulty_share)
        if count == 0:
            return {}
        step = self.feeds / count
        return {int(k * step + step / 2): FAULT_KINDS[k % len(FAULT_KINDS)] for k in range(count)}


def feed_url(spec: FarmSpec, port: int, index: int) -> str:
    """The URL of feed `index`."""
    return f"http://{feed_host(spec, index)}:{port}/feeds/{index:04d}.xml"


def feed_host(spec: FarmSpec, index: int) -> str:
    """The loopback address serving feed `index`."""
    return f"127.0.0.{2 + index % min(spec.hosts, spec.feeds, 250)}"


def guid_of(feed: int, number: int) -> str:
    """The GUID of story `number` of feed `feed`."""
    return f"urn:farm:{feed:04d}:{number:05d}"


@dataclass
class _Feed:
    """One feed's stories (newest last) and its rendered document."""

    index: int
    fault: str | None
    stories: list[tuple[int, datetime, bool]] = field(default_factory=list)
    body: bytes = b""
    guids: tuple[str, ...] = ()  # the GUIDs its document carries whole
    gzipped: bytes = b""
    etag: str = ""
    modified: str = ""


class FarmContent:
    """Every feed's current document; `advance` adds stories to some healthy feeds."""

    def __init__(self, spec: FarmSpec) -> None:
        self.spec = spec
        self.started = datetime.now(UTC).replace(microsecond=0)
        faults = spec.faults()
        self.feeds = [_Feed(i, faults.get(i)) for i in range(spec.feeds)]
        for feed in self.feeds:
            rng = random.Random(f"{spec.seed}:base:{feed.index}")
            for number in range(spec.items):
                when = self.started - timedelta(minutes=37 * (spec.items - number))
                feed.stories.append((number, when, rng.random() < spec.measure_share))
            self._render(feed)

    def advance(self, cycle: int) -> int:
        """Give some healthy feeds 1-3 new stories; returns how many stories were added."""
        added = 0
        now = datetime.now(UTC).replace(microsecond=0)
        for feed in self.feeds:
            rng = random.Random(f"{self.spec.seed}:advance:{cycle}:{feed.index}")
            if feed.fault is not None or rng.random() >= self.spec.grow_share:
                continue
            for _ in range(rng.randint(1, 3)):
                number = feed.stories[-1][0] + 1
                feed.stories.append((number, now, rng.random() < self.spec.new_measure_share))
                added += 1
            self._render(feed)
        return added

    def current_guids(self, feed: _Feed) -> list[str]:
        """The GUIDs the feed's document carries now."""
        return [guid_of(feed.index, n) for n, _, _ in feed.stories[-self.spec.items :]]

    def _render(self, feed: _Feed) -> None:
        parts = [
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
            f"<title>Farm Daily {feed.index:04d}</title>",
            f"<link>http://news{feed.index:04d}.example/</link>",
            "<description>Regional and world news</description><language>en</language>",
        ]
        for number, when, measure in reversed(feed.stories[-self.spec.items :]):
            title, summary = story(feed.index, number, measure, self.spec.measure_states)
            parts.append(
                f"<item><title>{escape(title)}</title>"
                f"<link>http://news{feed.index:04d}.example/story/{number}.html</link>"
                f'<guid isPermaLink="false">{guid_of(feed.index, number)}</guid>'
                f"<description>{escape(summary)}</description>"
                f"<pubDate>{format_datetime(when, usegmt=True)}</pubDate></item>\n"
            )
        parts.append("</channel></rss>\n")
        body = "".join(parts).encode("utf-8")
        if feed.fault == "malformed":
            body = body[: len(body) * 2 // 3].replace(b"</title>", b" & more</title>", 3)
        feed.body = body
        # A malformed document is cut at two thirds: the stories past the cut are not in it,
        # so they are not served (counting them made a replica run "lose" 3 per such feed).
        feed.guids = tuple(
            guid for guid in self.current_guids(feed) if f">{guid}</guid>".encode() in body
        )
        feed.gzipped = gzip.compress(body, compresslevel=6, mtime=0)
        feed.etag = '"' + hashlib.sha256(body).hexdigest()[:24] + '"'
        feed.modified = format_datetime(feed.stories[-1][1], usegmt=True)


# -- the HTTP server (runs in the farm process) ---------------------------------------------


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class FarmServer:
    """An asyncio HTTP/1.1 server (keep-alive) for the farm's feeds and control endpoints."""

    def __init__(self, spec: FarmSpec) -> None:
        self.spec = spec
        self.content = FarmContent(spec)
        self.served: dict[int, set[str]] = {}
        self.posts: list[dict[str, Any]] = []
        self.stats: Counter[str] = Counter()
        # Feed index -> arrival times (time.time()) of its requests: polls per interval.
        self.request_times: dict[int, list[float]] = {}
        self.port = 0
        self._bomb = _gzip_bomb(BOMB_BYTES) if "gzip_bomb" in spec.faults().values() else b""
        self._servers: list[asyncio.Server] = []

    async def bind(self) -> int:
        """Listen on 127.0.0.1 and every feed host, all on one free port."""
        hosts = ["127.0.0.1"] + sorted({feed_host(self.spec, i) for i in range(self.spec.feeds)})
        for _ in range(20):
            try:
                first = await asyncio.start_server(self._serve, hosts[0], 0, backlog=1024)
                self._servers = [first]
                self.port = first.sockets[0].getsockname()[1]
                for host in hosts[1:]:
                    server = await asyncio.start_server(self._serve, host, self.port, backlog=1024)
                    self._servers.append(server)
                return self.port
            except OSError:
                for server in self._servers:
                    server.close()
        raise OSError("could not bind one port on all farm hosts")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats["connections"] += 1
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                keep = await self._answer(request, reader, writer)
                if not keep or request.headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        except asyncio.CancelledError:  # the farm is shutting down
            pass
        finally:
            writer.close()

    async def _answer(
        self, request: _Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; False when the connection must close."""
        path = request.path
        if path.startswith("/feeds/") and path.endswith(".xml"):
            index = int(path[7:-4]) if path[7:-4].isdigit() else -1
            if 0 <= index < self.spec.feeds:
                await asyncio.sleep(self.spec.latency_s)
                return await self._feed(self.content.feeds[index], request, reader, writer)
        if path == "/hook" and request.method in ("POST", "PUT"):
            self.posts.append(_json_or_raw(request.body))
            return await _send(writer, 200, b'{"ok": true}', {"Content-Type": "application/json"})
        if path == "/_farm/advance" and request.method == "POST":
            cycle = int(request.query.get("cycle", ["0"])[0])
            return await _send_json(writer, {"added": self.content.advance(cycle)})
        if path == "/_farm/served":
            served = {str(i): sorted(guids) for i, guids in self.served.items()}
            return await _send_json(writer, served)
        if path == "/_farm/posts":
            return await _send_json(writer, self.posts)
        if path == "/_farm/requests":
            times = {str(i): at for i, at in self.request_times.items()}
            return await _send_json(writer, times)
        if path == "/_farm/stats":
            return await _send_json(writer, dict(self.stats))
        return await _send(writer, 404, b"not found", {"Content-Type": "text/plain"})

    async def _feed(
        self,
        feed: _Feed,
        request: _Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """A feed document, a 304, or the feed's fault."""
        fault = feed.fault
        self.stats[f"feed:{fault or 'ok'}"] += 1
        self.request_times.setdefault(feed.index, []).append(time.time())
        if fault in (None, "malformed"):
            headers = {"ETag": feed.etag, "Last-Modified": feed.modified}
            if request.headers.get("if-none-match") == feed.etag:
                self.stats["status:304"] += 1
                return await _send(writer, 304, b"", headers)
            self.stats["status:200"] += 1
            self.served.setdefault(feed.index, set()).update(feed.guids)
            headers["Content-Type"] = "application/rss+xml; charset=utf-8"
            if "gzip" in request.headers.get("accept-encoding", ""):
                headers["Content-Encoding"] = "gzip"
                return await _send(writer, 200, feed.gzipped, headers)
            return await _send(writer, 200, feed.body, headers)
        if fault == "http_500":
            return await _send(writer, 500, b"internal error", {"Content-Type": "text/plain"})
        if fault == "not_found":
            return await _send(writer, 404, b"no such feed", {"Content-Type": "text/plain"})
        if fault == "hang":
            with contextlib.suppress(TimeoutError):  # wait until the client gives up
                await asyncio.wait_for(reader.read(1), HANG_MAX_S)
            return False
        if fault == "oversize":
            body = b"<rss><channel>" + b"<item><title>x</title></item>" * (OVERSIZE_BYTES // 28)
            await _send(writer, 200, body, {"Content-Type": "application/rss+xml"})
            return False
        if fault == "gzip_bomb":
            headers = {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"}
            await _send(writer, 200, self._bomb, headers)
            return False
        sock = writer.get_extra_info("socket")
        if sock is not None:  # "reset": answer the request with a TCP RST
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return False


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    """One HTTP/1.1 request, or None at a clean end of the connection."""
    line = await reader.readline()
    if not line.strip():
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    body = await reader.readexactly(length) if length else b""
    parts = urlsplit(target)
    return _Request(method, parts.path, parse_qs(parts.query), headers, body)


_REASONS = {200: "OK", 304: "Not Modified", 404: "Not Found", 500: "Internal Server Error"}


async def _send(
    writer: asyncio.StreamWriter, status: int, body: bytes, headers: dict[str, str]
) -> bool:
    """Write a complete response with Content-Length; True (keep the connection)."""
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    head.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    if body and status != 304:
        writer.write(body)
    await writer.drain()
    return True


async def _send_json(writer: asyncio.StreamWriter, data: object) -> bool:
    return await _send(writer, 200, json.dumps(data).encode(), {"Content-Type": "application/json"})


def _json_or_raw(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body.decode("utf-8"))
    except ValueError:
        return {"_raw": body.decode("utf-8", "replace")}
    return data if isinstance(data, dict) else {"_json": data}


def _gzip_bomb(size: int) -> bytes:
    """A gzip body that inflates to `size` bytes of an unfinished RSS document."""
    return gzip.compress(b"<rss><channel><title>" + b"A" * size, compresslevel=9, mtime=0)


async def _run(spec: FarmSpec) -> None:
    """Serve until stdin closes (the parent is done or gone)."""
    server = FarmServer(spec)
    port = await server.bind()
    print(json.dumps({"port": port}), flush=True)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=wait_for_eof, daemon=True).start()
    await done.wait()


# -- the parent's handle --------------------------------------------------------------------


class FeedFarm:
    """Starts the farm process and talks to its control endpoints (no proxies, loopback)."""

    def __init__(self, spec: FarmSpec) -> None:
        self.spec = spec
        self.port = 0
        self._proc: subprocess.Popen[str] | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def start(self) -> FeedFarm:
        """Spawn the server process and wait for its port."""
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), json.dumps(asdict(self.spec))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the feed farm did not start")
        self.port = int(json.loads(line)["port"])
        return self

    def stop(self) -> None:
        """Close the farm's stdin (it exits), then make sure it is gone."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(timeout=5)

    def __enter__(self) -> FeedFarm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        """The farm process id."""
        return self._proc.pid if self._proc is not None else 0

    def urls(self) -> list[str]:
        """Every feed's URL, by index."""
        return [feed_url(self.spec, self.port, i) for i in range(self.spec.feeds)]

    @property
    def webhook_apprise_url(self) -> str:
        """The Apprise URL of the farm's webhook."""
        return f"json://127.0.0.1:{self.port}/hook"

    def advance(self, cycle: int) -> int:
        """Add stories for `cycle`; returns how many."""
        return int(self._call(f"/_farm/advance?cycle={cycle}", post=True)["added"])

    def served(self) -> dict[int, set[str]]:
        """GUIDs served with status 200, per feed index."""
        return {int(k): set(v) for k, v in self._call("/_farm/served").items()}

    def posts(self) -> list[dict[str, Any]]:
        """The JSON bodies the webhook received, in order."""
        return list(self._call("/_farm/posts"))

    def request_times(self) -> dict[int, list[float]]:
        """Arrival times (epoch seconds) of each feed's requests, per feed index."""
        return {int(k): list(v) for k, v in self._call("/_farm/requests").items()}

    def stats(self) -> dict[str, int]:
        """Request counters of the farm."""
        return dict(self._call("/_farm/stats"))

    def requests(self) -> list[int]:
        """Requests for each feed's URL so far, by feed index."""
        times = self.request_times()
        return [len(times.get(i, [])) for i in range(self.spec.feeds)]

    def _call(self, path: str, post: bool = False) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=b"" if post else None
        )
        with self._opener.open(request, timeout=60) as response:
            return json.loads(response.read())


def main() -> None:
    """Entry point of the farm process: `feedfarm.py SPEC_JSON`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="FarmSpec fields as JSON")
    args = parser.parse_args()
    spec = FarmSpec(**json.loads(args.spec))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(spec))


if __name__ == "__main__":
    main()
