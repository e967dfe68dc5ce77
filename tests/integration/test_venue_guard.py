"""D1: paper mode only ever talks to the Horus CLOB simulator; live is an explicit choice and says so.

"A real venue" here is a loopback HTTP server that answers every venue request exactly as a simulator behind
it does (it forwards them) but has no identity route, as Polymarket has none: a paper executor or decide
pointed at it must refuse to start and send it nothing but the identity question. Never the real internet.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from horus.settings import Settings
from horus.venue.guard import VenueGuardError, require_venue, require_venue_async
from horus.venue.simulator.identity import IDENTITY_PATH
from tests.integration.execute_helpers import (
    Results,
    ServiceThread,
    accounts_of,
    all_terminal,
    copy_decision,
    make_followers,
    paper_settings,
    private_settings,
    produce_decisions,
    simulator,
)

pytestmark = pytest.mark.integration


class LookalikeVenue:
    """Forwards every request to `upstream` and returns its answer, except /_sim/* (404, as on a real venue).
    Records (method, path) of every request it got."""

    def __init__(self, upstream: str) -> None:
        self.requests: list[tuple[str, str]] = []
        venue = self
        client = httpx.Client(base_url=upstream, timeout=30)

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                venue.requests.append((self.command, self.path.split("?")[0]))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/_sim/"):
                    status, content = 404, b'{"error":"not found"}'
                else:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                    reply = client.request(self.command, self.path, content=body, headers=headers)
                    status, content = reply.status_code, reply.content
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_DELETE = _forward

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.client = client

    def beyond_identity(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r != ("GET", IDENTITY_PATH)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()


@pytest.fixture
def sim():
    with simulator() as running:
        yield running


@pytest.fixture
def lookalike(sim):
    venue = LookalikeVenue(sim.url)
    yield venue
    venue.stop()


def test_the_guard_refuses_paper_against_anything_but_the_simulator(sim, lookalike, caplog):
    paper = Settings(venue_mode="paper", clob_url=lookalike.url)
    with pytest.raises(VenueGuardError) as refused:
        require_venue(paper)
    message = str(refused.value)
    assert "HORUS_CLOB_URL" in message and lookalike.url in message
    assert "horus stack up" in message and "HORUS_VENUE_MODE=live" in message
    with pytest.raises(VenueGuardError):
        asyncio.run(require_venue_async(paper))
    assert lookalike.beyond_identity() == []

    closed = Settings(venue_mode="paper", clob_url="http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(VenueGuardError, match="no answer"):
        require_venue(closed)
    with pytest.raises(VenueGuardError, match="HORUS_CLOB_URL"):
        require_venue(Settings(venue_mode="paper", clob_url="https://user:pw@127.0.0.1:9"))

    require_venue(Settings(venue_mode="paper", clob_url=sim.url))  # the simulator itself: fine
    asyncio.run(require_venue_async(Settings(venue_mode="paper", clob_url=sim.url)))

    before = len(lookalike.requests)
    with caplog.at_level(logging.WARNING, logger="horus.venue.guard"):
        require_venue(Settings(venue_mode="live", clob_url=lookalike.url))
        require_venue(Settings(venue_mode="dry-run", clob_url=lookalike.url))
    assert [r.getMessage() for r in caplog.records] == [
        f"==== LIVE MODE: real orders to {lookalike.url} (HORUS_VENUE_MODE=live) ===="
    ]
    assert len(lookalike.requests) == before  # live and dry-run ask nothing


def test_the_credentials_never_leave_in_the_refusal():
    with pytest.raises(VenueGuardError) as refused:
        require_venue(Settings(venue_mode="paper", clob_url="http://operator:s3cret@127.0.0.1:9/"))
    assert "s3cret" not in str(refused.value) and "operator" not in str(refused.value)


def test_a_paper_executor_refuses_a_real_looking_venue_and_posts_nothing(settings, sim, lookalike):
    s = private_settings(settings).model_copy(
        update={"clob_url": lookalike.url, "gamma_url": "", "venue_mode": "paper"}
    )
    followers = make_followers(paper_settings(s, sim), 1)
    decision = copy_decision(followers[0].address, 0, tag="guard")
    produce_decisions(s, [decision])
    service = ServiceThread(s, followers)
    service.thread.join(20)
    ran = service.thread.is_alive()
    if ran:
        service.stop.set()
    assert lookalike.beyond_identity() == []  # no API key derived, no balance read, no order POSTed
    assert not ran, "the executor ran against a venue that is not the simulator"
    assert isinstance(service.error, VenueGuardError) and "HORUS_CLOB_URL" in str(service.error)
    assert sim.state.counts.posts == 0

    # `horus reconcile` builds the same service: refused the same way
    from horus.execution.service import ExecuteService

    reconciler = ExecuteService(s, follower_account=accounts_of(followers), secrets=None)
    with pytest.raises(VenueGuardError):
        asyncio.run(reconciler.reconcile_only(asyncio.Event(), once=True))
    assert lookalike.beyond_identity() == []

    # the same executor against the simulator itself starts and trades
    results = Results(s)
    with ServiceThread(paper_settings(s, sim), followers):
        latest = results.wait(all_terminal({decision["intent_id"]}))
    assert latest[decision["intent_id"]]["status"] == "FILLED" and sim.state.counts.posts == 1
    results.close()


def test_paper_decide_refuses_a_real_looking_venue_before_any_read(settings, sim, lookalike):
    from streams import decide
    from streams.runtime import Runtime

    s = private_settings(settings).model_copy(
        update={"clob_url": lookalike.url, "gamma_url": "", "venue_mode": "paper"}
    )
    runtime = Runtime(s)
    try:
        with pytest.raises(VenueGuardError, match="HORUS_CLOB_URL"):
            decide.build(runtime)
    finally:
        runtime.close()
    assert lookalike.beyond_identity() == []  # no market data, quote or balance came from it

    runtime = Runtime(paper_settings(s, sim))
    try:
        spec = decide.build(runtime)  # the simulator: decide starts
        assert spec.name == "decide"
    finally:
        runtime.close()


def test_the_commands_refuse_with_one_clear_line(settings, lookalike, tmp_path):
    from typer.testing import CliRunner

    from horus.cli.main import app

    s = private_settings(settings).model_copy(
        update={"clob_url": lookalike.url, "gamma_url": "", "venue_mode": "paper"}
    )
    accounts = tmp_path / "accounts.json"
    accounts.write_text("[]")
    for argv in (["worker", "--stages", "plan,decide,execute"], ["reconcile", "--accounts", str(accounts), "--once"]):
        result = CliRunner().invoke(app, argv, env=s.as_env())
        output = " ".join(result.output.split())
        assert result.exit_code == 1 and "HORUS_CLOB_URL" in output and "Traceback" not in output, (argv, output)
    assert lookalike.beyond_identity() == []
