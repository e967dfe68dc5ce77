"""`horus credentials`: store and check follower credentials (encrypted at rest), and make a new store key."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from horus.cli.common import fail, settings

app = typer.Typer(
    help="Follower credentials, AES-GCM encrypted in Postgres (key: HORUS_CREDENTIALS_KEY).", no_args_is_help=True
)


@app.callback()
def _group() -> None:
    """Follower credentials, AES-GCM encrypted in Postgres (key: HORUS_CREDENTIALS_KEY)."""


def _store():
    from horus.credentials import CredentialsError, CredentialStore

    try:
        return CredentialStore(settings())
    except CredentialsError as exc:
        fail(str(exc))


def _database_errors(func):
    """Database failures end with one line naming the database, never a traceback (which could show values)."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from sqlalchemy.exc import OperationalError, ProgrammingError

        try:
            return func(*args, **kwargs)
        except OperationalError as exc:
            fail(f"database unreachable ({type(exc.orig).__name__}); is it up? Try `horus stack status`.")
        except ProgrammingError as exc:
            fail(f"database error ({type(exc.orig).__name__}); has `horus db upgrade` run?")

    return wrapper


@app.command()
@_database_errors
def put(
    ref: str = typer.Argument(..., help="the reference the follower's config points at"),
    from_file: Path = typer.Option(
        ...,
        "--from-file",
        metavar="FILE",
        help="JSON with private_key, api_key, api_secret, api_passphrase ('-': stdin); "
        "in paper mode private_key is enough",
    ),
) -> None:
    """Encrypt and store (or replace) a follower's credentials, and their API credentials apart (what decide
    reads). In paper mode those are the paper venue's, derived there with the key: HORUS_CLOB_URL must be the
    simulator. Prints only the ref and the signer address."""
    from horus.credentials import CredentialsError
    from horus.ops.paper import PaperVenueError, paper_secrets
    from horus.venue.guard import VenueGuardError

    try:
        text = sys.stdin.read() if str(from_file) == "-" else from_file.read_text()
    except OSError as exc:
        fail(f"cannot read --from-file {from_file}: {exc.strerror or exc}")
    try:
        data = json.loads(text)
    except ValueError:
        fail(f"--from-file {from_file} is not JSON")  # no parser detail: it could quote a secret
    store = _store()
    try:
        secrets, api_creds = paper_secrets(settings(), data)
        signer = store.put(ref, secrets, api_creds)
    except (CredentialsError, VenueGuardError, PaperVenueError) as exc:
        fail(str(exc))
    typer.echo(json.dumps({"ref": ref, "signer_address": signer}))


@app.command()
@_database_errors
def check(ref: str = typer.Argument(..., help="the stored credentials' reference")) -> None:
    """Decrypt the credentials under REF and print their signer address (never a secret)."""
    from horus.credentials import CredentialsError

    store = _store()
    try:
        secrets = store.get(ref)
    except CredentialsError as exc:
        fail(str(exc))
    signer = secrets.signer_address
    stored = store.signer_address(ref)
    if stored and stored.lower() != signer.lower():
        fail(f"credentials {ref!r}: the decrypted key signs as {signer} but the row says {stored}")
    typer.echo(json.dumps({"ref": ref, "signer_address": signer}))


@app.command()
@_database_errors
def delete(ref: str = typer.Argument(..., help="the stored credentials' reference")) -> None:
    """Remove the credentials under REF."""
    from horus.credentials import CredentialsError

    try:
        removed = _store().delete(ref)
    except CredentialsError as exc:
        fail(str(exc))
    if not removed:
        fail(f"no credentials stored under ref {ref!r}")
    typer.echo(json.dumps({"ref": ref, "deleted": True}))


@app.command("sync-api")
@_database_errors
def sync_api(refs: list[str] = typer.Argument(None, help="the refs to sync (default: every stored ref)")) -> None:
    """Write (again) the API-credentials record of stored credentials, the only record decide reads. Live and
    dry-run: the stored API credentials; paper: the paper venue's, derived there anew with the key, which also
    makes a restarted paper venue know them again. Prints one ref and signer address per line."""
    from horus.credentials import CredentialsError
    from horus.ops.paper import PaperVenueError, paper_api_creds
    from horus.venue.guard import VenueGuardError

    store, config = _store(), settings()
    for ref in refs or store.refs():
        try:
            secrets = store.get(ref)
            store.put_api_creds(ref, paper_api_creds(config, secrets), secrets.signer_address)
        except (CredentialsError, VenueGuardError, PaperVenueError) as exc:
            fail(str(exc))
        typer.echo(json.dumps({"ref": ref, "signer_address": secrets.signer_address}))


@app.command("generate-key")
def generate_key() -> None:
    """Print a fresh random key (base64 of 32 bytes) for HORUS_CREDENTIALS_KEY."""
    from horus.credentials import generate_key as new_key

    typer.echo(new_key())
