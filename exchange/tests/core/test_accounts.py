"""Tests of `exchange.core.accounts`: balances, accounts and storage.

Goal: show that every mutator has an exact inverse, that invariants catch an inconsistent
balance and that storage iterates deterministically.
Method: direct calls with fixed values.
"""

from __future__ import annotations

import pytest

from exchange.core.accounts import (
    MAX_OPEN_ORDERS,
    Account,
    AccountStorage,
    Balance,
)
from exchange.core.amounts import U64_MAX


def key(n: int) -> bytes:
    """Returns a distinct 32-byte public key."""
    return n.to_bytes(32, "big")


def test_balance_changes_are_symmetric_and_free_excludes_liabilities() -> None:
    balance = Balance("USD")
    balance.change_amount(100)
    balance.change_liabilities(30)
    balance.check_invariants()
    assert balance.free == 70
    balance.change_liabilities(-30)
    balance.change_amount(-100)
    balance.check_invariants()
    assert (balance.amount, balance.liabilities, balance.free) == (0, 0, 0)


def test_balance_asserts_on_negative_or_overflowing_amounts() -> None:
    balance = Balance("USD", amount=5)
    with pytest.raises(AssertionError):
        balance.change_amount(-6)
    with pytest.raises(AssertionError):
        balance.change_amount(U64_MAX)
    with pytest.raises(AssertionError):
        balance.change_liabilities(-1)
    assert balance.amount == 5


def test_balance_invariant_catches_liabilities_above_amount() -> None:
    balance = Balance("USD", amount=5)
    balance.change_liabilities(6)  # allowed mid-effect; the check comes afterwards
    with pytest.raises(AssertionError):
        balance.check_invariants()


def test_account_balances_create_and_remove() -> None:
    account = Account(7, key(7))
    assert account.balance("USD") is None
    usd = account.create_balance("USD")
    assert account.balance("USD") is usd
    account.check_invariants()
    assert account.remove_balance("USD") is usd
    assert account.balance("USD") is None


def test_account_open_orders_are_bounded() -> None:
    account = Account(7, key(7))
    for _ in range(MAX_OPEN_ORDERS):
        account.change_open_orders(1)
    with pytest.raises(AssertionError):
        account.change_open_orders(1)
    account.change_open_orders(-MAX_OPEN_ORDERS)
    account.check_invariants()


def test_account_digest_sorts_balances_by_asset() -> None:
    account = Account(7, key(7))
    account.create_balance("USD").change_amount(5)
    account.create_balance("BTC").change_amount(3)
    assert account.state_digest_items() == (
        7,
        key(7),
        0,
        0,
        0,
        None,
        (("BTC", 3, 0), ("USD", 5, 0)),
    )


def test_storage_indexes_by_id_and_key_and_iterates_by_id() -> None:
    storage = AccountStorage()
    for account_id in (5, 2, 9):
        storage.create(account_id, key(account_id))
    storage.check_invariants()
    assert [account.id for account in storage] == [2, 5, 9]
    found = storage.get_by_key(key(5))
    assert found is not None
    assert found is storage.get_by_id(5)
    assert storage.remove(5).id == 5
    assert storage.get_by_key(key(5)) is None
    assert storage.get_by_id(5) is None
    assert len(storage) == 2
    storage.check_invariants()


def test_storage_refuses_duplicate_id_or_key() -> None:
    storage = AccountStorage()
    storage.create(1, key(1))
    with pytest.raises(AssertionError):
        storage.create(1, key(2))
    with pytest.raises(AssertionError):
        storage.create(2, key(1))
