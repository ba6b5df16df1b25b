"""Pending updates: what must be persisted since the last snapshot, cut into batches.

Executed quanta are recorded as they finalize; the keys they touched (accounts, orders,
provider cursors, withdrawals, settings, the fee account) are collected from their effects.
A batch is cut every `interval_s` or `quanta_max` quanta: it copies the current values of
the touched rows (so the engine can go on changing the state while the batch is written)
together with the quanta themselves. Writing one batch in one transaction makes the persisted
state jump from one consistent apex to the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from quanta.core.engine import Executed
from quanta.core.records import record
from quanta.core.state import ConstellationState, Withdrawal
from quanta.core.xdr.schema import (
    QUANTUM_BODY,
    BalanceUpdateEffect,
    ConstellationSettings,
    ConstellationUpdateEffect,
    CursorUpdateEffect,
    EffectsGroup,
    OrderPlacedEffect,
    OrderRemovedEffect,
    TradeEffect,
    WithdrawalCreateEffect,
    WithdrawalRemoveEffect,
)


@record
class QuantumRow:
    """One quantum as persisted."""

    apex: int
    quantum_hash: bytes
    payload_hash: bytes
    timestamp_ms: int
    kind: int
    initiator: int
    data: bytes
    signatures: bytes
    groups: tuple[EffectsGroup, ...]
    # XDR of each group, in `groups` order (what their hashes were computed from).
    group_data: tuple[bytes, ...]


@record
class AccountRow:
    """One account with all its balances, as persisted."""

    account_id: int
    public_key: bytes
    nonce: int
    sequence: int
    balances: tuple[tuple[str, int, int], ...]


@record
class OrderRow:
    """One resting order, as persisted."""

    order_id: int
    account_id: int
    asset: str
    side: int
    price: int
    amount: int
    client_order_id: int = 0


@dataclass(slots=True)
class Batch:
    """Everything to write in one transaction to move the snapshot to `apex`."""

    apex: int
    quantum_hash: bytes
    state_hash: bytes
    next_account_id: int
    constellation_sequence: int
    accounts: list[AccountRow] = field(default_factory=list)
    orders: list[OrderRow] = field(default_factory=list)
    removed_orders: list[int] = field(default_factory=list)
    cursors: dict[str, str] = field(default_factory=dict)
    settings: list[tuple[int, ConstellationSettings]] = field(default_factory=list)
    withdrawals: list[Withdrawal] = field(default_factory=list)
    removed_withdrawals: list[int] = field(default_factory=list)
    # The whole fee account when a quantum of the batch changed it (a few assets), else None.
    fee_balances: dict[str, int] | None = None


class PendingUpdates:
    """Collects what changed since the last cut."""

    def __init__(self, interval_s: float = 5.0, quanta_max: int = 50_000) -> None:
        """Cuts a batch every `interval_s` seconds or `quanta_max` quanta, whichever first."""
        self.interval_s = interval_s
        self.quanta_max = quanta_max
        self._reset()

    def _reset(self) -> None:
        self.count = 0
        self.accounts: set[int] = set()
        self.orders: set[int] = set()
        self.providers: set[str] = set()
        self.settings: list[tuple[int, ConstellationSettings]] = []
        self.withdrawals: set[int] = set()
        self.fees_changed = False

    def record(self, executed: Executed) -> None:
        """Notes the keys an executed quantum touched."""
        self.count += 1
        for group in executed.groups:
            if group.account:
                self.accounts.add(group.account)
            else:
                self._note_fees(group.effects)
            for effect in group.effects:
                self._note(executed.apex, effect)

    def _note(self, apex: int, effect: object) -> None:
        if isinstance(effect, OrderPlacedEffect | OrderRemovedEffect | TradeEffect):
            self.orders.add(effect.order_id)
        elif isinstance(effect, CursorUpdateEffect):
            self.providers.add(effect.provider)
        elif isinstance(effect, ConstellationUpdateEffect):
            self.settings.append((apex, effect.settings))
        elif isinstance(effect, WithdrawalCreateEffect | WithdrawalRemoveEffect):
            self.withdrawals.add(effect.withdrawal_id)

    def _note_fees(self, effects: tuple[object, ...]) -> None:
        # Account 0's balance updates are the fee account's (`quanta.core.effects`).
        if any(isinstance(effect, BalanceUpdateEffect) for effect in effects):
            self.fees_changed = True

    def is_due(self, elapsed_s: float) -> bool:
        """Tells whether a batch should be cut now."""
        return self.count > 0 and (elapsed_s >= self.interval_s or self.count >= self.quanta_max)

    def cut(self, state: ConstellationState) -> Batch:
        """Copies the touched rows' current values into a batch and starts afresh."""
        batch = Batch(
            state.apex,
            state.last_hash,
            state.state_hash(),
            state.next_account_id,
            state.constellation_sequence,
        )
        for account_id in sorted(self.accounts):
            account = state.accounts.get_by_id(account_id)
            assert account is not None, account_id
            balances = tuple(
                (asset, b.amount, b.liabilities) for asset, b in sorted(account.balances.items())
            )
            batch.accounts.append(
                AccountRow(
                    account.id, account.public_key, account.nonce, account.sequence, balances
                )
            )
        self._cut_orders(state, batch)
        batch.cursors = {p: state.cursors[p] for p in sorted(self.providers) if p in state.cursors}
        batch.settings = list(self.settings)
        for withdrawal_id in sorted(self.withdrawals):
            withdrawal = state.withdrawals.get(withdrawal_id)
            if withdrawal is None:
                batch.removed_withdrawals.append(withdrawal_id)
            else:
                batch.withdrawals.append(withdrawal)
        if self.fees_changed:
            batch.fee_balances = dict(sorted(state.fee_balances.items()))
        self._reset()
        return batch

    def _cut_orders(self, state: ConstellationState, batch: Batch) -> None:
        exchange = state.exchange
        for order_id in sorted(self.orders):
            order = None if exchange is None else exchange.get_order(order_id)
            if order is None:
                batch.removed_orders.append(order_id)
            else:
                batch.orders.append(
                    OrderRow(
                        order.order_id,
                        order.account_id,
                        order.asset,
                        int(order.side),
                        order.price,
                        order.amount,
                        order.client_order_id,
                    )
                )


def quantum_row(executed: Executed, initiator: int, signatures: bytes) -> QuantumRow:
    """Returns the persisted form of a final quantum."""
    return QuantumRow(
        executed.apex,
        executed.quantum_hash,
        executed.payload_hash,
        executed.quantum.timestamp,
        QUANTUM_BODY.discriminant_of[type(executed.quantum.body)],
        initiator,
        executed.quantum_data,
        signatures,
        tuple(executed.groups),
        tuple(executed.group_data),
    )
