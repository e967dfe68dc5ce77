"""Balances of the venue's accounts (collateral and outcome tokens, each with what resting orders reserve)
and which EOA signs for which smart wallet."""

from __future__ import annotations

from dataclasses import dataclass, field

from horus.venue.simulator.clob.auth import ApiKey
from horus.venue.simulator.clob.config import AccountConfig
from horus.venue.simulator.clob.signatures import SIG_EOA


@dataclass
class Account:
    collateral_e6: int = 0
    reserved_collateral_e6: int = 0
    tokens_e6: dict[str, int] = field(default_factory=dict)
    reserved_tokens_e6: dict[str, int] = field(default_factory=dict)

    def free_collateral(self) -> int:
        return self.collateral_e6 - self.reserved_collateral_e6

    def free_tokens(self, token_id: str) -> int:
        return self.tokens_e6.get(token_id, 0) - self.reserved_tokens_e6.get(token_id, 0)


class Accounts:
    """Accounts by lowercase address; an address never seen starts with the configured default collateral."""

    def __init__(self, default_collateral_e6: int):
        self._default_collateral_e6 = default_collateral_e6
        self._by_address: dict[str, Account] = {}
        self._wallet_signers: dict[str, tuple[str, int]] = {}  # wallet -> (signer EOA, signature type)

    def of(self, address: str) -> Account:
        key = address.lower()
        account = self._by_address.get(key)
        if account is None:
            account = self._by_address[key] = Account(collateral_e6=self._default_collateral_e6)
        return account

    def fund(self, config: AccountConfig) -> Account:
        """Set (not add) the balances `config` names, and register its signer for the wallet."""
        account = self.of(config.address)
        if config.collateral_e6 is not None:
            account.collateral_e6 = config.collateral_e6
        for token, amount in config.tokens_e6.items():
            account.tokens_e6[token] = amount
        if config.signer:
            self._wallet_signers[config.address.lower()] = (config.signer.lower(), config.signature_type)
        return account

    def wallet_signer(self, wallet: str, signature_type: int) -> str | None:
        """The EOA registered to sign for `wallet` as `signature_type`, if any."""
        registered = self._wallet_signers.get(wallet.lower())
        return registered[0] if registered and registered[1] == signature_type else None

    def funder_for(self, key: ApiKey, signature_type: int) -> str:
        """The funds holder a key trades for: itself (EOA) or the wallet it is registered to sign for."""
        if signature_type != SIG_EOA:
            for wallet, (signer, kind) in self._wallet_signers.items():
                if signer == key.address and kind == signature_type:
                    return wallet
        return key.address
