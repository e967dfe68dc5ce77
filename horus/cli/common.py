"""What every command shares: settings, the console, and turning known errors into clear messages."""

from __future__ import annotations

import functools
import sys

import typer
from rich.console import Console

from horus.settings import Settings, load_settings

console = Console()
err_console = Console(stderr=True)


def settings() -> Settings:
    return load_settings()


LOOPBACK = "127.0.0.1"
METRICS_HOST_HELP = "address the metrics server binds (default loopback; 0.0.0.0 opens it to every interface)"


def serve_metrics(port: int, host: str = LOOPBACK):
    """Prometheus metrics on host:port, on a thread; loopback unless asked (the metrics carry no secrets, but
    they show volumes). Returns (server, thread)."""
    from prometheus_client import start_http_server

    return start_http_server(port, addr=host)


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def friendly_errors(func):
    """Known failures (stack, Kafka, database) end the command with one clear line, not a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from confluent_kafka import KafkaException

        from horus.ops.stack import StackError
        from horus.venue.guard import VenueGuardError

        try:
            return func(*args, **kwargs)
        except (StackError, VenueGuardError) as exc:  # e.g. paper mode against a venue that is not the simulator
            fail(str(exc))
        except KafkaException as exc:
            fail(f"Kafka: {exc}. Is the broker up? Try `horus stack status`.")
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)

    return wrapper
