"""A node's durable store, as its persistence writes it and its loader reads it back.

What `quanta.node.persistence` writes, kept in dicts instead of tables: final (alpha) or
signed (auditor) quanta rows appended by the flush loop, settings versions, and the snapshot
rows each `Batch` moves to a newer apex. `load` rebuilds the state the way
`quanta.node.snapshot.snapshot_load` does, so a restart loses exactly what was not written.
Orders are not simulated (no client places one), so no order rows are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exchange.core.accounts import Account
from quanta.core.durable import gap_free_count
from quanta.core.effects import install_settings
from quanta.core.pending import Batch, QuantumRow
from quanta.core.signatures import constellation_id_of
from quanta.core.state import ConstellationState, Withdrawal
from quanta.core.xdr.codec import decode
from quanta.core.xdr.schema import (
    ConstellationQuantum,
    ConstellationSettings,
    ConstellationUpdate,
    MessageType,
    PayloadProof,
    Quantum,
    SignedQuantum,
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The snapshot row: the apex the state rows stand at."""

    apex: int
    quantum_hash: bytes
    state_hash: bytes
    next_account_id: int
    constellation_sequence: int


@dataclass(slots=True)
class Loaded:
    """A state rebuilt from the store, with the quanta persisted above its snapshot."""

    state: ConstellationState
    state_hash: bytes | None
    quanta_above: list[Quantum]
    above_hole: list[SignedQuantum] = field(default_factory=list)


@dataclass(slots=True)
class DurableStore:
    """Everything of one node that survives a crash."""

    rows: dict[int, QuantumRow] = field(default_factory=dict)
    settings: dict[int, tuple[int, ConstellationSettings]] = field(default_factory=dict)
    accounts: dict[int, tuple[bytes, int, int]] = field(default_factory=dict)
    balances: dict[tuple[int, str], tuple[int, int]] = field(default_factory=dict)
    cursors: dict[str, str] = field(default_factory=dict)
    withdrawals: dict[int, Withdrawal] = field(default_factory=dict)
    fee_balances: dict[str, int] = field(default_factory=dict)
    snapshot: Snapshot | None = None
    # Settings of updates alpha executes, recorded before they leave it, until a final row
    # brings that version in (`UnfinalSettingsRecord`).
    unfinal_settings: list[ConstellationSettings] = field(default_factory=list)
    replay_above_hole: bool = False
    # Alpha's journal (`AlphaJournalRecord`): each quantum it streams, alpha-signed, written
    # before it leaves; pruned at the snapshot apex, below which every row is final and on disk.
    journal: dict[int, SignedQuantum] = field(default_factory=dict)

    def journal_persist(self, quanta: list[SignedQuantum]) -> None:
        """Appends quanta alpha is about to send (idempotent: one quantum per apex)."""
        for signed in quanta:
            self.journal.setdefault(signed.quantum.apex, signed)

    def journal_above(self, apex: int) -> list[SignedQuantum]:
        """Returns the journaled quanta above `apex`, in apex order."""
        return [self.journal[a] for a in sorted(self.journal) if a > apex]

    def rows_persist(self, rows: list[QuantumRow]) -> None:
        """Appends rows (idempotent), recording the settings their quanta bring."""
        for row in rows:
            self.rows.setdefault(row.apex, row)
            if row.kind == MessageType.CONSTELLATION_QUANTUM:
                self.settings_persist(row.apex, _settings_of(row))

    def settings_persist(self, apex: int, settings: ConstellationSettings) -> None:
        """Records one settings version and the apex that brought it in (an unfinal record of
        that version or older is done with)."""
        self.settings[settings.version] = (apex, settings)
        self.unfinal_settings = [s for s in self.unfinal_settings if s.version > settings.version]

    def unfinal_settings_forget(self, forgotten: list[ConstellationSettings]) -> None:
        """Deletes the unfinal records of these settings (found final nowhere)."""
        self.unfinal_settings = [s for s in self.unfinal_settings if s not in forgotten]

    def unfinal_settings_persist(self, settings: ConstellationSettings) -> None:
        """Records the settings of an update alpha is about to execute."""
        self.unfinal_settings.append(settings)

    def batch_persist(self, batch: Batch) -> None:
        """Writes a snapshot batch's rows and moves the snapshot to its apex."""
        assert not batch.orders and not batch.removed_orders, "orders are not simulated"
        for account in batch.accounts:
            self.accounts[account.account_id] = (
                account.public_key,
                account.nonce,
                account.sequence,
            )
            for asset, amount, liabilities in account.balances:
                self.balances[(account.account_id, asset)] = (amount, liabilities)
        self.cursors.update(batch.cursors)
        for apex, settings in batch.settings:
            self.settings_persist(apex, settings)
        for withdrawal_id in batch.removed_withdrawals:
            self.withdrawals.pop(withdrawal_id, None)
        for withdrawal in batch.withdrawals:
            self.withdrawals.setdefault(withdrawal.withdrawal_id, withdrawal)
        if batch.fee_balances is not None:  # As `batch_persist`: the whole fee account.
            self.fee_balances = dict(batch.fee_balances)
        self.journal = {a: q for a, q in self.journal.items() if a > batch.apex}
        self.snapshot = Snapshot(
            batch.apex,
            batch.quantum_hash,
            batch.state_hash,
            batch.next_account_id,
            batch.constellation_sequence,
        )

    def signed_after(self, apex: int, limit: int) -> list[SignedQuantum]:
        """Returns up to `limit` persisted quanta above `apex` with their signatures."""
        above = sorted(a for a in self.rows if a > apex)[:limit]
        return [_signed(self.rows[a]) for a in above]

    def load(self, *, replay_above_hole: bool = False) -> Loaded:
        """Rebuilds the state of the last snapshot (empty if none) and the quanta above it
        (`replay_above_hole`: every row above it, the loader's rule before)."""
        state = ConstellationState()
        snapshot = self.snapshot
        self.replay_above_hole = replay_above_hole
        if snapshot is None:
            return Loaded(state, None, *self._quanta_above(0))
        in_force = [v for v, (apex, _) in self.settings.items() if apex <= snapshot.apex]
        if in_force:
            # As `snapshot_load`: later settings carry the id of the genesis ones.
            genesis = self.settings[min(self.settings)][1]
            install_settings(state, self.settings[max(in_force)][1], constellation_id_of(genesis))
        self._accounts_load(state)
        for withdrawal in sorted(self.withdrawals.values(), key=lambda w: w.withdrawal_id):
            state.withdrawals[withdrawal.withdrawal_id] = withdrawal
            account = state.accounts.get_by_id(withdrawal.account_id)
            assert account is not None
            account.pending_withdrawal = withdrawal.withdrawal_id
        state.cursors = dict(self.cursors)
        state.fee_balances = dict(self.fee_balances)
        state.apex = snapshot.apex
        state.last_hash = snapshot.quantum_hash
        state.next_account_id = snapshot.next_account_id
        state.constellation_sequence = snapshot.constellation_sequence
        return Loaded(state, snapshot.state_hash, *self._quanta_above(snapshot.apex))

    def _accounts_load(self, state: ConstellationState) -> None:
        accounts: dict[int, Account] = {}
        for account_id, (public_key, nonce, sequence) in sorted(self.accounts.items()):
            account = Account(account_id, public_key)
            account.nonce, account.sequence = nonce, sequence
            accounts[account_id] = account
            state.accounts.add(account)
        for (account_id, asset), (amount, liabilities) in sorted(self.balances.items()):
            balance = accounts[account_id].create_balance(asset)
            balance.amount, balance.liabilities = amount, liabilities

    def _quanta_above(self, apex: int) -> tuple[list[Quantum], list[SignedQuantum]]:
        # As `snapshot_load`: replayed up to the first hole, the rows above it kept signed.
        above = sorted(a for a in self.rows if a > apex)
        replayable = len(above) if self.replay_above_hole else gap_free_count(above, apex)
        quanta = [decode(Quantum, self.rows[a].data) for a in above[:replayable]]
        return quanta, [_signed(self.rows[a]) for a in above[replayable:]]


def _signed(row: QuantumRow) -> SignedQuantum:
    proof: PayloadProof = decode(PayloadProof, row.signatures)
    return SignedQuantum(decode(Quantum, row.data), proof.signatures)


def _settings_of(row: QuantumRow) -> ConstellationSettings:
    body = decode(Quantum, row.data).body
    assert isinstance(body, ConstellationQuantum), row.apex
    update = body.update.message
    assert isinstance(update, ConstellationUpdate), row.apex
    return update.settings
