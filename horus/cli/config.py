"""`horus follower add|update|remove` and `horus follow add|update|remove|list`: validated ConfigChange
events on the compacted `config.changes` topic.

Every config goes through horus.domain.config (the same rules the stages apply), so a bad option ends
with exit code 2 and a message naming the field. `update` merges the given options into the current
config, read from the Postgres projection when it is caught up with the topic, else from the topic
itself. Secrets never enter an event: `--credentials-file` goes to the encrypted credentials store and
only its ref is put in the config; everything printed passes through `redacted()`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from horus.cli.common import console, fail, friendly_errors, options_from, settings
from horus.settings import Settings

follower_app = typer.Typer(help="Follower accounts (config.changes, entity FOLLOWER).", no_args_is_help=True)
follow_app = typer.Typer(
    help="Follows: one follower copying one leader (config.changes, entity FOLLOW).", no_args_is_help=True
)

INVALID = 2  # exit code for a config that breaks a rule (as for a bad command-line option)


# ---------------------------------------------------------------------------------------------
# reading the current config and publishing a change
# ---------------------------------------------------------------------------------------------
def current_config(s: Settings, entity: str, entity_id: str) -> dict | None:
    """The config now in force for (entity, id) as a plain dict, or None if there is none."""
    from projections import queries

    try:
        return queries.current_config(s, entity, entity_id)
    except queries.CurrentConfigInvalid as exc:
        fail(
            f"the current {entity.lower()} config is invalid ({exc.reason}); replace it with `add --from-file`", INVALID
        )
    except queries.TopicNotRead as exc:
        fail(str(exc))


def publish(s: Settings, entity: str, entity_id: str, config: Any | None) -> tuple[dict, tuple[int, int]]:
    """Produce one ConfigChange (UPSERT of `config`, or DELETE when None) and wait for the broker's ack.
    Returns the change and its (partition, offset)."""
    from horus import commands

    try:
        return commands.publish_config(s, entity, entity_id, config)
    except commands.NotAccepted as exc:
        fail(str(exc))


def _read_json_file(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}", INVALID)
    except ValueError as exc:
        fail(f"{path} is not JSON: {exc}", INVALID)
    if not isinstance(data, dict):
        fail(f"{path} must hold a JSON object", INVALID)
    return data


def _given(**options: Any) -> dict:
    """Only the options the user gave (None = not given)."""
    return {name: value for name, value in options.items() if value is not None and value != []}


def _show(verb: str, what: str, config: dict | None, where: tuple[int, int], as_json: bool) -> None:
    from horus.domain.config import redacted

    shown = redacted(config) if config is not None else None
    if as_json:
        typer.echo(
            json.dumps(
                {"result": verb, "id": what, "config": shown, "partition": where[0], "offset": where[1]}, sort_keys=True
            )
        )
        return
    console.print(f"{what} {verb} (config.changes partition {where[0]}, offset {where[1]})", highlight=False)
    if shown is not None:
        typer.echo(json.dumps(shown, indent=2, sort_keys=True))


JSON_OPTION = typer.Option(False, "--json", help="print the result as one JSON object")
FILE_OPTION = typer.Option(
    None,
    "--from-file",
    metavar="FILE",
    help="JSON object with config fields (options given on the command line override it)",
)


# ---------------------------------------------------------------------------------------------
# follower
# ---------------------------------------------------------------------------------------------
@dataclass
class FollowerOptions:
    """The options `follower add` and `follower update` share, declared once (None: not given)."""

    signature_type: Annotated[
        int | None, typer.Option("--signature-type", help="0 EOA, 1 proxy, 2 Safe, 3 deposit wallet")
    ] = None
    signer: Annotated[str | None, typer.Option("--signer", help="EOA that signs (types 1-3)")] = None
    custody: Annotated[str | None, typer.Option("--custody", help="direct | proxy")] = None
    credentials_ref: Annotated[str | None, typer.Option("--credentials-ref", help="ref in the credentials store")] = (
        None
    )
    daily_cap: Annotated[str | None, typer.Option("--daily-cap", help="pUSD spent on BUYs per UTC day")] = None
    market_exposure_cap: Annotated[str | None, typer.Option("--market-exposure-cap", help="pUSD per market")] = None
    max_open_positions: Annotated[int | None, typer.Option("--max-open-positions")] = None
    enabled: Annotated[bool | None, typer.Option("--enable/--disable")] = None


def _validated_follower(data: dict):
    from horus.domain.config import ConfigInvalid, parse_follower

    try:
        return parse_follower(data)
    except ConfigInvalid as exc:
        fail(str(exc), INVALID)


def _store_credentials(s: Settings, path: Path, ref: str, signer: str) -> None:
    """Encrypt the secrets in `path` under `ref`, their API credentials apart (paper: the paper venue's, derived
    with the key); the key must be the follower's signer."""
    from horus.credentials import CredentialsError, CredentialStore
    from horus.ops.paper import PaperVenueError, paper_secrets
    from horus.venue.guard import VenueGuardError

    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}", INVALID)
    except ValueError:  # no parser detail: it could quote a secret
        fail(f"credentials file {path}: not JSON", INVALID)
    try:
        secrets, api_creds = paper_secrets(s, data)
    except CredentialsError as exc:  # its messages never hold a secret
        fail(f"credentials file {path}: {exc}", INVALID)
    except (VenueGuardError, PaperVenueError) as exc:
        fail(str(exc))
    if secrets.signer_address.lower() != signer:
        fail(
            f"credentials_ref: the key in {path} signs as {secrets.signer_address.lower()}, but the follower's "
            f"signer is {signer}",
            INVALID,
        )
    try:
        CredentialStore(s).put(ref, secrets, api_creds)
    except CredentialsError as exc:
        fail(str(exc))


@follower_app.command("add")
@friendly_errors
@options_from(FollowerOptions, "given")
def follower_add(
    address: str = typer.Argument(..., help="the follower's trading address (maker/funder of its orders)"),
    *,
    given: FollowerOptions,
    credentials_file: Path | None = typer.Option(
        None,
        "--credentials-file",
        metavar="FILE",
        help="JSON with private_key, api_key, api_secret, api_passphrase: "
        "stored encrypted, only the ref goes into the event",
    ),
    from_file: Path | None = FILE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Add a follower account."""
    s = settings()
    data = {**_read_json_file(from_file), "follower": address, **_given(**asdict(given))}
    if credentials_file is not None:
        data.setdefault("credentials_ref", f"follower-{address.strip().lower()}")
    config = _validated_follower(data)
    if current_config(s, "FOLLOWER", config.follower) is not None:
        fail(f"follower {config.follower} already exists; change it with `horus follower update`")
    if credentials_file is not None:
        _store_credentials(s, credentials_file, config.credentials_ref, config.signing_address)
    _, where = publish(s, "FOLLOWER", config.follower, config)
    _show("added", f"follower {config.follower}", config.model_dump(mode="json"), where, as_json)


@follower_app.command("update")
@friendly_errors
@options_from(FollowerOptions, "given")
def follower_update(
    address: str = typer.Argument(...),
    *,
    given: FollowerOptions,
    from_file: Path | None = FILE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Change some fields of a follower (the others keep their current values)."""
    s = settings()
    address = _validated_follower({"follower": address}).follower
    current = current_config(s, "FOLLOWER", address)
    if current is None:
        fail(f"no follower {address}; add it with `horus follower add`")
    data = {**current, **_read_json_file(from_file), **_given(**asdict(given)), "follower": address}
    config = _validated_follower(data)
    _, where = publish(s, "FOLLOWER", address, config)
    _show("updated", f"follower {address}", config.model_dump(mode="json"), where, as_json)


@follower_app.command("remove")
@friendly_errors
def follower_remove(address: str = typer.Argument(...), as_json: bool = JSON_OPTION) -> None:
    """Remove a follower (a DELETE change; its follows are no longer copied)."""
    s = settings()
    address = _validated_follower({"follower": address}).follower
    if current_config(s, "FOLLOWER", address) is None:
        fail(f"no follower {address}")
    _, where = publish(s, "FOLLOWER", address, None)
    _show("removed", f"follower {address}", None, where, as_json)


# ---------------------------------------------------------------------------------------------
# follow
# ---------------------------------------------------------------------------------------------
SIZING_FIELDS = {
    "sizing": "mode",
    "amount": "amount",
    "ratio": "ratio",
    "balance_pct": "balance_pct",
    "multiplier": "multiplier",
    "max_per_trade": "max_per_trade",
    "min_per_trade": "min_per_trade",
    "min_size": "min_size_policy",
}


def default_follow_id(follower: str, leader: str) -> str:
    """Deterministic: the same pair always gets the same id (0x + 8 hex of each address)."""
    return f"{follower.strip().lower()[:10]}-{leader.strip().lower()[:10]}"


def _merge_follow(base: dict, options: dict) -> dict:
    """`base` with the command-line options applied (sizing options go into the nested sizing)."""
    data = dict(base)
    sizing = dict(data.get("sizing") or {})
    for option, value in options.items():
        if option in SIZING_FIELDS:
            sizing[SIZING_FIELDS[option]] = value
        else:
            data[option] = value
    if sizing:
        data["sizing"] = sizing
    return data


def _validated_follow(data: dict):
    from horus.domain.config import ConfigInvalid, parse_follow_config

    try:
        return parse_follow_config(data)
    except ConfigInvalid as exc:
        fail(str(exc), INVALID)


def _follow_options(**options: Any) -> dict:
    renamed = {
        "allow": "markets_allow",
        "deny": "markets_deny",
        "max_fill_age": "max_fill_age_s",
        "order_ttl": "order_ttl_s",
    }
    return {renamed.get(k, k): v for k, v in _given(**options).items()}


@dataclass
class FollowOptions:
    """The options `follow add` and `follow update` share, declared once (None: not given)."""

    leader: Annotated[str | None, typer.Option("--leader", help="address to copy")] = None
    follower: Annotated[str | None, typer.Option("--follower", help="follower trading address")] = None
    sizing: Annotated[str | None, typer.Option("--sizing", help="fixed | ratio | balance_pct")] = None
    amount: Annotated[str | None, typer.Option("--amount", help="fixed: pUSD per copy")] = None
    ratio: Annotated[str | None, typer.Option("--ratio", help="ratio: x the leader's pUSD")] = None
    balance_pct: Annotated[
        str | None, typer.Option("--balance-pct", help="balance_pct: % of the available balance")
    ] = None
    multiplier: Annotated[str | None, typer.Option("--multiplier")] = None
    max_per_trade: Annotated[str | None, typer.Option("--max-per-trade")] = None
    min_per_trade: Annotated[str | None, typer.Option("--min-per-trade")] = None
    min_size: Annotated[str | None, typer.Option("--min-size", help="below the venue minimum: round_up | skip")] = None
    slippage_bps: Annotated[int | None, typer.Option("--slippage-bps")] = None
    order_type: Annotated[str | None, typer.Option("--order-type", help="FAK | FOK")] = None
    copy_sells: Annotated[bool | None, typer.Option("--copy-sells/--no-copy-sells")] = None
    daily_cap: Annotated[str | None, typer.Option("--daily-cap")] = None
    market_exposure_cap: Annotated[str | None, typer.Option("--market-exposure-cap")] = None
    price_min: Annotated[str | None, typer.Option("--price-min")] = None
    price_max: Annotated[str | None, typer.Option("--price-max")] = None
    allow: Annotated[
        list[str] | None, typer.Option("--allow", help="condition id, tag:<slug> or category:<name> (repeatable)")
    ] = None
    deny: Annotated[
        list[str] | None, typer.Option("--deny", help="condition id, tag:<slug> or category:<name> (repeatable)")
    ] = None
    max_fill_age: Annotated[
        float | None, typer.Option("--max-fill-age", help="seconds; older leader fills are skipped")
    ] = None
    order_ttl: Annotated[
        int | None, typer.Option("--order-ttl", help="seconds an order may still be sent or retried")
    ] = None
    enabled: Annotated[bool | None, typer.Option("--enable/--disable")] = None


@follow_app.command("add")
@friendly_errors
@options_from(FollowOptions, "given")
def follow_add(
    *,
    given: FollowOptions,
    follow_id: str | None = typer.Option(None, "--id", help="default: <follower[:10]>-<leader[:10]>"),
    from_file: Path | None = FILE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Add a follow: FOLLOWER copies LEADER."""
    s = settings()
    options = _follow_options(**asdict(given), follow_id=follow_id)
    data = _merge_follow(_read_json_file(from_file), options)
    if "follow_id" not in data and isinstance(data.get("follower"), str) and isinstance(data.get("leader"), str):
        data["follow_id"] = default_follow_id(data["follower"], data["leader"])
    config = _validated_follow(data)
    if current_config(s, "FOLLOW", config.follow_id) is not None:
        fail(f"follow {config.follow_id} already exists; change it with `horus follow update {config.follow_id}`")
    _, where = publish(s, "FOLLOW", config.follow_id, config)
    _show("added", f"follow {config.follow_id}", config.model_dump(mode="json"), where, as_json)


@follow_app.command("update")
@friendly_errors
@options_from(FollowOptions, "given")
def follow_update(
    follow_id: str = typer.Argument(...),
    *,
    given: FollowOptions,
    from_file: Path | None = FILE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Change some fields of a follow (the others keep their current values; --allow/--deny replace the lists)."""
    s = settings()
    current = current_config(s, "FOLLOW", follow_id)
    if current is None:
        fail(f"no follow {follow_id}; add it with `horus follow add`")
    options = _follow_options(**asdict(given))
    from_json = _read_json_file(from_file)
    base = {**current, **from_json}
    if "sizing" in from_json and isinstance(from_json["sizing"], dict):
        base["sizing"] = {**(current.get("sizing") or {}), **from_json["sizing"]}
    config = _validated_follow({**_merge_follow(base, options), "follow_id": follow_id})
    _, where = publish(s, "FOLLOW", follow_id, config)
    _show("updated", f"follow {follow_id}", config.model_dump(mode="json"), where, as_json)


@follow_app.command("remove")
@friendly_errors
def follow_remove(follow_id: str = typer.Argument(...), as_json: bool = JSON_OPTION) -> None:
    """Remove a follow (a DELETE change: the leader's fills are no longer copied for it)."""
    s = settings()
    if current_config(s, "FOLLOW", follow_id) is None:
        fail(f"no follow {follow_id}")
    _, where = publish(s, "FOLLOW", follow_id, None)
    _show("removed", f"follow {follow_id}", None, where, as_json)


def _sizing_text(sizing: dict) -> str:
    mode = sizing.get("mode")
    value_by_mode: dict[object, str] = {  # keyed by any value: an unknown or missing mode shows "?"
        "fixed": f"{sizing.get('amount')} pUSD",
        "ratio": f"x{sizing.get('ratio')}",
        "balance_pct": f"{sizing.get('balance_pct')}%",
    }
    value = value_by_mode.get(mode, "?")
    multiplier = sizing.get("multiplier")
    return f"{mode} {value}" + (f" x{multiplier}" if multiplier not in (None, "1") else "")


@follow_app.command("list")
@friendly_errors
def follow_list(
    follower: str | None = typer.Option(None, "--follower"),
    leader: str | None = typer.Option(None, "--leader"),
    include_removed: bool = typer.Option(False, "--removed", help="also list removed follows"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per follow"),
) -> None:
    """Follows as the projection holds them (run `horus projections run` to keep it current)."""
    from horus.domain.config import redacted
    from projections import queries

    try:
        with queries.connect(settings()) as conn:
            rows = queries.follows(conn, follower=follower, leader=leader, include_removed=include_removed)
    except queries.DatabaseUnreachable as exc:
        fail(f"database unreachable ({exc.kind}); is it up? Try `horus stack status`.")
    except queries.SchemaNotMigrated:
        fail("the follow_configs table is missing; run `horus db upgrade`")
    if as_json:
        for row in rows:
            typer.echo(
                json.dumps(
                    {
                        **row,
                        "body": redacted(row["body"]) if row["body"] else None,
                        "updated_at": row["updated_at"].isoformat(),
                    },
                    sort_keys=True,
                )
            )
        return
    table = Table("follow", "follower", "leader", "enabled", "sizing", "slippage", "daily cap", "updated")
    for row in rows:
        body = row["body"] or {}
        state = (
            "removed"
            if row["deleted"]
            else f"INVALID: {row['invalid']}"
            if row["invalid"]
            else "yes"
            if row["enabled"]
            else "no"
        )
        table.add_row(
            row["follow_id"],
            row["follower"] or "",
            row["leader"] or "",
            state,
            _sizing_text(body.get("sizing") or {}) if body else "",
            f"{body.get('slippage_bps')} bps" if body else "",
            str(body.get("daily_cap") or "-"),
            row["updated_at"].strftime("%Y-%m-%d %H:%M:%S"),
        )
    console.print(table)
    if not rows:
        console.print("no follows (is `horus projections run` running?)")
