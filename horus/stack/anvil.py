"""anvil, the Foundry EVM node, from the npm registry's prebuilt package."""
from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

from horus.stack.processes import ProcessTable, StackError, require_tool, wait_until

FOUNDRY_VERSION = "1.7.1"
PACKAGE = "@foundry-rs/anvil-linux-amd64"


def ensure_anvil(cache_dir: Path) -> Path:
    prefix = cache_dir / f"foundry-{FOUNDRY_VERSION}"
    binary = prefix / "node_modules" / PACKAGE / "bin" / "anvil"
    if binary.exists():
        return binary
    npm = require_tool("npm", "install Node.js 20+ with npm (Debian: `apt-get install -y nodejs npm`)")
    prefix.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(prefix),
                             f"{PACKAGE}@{FOUNDRY_VERSION}"], capture_output=True, text=True)
    if result.returncode != 0 or not binary.exists():
        raise StackError(f"npm could not install {PACKAGE}@{FOUNDRY_VERSION}:\n{result.stderr[-2000:]}\n"
                         "Fix: check that the npm registry is reachable.")
    binary.chmod(0o755)
    return binary


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
        record = self.procs.spawn(self.name, [str(binary), "--host", "127.0.0.1", "--port", str(port),
                                              "--chain-id", str(self.chain_id), "--silent"])
        wait_until(lambda: self.healthy(port)[0], timeout=30, what="anvil", log=Path(record.log),
                   alive=lambda: self.procs.live(self.name) is not None)

    def healthy(self, port: int) -> tuple[bool, str]:
        try:
            chain = int(rpc(self.url(port), "eth_chainId"), 16)
            block = int(rpc(self.url(port), "eth_blockNumber"), 16)
            return True, f"chain {chain}, block {block}"
        except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
            return False, f"not answering on {self.url(port)} ({exc.__class__.__name__})"
