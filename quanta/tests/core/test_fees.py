"""Fees with an owner: a withdrawal fee moves to the constellation's fee account.

Method: an initialized engine (the `Node` of test_engine.py) models the vault as what entered
it (deposits) minus what left it (the amounts of successful withdrawals: the fee stays in the
vault); after every step the liabilities (`quanta.core.reserves.total_liabilities`) must equal
that vault, asset by asset. Before the fee account the fee left the account's balance and no
one's balance received it, so the first successful withdrawal with a fee broke the equality.
"""

from __future__ import annotations

import pytest

from quanta.core.keys import KeyPair
from quanta.core.reserves import total_liabilities
from quanta.core.testing import QUOTE, deposit_quantum, keypair
from quanta.tests.core.test_engine import UNIT, Node


class Vault:
    """The vault as the external network sees it: deposits in, payouts out."""

    def __init__(self) -> None:
        self.balances: dict[str, int] = {}

    def change(self, asset: str, delta: int) -> None:
        self.balances[asset] = self.balances.get(asset, 0) + delta


def deposit(node: Node, vault: Vault, who: KeyPair, asset: str, amount: int) -> None:
    node.deposit(who, asset, amount)
    vault.change(asset, amount)


def settle(node: Node, vault: Vault, apex: int, asset: str, amount: int, paid: bool) -> None:
    node.run(deposit_quantum(next(node.cursor), withdrawals=[(apex, paid)]))
    if paid:
        vault.change(asset, -amount)


def assert_conserved(node: Node, vault: Vault) -> None:
    owed = total_liabilities(node.engine.state)
    assert {a: v for a, v in owed.items() if v} == {a: v for a, v in vault.balances.items() if v}


@pytest.fixture
def funded() -> tuple[Node, Vault, KeyPair]:
    node, vault, alice = Node(), Vault(), keypair(1)
    deposit(node, vault, alice, QUOTE, 1_000 * UNIT)
    deposit(node, vault, alice, "XLM", 500 * UNIT)
    return node, vault, alice


def test_a_paid_withdrawal_fee_stays_owed(funded: tuple[Node, Vault, KeyPair]) -> None:
    node, vault, alice = funded
    created = node.withdraw(alice, "XLM", 100 * UNIT, fee=3 * UNIT)
    assert_conserved(node, vault)
    settle(node, vault, created.apex, "XLM", 100 * UNIT, paid=True)
    assert node.balance(alice, "XLM") == (397 * UNIT, 0)
    assert_conserved(node, vault)
    assert node.engine.state.fee_balances == {"XLM": 3 * UNIT}


def test_a_failed_withdrawal_charges_no_fee(funded: tuple[Node, Vault, KeyPair]) -> None:
    node, vault, alice = funded
    created = node.withdraw(alice, "XLM", 100 * UNIT, fee=3 * UNIT)
    settle(node, vault, created.apex, "XLM", 100 * UNIT, paid=False)
    assert node.balance(alice, "XLM") == (500 * UNIT, 0)
    assert node.engine.state.fee_balances == {}
    assert_conserved(node, vault)


def test_reverting_a_settlement_takes_the_fee_back(funded: tuple[Node, Vault, KeyPair]) -> None:
    node, _, alice = funded
    created = node.withdraw(alice, "XLM", 100 * UNIT, fee=3 * UNIT)
    before = node.engine.state.state_hash()
    settled = node.run(deposit_quantum(next(node.cursor), withdrawals=[(created.apex, True)]))
    assert node.engine.state.state_hash() != before
    node.engine.revert_last(settled)
    node.engine.state.check_invariants()
    assert node.engine.state.fee_balances == {}
    assert node.engine.state.state_hash() == before


def test_the_fee_account_is_in_the_effects_of_account_0(
    funded: tuple[Node, Vault, KeyPair],
) -> None:
    node, _, alice = funded
    created = node.withdraw(alice, "XLM", 100 * UNIT, fee=3 * UNIT)
    settled = node.run(deposit_quantum(next(node.cursor), withdrawals=[(created.apex, True)]))
    constellation = next(group for group in settled.groups if group.account == 0)
    credited = [e for e in constellation.effects if type(e).__name__ == "BalanceUpdateEffect"]
    assert [(e.asset, e.amount) for e in credited] == [("XLM", 3 * UNIT)]
