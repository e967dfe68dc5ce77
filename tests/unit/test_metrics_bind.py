"""D15: Prometheus metrics bind 127.0.0.1 unless `--metrics-host` opens them (they carry volumes, not secrets)."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import click
from typer.main import get_command

from horus.cli.common import serve_metrics
from horus.cli.main import app

ROOT = Path(__file__).resolve().parents[2]


def _commands(group: click.Command, path: str = "horus"):
    yield path, group
    for name, sub in getattr(group, "commands", {}).items():
        yield from _commands(sub, f"{path} {name}")


def test_every_command_serving_metrics_binds_loopback_by_default():
    serving = []
    for path, command in _commands(get_command(app)):
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        if "--metrics-port" not in options:
            continue
        serving.append(path)
        host = next(p for p in command.params if "--metrics-host" in getattr(p, "opts", []))
        assert host.default == "127.0.0.1", path
    assert {"horus worker", "horus projections run", "horus ingest chain", "horus ingest data-api"} <= set(serving)


def test_only_the_helper_starts_a_metrics_server():
    starts = [
        str(p.relative_to(ROOT))
        for folder in ("horus", "streams", "projections", "bench")
        for p in (ROOT / folder).rglob("*.py")
        if re.search(r"start_(http|wsgi)_server\(", p.read_text())
    ]
    assert starts == ["horus/cli/common.py"], starts


def test_the_helper_binds_loopback_and_serves():
    server, thread = serve_metrics(0)
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            assert reply.status == 200
    finally:
        server.shutdown()
        server.server_close()
