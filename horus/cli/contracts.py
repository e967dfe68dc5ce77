"""`horus contracts build | test`: the test-chain contracts in contracts/, via forge offline + solc-js."""

from __future__ import annotations

import typer

from horus.cli.common import console, fail, friendly_errors, settings

app = typer.Typer(help="Build and test the Solidity contracts (forge offline, solc-js from npm).", no_args_is_help=True)


@app.command()
@friendly_errors
def build(
    force: bool = typer.Option(False, "--force", help="recompile even if these exact sources were built"),
) -> None:
    """Compile contracts/src into the cache dir (keyed by a hash of the sources) and print where."""
    from horus.ops.stack.foundry import SOLC_JS_VERSION, build_contracts

    result = build_contracts(settings().cache_dir, force=force)
    how = (
        "up to date (cached)" if result.cached else f"compiled with solc-js {SOLC_JS_VERSION} in {result.seconds:.1f}s"
    )
    console.print(f"[green]contracts[/] {how}")
    console.print(f"  artifacts: {result.out_dir}")
    for path in sorted(result.out_dir.glob("*.sol/*.json")):
        console.print(f"    {path.relative_to(result.out_dir)}")


@app.command("test")
@friendly_errors
def test_command(
    match: str = typer.Option(None, "--match-test", help="only tests whose name matches this regex"),
) -> None:
    """Run the forge tests in contracts/test (`forge test --offline`)."""
    from horus.ops.stack.foundry import run_forge_tests

    result = run_forge_tests(settings().cache_dir, *(["--match-test", match] if match else []))
    console.print(result.stdout.rstrip(), markup=False, highlight=False)
    if result.returncode != 0:
        fail(f"forge test failed (exit {result.returncode})\n{result.stderr.strip()}")
