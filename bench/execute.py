"""Execute-stage benchmark: COPY decisions -> signed, prewritten, POSTed orders against the local CLOB
simulator with 250 ms latency (a separate process), measured end to end on real Kafka + Postgres.

Prints, each beside a same-run reference:
- signing µs/order (order_for_intent + sign_order + body, as the executor does it) vs bare sign_order;
- orders/s per executor instance (first decision consumed -> last result acked) vs the venue ceiling:
  the same number of pre-signed bodies POSTed straight at the simulator with the same concurrency;
- decision-seen -> order-sent p50 / p99 at that load;
- one leader fill fanned out to N followers: seconds until every order was sent (cold: API keys derived
  on first use; warm: a second fill to the same followers);
- light load (default 10 decisions/s for 20 s, one at a time): where each decision's time goes, from the
  decision produced to its result produced / read back (wall clock; the bench and executor share a host).

    .venv/bin/python bench/execute.py [--followers 5000] [--latency-ms 250] [--light-rate 10 --light-seconds 20]
    .venv/bin/python bench/execute.py --light-only --latency-ms 60   # the demo's venue latency, no bursts
"""

from __future__ import annotations

import argparse
import asyncio
import secrets as pysecrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
CONDITION = "0x" + "c0" * 32


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_venue(latency_ms: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    code = (
        "from horus.venue.simulator.clob import SimulatorConfig, MarketConfig, TokenConfig\n"
        "from horus.venue.simulator.clob.runner import serve_forever\n"
        f"m = MarketConfig(condition_id='{CONDITION}', tokens=[TokenConfig(token_id='{TOKEN}', price='0.5')], "
        "tick_size='0.01', min_order_size=1, levels=5, level_size=10**7, replenish=True)\n"
        f"serve_forever(SimulatorConfig(markets=[m], default_collateral_e6=10**13, "
        f"faults={{'latency_ms': {latency_ms}}}), '127.0.0.1', {port})\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_sim/health", timeout=1).status_code == 200:
                return proc, f"http://127.0.0.1:{port}"
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("simulator did not start")


def signing_reference(n: int = 2000) -> tuple[float, float]:
    from decimal import Decimal

    from horus.venue.polymarket.orders import exchange_for, order_body, order_for_intent, sign_order

    key = "0x" + pysecrets.token_bytes(32).hex()
    from horus.venue.polymarket.orders import address_of

    address = address_of(key)
    domain = exchange_for("v1", False)
    fields = [
        order_for_intent(
            f"intent-{i}",
            token_id=TOKEN,
            side="BUY",
            size_e6=10_000_000,
            worst_price=Decimal("0.55"),
            tick_size=Decimal("0.01"),
            order_type="FAK",
            maker=address,
            signer=address,
            signature_type=0,
            builder="0x" + "00" * 32,
            timestamp_ms=1_764_000_000_000,
        )
        for i in range(n)
    ]
    started = time.perf_counter()
    for f in fields:
        sign_order(f, domain, key)
    bare = (time.perf_counter() - started) / n * 1e6
    started = time.perf_counter()
    for i in range(n):
        f = order_for_intent(
            f"intent-{i}",
            token_id=TOKEN,
            side="BUY",
            size_e6=10_000_000,
            worst_price=Decimal("0.55"),
            tick_size=Decimal("0.01"),
            order_type="FAK",
            maker=address,
            signer=address,
            signature_type=0,
            builder="0x" + "00" * 32,
            timestamp_ms=1_764_000_000_000,
        )
        order_body(sign_order(f, domain, key), owner="k", order_type="FAK")
    full = (time.perf_counter() - started) / n * 1e6
    return bare, full


async def venue_ceiling(url: str, n: int, concurrency: int) -> float:
    """POST n pre-signed orders with `concurrency` in flight through the executor's venue client (one ClobHttp,
    aiohttp, a connection per in-flight request): the executor minus Kafka, Postgres and signing."""
    from decimal import Decimal

    from horus.venue.polymarket.auth import ApiCreds
    from horus.venue.polymarket.clob import ClobHttp, serialize_body
    from horus.venue.polymarket.orders import address_of, exchange_for, order_body, order_for_intent, sign_order

    venue = ClobHttp(url, max_connections=concurrency, timeout_s=30)
    domain = exchange_for("v1", False)
    jobs = []
    keys = ["0x" + pysecrets.token_bytes(32).hex() for _ in range(min(n, 200))]
    creds = {}
    for key in keys:
        reply = await venue.derive_api_key(key)
        creds[key] = ApiCreds.from_venue(reply.body)
    for i in range(n):
        key = keys[i % len(keys)]
        address = address_of(key)
        f = order_for_intent(
            f"ceiling-{uuid.uuid4().hex}",
            token_id=TOKEN,
            side="BUY",
            size_e6=10_000_000,
            worst_price=Decimal("0.55"),
            tick_size=Decimal("0.01"),
            order_type="FAK",
            maker=address,
            signer=address,
            signature_type=0,
            builder="0x" + "00" * 32,
            timestamp_ms=int(time.time() * 1000),
        )
        body = order_body(sign_order(f, domain, key), owner=creds[key].api_key, order_type="FAK")
        jobs.append((serialize_body(body), creds[key], address))
    gate = asyncio.Semaphore(concurrency)

    async def post(job):
        async with gate:
            reply = await venue.post_order(*job)
            assert reply.ok, reply

    started = time.perf_counter()
    await asyncio.gather(*(post(j) for j in jobs))
    elapsed = time.perf_counter() - started
    await venue.aclose()
    return n / elapsed


def pct(values: list[float], q: float) -> float:
    """The q-quantile of seconds, in ms."""
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


def spread(values: list[float]) -> str:
    return f"p50 {pct(values, 0.5):,.1f} ms p99 {pct(values, 0.99):,.1f} ms"


class Probe:
    """Wall-clock timestamps per intent, taken inside the executor by wrapping a few of its methods."""

    def __init__(self) -> None:
        self.at: dict[str, dict[str, float]] = {}
        self.sent: list[float] = []
        self.seen_to_sent: list[float] = []

    def mark(self, intent: str, what: str, when: float | None = None) -> None:
        self.at.setdefault(intent, {})[what] = time.time() if when is None else when

    def clear(self) -> None:
        self.at.clear()
        self.sent.clear()
        self.seen_to_sent.clear()

    def install(self) -> None:
        from horus.execution import executor, ledger, service

        probe = self
        wall_minus_mono = time.time() - time.monotonic()
        prepare, submit_one, write, emit = (
            executor.Executor.prepare,
            executor.Executor._submit,
            ledger.GroupWriter.write,
            service.ExecuteService.emit,
        )

        async def timed_prepare(self, decisions, seen_at=None):
            work = await prepare(self, decisions, seen_at)
            for w in work:
                probe.mark(w.intent_id, "seen", w.seen_at + wall_minus_mono)
                probe.mark(w.intent_id, "prepared")
            return work

        async def timed_submit(self, row, account, seen_at, landed):  # decision consumed -> first POST leaves
            now = time.monotonic()
            probe.seen_to_sent.append(now - seen_at)
            probe.sent.append(now)
            probe.mark(row.idempotency_key, "sent")
            result = await submit_one(self, row, account, seen_at, landed)
            probe.mark(row.idempotency_key, "replied")
            return result

        async def timed_write(self, update):
            won = await write(self, update)
            if update.result is not None:
                probe.mark(update.result["intent_id"], "committed")
            return won

        async def timed_emit(self, record):
            await emit(self, record)
            probe.mark(record["intent_id"], "acked")

        executor.Executor.prepare, executor.Executor._submit = timed_prepare, timed_submit
        ledger.GroupWriter.write, service.ExecuteService.emit = timed_write, timed_emit


# the benchmark script: its phases one after another, each printed as it ends
def main() -> None:  # noqa: C901
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=5000)
    parser.add_argument("--latency-ms", type=float, default=250)
    parser.add_argument("--in-flight", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--light-rate", type=float, default=10, help="decisions/s of the light-load run (0: skip)")
    parser.add_argument("--light-seconds", type=float, default=20)
    parser.add_argument("--light-only", action="store_true", help="skip the bursts (warm the light followers)")
    args = parser.parse_args()

    from pydantic import SecretStr

    from horus.codec import default_codec
    from horus.credentials import FollowerSecrets, generate_key
    from horus.db.engine import scratch_database
    from horus.domain import ids
    from horus.domain.config import FollowerConfig
    from horus.domain.events import envelope
    from horus.kafka.admin import create_topics, delete_topics_with_prefix
    from horus.kafka.client import (
        assign_from_beginning,
        flush_or_raise,
        make_consumer,
        make_producer,
        poll_batch,
        produce_reliably,
    )
    from horus.settings import load_settings
    from horus.topics import COPY_DECISIONS, EXECUTION_RESULTS
    from horus.venue.polymarket.orders import address_of
    from streams.execute import run_service

    if not args.light_only:
        bare_us, full_us = signing_reference()
        print(f"signing: sign_order {bare_us:.0f} µs/order; order_for_intent+sign+body {full_us:.0f} µs/order")

    venue_proc, url = start_venue(args.latency_ms)
    base = load_settings()
    run = uuid.uuid4().hex[:8]
    try:
        ceiling = float("nan")
        if not args.light_only:
            ceiling = asyncio.run(venue_ceiling(url, 4000, min(args.in_flight, 1000)))
            print(
                f"venue ceiling (pre-signed POSTs through the same client, {min(args.in_flight, 1000)} in flight, "
                f"{args.latency_ms:g} ms latency): {ceiling:,.0f} orders/s"
            )
        with scratch_database(base, f"horus_bench_exec_{run}") as db:
            s = db.model_copy(
                update={
                    "topic_prefix": f"bench-exec-{run}.",
                    "app_id": f"bench-exec-{run}",
                    "credentials_key": SecretStr(generate_key()),
                    "clob_url": url,
                    "gamma_url": url,
                    "venue_mode": "paper",
                    "execute_max_in_flight": args.in_flight,
                    "execute_batch_size": args.batch,
                    "reconcile_interval_s": 30.0,
                    "execute_default_ttl_s": 600.0,
                }
            )
            create_topics(s)
            n_followers = min(args.followers, 200) if args.light_only else args.followers
            keys = ["0x" + pysecrets.token_bytes(32).hex() for _ in range(n_followers)]
            followers = [address_of(k).lower() for k in keys]
            secrets = {
                f"bench-{i}": FollowerSecrets(private_key=k, api_key="p", api_secret="eA==", api_passphrase="p")
                for i, k in enumerate(keys)
            }
            configs = {
                f: FollowerConfig(follower=f, signature_type=0, credentials_ref=f"bench-{i}")
                for i, f in enumerate(followers)
            }
            probe = Probe()
            stop = threading.Event()

            def service():
                probe.install()
                run_service(s, configs.get, stop, secrets=secrets.__getitem__, reconcile=False)

            thread = threading.Thread(target=service, daemon=True)
            thread.start()
            producer = make_producer(s)
            codec = default_codec()
            reader = make_consumer(s)
            assign_from_beginning(reader, [s.topic(EXECUTION_RESULTS.name)])
            seen = 0
            results: dict[str, tuple[int, float]] = {}  # intent -> (result produced_at_us, reader saw it at)

            def decision(fill_id: str, follower: str) -> tuple[str, bytes]:
                now = time.time_ns() // 1000
                follow = f"bench-{follower}"
                candidate = ids.candidate_id(fill_id, follow)
                intent = ids.intent_id(follow, fill_id)
                d = {
                    "envelope": envelope(
                        ids.decision_id(candidate), "decide", now, causation_id=candidate, produced_at_us=now
                    ),
                    "candidate_id": candidate,
                    "follow_id": follow,
                    "follower": follower,
                    "leader_fill_id": fill_id,
                    "action": "COPY",
                    "intent_id": intent,
                    "token_id": TOKEN,
                    "side": "BUY",
                    "size_e6": 10_000_000,
                    "worst_price": "0.55",
                    "order_type": "FAK",
                    "expires_at_us": None,
                    "reason_code": None,
                    "reason_detail": None,
                }
                return intent, codec.encode("CopyDecision", d)

            def read_results(target: int, limit_s: float = 600) -> None:
                nonlocal seen
                started = time.monotonic()
                while seen < target:
                    got = poll_batch(reader, 10000, 0.05)
                    now = time.time()
                    for m in got:
                        _, record = codec.decode(m.value())
                        results[record["intent_id"]] = (record["envelope"]["produced_at_us"], now)
                    seen += len(got)
                    if time.monotonic() - started > limit_s:
                        raise RuntimeError(f"only {seen} of {target} results after {limit_s:.0f} s")

            def burst(tag: str, who: list[str]) -> tuple[float, float]:
                fill_id = ids.make_id("bench-fill", tag, run)
                for f in who:
                    _, data = decision(fill_id, f)
                    produce_reliably(producer, s.topic(COPY_DECISIONS.name), data, key=f)
                flush_or_raise(producer)
                started = time.monotonic()
                probe.clear()
                read_results(seen + len(who))
                sent_all = max(probe.sent) - started if probe.sent else float("nan")  # produced -> last POST out
                return time.monotonic() - started, sent_all

            n = len(followers)
            if not args.light_only:
                cold_total, cold_sent = burst("cold", followers)
                p_cold = list(probe.seen_to_sent)
                warm_total, warm_sent = burst("warm", followers)
                p_warm = list(probe.seen_to_sent)
                print(
                    f"burst of {n} followers, cold (API keys derived on first use): all sent in {cold_sent:.2f} s, "
                    f"all results in {cold_total:.2f} s ({n / cold_total:,.0f} orders/s); "
                    f"seen->sent {spread(p_cold)}"
                )
                print(
                    f"burst of {n} followers, warm: all sent in {warm_sent:.2f} s, all results in "
                    f"{warm_total:.2f} s ({n / warm_total:,.0f} orders/s = {n / warm_total / ceiling:.0%} of the "
                    f"venue ceiling); seen->sent {spread(p_warm)}, mean "
                    f"{statistics.mean(p_warm) * 1000 if p_warm else float('nan'):.0f} ms"
                )

            if args.light_rate > 0:
                light = followers[:200]
                if args.light_only:
                    burst("warmup", light)  # API keys derived, connections open
                probe.clear()
                results.clear()
                produced: dict[str, int] = {}
                total = int(args.light_rate * args.light_seconds)
                interval = 1 / args.light_rate
                started = time.monotonic()
                for i in range(total):  # one decision at a time, paced; results read as they come
                    fill_id = ids.make_id("bench-light", run, i)
                    follower = light[i % len(light)]
                    intent, data = decision(fill_id, follower)
                    produced[intent] = time.time()
                    produce_reliably(producer, s.topic(COPY_DECISIONS.name), data, key=follower)
                    producer.flush(1)
                    due = started + (i + 1) * interval
                    while time.monotonic() < due:
                        got = poll_batch(reader, 1000, max(0.0, min(0.01, due - time.monotonic())))
                        now = time.time()
                        for m in got:
                            _, record = codec.decode(m.value())
                            results[record["intent_id"]] = (record["envelope"]["produced_at_us"], now)
                        seen += len(got)
                read_results(seen + total - len(results))

                def between(a: str, b: str) -> list[float]:
                    return [
                        probe.at[k][b] - probe.at[k][a]
                        for k in produced
                        if a in probe.at.get(k, {}) and b in probe.at.get(k, {})
                    ]

                for k, t in produced.items():
                    probe.mark(k, "produced", t)
                    if k in results:
                        probe.mark(k, "result_produced", results[k][0] / 1e6)
                        probe.mark(k, "result_read", results[k][1])
                print(
                    f"light load: {args.light_rate:g} decisions/s for {args.light_seconds:g} s "
                    f"({len(results)} results, {args.latency_ms:g} ms venue latency):"
                )
                for label, a, b in [
                    ("decision produced -> seen", "produced", "seen"),
                    ("seen -> prewritten", "seen", "prepared"),
                    ("seen -> POST sent", "seen", "sent"),
                    ("POST sent -> reply", "sent", "replied"),
                    ("reply -> outcome committed", "replied", "committed"),
                    ("committed -> result acked", "committed", "acked"),
                    ("decision produced -> result produced", "produced", "result_produced"),
                    ("decision produced -> result read", "produced", "result_read"),
                ]:
                    print(f"  {label:38s} {spread(between(a, b))}")
            stop.set()
            thread.join(60)
            reader.close()
            delete_topics_with_prefix(base, s.topic_prefix)
    finally:
        venue_proc.terminate()
        venue_proc.wait(10)


if __name__ == "__main__":
    main()
