"""The whole consensus state of a node, and its hash.

`ConstellationState` is what the effects change and what a snapshot persists: settings,
accounts, the exchange (markets and resting orders), provider cursors, pending withdrawals,
the next account id and the head of the quantum chain (apex and last quantum hash). Nothing
else may influence the execution of a quantum. Its hash is the state commitment
(`quanta.core.commitment`), kept up to date per account the quanta change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exchange.core.accounts import AccountStorage
from exchange.core.amounts import U64_MAX
from exchange.core.market import Exchange
from quanta.core.commitment import StateCommitment, state_hash_rebuilt
from quanta.core.config import Config
from quanta.core.hashing import ZERO_HASH


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A withdrawal waiting for its provider; its id is the apex of its quantum."""

    withdrawal_id: int
    account_id: int
    provider: str
    asset: str
    amount: int
    fee: int
    destination: str
    # The provider transaction (from its quantum, already covered by the chain hash); kept for
    # matching the provider's outcome, left out of equality and of the state hash because
    # reverting a WithdrawalRemove effect cannot restore it.
    transaction: bytes = field(repr=False, compare=False)


class ConstellationState:
    """Everything a quantum can read or change."""

    __slots__ = (
        "accounts",
        "apex",
        "commitment",
        "config",
        "constellation_sequence",
        "cursors",
        "exchange",
        "fee_balances",
        "last_hash",
        "next_account_id",
        "withdrawals",
    )

    def __init__(self) -> None:
        """Creates the empty state of an uninitialized node."""
        self.config: Config | None = None
        self.accounts = AccountStorage()
        self.exchange: Exchange | None = None
        self.cursors: dict[str, str] = {}
        self.withdrawals: dict[int, Withdrawal] = {}
        # The constellation's fee account (account 0 of the effects): what fees paid, by asset.
        # An asset is present only while it holds a positive amount, so the state hash does
        # not depend on how the account got there.
        self.fee_balances: dict[str, int] = {}
        self.next_account_id = 1
        self.constellation_sequence = 0
        self.apex = 0
        self.last_hash = ZERO_HASH
        self.commitment = StateCommitment()

    def require_config(self) -> Config:
        """Returns the settings in force; the node must have been initialized."""
        assert self.config is not None, "constellation not initialized"
        return self.config

    def require_exchange(self) -> Exchange:
        """Returns the exchange; it exists as soon as the constellation is initialized."""
        assert self.exchange is not None, "constellation not initialized"
        return self.exchange

    def state_hash(self) -> bytes:
        """Returns the state commitment (`quanta.core.commitment`): it costs the accounts
        changed since the last call, not the accounts the state holds."""
        return self.commitment.state_hash(self)

    def check_invariants(self) -> None:
        """Asserts accounts, books, that liabilities equal what orders and withdrawals lock,
        and that the incremental state hash equals one computed from scratch (a change that
        did not go through effects would leave it stale)."""
        self.accounts.check_invariants()
        for asset, amount in self.fee_balances.items():
            assert 0 < amount <= U64_MAX, (asset, amount)
        assert self.state_hash() == state_hash_rebuilt(self), "stale state commitment"
        locked: dict[tuple[int, str], int] = {}
        if self.exchange is not None:
            self.exchange.check_invariants()
            locked.update(self.exchange.liabilities_by_account())
        for withdrawal in self.withdrawals.values():
            key = (withdrawal.account_id, withdrawal.asset)
            locked[key] = locked.get(key, 0) + withdrawal.amount + withdrawal.fee
            account = self.accounts.get_by_id(withdrawal.account_id)
            assert account is not None
            assert account.pending_withdrawal == withdrawal.withdrawal_id
        for account in self.accounts:
            for asset, balance in account.balances.items():
                expected = locked.get((account.id, asset), 0)
                assert balance.liabilities == expected, (account.id, asset, balance, expected)
