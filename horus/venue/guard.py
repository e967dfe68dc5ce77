"""Which venue a process may talk to: the one check every reader of and sender to HORUS_CLOB_URL makes first.

- `paper` only ever talks to the Horus CLOB simulator. Before its first request the process asks
  `GET {clob_url}/_sim/identity`; anything but the simulator's exact answer (a real venue has no such route,
  an unreachable host, another service) refuses the start with `VenueGuardError` naming HORUS_CLOB_URL and
  how to fix it. A paper process therefore never derives API keys from, reads balances at, or POSTs to a
  real venue, whatever the defaults or a stale settings file say.
- `live` is only ever an explicit `HORUS_VENUE_MODE=live`; the start logs a WARNING banner naming the URL
  real orders go to.
- `dry-run` signs and records, sends nothing: no check.

Callers: decide's venue lookups (streams/decide_lookups.py), the executor and `horus reconcile`
(horus.execution.service), `horus worker` before it starts any stage.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from horus.settings import Settings
from horus.venue.simulator.identity import IDENTITY_PATH, SIMULATOR_NAME

log = logging.getLogger("horus.venue.guard")

PROBE_TIMEOUT_S = 5.0


class VenueGuardError(RuntimeError):
    """The configured venue is not what the venue mode allows; the message says how to fix it."""


def shown_url(url: str) -> str:
    """The URL without user:password, for messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))


def identity_url(clob_url: str) -> str:
    return clob_url.rstrip("/") + IDENTITY_PATH


def simulator_problem(status_code: int, body: object) -> str | None:
    """None if (status, JSON body) is the simulator's identity answer, else what is wrong with it."""
    if status_code != 200:
        return f"{IDENTITY_PATH} answered HTTP {status_code}"
    if not isinstance(body, dict) or body.get("simulator") != SIMULATOR_NAME:
        return f"{IDENTITY_PATH} did not answer as the Horus CLOB simulator"
    return None


def _refusal(settings: Settings, problem: str) -> VenueGuardError:
    return VenueGuardError(
        f"HORUS_VENUE_MODE=paper, but HORUS_CLOB_URL={shown_url(settings.clob_url)} is not the Horus CLOB simulator "
        f"({problem}); paper mode never talks to a real venue. Fix: run `horus stack up` (it starts the simulator "
        f"and writes its URL into {settings.stack_env_path}) or point HORUS_CLOB_URL at `horus venue`; to trade "
        f"for real, set HORUS_VENUE_MODE=live explicitly."
    )


def _body(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _identity_answer(response: httpx.Response) -> tuple[str | None, dict[str, Any] | None]:
    """(None, the identity) if the answer is the simulator's, else (what is wrong with it, None)."""
    body = _body(response)
    problem = simulator_problem(response.status_code, body)
    if problem is None and isinstance(body, dict):  # simulator_problem passes nothing but a dict
        return None, body
    return problem, None


def probe(clob_url: str, timeout_s: float = PROBE_TIMEOUT_S) -> tuple[str | None, dict[str, Any] | None]:
    """(None, its identity) if `clob_url` answers as the Horus CLOB simulator, else (why not, None)."""
    try:
        response = httpx.get(identity_url(clob_url), timeout=timeout_s, follow_redirects=False)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return f"no answer: {type(exc).__name__}", None
    return _identity_answer(response)


async def probe_async(clob_url: str, timeout_s: float = PROBE_TIMEOUT_S) -> tuple[str | None, dict[str, Any] | None]:
    try:
        async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False) as client:
            response = await client.get(identity_url(clob_url))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return f"no answer: {type(exc).__name__}", None
    return _identity_answer(response)


def not_the_simulator(clob_url: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None if `clob_url` answers as the Horus CLOB simulator, else why not (also the stack's health check)."""
    return probe(clob_url, timeout_s)[0]


def _announce_live(settings: Settings) -> None:
    if settings.venue_mode == "live":
        log.warning("==== LIVE MODE: real orders to %s (HORUS_VENUE_MODE=live) ====", shown_url(settings.clob_url))


def require_venue(settings: Settings) -> dict[str, Any] | None:
    """Refuse (VenueGuardError) a paper process whose HORUS_CLOB_URL is not the simulator; announce live mode.
    Paper: the simulator's identity (horus.venue.simulator.identity), else None."""
    _announce_live(settings)
    if settings.venue_mode != "paper":
        return None
    problem, identity = probe(settings.clob_url)
    if problem is not None:
        raise _refusal(settings, problem)
    return identity


async def require_venue_async(settings: Settings) -> dict[str, Any] | None:
    """`require_venue` for a process already on an event loop."""
    _announce_live(settings)
    if settings.venue_mode != "paper":
        return None
    problem, identity = await probe_async(settings.clob_url)
    if problem is not None:
        raise _refusal(settings, problem)
    return identity
