"""D15: decide holds API credentials only, never signing keys.

The credentials store keeps each follower's CLOB API credentials as a record of their own, encrypted apart from
the signing key; decide's resolver (ApiAccounts) reads only that record. Proven with the real store: a follower
whose signing-key record is corrupted, then deleted, still has its balance read by decide. In paper mode the
API credentials are the simulator's, derived with the key when the credentials are stored (never the
placeholders of a key-only file)."""

from __future__ import annotations

import asyncio
import base64
import json

import psycopg
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from horus.cli.main import app
from horus.credentials import (
    ApiAccounts,
    CredentialsError,
    CredentialsNotFound,
    CredentialStore,
    FollowerSecrets,
    generate_key,
)
from horus.db.engine import psycopg_conninfo
from horus.domain.config import ConfigState, parse_follower
from horus.domain.control import ControlState
from horus.domain.decide import StaticView
from horus.ops.paper import create_followers
from horus.venue.polymarket.auth import ApiCreds
from horus.venue.polymarket.orders import address_of
from horus.venue.simulator.clob import SimulatorConfig, run_simulator
from streams.decide_lookups import VenueLookups
from streams.runtime import Runtime

pytestmark = pytest.mark.integration

PRIVATE_KEY = "0x" + "5a" * 31 + "07"
SIGNER = address_of(PRIVATE_KEY).lower()
API = ApiCreds(
    api_key="0d5e1c2b-1111-2222-3333-444455556666",
    secret=base64.urlsafe_b64encode(b"hmac-secret-of-the-follower-7777").decode(),
    passphrase="passphrase-of-the-follower-0007",
)
SECRETS = FollowerSecrets(
    private_key=PRIVATE_KEY, api_key=API.api_key, api_secret=API.secret, api_passphrase=API.passphrase
)


@pytest.fixture
def keyed(settings):
    return settings.model_copy(update={"credentials_key": SecretStr(generate_key())})


def sql(settings, statement: str, *args) -> None:
    with psycopg.connect(psycopg_conninfo(settings.database_url), autocommit=True) as conn:
        conn.execute(statement, args)


def break_the_signing_key(settings, ref: str, how: str) -> None:
    if how == "corrupt":
        sql(
            settings,
            "UPDATE follower_credentials SET ciphertext = overlay(ciphertext placing"
            " decode('ff', 'hex') from 3 for 1) WHERE ref = %s",
            ref,
        )
    else:
        sql(settings, "DELETE FROM follower_credentials WHERE ref = %s", ref)


def test_the_api_credentials_are_a_record_of_their_own(keyed):
    store = CredentialStore(keyed)
    ref = "lp-follower-1"
    store.put(ref, SECRETS)
    stored = store.api_creds(ref)
    assert stored.creds == API and stored.signer_address == SIGNER
    for how in ("corrupt", "delete"):
        break_the_signing_key(keyed, ref, how)
        with pytest.raises(CredentialsError):
            store.get(ref)  # the signing key is gone...
        assert store.api_creds(ref).creds == API  # ...and the API credentials are still served
    # an API record moved under another ref does not decrypt; a deleted ref has neither record
    store.put("lp-follower-2", SECRETS)
    sql(
        keyed,
        "UPDATE follower_api_credentials SET nonce = (SELECT nonce FROM follower_api_credentials"
        " WHERE ref = %s), ciphertext = (SELECT ciphertext FROM follower_api_credentials WHERE ref = %s)"
        " WHERE ref = %s",
        ref,
        ref,
        "lp-follower-2",
    )
    with pytest.raises(CredentialsError, match="do not decrypt"):
        store.api_creds("lp-follower-2")
    assert store.delete(ref)
    with pytest.raises(CredentialsNotFound):
        store.api_creds(ref)


def test_decide_reads_balances_with_api_credentials_only(keyed):
    """Paper mode against the simulator: credentials stored (API creds derived there), then the signing key
    record is deleted; decide still reads the follower's balance."""
    with run_simulator(SimulatorConfig(default_collateral_e6=123_000_000)) as sim:
        s = keyed.model_copy(
            update={"venue_mode": "paper", "clob_url": sim.url, "gamma_url": "", "balance_source": "venue"}
        )
        follower = create_followers(s, ["lp"], "least-privilege")[0]
        # the stored API record holds the simulator's credentials, not the placeholders of the full record
        assert CredentialStore(s).api_creds(follower.credentials_ref).creds.api_key != "paper"
        sql(s, "DELETE FROM follower_credentials WHERE ref = %s", follower.credentials_ref)

        view = StaticView(ConfigState(), ControlState())
        view.config.followers[follower.address] = follower.config()
        runtime = Runtime(s)
        lookups = VenueLookups(runtime, view)
        try:
            lookups.prefetch(
                [
                    {
                        "token_id": "1",
                        "leader_price": "0.5",
                        "condition_id": None,
                        "follower": follower.address,
                        "side": "BUY",
                    }
                ]
            )
            assert view.balances[follower.address].collateral_e6 == 123_000_000
        finally:
            lookups.close()
            runtime.close()

        resolved = asyncio.run(
            ApiAccounts({follower.address: follower.config()}.get, CredentialStore(s)).get(follower.address)
        )
        assert resolved.signer == follower.address and resolved.signature_type == 0
        assert resolved.creds.secret not in repr(resolved) and resolved.creds.passphrase not in repr(resolved)
        assert not hasattr(resolved, "private_key")


def test_a_signer_mismatch_or_missing_record_is_a_clear_error(keyed):
    store = CredentialStore(keyed)
    store.put("lp-other", SECRETS)
    config = parse_follower({"follower": "0x" + "12" * 20, "credentials_ref": "lp-other"})
    accounts = ApiAccounts({config.follower: config}.get, store)
    with pytest.raises(Exception, match="not of the configured signer"):
        asyncio.run(accounts.get(config.follower))
    missing = parse_follower({"follower": SIGNER, "credentials_ref": "lp-none"})
    with pytest.raises(Exception, match="lp-none"):
        asyncio.run(ApiAccounts({SIGNER: missing}.get, store).get(SIGNER))


def test_cli_stores_the_simulators_api_credentials_in_paper_mode(keyed, tmp_path, monkeypatch):
    with run_simulator(SimulatorConfig()) as sim:
        for key, value in keyed.model_copy(update={"venue_mode": "paper", "clob_url": sim.url}).as_env().items():
            monkeypatch.setenv(key, value)
        key_only = tmp_path / "paper.json"
        key_only.write_text(json.dumps({"private_key": PRIVATE_KEY}))  # paper: the key is all it takes
        result = CliRunner().invoke(app, ["credentials", "put", "lp-cli", "--from-file", str(key_only)])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == {"ref": "lp-cli", "signer_address": address_of(PRIVATE_KEY)}
        creds = CredentialStore(keyed).api_creds("lp-cli").creds
        assert sim.state.api_keys[creds.api_key].address == SIGNER  # the simulator knows them

        monkeypatch.setenv("HORUS_CLOB_URL", "http://127.0.0.1:9")  # paper, but no simulator there
        result = CliRunner().invoke(app, ["credentials", "put", "lp-cli-2", "--from-file", str(key_only)])
        assert result.exit_code == 1 and "HORUS_CLOB_URL" in result.output
        with pytest.raises(CredentialsNotFound):
            CredentialStore(keyed).get("lp-cli-2")  # nothing stored half-way


def test_follower_add_in_paper_mode_needs_only_the_key(s, tmp_path):
    with run_simulator(SimulatorConfig()) as sim:
        paper = s.model_copy(update={"venue_mode": "paper", "clob_url": sim.url})
        creds = tmp_path / "creds.json"
        creds.write_text(json.dumps({"private_key": PRIVATE_KEY}))
        added = CliRunner().invoke(
            app, ["follower", "add", SIGNER, "--credentials-file", str(creds)], env=paper.as_env()
        )
        assert added.exit_code == 0, added.output
        stored = CredentialStore(paper).api_creds(f"follower-{SIGNER}")
        assert stored.signer_address == SIGNER and sim.state.api_keys[stored.creds.api_key].address == SIGNER


def test_sync_api_writes_the_records_of_credentials_stored_before_and_re_registers_with_a_new_paper_venue(keyed):
    store = CredentialStore(keyed)
    store.put("lp-old", SECRETS)
    sql(keyed, "DELETE FROM follower_api_credentials WHERE ref = %s", "lp-old")  # stored before migration 0012
    env = {**keyed.model_copy(update={"venue_mode": "dry-run"}).as_env()}
    synced = CliRunner().invoke(app, ["credentials", "sync-api", "lp-old"], env=env)
    assert synced.exit_code == 0, synced.output
    assert json.loads(synced.stdout) == {"ref": "lp-old", "signer_address": address_of(PRIVATE_KEY)}
    assert store.api_creds("lp-old").creds == API

    with run_simulator(SimulatorConfig()) as restarted:  # a paper venue that has never seen the key
        paper = keyed.model_copy(update={"venue_mode": "paper", "clob_url": restarted.url})
        synced = CliRunner().invoke(app, ["credentials", "sync-api", "lp-old"], env=paper.as_env())
        assert synced.exit_code == 0, synced.output
        creds = store.api_creds("lp-old").creds
        assert restarted.state.api_keys[creds.api_key].address == SIGNER
