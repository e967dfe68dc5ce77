"""What every command shares: settings, the console, and turning known errors into clear messages."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sys
import typing
from typing import NoReturn

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


def fail(message: str, code: int = 1) -> NoReturn:
    # soft wrap: an error naming a long path or id stays one line (greppable, copyable), whatever the terminal
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
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


def options_from(group: type, parameter: str):
    """Options declared once, for every command that takes them: `group` is a dataclass whose fields are
    `Annotated[type, typer.Option(...)]` with defaults. The command's `parameter` (annotated with `group`)
    stands, in the signature Typer reads, for those fields; the command receives one `group` holding them."""
    hints = typing.get_type_hints(group, include_extras=True)
    fields = dataclasses.fields(group)
    options = [
        inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=f.default, annotation=hints[f.name])
        for f in fields
    ]

    def decorate(command):
        own = list(inspect.signature(command, eval_str=True).parameters.values())
        at = [p.name for p in own].index(parameter)
        clash = {p.name for p in own} & {f.name for f in fields}
        if clash:
            raise TypeError(f"{command.__name__} declares {sorted(clash)} itself and in {group.__name__}")

        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            given = group(**{f.name: kwargs.pop(f.name) for f in fields})
            return command(*args, **kwargs, **{parameter: given})

        parameters = [*own[:at], *options, *own[at + 1 :]]
        # inspect reads __signature__ off any function (PEP 362); typeshed's functools._Wrapped does not declare it
        wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        return wrapper

    return decorate
