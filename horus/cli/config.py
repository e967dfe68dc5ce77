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
import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from horus.cli.common import console, fail, friendly_errors, settings
from horus.settings import Settings

follower_app = typer.Typer(help="Follower accounts (config.changes, entity FOLLOWER).", no_args_is_help=True)
follow_app = typer.Typer(
    help="Follows: one follower copying one leader (config.changes, entity FOLLOW).", no_args_is_help=True
)

INVALID = 2  # exit code for a config that breaks a rule (as for a bad command-line option)


# ---------------------------------------------------------------------------------------------
# reading the current config and publishing a change
# ---------------------------------------------------------------------------------------------
def _projection_caught_up(s: Settings) -> bool:
    """True when the `configs` projection has folded config.changes up to its end offsets now."""
    import psycopg

    from horus.db.engine import psycopg_conninfo
    from horus.topics import CONFIG_CHANGES
    from projections.runner import read_offsets, topic_end_offsets

    topic = s.topic(CONFIG_CHANGES.name)
    ends = topic_end_offsets(s, [topic])
    with psycopg.connect(psycopg_conninfo(s.database_url), autocommit=True, connect_timeout=5) as conn:
        stored = read_offsets(conn, [("configs", t, p) for t, p in ends])
    return all(stored.get(("configs", t, p), 0) >= end for (t, p), end in ends.items())


def _from_projection(s: Settings, entity: str, entity_id: str) -> tuple[dict | None, str | None]:
    """(body, invalid) of the current row; (None, None) when there is none."""
    import psycopg

    from horus.db.engine import psycopg_conninfo

    query = (
        "SELECT body, invalid FROM follower_configs WHERE follower = %s AND NOT deleted"
        if entity == "FOLLOWER"
        else "SELECT body, invalid FROM follow_configs WHERE follow_id = %s AND NOT deleted"
    )
    with psycopg.connect(psycopg_conninfo(s.database_url), autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(query, (entity_id,)).fetchone()
    return (None, None) if row is None else (row[0], row[1])


def latest_changes(s: Settings) -> dict[str, dict]:
    """The last ConfigChange per key on config.changes, read from the beginning to the end offsets."""
    from horus.codec import default_codec
    from horus.kafka.client import assign_from_beginning, end_offsets, make_consumer, poll_batch
    from horus.topics import CONFIG_CHANGES

    topic = s.topic(CONFIG_CHANGES.name)
    codec = default_codec()
    consumer = make_consumer(s, None)
    latest: dict[str, dict] = {}
    try:
        pending = {p: end for p, end in end_offsets(consumer, topic).items() if end > 0}
        assign_from_beginning(consumer, [topic])
        deadline = time.monotonic() + 30
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} did not reach its end offsets in 30s")
            for message in poll_batch(consumer, 1000, 0.5):
                if message.offset() + 1 >= pending.get(message.partition(), 0):
                    pending.pop(message.partition(), None)
                key = (message.key() or b"").decode("utf-8", "replace")
                if message.value() is None:
                    latest.pop(key, None)
                    continue
                try:
                    name, record = codec.decode(message.value())
                except Exception:  # noqa: BLE001 - a record nobody can read does not describe a config
                    continue
                if name == "ConfigChange":
                    latest[key] = record
    finally:
        consumer.close()
    return latest


def current_config(s: Settings, entity: str, entity_id: str) -> dict | None:
    """The config now in force for (entity, id) as a plain dict, or None if there is none."""
    from horus.domain.config import ConfigInvalid, config_key, parse_change_body

    def refuse(reason) -> None:
        fail(f"the current {entity.lower()} config is invalid ({reason}); replace it with `add --from-file`", INVALID)

    try:
        current = _from_projection(s, entity, entity_id) if _projection_caught_up(s) else None
    except Exception:  # noqa: BLE001 - the topic below is the source of truth anyway
        current = None
    if current is not None:
        body, invalid = current
        if invalid:
            refuse(invalid)
        return body
    change = latest_changes(s).get(config_key(entity, entity_id))
    if change is None or change["op"] == "DELETE":
        return None
    try:
        parsed = parse_change_body(entity, entity_id, change["body"])
    except ConfigInvalid as exc:
        refuse(exc)
    return parsed.model_dump(mode="json")


def publish(s: Settings, entity: str, entity_id: str, config: Any | None) -> tuple[dict, tuple[int, int]]:
    """Produce one ConfigChange (UPSERT of `config`, or DELETE when None) and wait for the broker's ack.
    Returns the change and its (partition, offset)."""
    from horus.codec import default_codec
    from horus.domain.config import config_change, config_key
    from horus.kafka.client import flush_or_raise, make_producer, produce_reliably
    from horus.topics import CONFIG_CHANGES

    change = config_change(entity, entity_id, config, "cli", occurred_at_us=time.time_ns() // 1000)
    where: list = []

    def delivered(err, msg) -> None:
        where.append(err if err is not None else (msg.partition(), msg.offset()))

    producer = make_producer(s, log_level=3)
    produce_reliably(
        producer,
        s.topic(CONFIG_CHANGES.name),
        default_codec().encode("ConfigChange", change),
        key=config_key(entity, entity_id),
        on_delivery=delivered,
    )
    flush_or_raise(producer)
    if not where or not isinstance(where[0], tuple):
        fail(f"config.changes did not accept the change: {where[0] if where else 'no delivery report'}")
    return change, where[0]


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
def _follower_options(
    signature_type, signer, custody, credentials_ref, daily_cap, market_exposure_cap, max_open_positions, enabled
) -> dict:
    return _given(
        signature_type=signature_type,
        signer=signer,
        custody=custody,
        credentials_ref=credentials_ref,
        daily_cap=daily_cap,
        market_exposure_cap=market_exposure_cap,
        max_open_positions=max_open_positions,
        enabled=enabled,
    )


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
def follower_add(
    address: str = typer.Argument(..., help="the follower's trading address (maker/funder of its orders)"),
    signature_type: int | None = typer.Option(
        None, "--signature-type", help="0 EOA, 1 proxy, 2 Safe, 3 deposit wallet"
    ),
    signer: str | None = typer.Option(None, "--signer", help="EOA that signs (types 1-3)"),
    custody: str | None = typer.Option(None, "--custody", help="direct | proxy"),
    credentials_ref: str | None = typer.Option(None, "--credentials-ref", help="ref in the credentials store"),
    credentials_file: Path | None = typer.Option(
        None,
        "--credentials-file",
        metavar="FILE",
        help="JSON with private_key, api_key, api_secret, api_passphrase: "
        "stored encrypted, only the ref goes into the event",
    ),
    daily_cap: str | None = typer.Option(None, "--daily-cap", help="pUSD spent on BUYs per UTC day"),
    market_exposure_cap: str | None = typer.Option(None, "--market-exposure-cap", help="pUSD per market"),
    max_open_positions: int | None = typer.Option(None, "--max-open-positions"),
    enabled: bool | None = typer.Option(None, "--enable/--disable"),
    from_file: Path | None = FILE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Add a follower account."""
    s = settings()
    data = {
        **_read_json_file(from_file),
        "follower": address,
        **_follower_options(
            signature_type,
            signer,
            custody,
            credentials_ref,
            daily_cap,
            market_exposure_cap,
            max_open_positions,
            enabled,
        ),
    }
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
def follower_update(
    address: str = typer.Argument(...),
    signature_type: int | None = typer.Option(None, "--signature-type"),
    signer: str | None = typer.Option(None, "--signer"),
    custody: str | None = typer.Option(None, "--custody"),
    credentials_ref: str | None = typer.Option(None, "--credentials-ref"),
    daily_cap: str | None = typer.Option(None, "--daily-cap"),
    market_exposure_cap: str | None = typer.Option(None, "--market-exposure-cap"),
    max_open_positions: int | None = typer.Option(None, "--max-open-positions"),
    enabled: bool | None = typer.Option(None, "--enable/--disable"),
    from_file: Path | None = FILE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Change some fields of a follower (the others keep their current values)."""
    s = settings()
    address = _validated_follower({"follower": address}).follower
    current = current_config(s, "FOLLOWER", address)
    if current is None:
        fail(f"no follower {address}; add it with `horus follower add`")
    data = {
        **current,
        **_read_json_file(from_file),
        **_follower_options(
            signature_type,
            signer,
            custody,
            credentials_ref,
            daily_cap,
            market_exposure_cap,
            max_open_positions,
            enabled,
        ),
        "follower": address,
    }
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


# the options `follow add` and `follow update` share (typer reads them from each signature)
SIZING = typer.Option(None, "--sizing", help="fixed | ratio | balance_pct")
AMOUNT = typer.Option(None, "--amount", help="fixed: pUSD per copy")
RATIO = typer.Option(None, "--ratio", help="ratio: x the leader's pUSD")
BALANCE_PCT = typer.Option(None, "--balance-pct", help="balance_pct: % of the available balance")
MULTIPLIER = typer.Option(None, "--multiplier")
MAX_PER_TRADE = typer.Option(None, "--max-per-trade")
MIN_PER_TRADE = typer.Option(None, "--min-per-trade")
MIN_SIZE = typer.Option(None, "--min-size", help="below the venue minimum: round_up | skip")
SLIPPAGE = typer.Option(None, "--slippage-bps")
ORDER_TYPE = typer.Option(None, "--order-type", help="FAK | FOK")
COPY_SELLS = typer.Option(None, "--copy-sells/--no-copy-sells")
DAILY_CAP = typer.Option(None, "--daily-cap")
EXPOSURE_CAP = typer.Option(None, "--market-exposure-cap")
PRICE_MIN = typer.Option(None, "--price-min")
PRICE_MAX = typer.Option(None, "--price-max")
ALLOW = typer.Option(None, "--allow", help="condition id, tag:<slug> or category:<name> (repeatable)")
DENY = typer.Option(None, "--deny", help="condition id, tag:<slug> or category:<name> (repeatable)")
MAX_FILL_AGE = typer.Option(None, "--max-fill-age", help="seconds; older leader fills are skipped")
ORDER_TTL = typer.Option(None, "--order-ttl", help="seconds an order may still be sent or retried")
ENABLED = typer.Option(None, "--enable/--disable")


@follow_app.command("add")
@friendly_errors
def follow_add(
    leader: str | None = typer.Option(None, "--leader", help="address to copy"),
    follower: str | None = typer.Option(None, "--follower", help="follower trading address"),
    follow_id: str | None = typer.Option(None, "--id", help="default: <follower[:10]>-<leader[:10]>"),
    sizing: str | None = SIZING,
    amount: str | None = AMOUNT,
    ratio: str | None = RATIO,
    balance_pct: str | None = BALANCE_PCT,
    multiplier: str | None = MULTIPLIER,
    max_per_trade: str | None = MAX_PER_TRADE,
    min_per_trade: str | None = MIN_PER_TRADE,
    min_size: str | None = MIN_SIZE,
    slippage_bps: int | None = SLIPPAGE,
    order_type: str | None = ORDER_TYPE,
    copy_sells: bool | None = COPY_SELLS,
    daily_cap: str | None = DAILY_CAP,
    market_exposure_cap: str | None = EXPOSURE_CAP,
    price_min: str | None = PRICE_MIN,
    price_max: str | None = PRICE_MAX,
    allow: list[str] | None = ALLOW,
    deny: list[str] | None = DENY,
    max_fill_age: float | None = MAX_FILL_AGE,
    order_ttl: int | None = ORDER_TTL,
    enabled: bool | None = ENABLED,
    from_file: Path | None = FILE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Add a follow: FOLLOWER copies LEADER."""
    s = settings()
    options = _follow_options(
        leader=leader,
        follower=follower,
        follow_id=follow_id,
        sizing=sizing,
        amount=amount,
        ratio=ratio,
        balance_pct=balance_pct,
        multiplier=multiplier,
        max_per_trade=max_per_trade,
        min_per_trade=min_per_trade,
        min_size=min_size,
        slippage_bps=slippage_bps,
        order_type=order_type,
        copy_sells=copy_sells,
        daily_cap=daily_cap,
        market_exposure_cap=market_exposure_cap,
        price_min=price_min,
        price_max=price_max,
        allow=allow,
        deny=deny,
        max_fill_age=max_fill_age,
        order_ttl=order_ttl,
        enabled=enabled,
    )
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
def follow_update(
    follow_id: str = typer.Argument(...),
    leader: str | None = typer.Option(None, "--leader"),
    follower: str | None = typer.Option(None, "--follower"),
    sizing: str | None = SIZING,
    amount: str | None = AMOUNT,
    ratio: str | None = RATIO,
    balance_pct: str | None = BALANCE_PCT,
    multiplier: str | None = MULTIPLIER,
    max_per_trade: str | None = MAX_PER_TRADE,
    min_per_trade: str | None = MIN_PER_TRADE,
    min_size: str | None = MIN_SIZE,
    slippage_bps: int | None = SLIPPAGE,
    order_type: str | None = ORDER_TYPE,
    copy_sells: bool | None = COPY_SELLS,
    daily_cap: str | None = DAILY_CAP,
    market_exposure_cap: str | None = EXPOSURE_CAP,
    price_min: str | None = PRICE_MIN,
    price_max: str | None = PRICE_MAX,
    allow: list[str] | None = ALLOW,
    deny: list[str] | None = DENY,
    max_fill_age: float | None = MAX_FILL_AGE,
    order_ttl: int | None = ORDER_TTL,
    enabled: bool | None = ENABLED,
    from_file: Path | None = FILE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Change some fields of a follow (the others keep their current values; --allow/--deny replace the lists)."""
    s = settings()
    current = current_config(s, "FOLLOW", follow_id)
    if current is None:
        fail(f"no follow {follow_id}; add it with `horus follow add`")
    options = _follow_options(
        leader=leader,
        follower=follower,
        sizing=sizing,
        amount=amount,
        ratio=ratio,
        balance_pct=balance_pct,
        multiplier=multiplier,
        max_per_trade=max_per_trade,
        min_per_trade=min_per_trade,
        min_size=min_size,
        slippage_bps=slippage_bps,
        order_type=order_type,
        copy_sells=copy_sells,
        daily_cap=daily_cap,
        market_exposure_cap=market_exposure_cap,
        price_min=price_min,
        price_max=price_max,
        allow=allow,
        deny=deny,
        max_fill_age=max_fill_age,
        order_ttl=order_ttl,
        enabled=enabled,
    )
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
    value = {
        "fixed": f"{sizing.get('amount')} pUSD",
        "ratio": f"x{sizing.get('ratio')}",
        "balance_pct": f"{sizing.get('balance_pct')}%",
    }.get(mode, "?")
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
    import psycopg
    from psycopg.rows import dict_row

    from horus.db.engine import psycopg_conninfo
    from horus.domain.config import redacted

    where, params = ["true"], []
    if not include_removed:
        where.append("NOT deleted")
    if follower:
        where.append("follower = %s")
        params.append(follower.strip().lower())
    if leader:
        where.append("leader = %s")
        params.append(leader.strip().lower())
    query = (
        "SELECT follow_id, follower, leader, enabled, deleted, body, invalid, updated_at FROM follow_configs "
        "WHERE " + " AND ".join(where) + " ORDER BY follow_id"
    )
    try:
        with psycopg.connect(
            psycopg_conninfo(settings().database_url), autocommit=True, connect_timeout=5, row_factory=dict_row
        ) as conn:
            rows = conn.execute(query, params).fetchall()
    except psycopg.OperationalError as exc:
        fail(f"database unreachable ({type(exc).__name__}); is it up? Try `horus stack status`.")
    except psycopg.errors.UndefinedTable:
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
