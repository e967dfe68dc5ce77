"""The encrypted credentials store on real Postgres, and `horus credentials`."""

from __future__ import annotations

import base64
import json
import logging

import psycopg
import pytest
from eth_account import Account
from pydantic import SecretStr
from typer.testing import CliRunner

from horus.cli.main import app
from horus.credentials import (
    CredentialsError,
    CredentialsKeyError,
    CredentialsNotFound,
    CredentialStore,
    FollowerSecrets,
    generate_key,
)
from horus.db.engine import psycopg_conninfo
from horus.settings import Settings

pytestmark = pytest.mark.integration

PRIVATE_KEY = "0x" + "7e" * 31 + "01"
SIGNER = Account.from_key(PRIVATE_KEY).address
API_KEY = "6f1c2d3e-aaaa-bbbb-cccc-0123456789ab"
API_SECRET = base64.urlsafe_b64encode(b"hmac-secret-of-the-follower-1234").decode()
PASSPHRASE = "passphrase-of-the-follower-0001"
SECRETS = FollowerSecrets(private_key=PRIVATE_KEY, api_key=API_KEY, api_secret=API_SECRET, api_passphrase=PASSPHRASE)
SECRET_STRINGS = (PRIVATE_KEY[2:], API_SECRET, PASSPHRASE, API_KEY)


@pytest.fixture
def keyed(settings: Settings) -> Settings:
    return settings.model_copy(update={"credentials_key": SecretStr(generate_key())})


def raw_row(settings: Settings, ref: str):
    with psycopg.connect(psycopg_conninfo(settings.database_url)) as conn:
        return conn.execute(
            "SELECT signer_address, key_id, nonce, ciphertext FROM follower_credentials WHERE ref = %s", (ref,)
        ).fetchone()


def test_round_trip_and_nothing_secret_in_the_table(keyed):
    store = CredentialStore(keyed)
    assert store.put("follower-1", SECRETS) == SIGNER
    got = store.get("follower-1")
    assert got == SECRETS and got.signer_address == SIGNER
    assert got.api_creds().secret == API_SECRET and got.api_creds().passphrase == PASSPHRASE

    signer_address, key_id, nonce, ciphertext = raw_row(keyed, "follower-1")
    assert signer_address == SIGNER.lower() and len(nonce) == 12
    stored = bytes(ciphertext) + bytes(nonce) + key_id.encode()
    for secret in SECRET_STRINGS:
        assert secret.encode() not in stored
    assert bytes.fromhex(PRIVATE_KEY[2:]) not in stored
    assert base64.urlsafe_b64decode(API_SECRET) not in stored

    # replacing re-encrypts under a fresh nonce
    store.put("follower-1", SECRETS)
    assert bytes(raw_row(keyed, "follower-1")[2]) != bytes(nonce)
    assert store.get("follower-1") == SECRETS


def test_wrong_missing_or_bad_key_is_a_clear_error(keyed):
    CredentialStore(keyed).put("follower-2", SECRETS)
    other = keyed.model_copy(update={"credentials_key": SecretStr(generate_key())})
    with pytest.raises(CredentialsKeyError, match="encrypted with a different HORUS_CREDENTIALS_KEY"):
        CredentialStore(other).get("follower-2")
    with pytest.raises(CredentialsKeyError, match="HORUS_CREDENTIALS_KEY is not set"):
        CredentialStore(keyed.model_copy(update={"credentials_key": None}))
    with pytest.raises(CredentialsKeyError, match="HORUS_CREDENTIALS_KEY is not valid base64"):
        CredentialStore(keyed.model_copy(update={"credentials_key": SecretStr("not base64!")}))
    short = base64.b64encode(b"x" * 16).decode()
    with pytest.raises(CredentialsKeyError, match="HORUS_CREDENTIALS_KEY must decode to 32 bytes"):
        CredentialStore(keyed.model_copy(update={"credentials_key": SecretStr(short)}))


def test_a_record_moved_to_another_ref_or_altered_does_not_decrypt(keyed):
    store = CredentialStore(keyed)
    store.put("follower-3", SECRETS)
    with psycopg.connect(psycopg_conninfo(keyed.database_url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO follower_credentials (ref, signer_address, key_id, nonce, ciphertext)"
            " SELECT 'follower-3-copy', signer_address, key_id, nonce, ciphertext"
            " FROM follower_credentials WHERE ref = 'follower-3'"
        )
        conn.execute(
            "UPDATE follower_credentials SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0)"
            " # 1) WHERE ref = 'follower-3'"
        )
    with pytest.raises(CredentialsError, match="'follower-3-copy' do not decrypt"):
        store.get("follower-3-copy")
    with pytest.raises(CredentialsError, match="'follower-3' do not decrypt"):
        store.get("follower-3")


def test_get_missing_delete_and_bad_refs(keyed):
    store = CredentialStore(keyed)
    with pytest.raises(CredentialsNotFound, match="no credentials stored under ref 'nobody'"):
        store.get("nobody")
    store.put("follower-4", SECRETS)
    assert store.signer_address("follower-4") == SIGNER.lower()
    assert store.delete("follower-4") is True and store.delete("follower-4") is False
    with pytest.raises(CredentialsNotFound):
        store.get("follower-4")
    with pytest.raises(CredentialsError, match="ref must be"):
        store.put("bad ref with spaces", SECRETS)


def test_secrets_are_validated_and_named():
    with pytest.raises(CredentialsError, match="credentials are missing api_passphrase"):
        FollowerSecrets.from_json({"private_key": PRIVATE_KEY, "api_key": "k", "api_secret": API_SECRET})
    with pytest.raises(CredentialsError, match="private_key must be a 32-byte secp256k1 key") as error:
        FollowerSecrets(private_key="0x1234", api_key="k", api_secret=API_SECRET, api_passphrase="p")
    assert "1234" not in str(error.value)
    with pytest.raises(CredentialsError, match="api_secret must be url-safe base64"):
        FollowerSecrets(private_key=PRIVATE_KEY, api_key="k", api_secret="a", api_passphrase="p")
    with pytest.raises(CredentialsError, match="api_key must be a non-empty string"):
        FollowerSecrets(private_key=PRIVATE_KEY, api_key=" ", api_secret=API_SECRET, api_passphrase="p")


def test_repr_str_and_logs_never_show_secrets(caplog, keyed):
    creds = SECRETS.api_creds()
    texts = [
        repr(SECRETS),
        str(SECRETS),
        f"{SECRETS}",
        repr([SECRETS]),
        repr(creds),
        str(creds),
        repr(CredentialStore(keyed)),
        repr(keyed),
    ]
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("horus.test").info("secrets %s %r creds %s %r", SECRETS, SECRETS, creds, creds)
        logging.getLogger("horus.test").info("in a dict %s", {"s": SECRETS, "c": creds})
    texts.append(caplog.text)
    for text in texts:
        for secret in SECRET_STRINGS[:3]:
            assert secret not in text
    assert SIGNER in repr(SECRETS)  # the address is what identifies it


def test_cli_put_check_generate_key(keyed, tmp_path):
    key = keyed.credentials_key.get_secret_value()
    # full credentials stored as they are (paper mode would derive the paper venue's: test_credentials_least_privilege)
    env = {"HORUS_DATABASE_URL": keyed.database_url, "HORUS_CREDENTIALS_KEY": key, "HORUS_VENUE_MODE": "dry-run"}
    source = tmp_path / "creds.json"
    source.write_text(
        json.dumps(
            {"private_key": PRIVATE_KEY, "api_key": API_KEY, "api_secret": API_SECRET, "api_passphrase": PASSPHRASE}
        )
    )
    runner = CliRunner()

    put = runner.invoke(app, ["credentials", "put", "follower-cli", "--from-file", str(source)], env=env)
    assert put.exit_code == 0, put.output
    assert json.loads(put.stdout) == {"ref": "follower-cli", "signer_address": SIGNER}
    check = runner.invoke(app, ["credentials", "check", "follower-cli"], env=env)
    assert check.exit_code == 0, check.output
    assert json.loads(check.stdout) == {"ref": "follower-cli", "signer_address": SIGNER}
    for result in (put, check):
        assert not any(secret in result.output for secret in SECRET_STRINGS) and key not in result.output
    assert CredentialStore(keyed).get("follower-cli") == SECRETS

    wrong = runner.invoke(
        app, ["credentials", "check", "follower-cli"], env={**env, "HORUS_CREDENTIALS_KEY": generate_key()}
    )
    assert wrong.exit_code == 1 and "different HORUS_CREDENTIALS_KEY" in " ".join(wrong.output.split())
    missing_key = runner.invoke(app, ["credentials", "check", "follower-cli"], env={**env, "HORUS_CREDENTIALS_KEY": ""})
    assert missing_key.exit_code == 1 and "HORUS_CREDENTIALS_KEY is not set" in " ".join(missing_key.output.split())
    missing = runner.invoke(app, ["credentials", "check", "nobody"], env=env)
    assert missing.exit_code == 1 and "no credentials stored under ref 'nobody'" in missing.output

    source.write_text(json.dumps({"private_key": PRIVATE_KEY, "api_key": API_KEY}))
    incomplete = runner.invoke(app, ["credentials", "put", "x", "--from-file", str(source)], env=env)
    assert incomplete.exit_code == 1 and "missing api_secret, api_passphrase" in incomplete.output
    assert PRIVATE_KEY[2:] not in incomplete.output

    generated = runner.invoke(app, ["credentials", "generate-key"])
    assert generated.exit_code == 0 and len(base64.b64decode(generated.stdout.strip(), validate=True)) == 32
    assert generated.stdout.strip() != runner.invoke(app, ["credentials", "generate-key"]).stdout.strip()
