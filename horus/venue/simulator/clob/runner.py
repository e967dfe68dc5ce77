"""Serve the simulator with uvicorn in a background thread (tests, benchmarks) or in the foreground (CLI)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import uvicorn

from horus.venue.simulator.clob.app import create_app
from horus.venue.simulator.clob.config import SimulatorConfig
from horus.venue.simulator.clob.state import VenueState


def _server(app) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        loop="auto",
        http="auto",
        lifespan="off",
        timeout_keep_alive=30,
        backlog=4096,
    )
    return uvicorn.Server(config)


@dataclass
class RunningSimulator:
    url: str
    state: VenueState  # read it for in-process inspection; it lives on the server thread
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self, timeout: float = 10) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


def run_simulator(
    config: SimulatorConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    start_timeout: float = 10,
    *,
    follow_leaders: bool = False,
) -> RunningSimulator:
    """Start the simulator on a background thread; port 0 picks a free port (see `.url`)."""
    app = create_app(config or SimulatorConfig(), follow_leaders=follow_leaders)
    sock = _bind(host, port)
    server = _server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="clob-simulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the CLOB simulator did not start on {host}:{port}")
        time.sleep(0.01)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    return RunningSimulator(
        url=f"http://{shown_host}:{bound_port}", state=app.state.venue, _server=server, _thread=thread
    )


def serve_forever(config: SimulatorConfig, host: str, port: int, *, follow_leaders: bool = False) -> None:
    """Foreground server for `horus venue`; Ctrl-C / SIGTERM stop it (uvicorn handles the signals)."""
    app = create_app(config, follow_leaders=follow_leaders)
    sock = _bind(host, port)
    _server(app).run(sockets=[sock])
