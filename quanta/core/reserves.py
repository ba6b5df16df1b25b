"""What the constellation owes, by asset: the liabilities side of a proof of reserves.

Every unit a vault holds for the constellation is owed to someone: to an account (its whole
balance, the part locked by orders or a pending withdrawal included) or to the constellation's
fee account. So at any apex the vault balance seen at that apex's provider cursors must be at
least `total_liabilities` of each asset it carries (more only by payments the constellation
did not credit, such as a deposit below `min_account_balance`).
"""

from __future__ import annotations

from quanta.core.state import ConstellationState


def account_liabilities(state: ConstellationState) -> dict[str, int]:
    """Returns, by asset, the sum of every account's balance (locked parts included)."""
    totals: dict[str, int] = {}
    for account in state.accounts:
        for asset, balance in account.balances.items():
            totals[asset] = totals.get(asset, 0) + balance.amount
    return totals


def total_liabilities(state: ConstellationState) -> dict[str, int]:
    """Returns, by asset, what the constellation owes: every account's balance and the fee
    account's."""
    totals = account_liabilities(state)
    for asset, amount in state.fee_balances.items():
        totals[asset] = totals.get(asset, 0) + amount
    return totals
