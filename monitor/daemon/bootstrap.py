"""The composition root: the only place that builds concrete objects from config and env."""

from __future__ import annotations

import gc
import logging
import os
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from monitor.alerts.delivery import Delivery
from monitor.alerts.notify import AppriseNotifier, ConsoleNotifier, Notifier
from monitor.alerts.outbox import Outbox
from monitor.alerts.routing import RouteRules, RouteTarget
from monitor.classify import Classifier
from monitor.clock import Clock, SystemClock
from monitor.config.schema import MonitorConfig, RouteSpec, load_config
from monitor.daemon.pipeline import FetchContext, Writer
from monitor.daemon.poller import Poller
from monitor.daemon.telemetry import Telemetry
from monitor.domain import Assessment, ItemText
from monitor.events.recorder import MeasureRecorder
from monitor.events.targets import TargetReader, load_targets, target_label
from monitor.intake.fetch import FetchLimits, make_client, user_agent
from monitor.intake.hostgate import HostGate

# Re-exported: the scheduler's trim job and the benchmarks take them from here.
from monitor.intake.memory import release_free_memory as release_free_memory
from monitor.intake.memory import tune_malloc as tune_malloc
from monitor.intake.netguard import redirect_guard
from monitor.intake.reader import make_reader
from monitor.signals.corroborate import Corroborator, build_services
from monitor.signals.silence_store import SilenceReport, SilenceWatch
from monitor.store import repo
from monitor.store.db import make_engine, make_sessions, redact_db_url

logger = logging.getLogger(__name__)

CONSOLE_URL = "console://"


# Fetch threads: bench_poll measured 48 best on two cores (a conditional cycle of 1,000 feeds
# is CPU-bound in the HTTP client below that, and more threads only add GIL contention).
DEFAULT_WORKERS = 48


@dataclass(frozen=True, slots=True)
class Settings:
    """Process settings from the command line and the environment (not from feeds.yaml)."""

    config_path: Path
    db_url: str = field(repr=False)  # may hold a password; see __repr__
    workers: int = DEFAULT_WORKERS
    tick_seconds: float = 5.0
    reload_seconds: float = 15.0
    per_host: int = 2
    host_spacing_s: float = 1.0
    parse_processes: int = 0  # 0: parse in the fetch threads
    # /metrics reads its database gauges at most this often (Miniflux's METRICS_REFRESH_INTERVAL).
    metrics_refresh_s: float = 60.0

    def __repr__(self) -> str:
        return (
            f"Settings(config_path={self.config_path!r}, db_url={redact_db_url(self.db_url)!r}, "
            f"workers={self.workers}, parse_processes={self.parse_processes})"
        )


def default_parse_processes() -> int:
    """One parser process per core but one: the main process fetches, classifies and stores."""
    return max(1, (os.cpu_count() or 1) - 1)


def settings_from_env(
    config_path: str | None, db_url: str | None, env: Mapping[str, str]
) -> Settings:
    """Command-line values win over MONITOR_* variables, which win over defaults."""
    return Settings(
        config_path=Path(config_path or env.get("MONITOR_CONFIG", "feeds.yaml")),
        db_url=db_url or env.get("MONITOR_DB_URL", "sqlite:///monitor.db"),
        workers=int(env.get("MONITOR_WORKERS", str(DEFAULT_WORKERS))),
        tick_seconds=float(env.get("MONITOR_TICK_SECONDS", "5")),
        per_host=int(env.get("MONITOR_PER_HOST", "2")),
        host_spacing_s=float(env.get("MONITOR_HOST_SPACING", "1.0")),
        parse_processes=int(env.get("MONITOR_PARSE_PROCESSES", str(default_parse_processes()))),
        metrics_refresh_s=float(env.get("MONITOR_METRICS_REFRESH", "60")),
    )


def route_rules(spec: RouteSpec) -> RouteRules:
    """The filter and timing part of a configured route."""
    quiet = spec.quiet_hours
    limit = spec.rate_limit
    return RouteRules(
        name=spec.name,
        min_score=spec.min_score,
        countries=frozenset(spec.countries),
        categories=frozenset(str(c) for c in spec.categories),
        stages=frozenset(str(s) for s in spec.stages),
        kinds=frozenset(str(k) for k in spec.kinds),
        delivery=str(spec.delivery),
        rate_limit_count=limit.count if limit else None,
        rate_limit_per=limit.per if limit else None,
        quiet_start=quiet.start if quiet else None,
        quiet_end=quiet.end if quiet else None,
        quiet_tz=quiet.timezone if quiet else None,
        quiet_except=frozenset(str(c) for c in quiet.except_categories) if quiet else frozenset(),
        digest_tz=spec.digest.timezone if spec.digest else None,
    )


def route_targets(config: MonitorConfig, env: Mapping[str, str]) -> dict[str, RouteTarget]:
    """Every configured route; with none configured, one console route so alerts are seen."""
    if not config.alerts:
        rules = RouteRules(name="console", min_score=config.defaults.min_score)
        return {"console": RouteTarget(rules=rules, url=CONSOLE_URL)}
    return {
        spec.name: RouteTarget(
            rules=route_rules(spec),
            url=spec.resolved_url(env),
            body_format=str(spec.format),
            digest_cron=spec.digest.cron if spec.digest else _overflow_cron(spec),
            digest_tz=spec.digest.timezone if spec.digest else "UTC",
        )
        for spec in config.alerts
    }


# Where a rate-limited route without a digest block sends its overflow: an hourly digest.
OVERFLOW_DIGEST_CRON = "0 * * * *"


def _overflow_cron(spec: RouteSpec) -> str | None:
    return OVERFLOW_DIGEST_CRON if spec.rate_limit is not None else None


def feed_settings(config: MonitorConfig) -> list[repo.FeedSettings]:
    """The feeds of the config as the database stores them."""
    return [
        repo.FeedSettings(
            name=feed.name,
            url=str(feed.url),
            country=feed.country,
            language=feed.language,
            interval_s=int(feed.interval.total_seconds()),
            enabled=feed.enabled,
        )
        for feed in config.feeds
    ]


def feed_headers(config: MonitorConfig) -> dict[str, dict[str, str]]:
    """Extra request headers of the feeds that configure some, by feed name."""
    return {feed.name: feed.resolved_headers() for feed in config.feeds if feed.headers}


def secrets_of(config: MonitorConfig, env: Mapping[str, str] | None = None) -> list[str]:
    """Every secret value the config resolved, so log output can be scrubbed of them: the
    routes' and feeds' placeholders, and the measurement services' token from `env`."""
    found = list(config.secret_values())
    radar_token = config.corroboration.radar.resolved_token(os.environ if env is None else env)
    if radar_token:
        found.append(radar_token)
    return [value for value in found if len(value) >= 4]


@dataclass
class Runtime:
    """Everything a command needs, built once; `apply_config` swaps in an edited feeds.yaml."""

    settings: Settings
    config: MonitorConfig
    env: Mapping[str, str] = field(repr=False)  # the process environment: secrets
    clock: Clock
    engine: Engine
    sessions: sessionmaker[Session]
    classifier_loader: Callable[[], Classifier]
    http: httpx.Client
    targets: dict[str, RouteTarget]
    notifier_for: Callable[[RouteTarget], Notifier]
    rng: random.Random = field(default_factory=random.Random)
    # This process's counters and histograms; the web's /metrics serves its registry.
    telemetry: Telemetry = field(default_factory=Telemetry)
    _poller: Poller | None = None
    _delivery: Delivery | None = None
    _measure_targets: TargetReader | None = None
    _silence: SilenceWatch | None = None
    _corroborator: Corroborator | None = None
    _signals_http: httpx.Client | None = None

    def load_classifier(self) -> Classifier:
        """Load the classifier and the targets lexicon now (the daemon does so at start, not
        in its first poll)."""
        _ = self.measure_targets
        return self.classifier_loader()

    @property
    def measure_targets(self) -> TargetReader:
        """What measures act on (targets.yaml), read once: a writer is built per batch."""
        if self._measure_targets is None:
            self._measure_targets = load_targets()
        return self._measure_targets

    def writer(self) -> Writer:
        """A writer for the current routes (rebuilt per batch, so reloads take effect)."""
        broken = self.config.defaults.feed_broken_after
        return Writer(
            assessor=LazyAssessor(self.classifier_loader),
            recorder=MeasureRecorder(
                tuple(t.rules for t in self.targets.values()), targets=self.measure_targets
            ),
            rng=self.rng,
            broken_after=broken,
        )

    @property
    def poller(self) -> Poller:
        if self._poller is None:
            contact = self.config.defaults.user_agent_contact
            limits = FetchLimits(user_agent=user_agent(contact))
            context = FetchContext(
                client=self.http,
                gate=HostGate(self.settings.per_host, self.settings.host_spacing_s),
                limits=limits,
                now=self.clock.now,
                reader=make_reader(self.settings.parse_processes),
                max_items=self.config.defaults.max_items_per_poll,
                feed_headers=feed_headers(self.config),
                redirect_guard=redirect_guard(
                    allow_private=self.config.defaults.allow_private_addresses
                ),
            )
            self._poller = Poller(
                self.sessions,
                context,
                self.writer,
                self.clock.now,
                workers=self.settings.workers,
                telemetry=self.telemetry,
            )
        return self._poller

    @property
    def delivery(self) -> Delivery:
        if self._delivery is None:
            self._delivery = Delivery(
                self.sessions, self.targets, self.notifier_for, self.clock.now, meter=self.telemetry
            )
        return self._delivery

    def watch_silence(self) -> SilenceReport:
        """One look for countries whose sources fell silent together (the `silence` job)."""
        if self._silence is None:
            self._silence = SilenceWatch(self.sessions, self.clock.now)
        outbox = Outbox(tuple(t.rules for t in self.targets.values()))
        return self._silence.run(self.config.silence, outbox)

    @property
    def corroborator(self) -> Corroborator:
        """The measurement checks, with their own HTTP client: a slow service never takes a
        connection or a timeout from feed polling, and its timeouts are its own."""
        if self._corroborator is None:
            spec = self.config.corroboration
            contact = self.config.defaults.user_agent_contact
            self._signals_http = httpx.Client(
                timeout=httpx.Timeout(spec.timeout, connect=min(spec.timeout, 10.0)),
                headers={"User-Agent": user_agent(contact)},
                limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
                follow_redirects=True,
            )
            reader = self.measure_targets
            self._corroborator = Corroborator(
                spec,
                build_services(spec, self._signals_http, self.clock, self.env),
                Outbox(tuple(t.rules for t in self.targets.values())),
                self.clock,
                target_label=lambda targets: target_label(reader, targets),
            )
        return self._corroborator

    def _drop_corroborator(self) -> None:
        """Rebuilt at its next run from the current config and routes."""
        self._corroborator = None
        if self._signals_http is not None:
            self._signals_http.close()
            self._signals_http = None

    def sync_feeds(self) -> None:
        """Make the feeds table match the current config."""
        with self.sessions.begin() as session:
            repo.sync_feeds(session, feed_settings(self.config), self.clock.now())

    def apply_config(self, config: MonitorConfig) -> None:
        """Adopt a new configuration: feeds, routes and delivery targets."""
        removed = sorted(set(self.targets) - {spec.name for spec in config.alerts})
        self.config = config
        self.targets = route_targets(config, self.env)
        self._drop_corroborator()
        if self._delivery is not None:
            self._delivery.targets = dict(self.targets)
        if self._poller is not None:
            self._poller.fetch_context.max_items = config.defaults.max_items_per_poll
            self._poller.fetch_context.feed_headers = feed_headers(config)
            self._poller.fetch_context.redirect_guard = redirect_guard(
                allow_private=config.defaults.allow_private_addresses
            )
        self.sync_feeds()
        self._report_stranded_alerts(removed)

    def _report_stranded_alerts(self, routes: list[str]) -> None:
        """Say so when a removed route leaves alerts behind: they wait for it, unsent."""
        if not routes:
            return
        with self.sessions() as session:
            waiting = repo.unsent_alerts_per_route(session, routes)
        for route, count in sorted(waiting.items()):
            logger.warning(
                "route %s was removed from the config with %d alerts not yet sent; they wait "
                "for it (monitor alerts list shows them)",
                route, count,
            )  # fmt: skip

    def close(self) -> None:
        if self._poller is not None:
            self._poller.shutdown()
            self._poller.fetch_context.reader.close()
        if self._delivery is not None:
            self._delivery.close()
        self._drop_corroborator()
        self.http.close()
        self.engine.dispose()


def default_notifier_for() -> Callable[[RouteTarget], Notifier]:
    """Apprise for real routes, the console for the built-in one."""
    apprise_notifier = AppriseNotifier()
    console = ConsoleNotifier()

    def pick(target: RouteTarget) -> Notifier:
        return console if target.url == CONSOLE_URL else apprise_notifier

    return pick


def _loader(model_path: Path | None) -> Callable[[], Classifier]:
    """Loads the classifier once, when first asked: commands that never classify (`feeds
    validate`, `alerts list`) skip the cost, and so do tests that store no new item."""
    loaded: list[Classifier] = []

    def load() -> Classifier:
        if not loaded:
            loaded.append(Classifier.load(model_path))
        return loaded[0]

    return load


class LazyAssessor:
    """The Assessor seam over a classifier that is loaded when first asked."""

    def __init__(self, load: Callable[[], Classifier]) -> None:
        self.load = load

    def assess_many(self, items: Sequence[ItemText]) -> list[Assessment]:
        # The stored reasons keep rules, stage and country; model features on demand.
        return self.load().assess_many(items, explain=False)


def _model_path(env: Mapping[str, str]) -> Path | None:
    """A retrained model named by MONITOR_MODEL, else the packaged one."""
    value = env.get("MONITOR_MODEL")
    return Path(value) if value else None


# Young-generation size for the cyclic GC in the daemon. The default (700 allocations) runs
# a collection every few rows of a big poll; the store stage allocates many short-lived
# containers and no cycles to speak of, so collecting ten times less often saves about a
# tenth of a first poll's CPU for a few MB.
GC_YOUNG_THRESHOLD = 7000


def tune_process_for_service() -> None:
    """Process-wide settings for a long-running daemon: call once, at its start.

    glibc's malloc is told to give freed memory back (see `tune_malloc`), and the cyclic GC
    leaves the objects that live as long as the process (modules, classifier rules,
    configuration) out of every later collection.
    """
    tune_malloc()
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def build_runtime(
    settings: Settings,
    *,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    http: httpx.Client | None = None,
    notifier_for: Callable[[RouteTarget], Notifier] | None = None,
    classifier: Classifier | None = None,
    config: MonitorConfig | None = None,
) -> Runtime:
    """Build the real objects; tests pass their own clock, client, notifiers or classifier."""
    env = dict(os.environ) if env is None else env
    config = config if config is not None else load_config(settings.config_path, env)
    engine = make_engine(settings.db_url)
    contact = config.defaults.user_agent_contact
    return Runtime(
        settings=settings,
        config=config,
        env=env,
        clock=clock or SystemClock(),
        engine=engine,
        sessions=make_sessions(engine),
        classifier_loader=(lambda: classifier) if classifier else _loader(_model_path(env)),
        http=http
        or make_client(FetchLimits(user_agent=user_agent(contact)), connections=settings.workers),
        targets=route_targets(config, env),
        notifier_for=notifier_for or default_notifier_for(),
        telemetry=Telemetry(engine=engine),
    )
