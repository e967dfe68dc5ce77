"""`horus chaos`: kill workers, PostgreSQL and the broker while a faulty venue answers, then prove from the
venue's own books that every COPY was placed at most once, in time, within its caps, never orphaned, never
lost, and recorded as it really filled (see horus/ops/chaos.py)."""

from __future__ import annotations

import typer

from horus.cli.common import console, fail, friendly_errors, settings


@friendly_errors
def chaos_command(
    followers: int = typer.Option(40, "--followers", min=1, help="paper followers, each following the leader"),
    fills: int = typer.Option(40, "--fills", min=1, help="leader fills (each one is a candidate per follower)"),
    kills: int = typer.Option(
        20, "--kills", min=0, help="random SIGKILLs (each followed by a restart), mostly executors"
    ),
    crash_kills: int = typer.Option(
        1, "--crash-kills", min=0, help="at least this many executor self-kills (HORUS_CRASH_AT) at each crash point"
    ),
    pg_restarts: int = typer.Option(1, "--pg-restarts", min=0, help="PostgreSQL killed -9 and restarted mid-run"),
    broker_restarts: int = typer.Option(
        1, "--broker-restarts", min=0, help="the Kafka broker killed -9 and restarted mid-run"
    ),
    instances: int = typer.Option(2, "--instances", min=1, help="executor processes (horus worker --stages execute)"),
    decide_workers: int = typer.Option(
        2, "--decide-workers", min=1, help="decide processes (horus worker --stages plan,decide)"
    ),
    seed: int = typer.Option(
        1, "--seed", help="seeds faults, funds, caps, sizes, kill moments, targets and crash points"
    ),
    timeout: float = typer.Option(900.0, "--timeout", min=10.0, help="seconds for the whole run"),
    fill_rate: float = typer.Option(2.0, "--fill-rate", min=0.01, help="leader fills per second"),
    kill_gap: float = typer.Option(
        1.5, "--kill-gap", min=0.1, help="mean seconds between kills (the run lasts long enough for all)"
    ),
    order_ttl: int = typer.Option(30, "--order-ttl", min=5, help="seconds an intent may be sent (follow order_ttl_s)"),
    clock_skew: float = typer.Option(
        2.0,
        "--clock-skew",
        min=0.0,
        max=30.0,
        help="seconds some workers' clocks run ahead or behind (libfaketime; 0: none)",
    ),
    keep: bool = typer.Option(False, "--keep", help="keep the run's private stack and topics (for horus tap)"),
) -> None:
    """Run the pipeline on a private stack under crashes, restarts, clock skew and venue faults, and compare the
    decisions with the venue's order log and trades, the ledger and execution.results. Prints
    `orders=N duplicates=0 orphans=0 lost=0 unresolved=0 overfilled=0 mismatched=0 late=0 overspent=0
    decided_twice=0` last; exits 1 if any count is not zero, the run did not drain, a reconcile round failed or
    fewer crash-point kills or restarts happened than asked; 2 if the run could not be carried out."""
    from horus.ops.chaos import ChaosError, ChaosOptions, run_chaos

    options = ChaosOptions(
        followers=followers,
        fills=fills,
        kills=kills,
        crash_kills=crash_kills,
        pg_restarts=pg_restarts,
        broker_restarts=broker_restarts,
        instances=instances,
        decide_workers=decide_workers,
        seed=seed,
        timeout=timeout,
        keep=keep,
        fill_rate=fill_rate,
        kill_gap_s=kill_gap,
        order_ttl_s=order_ttl,
        clock_skew_s=clock_skew,
    )

    def say(line: str) -> None:  # unwrapped: scripts parse these lines
        console.print(line, highlight=False, soft_wrap=True)

    try:
        report = run_chaos(settings(), options, say=say)
    except ChaosError as exc:
        fail(str(exc), code=2)
    for line in report.lines():
        say(line)
    raise typer.Exit(0 if report.ok else 1)
