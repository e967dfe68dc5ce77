"""The Faust app: one agent per selected stage, all writing through one confluent-kafka producer.

    app = create_app(settings, {"plan", "decide"})
    faust.Worker(app, loglevel="info").execute_from_commandline()

Each stage's logic is a pure function in horus.domain; the modules here only wire topics to it.
Choices, and why (architecture notes 2b, 2g):
- raw key/value serializers: horus.codec decodes, so an undecodable message is parked in
  dead.letters with its exact bytes and the stage goes on;
- topic_allow_declare=False, topic_disable_leader=True: `horus topics create` owns the topics and
  their configs; Faust would otherwise create missing ones with its own partition count;
- concurrency=1 per agent, batches via noack_take, acks only after the outputs are on the broker;
- memory store, no web server, no tables: no changelog topics to create;
- the consumer group is settings.app_id for every process; Faust's assignor gives a topic's partitions
  only to members subscribed to it, so processes may run different stage sets (tested: disjoint sets).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import faust

from horus.kafka.client import make_admin
from horus.settings import Settings
from horus.topics import CONFIG_CHANGES, DEAD_LETTERS, TopicSpec
from streams import decide, execute, plan, settle
from streams.runtime import Batching, Runtime, StageSpec
from streams.stage import register_stage

log = logging.getLogger("horus.streams")

STAGES: tuple[str, ...] = ("plan", "decide", "execute", "settle")
_MODULES = {"plan": plan, "decide": decide, "execute": execute, "settle": settle}
_SPECS = {  # topics each stage reads and writes (checked before the worker starts)
    "plan": (plan.LEADER_FILLS, plan.COPY_CANDIDATES, CONFIG_CHANGES),
    "decide": (decide.COPY_CANDIDATES, decide.COPY_DECISIONS),
    "execute": (execute.COPY_DECISIONS, execute.EXECUTION_RESULTS),
    "settle": (settle.EXECUTION_RESULTS, settle.SETTLEMENT_EVENTS),
}


class StageError(ValueError):
    pass


class WorkerSetupError(RuntimeError):
    """The worker cannot start as configured (message says what to do)."""


class TopicsNotReady(WorkerSetupError):
    pass


if TYPE_CHECKING:

    class HorusApp(faust.App):
        """The faust.App create_app returns, with what Horus hangs on it (the worker command closes
        `horus_runtime` after Faust stopped). For the type checker only: a real subclass of faust.App would get a
        logger of its own (mode names a Service's logger after its module), renaming every line the app logs."""

        horus_runtime: Runtime
        horus_stages: tuple[str, ...]
        horus_specs: dict[str, StageSpec]


def parse_stages(stages: str | Iterable[str]) -> tuple[str, ...]:
    """'plan,decide' or an iterable -> the stage names in pipeline order; StageError on unknown names."""
    names = [s.strip().lower() for s in (stages.split(",") if isinstance(stages, str) else stages)]
    names = [s for s in names if s]
    if not names:
        raise StageError(f"no stages given; choose from {', '.join(STAGES)}")
    unknown = sorted(set(names) - set(STAGES))
    if unknown:
        raise StageError(
            f"unknown stage{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; choose from {', '.join(STAGES)}"
        )
    return tuple(s for s in STAGES if s in names)


def required_topics(stages: Iterable[str]) -> list[TopicSpec]:
    specs: list[TopicSpec] = []
    for stage in parse_stages(stages):
        for spec in _SPECS[stage]:
            if spec not in specs:
                specs.append(spec)
    specs.append(DEAD_LETTERS)
    return specs


def check_topics(settings: Settings, stages: Iterable[str], timeout: float = 10.0) -> dict[str, int]:
    """Every topic the stages use exists, and the follower-keyed ones have one partition count
    (co-partitioning). Returns name -> partitions; raises TopicsNotReady with what to do."""
    metadata = make_admin(settings).list_topics(timeout=timeout)
    counts: dict[str, int] = {}
    missing = []
    for spec in required_topics(stages):
        name = settings.topic(spec.name)
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None:
            missing.append(name)
        else:
            counts[name] = len(topic.partitions)
    if missing:
        raise TopicsNotReady(
            f"missing topics: {', '.join(missing)}. Create them with `horus topics create` "
            "(the worker never creates topics: Faust would pick the wrong partition count)"
        )
    follower_keyed = {
        settings.topic(s.name): counts[settings.topic(s.name)] for s in required_topics(stages) if s.key == "follower"
    }
    if len(set(follower_keyed.values())) > 1:
        raise TopicsNotReady(
            f"follower-keyed topics differ in partition count {follower_keyed}: one follower "
            "would live on different partitions in different topics"
        )
    return counts


def require_lz4() -> None:
    """Every Horus producer compresses with lz4 (horus.kafka.client); Faust's aiokafka consumer can only
    read that with cramjam installed, and otherwise crashes the worker on the first fetch."""
    from aiokafka.codec import has_lz4

    if not has_lz4():
        raise WorkerSetupError(
            "aiokafka cannot decompress lz4 here: install `aiokafka[lz4]` (cramjam), which Horus's producers use"
        )


# stages that are services with their own loop (the executor: per-follower concurrency, its own consumer
# group `<app_id>-execute`); `horus worker` runs them on a thread beside the runner (horus.cli.worker)
SERVICES = ("execute",)


def build_specs(runtime: Runtime, stages: Iterable[str]) -> dict[str, StageSpec]:
    """Each selected stage wired to its topics and pure function; any runner can drive them."""
    return {name: _MODULES[name].build(runtime) for name in parse_stages(stages) if name not in SERVICES}


def create_app(
    settings: Settings,
    stages: str | Iterable[str] = STAGES,
    *,
    batching: Batching | None = None,
    runtime: Runtime | None = None,
    **faust_settings: Any,
) -> HorusApp:
    """A Faust app with the agents of just `stages`; its Runtime is `app.horus_runtime`."""
    selected = parse_stages(stages)
    require_lz4()
    batching = batching or Batching()
    datadir = settings.state_dir / "faust" / settings.app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = dict(
        broker=[f"kafka://{host.strip()}" for host in settings.kafka_bootstrap.split(",")],
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        topic_allow_declare=False,
        topic_disable_leader=True,
        web_enabled=False,
        autodiscover=False,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        datadir=str(datadir),
    )
    options.update(faust_settings)
    app = cast("HorusApp", faust.App(settings.app_id, **options))  # its horus_* attributes are set below
    runtime = runtime or Runtime(settings)
    app.horus_runtime = runtime
    app.horus_stages = selected
    specs = build_specs(runtime, selected)
    partitioned = [name for name, spec in specs.items() if spec.on_assign is not None]
    if partitioned:  # their state is rebuilt per assigned partition: a hook Faust agents do not give us
        runtime.close()
        raise StageError(
            f"stage {', '.join(partitioned)} runs on the confluent runner only (its state is rebuilt "
            "per assigned partition; docs/decisions.md): run it with `--runner confluent`"
        )
    app.horus_specs = {name: register_stage(app, runtime, batching, spec) for name, spec in specs.items()}

    @app.task
    async def start_runtime() -> None:
        log.info(
            "horus worker: stages %s, consumer group %s, topics prefixed %r",
            ",".join(selected),
            settings.app_id,
            settings.topic_prefix,
        )
        runtime.start()

    # mode types a handler with mypy_extensions' VarArg/NamedArg, which no function matches under mypy
    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def close_runtime(app: faust.App, **kwargs: Any) -> None:  # after the consumer stopped and committed
        runtime.close()
        _remove_empty_dirs(datadir)  # the memory store leaves only empty table directories

    return app


def _remove_empty_dirs(root: Path) -> None:
    for path, _dirs, _files in sorted(os.walk(root), key=lambda entry: -len(entry[0])):
        try:
            os.rmdir(path)
        except OSError:  # not empty (or gone): leave it
            pass
