"""compose.yaml: PostgreSQL and N monitor replicas built from the Dockerfile, no secrets in it.

No Docker engine runs here, so the file is checked as data: the services, what the replicas
run and connect to, that scaling is possible (no fixed host port), that health checks are
real monitor commands, and that the image installs what the README says it does.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
from ruamel.yaml import YAML

from monitor.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
README = ROOT / "README.md"
# ${VAR}, ${VAR:-default}, ${VAR:?message}: compose fills these in from the environment.
PLACEHOLDER = re.compile(r"\$\{[A-Z_][A-Z0-9_]*(?:[:?-][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = YAML(typ="safe").load(COMPOSE.read_text(encoding="utf-8"))  # merges <<: anchors
    assert isinstance(data, dict)
    return data


def _services(compose: dict[str, Any]) -> dict[str, Any]:
    services = compose["services"]
    assert isinstance(services, dict)
    return services


def _dockerfile_instruction(name: str) -> str:
    """One instruction's text, continuation lines joined."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    found = re.findall(rf"^{name}\s+(.+)$", text, re.MULTILINE)
    assert len(found) >= 1, name
    return " ".join(found[-1].split())


def test_services(compose: dict[str, Any]) -> None:
    services = _services(compose)
    assert {"postgres", "monitor", "migrate", "web"} <= set(services)
    postgres = services["postgres"]
    assert postgres["image"].split(":")[0] == "postgres"  # the official image
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]  # a named volume, not a host directory
    test = postgres["healthcheck"]["test"]
    assert "pg_isready" in " ".join(test)


def test_monitor_built_from_the_dockerfile_and_pointed_at_postgres(
    compose: dict[str, Any],
) -> None:
    monitor = _services(compose)["monitor"]
    build = monitor["build"]
    assert (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")) == DOCKERFILE
    url = monitor["environment"]["MONITOR_DB_URL"]
    parts = urlsplit(url)
    assert parts.scheme == "postgresql" and parts.hostname == "postgres"
    assert parts.path == "/" + _services(compose)["postgres"]["environment"]["POSTGRES_DB"]
    assert PLACEHOLDER.fullmatch(parts.password or "")
    assert monitor["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert monitor["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert any(v.endswith(":/etc/monitor/feeds.yaml:ro") for v in monitor["volumes"])
    assert monitor["command"][0] == "run" and "--no-migrate" in monitor["command"]


def test_replicas_can_scale(compose: dict[str, Any]) -> None:
    """`--scale monitor=3` fails when a fixed host port is published, or a container name set."""
    monitor = _services(compose)["monitor"]
    assert "ports" not in monitor and "container_name" not in monitor
    web = _services(compose)["web"]
    assert web["command"] == ["serve"] and web["ports"]


def test_no_secret_written_literally(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for service in _services(compose).values():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|TOKEN|KEY", key):
                assert PLACEHOLDER.fullmatch(str(value)), key
            netloc = urlsplit(str(value)).netloc
            if "@" in netloc and ":" in netloc.split("@")[0]:
                password = netloc.split("@")[0].split(":", 1)[1]
                assert PLACEHOLDER.fullmatch(password), key
    # and no inline password such as "monitor:hunter2@" anywhere, comments included
    for userinfo in re.findall(r"//[^/\s:@]+:([^@\s]+)@", text):
        assert PLACEHOLDER.fullmatch(userinfo), userinfo


def _monitor_command(argv: list[str]) -> None:
    """Fail unless argv is a command line the monitor CLI accepts (a command, not a group)."""
    assert argv[0] == "monitor", argv
    command: click.Command = main
    context = main.make_context("monitor", argv[1:], resilient_parsing=True)
    while isinstance(command, click.Group):
        words = [*context.protected_args, *context.args]
        assert words, f"{argv}: a group, not a command"
        name, found, rest = command.resolve_command(context, words)
        assert found is not None, argv
        command = found
        context = found.make_context(name or "", list(rest), parent=context)
    assert not context.args, f"{argv}: extra arguments {context.args}"


def test_health_checks_are_monitor_commands(compose: dict[str, Any]) -> None:
    # The exec form: CMD ["monitor", "healthcheck", ...] is a JSON array.
    image_check = json.loads(_dockerfile_instruction("HEALTHCHECK").split(" CMD ", 1)[1])
    _monitor_command(image_check)
    assert image_check[1:3] == ["healthcheck", "--url"]
    for name in ("monitor", "web"):
        test = _services(compose)[name]["healthcheck"]["test"]
        assert test[0] == "CMD"
        _monitor_command(test[1:])
        assert test[1:] == image_check, name  # the image's own check
    assert _services(compose)["migrate"]["command"] == ["db", "upgrade"]
    _monitor_command(["monitor", *_services(compose)["migrate"]["command"]])


def test_monitor_command_check_rejects_what_is_not_one() -> None:
    with pytest.raises(click.UsageError):
        _monitor_command(["monitor", "healthcheck", "--nope"])
    with pytest.raises(AssertionError):
        _monitor_command(["monitor", "no-such-command"])
    with pytest.raises((AssertionError, click.UsageError)):  # click: a group needs a command
        _monitor_command(["monitor", "db"])


def _pip_install(command: str) -> str:
    """`pip install [options] TARGET` -> TARGET, unquoted."""
    words = shlex.split(command.split("&&")[0])
    assert words[:2] == ["pip", "install"], command
    targets = [word for word in words[2:] if not word.startswith("-")]
    assert len(targets) == 1, command
    return targets[0]


def test_the_image_installs_the_postgres_driver_as_the_readme_says() -> None:
    run = _dockerfile_instruction("RUN pip")
    installed = _pip_install("pip " + run)
    assert installed == ".[postgres]"  # compose.yaml runs it on PostgreSQL
    readme = README.read_text(encoding="utf-8")
    said = re.findall(r"[Ii]ts install step is[^`]*`([^`]+)`", readme)
    assert said, "README no longer says what the image installs"
    assert [_pip_install(command) for command in said] == [installed]
