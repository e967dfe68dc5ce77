"""docker-compose.yml cannot run here (no Docker engine); check it against the code instead."""
from __future__ import annotations

import shlex
from pathlib import Path

import yaml
from typer.main import get_command

from horus.cli.main import app
from horus.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
HORUS_SERVICES = {"init", "worker", "projections"}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


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
    env = compose()["services"]["worker"]["environment"]
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
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
