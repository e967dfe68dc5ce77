"""docker-compose.yml cannot run here (no Docker engine); check it against the code instead."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from typer.main import get_command

from horus.cli.main import app
from horus.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
HORUS_SERVICES = {"init", "worker", "projections"}
ONE_SHOT = {"init"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def interpolated(env: dict, shell: dict[str, str] | None = None) -> dict[str, str]:
    """The service environment as docker compose hands it over: ${VAR:-default} from the shell's variables."""
    shell = shell or {}
    return {
        key: _VARIABLE.sub(lambda m: shell.get(m.group(1)) or m.group(2) or "", str(value))
        for key, value in env.items()
    }


def test_compose_has_the_stack_and_the_services():
    services = compose()["services"]
    assert {"kafka", "postgres"} | HORUS_SERVICES <= set(services)
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper


def test_every_horus_setting_in_compose_is_a_real_setting():
    known = {f"HORUS_{name.upper()}" for name in Settings.model_fields}
    for name in HORUS_SERVICES:
        env = compose()["services"][name]["environment"]
        assert env, name
        unknown = set(env) - known
        assert not unknown, f"{name} sets settings the code does not read: {unknown}"
        assert {"HORUS_KAFKA_BOOTSTRAP", "HORUS_DATABASE_URL"} <= set(env)


def test_settings_in_compose_are_read_by_the_code(monkeypatch):
    env = interpolated(compose()["services"]["worker"]["environment"])
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.kafka_bootstrap == env["HORUS_KAFKA_BOOTSTRAP"]
    assert settings.database_url == env["HORUS_DATABASE_URL"]
    assert settings.partitions == int(env["HORUS_PARTITIONS"])


def _horus_commands(service: dict) -> list[list[str]]:
    command = service["command"]
    if command[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in command[2].split("&&")]
    return [command]


def test_service_commands_exist_in_the_cli():
    cli = get_command(app)
    for name in HORUS_SERVICES:
        for argv in _horus_commands(compose()["services"][name]):
            assert argv[0] == "horus", argv
            group = cli
            for word in argv[1:]:
                if word.startswith("-"):
                    break
                assert word in group.commands, f"`{' '.join(argv)}`: no command {word!r}"
                group = group.commands[word]
                if not hasattr(group, "commands"):
                    break


def test_the_worker_trades_paper_on_the_compose_simulator_by_default(monkeypatch):
    services = compose()["services"]
    for key, value in interpolated(services["worker"]["environment"]).items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    assert settings.venue_mode == "paper" and settings.gamma_url == ""
    url = urlsplit(settings.clob_url)
    simulator = services[url.hostname]  # a service of this file: the CLOB simulator
    assert simulator["command"][:2] == ["horus", "venue"]
    assert simulator["command"][simulator["command"].index("--port") + 1] == str(url.port)
    assert services["worker"]["depends_on"][url.hostname] == {"condition": "service_healthy"}
    assert "/_sim/identity" in " ".join(simulator["healthcheck"]["test"])  # healthy = answers as the simulator
    assert "ports" not in simulator  # reachable on the compose network only


def test_live_is_only_ever_an_explicit_setting(monkeypatch):
    for name, service in compose()["services"].items():
        env = service.get("environment") or {}
        assert interpolated(env).get("HORUS_VENUE_MODE", "paper") == "paper", name
    worker = compose()["services"]["worker"]["environment"]
    live = interpolated(worker, {"HORUS_VENUE_MODE": "live", "HORUS_CLOB_URL": "https://clob.polymarket.com"})
    for key, value in live.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    assert settings.venue_mode == "live" and settings.clob_url == "https://clob.polymarket.com"


def _published(port) -> tuple[str | None, str]:
    """(host ip, text) of a `ports:` entry, short ("[ip:]host:container") or long ({host_ip, published, ...})."""
    if isinstance(port, dict):
        return port.get("host_ip"), str(port)
    parts = str(port).rsplit(":", 2)
    return (parts[0] if len(parts) == 3 else None), str(port)


def test_no_port_is_published_beyond_loopback():
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            host_ip, text = _published(port)
            assert host_ip == "127.0.0.1", f"{name} publishes {text} on every interface of the host"


def test_every_long_running_service_restarts():
    """The design relies on a restart after exit 70 (a lost delivery, a rebuild that cannot finish)."""
    for name, service in compose()["services"].items():
        if name in ONE_SHOT:
            continue
        assert str(service.get("restart", "no")).split(":")[0] in {"always", "unless-stopped", "on-failure"}, name


def test_the_simulator_command_exists_in_the_cli():
    cli = get_command(app)
    argv = compose()["services"]["clob-sim"]["command"]
    assert argv[0] == "horus" and argv[1] in cli.commands
