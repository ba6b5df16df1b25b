"""Goal: a payment of at least the minimum balance in the quote asset to a fresh key creates
the account (the Centaurus rule); any other payment to a fresh key is refused, changing nothing.

Method: the `Node` of test_engine (an initialized engine on plain objects, min_account_balance
1 USD); each test pays a key that has no account and looks at accounts, balances and groups.
"""

from __future__ import annotations

import pytest

from quanta.core.engine import Engine
from quanta.core.keys import KeyPair
from quanta.core.state import ConstellationState
from quanta.core.status import StatusCode
from quanta.core.testing import QUOTE, keypair, request_quantum
from quanta.core.xdr.schema import AccountCreateEffect, PaymentRequest
from quanta.tests.core.test_engine import UNIT, Node


@pytest.fixture
def node() -> Node:
    return Node()


@pytest.fixture
def alice(node: Node) -> KeyPair:
    who = keypair(1)
    node.deposit(who, QUOTE, 1_000 * UNIT)
    return who


def _pay_fresh(node: Node, sender: KeyPair, asset: str, amount: int) -> PaymentRequest:
    fresh = keypair(55)
    return PaymentRequest(1, sender.public_key, node.nonce(sender), asset, amount, fresh.public_key)


def test_a_payment_of_the_minimum_in_the_quote_asset_creates_the_account(
    node: Node, alice: KeyPair
) -> None:
    fresh = keypair(55)
    executed = node.pay(alice, fresh, QUOTE, UNIT)
    account = node.engine.state.accounts.get_by_key(fresh.public_key)
    assert account is not None
    assert node.balance(fresh, QUOTE) == (UNIT, 0)
    assert node.balance(alice, QUOTE) == (999 * UNIT, 0)
    created = [e for g in executed.groups for e in g.effects if isinstance(e, AccountCreateEffect)]
    assert [(e.account, e.public_key) for e in created] == [(account.id, fresh.public_key)]
    assert sorted(g.account for g in executed.groups) == sorted([1, account.id])


def test_the_created_account_replays_to_the_same_state(node: Node, alice: KeyPair) -> None:
    node.pay(alice, keypair(55), QUOTE, 5 * UNIT)
    replica = Engine(ConstellationState())
    for executed in node.executed:
        again = replica.replay(executed.quantum)
        assert again.quantum_hash == executed.quantum_hash
    assert replica.state.state_hash() == node.engine.state.state_hash()


def test_below_the_minimum_is_refused_naming_the_minimum(node: Node, alice: KeyPair) -> None:
    request = _pay_fresh(node, alice, QUOTE, UNIT - 1)
    message = node.rejected(request_quantum(request, alice, node.cid), StatusCode.BAD_REQUEST)
    assert "at least 1 USD" in message, message


def test_another_asset_to_a_fresh_key_is_refused(node: Node, alice: KeyPair) -> None:
    request = _pay_fresh(node, alice, "XLM", 100 * UNIT)
    message = node.rejected(request_quantum(request, alice, node.cid), StatusCode.BAD_REQUEST)
    assert "not registered" in message and "USD" in message, message
