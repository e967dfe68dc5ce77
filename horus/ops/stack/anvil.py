"""anvil, the Foundry EVM node, from the npm registry's prebuilt package."""

from __future__ import annotations

import fcntl
import json
import subprocess
import urllib.request
from pathlib import Path

from horus.ops.stack.processes import ProcessTable, StackError, require_tool, wait_until

FOUNDRY_VERSION = "1.7.1"
PACKAGE = "@foundry-rs/anvil-linux-amd64"


def npm_install(prefix: Path, package: str, version: str, marker: Path) -> Path:
    """`npm install package@version` into its own prefix (never global) unless `marker` already exists.

    Each tool gets its own prefix: npm prunes packages it was not asked for from a prefix without a
    package.json, so sharing one would uninstall the others.
    """
    if marker.exists():
        return marker
    npm = require_tool("npm", "install Node.js 20+ with npm (Debian: `apt-get install -y nodejs npm`)")
    prefix.mkdir(parents=True, exist_ok=True)
    with open(prefix / ".install.lock", "w") as lock:  # two processes installing at once wait for each other
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return marker
        _npm_install(npm, prefix, package, version, marker)
    return marker


def _npm_install(npm: str, prefix: Path, package: str, version: str, marker: Path) -> None:
    result = subprocess.run(
        [npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(prefix), f"{package}@{version}"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 or not marker.exists():
        raise StackError(
            f"npm could not install {package}@{version}:\n{result.stderr[-2000:]}\n"
            "Fix: check that the npm registry is reachable."
        )


def foundry_binary(cache_dir: Path, tool: str) -> Path:
    """Install (once) and return a Foundry binary (`anvil`, `forge`, `cast`) of FOUNDRY_VERSION from npm."""
    package = f"@foundry-rs/{tool}-linux-amd64"
    prefix = cache_dir / (f"foundry-{FOUNDRY_VERSION}" if tool == "anvil" else f"foundry-{tool}-{FOUNDRY_VERSION}")
    binary = npm_install(prefix, package, FOUNDRY_VERSION, prefix / "node_modules" / package / "bin" / tool)
    if not binary.stat().st_mode & 0o111:
        binary.chmod(0o755)
    return binary


def ensure_anvil(cache_dir: Path) -> Path:
    return foundry_binary(cache_dir, "anvil")


def rpc(url: str, method: str, params: list | None = None, timeout: float = 2.0):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())["result"]


class AnvilNode:
    name = "anvil"

    def __init__(self, cache_dir: Path, chain_id: int, procs: ProcessTable):
        self.cache_dir = cache_dir
        self.chain_id = chain_id
        self.procs = procs

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"

    def start(self, port: int) -> None:
        binary = ensure_anvil(self.cache_dir)
        record = self.procs.spawn(
            self.name,
            [str(binary), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(self.chain_id), "--silent"],
        )
        wait_until(
            lambda: self.healthy(port)[0],
            timeout=30,
            what="anvil",
            log=Path(record.log),
            alive=lambda: self.procs.live(self.name) is not None,
        )

    def healthy(self, port: int) -> tuple[bool, str]:
        try:
            chain = int(rpc(self.url(port), "eth_chainId"), 16)
            block = int(rpc(self.url(port), "eth_blockNumber"), 16)
            return True, f"chain {chain}, block {block}"
        except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
            return False, f"not answering on {self.url(port)} ({exc.__class__.__name__})"
