"""The execution context of one quantum: emits effects, applies them at once, groups them.

A processor validates first and then emits effects through `QuantumContext.emit`; each effect
is applied immediately, so later steps of the same processor see its result (a balance created
before it is credited, an order filled before the next one is looked at). `rollback` reverts
everything emitted so far, newest first. `finish` groups the effects per account in ascending
account order and advances each account's sequence number; it also tells the state commitment
which accounts changed (every effect changes only the account it is emitted for), and
`unfinish` does for a reverted quantum. A rolled-back quantum needs no word: it left the
state as it found it.
"""

from __future__ import annotations

from quanta.core.effects import APPLIERS, revert_effect
from quanta.core.state import ConstellationState
from quanta.core.xdr.schema import Effect, EffectsGroup


class QuantumContext:
    """Collects and applies the effects of one quantum being executed."""

    __slots__ = ("apex", "effects", "state", "timestamp_ms")

    def __init__(self, state: ConstellationState, apex: int, timestamp_ms: int) -> None:
        """Starts an empty context for the quantum with this apex and timestamp."""
        self.state = state
        self.apex = apex
        self.timestamp_ms = timestamp_ms
        self.effects: list[tuple[int, Effect]] = []

    def emit(self, account_id: int, effect: Effect) -> None:
        """Applies `effect` to account `account_id` (0: the constellation) and records it."""
        APPLIERS[effect.__class__](self.state, account_id, effect)
        self.effects.append((account_id, effect))

    def rollback(self) -> None:
        """Reverts every effect emitted so far, newest first."""
        while self.effects:
            account_id, effect = self.effects.pop()
            revert_effect(self.state, account_id, effect)

    def finish(self) -> list[EffectsGroup]:
        """Returns the effects grouped per account (ascending ids) and bumps the sequences."""
        by_account: dict[int, list[Effect]] = {}
        for account_id, effect in self.effects:
            effects = by_account.get(account_id)
            if effects is None:
                by_account[account_id] = [effect]
            else:
                effects.append(effect)
        next_sequence = self._next_sequence
        return [
            EffectsGroup(account_id, next_sequence(account_id), tuple(by_account[account_id]))
            for account_id in sorted(by_account)
        ]

    def _next_sequence(self, account_id: int) -> int:
        state = self.state
        if account_id == 0:
            state.constellation_sequence += 1
            return state.constellation_sequence
        account = state.accounts.get_by_id(account_id)
        assert account is not None, account_id
        account.sequence += 1
        state.commitment.touch(account_id)
        return int(account.sequence)

    def unfinish(self, groups: list[EffectsGroup]) -> None:
        """Undoes `finish` (sequence numbers) for a quantum that is being reverted."""
        for group in groups:
            if group.account == 0:
                self.state.constellation_sequence -= 1
                continue
            self.state.commitment.touch(group.account)
            account = self.state.accounts.get_by_id(group.account)
            if account is not None:
                account.sequence -= 1
