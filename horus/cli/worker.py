"""`horus worker [--stages plan,decide,execute,settle] [--runner confluent|faust]`: run pipeline stages."""

from __future__ import annotations

import typer

from horus.cli.common import LOOPBACK, METRICS_HOST_HELP, fail, friendly_errors, serve_metrics, settings

LOGLEVELS = ("debug", "info", "warning", "error", "critical")
RUNNERS = ("faust", "confluent")


def start_executor(config, stop):
    """The execute service on a thread of its own (it folds its follower accounts, follows and switches from
    config.changes and control.commands itself). If it dies, the worker dies with it (exit 70) rather than run
    half a pipeline."""
    import logging
    import os
    import threading

    from horus.kafka.output import EXIT_OUTPUT_LOST
    from streams.execute import run_service

    def serve() -> None:
        try:
            run_service(config, None, stop)
        except BaseException:  # noqa: BLE001 - logged, then the process exits
            logging.getLogger("horus.execution").exception("the execute service failed")
            logging.shutdown()
            os._exit(EXIT_OUTPUT_LOST)

    thread = threading.Thread(target=serve, name="horus-execute", daemon=True)
    thread.start()
    return thread


def _run_confluent(config, selected, batching, loglevel: str) -> None:
    import logging

    from horus.logs import configure_logging
    from horus.signals import stop_on_signals
    from streams.app import build_specs
    from streams.confluent_loop import ConfluentStageLoop
    from streams.runtime import Runtime

    configure_logging(loglevel)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per venue request drowns the log
    stop = stop_on_signals()
    executor = start_executor(config, stop) if "execute" in selected else None
    runtime = Runtime(config)
    specs = list(build_specs(runtime, selected).values())
    if specs:
        ConfluentStageLoop(config, runtime, specs, batching).run(stop)
    else:
        runtime.close()
        stop.wait()
    if executor is not None:
        stop.set()
        executor.join(60)


@friendly_errors
def worker(
    stages: str = typer.Option(
        "plan,decide,execute,settle",
        "--stages",
        "-s",
        help="comma-separated stages to run in this process: plan, decide, execute, settle",
    ),
    loglevel: str = typer.Option("info", "--loglevel", "-l", help="debug, info, warning, error or critical"),
    batch_size: int = typer.Option(1000, "--batch-size", min=1, help="max messages per batch and stage"),
    batch_within: float = typer.Option(
        0.01,
        "--batch-within",
        min=0.0,
        help="Faust runner: seconds a batch waits to fill (the latency a lone message "
        "pays); the confluent runner takes what is fetched at once",
    ),
    metrics_port: int = typer.Option(0, "--metrics-port", min=0, help="serve Prometheus metrics on this port (0: off)"),
    metrics_host: str = typer.Option(LOOPBACK, "--metrics-host", help=METRICS_HOST_HELP),
    runner: str = typer.Option(
        "confluent",
        "--runner",
        help="confluent (a plain consumer loop: 38% of the raw reference) or faust "
        "(16%, misses DESIGN's 25% goal; see docs/decisions.md). "
        "Never mix both under one HORUS_APP_ID",
    ),
) -> None:
    """Run the selected pipeline stages as one worker (Ctrl-C or SIGTERM stops it cleanly).

    Stages can run in separate processes: all processes share the consumer group HORUS_APP_ID and
    each stage's partitions are spread over the processes that run it. Topics must exist
    (`horus topics create`)."""
    from streams.app import StageError, WorkerSetupError, check_topics, create_app, parse_stages, require_lz4
    from streams.runtime import Batching

    try:
        selected = parse_stages(stages)
    except StageError as exc:
        fail(str(exc), code=2)
    if runner not in RUNNERS:
        fail(f"unknown runner {runner!r}; choose from {', '.join(RUNNERS)}", code=2)
    if loglevel.lower() not in LOGLEVELS:
        fail(f"unknown log level {loglevel!r}; choose from {', '.join(LOGLEVELS)}", code=2)
    config = settings()
    try:
        if runner == "faust":  # aiokafka reads our lz4-compressed topics only with cramjam
            require_lz4()
        check_topics(config, selected)
    except WorkerSetupError as exc:
        fail(str(exc))
    if config.venue_mode == "paper" and {"decide", "execute"} & set(selected):
        from horus.venue.guard import VenueGuardError, require_venue

        try:  # one clear line now, rather than from a stage that already started
            require_venue(config)
        except VenueGuardError as exc:
            fail(str(exc))
    if metrics_port:
        serve_metrics(metrics_port, metrics_host)
    if runner == "confluent":
        _run_confluent(config, selected, Batching(size=batch_size, within=batch_within), loglevel)
        return
    import faust

    if selected == ("execute",):  # nothing for Faust to run
        _run_confluent(config, selected, Batching(size=batch_size, within=batch_within), loglevel)
        return
    import threading

    executor_stop, executor = threading.Event(), None
    if "execute" in selected:  # a service with its own loop: a thread beside the Faust worker
        executor = start_executor(config, executor_stop)
        selected = tuple(s for s in selected if s != "execute")
    app = create_app(config, selected, batching=Batching(size=batch_size, within=batch_within))
    faust_worker = faust.Worker(app, loglevel=loglevel.lower(), quiet=True, redirect_stdouts=False)
    try:
        faust_worker.execute_from_commandline()  # handles SIGTERM itself, then raises SystemExit
    finally:
        app.horus_runtime.close()
        if executor is not None:  # Faust owns the signals, so the executor is stopped here, after Faust
            executor_stop.set()
            executor.join(60)
