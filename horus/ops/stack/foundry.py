"""forge and solc-js from npm, and building / testing the test-chain contracts in `contracts/`.

Nothing here downloads outside npm or installs globally: forge (`@foundry-rs/forge-linux-amd64`,
the Foundry version anvil uses) and solc-js (`solc`) go into their own prefixes under the cache
dir. forge cannot fetch a native solc here, so it is pointed at `contracts/tools/solc-wrapper.cjs`
through a tiny shell shim (forge wants one executable path).

Builds are cached under `<cache_dir>/contracts-build/<hash>`, the hash covering the sources,
`foundry.toml`, the wrapper and both tool versions: an unchanged tree is never recompiled and
the work tree is never written to.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from horus.ops.stack.anvil import FOUNDRY_VERSION, foundry_binary, npm_install
from horus.ops.stack.processes import StackError, require_tool

SOLC_JS_VERSION = "0.8.37"
CONTRACTS_DIR = Path(__file__).resolve().parents[3] / "contracts"
WRAPPER = Path("tools") / "solc-wrapper.cjs"  # relative to the contracts dir
FORGE_TIMEOUT = 600


class ContractsError(StackError):
    """Building or testing the contracts failed; the message carries forge's output."""


def ensure_forge(cache_dir: Path) -> Path:
    return foundry_binary(cache_dir, "forge")


def ensure_solcjs(cache_dir: Path) -> Path:
    """The directory of the npm `solc` package (solc-js), installed once into the cache dir."""
    prefix = cache_dir / f"solc-js-{SOLC_JS_VERSION}"
    package_json = npm_install(prefix, "solc", SOLC_JS_VERSION, prefix / "node_modules" / "solc" / "package.json")
    return package_json.parent


def solc_command(cache_dir: Path, contracts_dir: Path = CONTRACTS_DIR) -> Path:
    """An executable `solc` for forge: a shim that runs the Node wrapper with solc-js."""
    solcjs = ensure_solcjs(cache_dir)
    node = require_tool("node", "install Node.js 20+ (Debian: `apt-get install -y nodejs npm`)")
    wrapper = (contracts_dir / WRAPPER).resolve()
    if not wrapper.exists():
        raise ContractsError(f"the solc wrapper {wrapper} is missing")
    script = (
        f"#!/bin/sh\n# forge's solc: solc-js {SOLC_JS_VERSION} through {wrapper}\n"
        f'HORUS_SOLCJS={shlex.quote(str(solcjs))} exec {shlex.quote(node)} {shlex.quote(str(wrapper))} "$@"\n'
    )
    shim = solcjs.parent.parent / "bin" / f"solc-{hashlib.sha256(script.encode()).hexdigest()[:12]}"
    if not shim.exists():
        shim.parent.mkdir(parents=True, exist_ok=True)
        tmp = shim.with_name(f"{shim.name}.{uuid.uuid4().hex}")
        tmp.write_text(script)
        tmp.chmod(0o755)
        os.replace(tmp, shim)
    return shim


def source_hash(contracts_dir: Path = CONTRACTS_DIR) -> str:
    """Covers everything a `forge build` of `src/` depends on."""
    digest = hashlib.sha256(f"forge {FOUNDRY_VERSION}; solc-js {SOLC_JS_VERSION}\n".encode())
    files = [contracts_dir / "foundry.toml", contracts_dir / WRAPPER, *sorted((contracts_dir / "src").rglob("*.sol"))]
    for path in files:
        digest.update(f"{path.relative_to(contracts_dir)}\0".encode())
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Build:
    out_dir: Path  # forge's `out/`: <Source>.sol/<Contract>.json
    cached: bool  # True if nothing was compiled
    seconds: float

    def artifact_path(self, contract: str, source: str = "FillEmitter.sol") -> Path:
        return self.out_dir / source / f"{contract}.json"

    def artifact(self, contract: str, source: str = "FillEmitter.sol") -> tuple[list, str]:
        """(abi, creation bytecode as 0x-hex) of one contract."""
        path = self.artifact_path(contract, source)
        if not path.exists():
            raise ContractsError(f"no artifact for {contract} in {self.out_dir}")
        data = json.loads(path.read_text())
        return data["abi"], data["bytecode"]["object"]


def _forge(cache_dir: Path, contracts_dir: Path, command: str, out: Path, cache: Path, *extra: str):
    args = [
        str(ensure_forge(cache_dir)),
        command,
        "--offline",
        "--root",
        str(contracts_dir),
        "--use",
        str(solc_command(cache_dir, contracts_dir)),
        "--out",
        str(out),
        "--cache-path",
        str(cache),
        *extra,
    ]
    env = {**os.environ, "NO_COLOR": "1", "FOUNDRY_DISABLE_NIGHTLY_WARNING": "1"}
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=FORGE_TIMEOUT, env=env, cwd=contracts_dir)
    except subprocess.TimeoutExpired as exc:
        raise ContractsError(f"forge {command} took longer than {FORGE_TIMEOUT}s") from exc


def build_contracts(cache_dir: Path, contracts_dir: Path = CONTRACTS_DIR, force: bool = False) -> Build:
    """Compile `contracts/src` (not the forge tests) unless an identical build is cached."""
    contracts_dir = contracts_dir.resolve()
    if not (contracts_dir / "foundry.toml").exists():
        raise ContractsError(f"{contracts_dir} has no foundry.toml (is horus installed from a checkout?)")
    started = time.monotonic()
    builds = cache_dir / "contracts-build"
    final = builds / source_hash(contracts_dir)
    if final.exists() and not force:
        return Build(final / "out", True, time.monotonic() - started)
    builds.mkdir(parents=True, exist_ok=True)
    tmp = builds / f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    try:
        result = _forge(cache_dir, contracts_dir, "build", tmp / "out", tmp / "forge-cache", "--skip", "test")
        if result.returncode != 0:
            raise ContractsError(f"forge build failed:\n{(result.stdout + result.stderr)[-4000:]}")
        if final.exists():
            if not force:  # another process finished first: same inputs, same output; keep theirs
                return Build(final / "out", False, time.monotonic() - started)
            trash = builds / f".trash.{uuid.uuid4().hex[:8]}"
            os.rename(final, trash)
            shutil.rmtree(trash, ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "out").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Build(final / "out", False, time.monotonic() - started)


def run_forge_tests(
    cache_dir: Path, *forge_args: str, contracts_dir: Path = CONTRACTS_DIR
) -> subprocess.CompletedProcess:
    """`forge test --offline` (incremental: forge's own cache lives under the cache dir)."""
    contracts_dir = contracts_dir.resolve()
    work = cache_dir / "contracts-test" / hashlib.sha256(str(contracts_dir).encode()).hexdigest()[:12]
    return _forge(cache_dir, contracts_dir, "test", work / "out", work / "forge-cache", *forge_args)
