"""The generic Faust agent every stage uses: wait until the stage is ready, then batch, run, wait for
delivery, and only then ack."""

from __future__ import annotations

import asyncio

import faust

from streams.runtime import Batching, Runtime, StageSpec


def source_topic(app: faust.App, runtime: Runtime, spec: StageSpec) -> faust.TopicT:
    # raw bytes in: horus.codec decodes, so an undecodable message reaches the dead letters intact
    return app.topic(
        runtime.settings.topic(spec.source.name), key_serializer="raw", value_serializer="raw", allow_empty=True
    )


def register_stage(app: faust.App, runtime: Runtime, batching: Batching, spec: StageSpec) -> StageSpec:
    # concurrency=1: with more, Faust can commit past a message still in flight (faust-streaming#606)
    @app.agent(source_topic(app, runtime, spec), name=f"horus.{spec.name}", concurrency=1)
    async def stage_agent(stream):
        while not runtime.stage_ready(spec):  # e.g. plan: every config change folded before the first fill
            await asyncio.sleep(0.02)
        # noack_take: events are acked by us, after their outputs are on the broker
        async for events in stream.noack_take(batching.size, within=batching.within):
            await runtime.run_batch(spec, events)
            for event in events:
                await stream.ack(event)

    return spec
