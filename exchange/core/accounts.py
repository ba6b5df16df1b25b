"""Accounts of the exchange core: balances with liabilities, nonces and storage.

An `Account` is the consensus state of one client: its nonce, its balances (each with the part
locked as liabilities by open orders or a pending withdrawal) and its open-order count. The
mutators are deliberately symmetric (`change_amount(+x)` is undone by `change_amount(-x)`), so
the effects layer can apply and revert every change exactly; they assert rather than validate,
because validation happens in the request processors before any effect is produced.
"""

from __future__ import annotations

from collections.abc import Iterator

from exchange.core.amounts import U64_MAX

MAX_OPEN_ORDERS = 100
"""Open orders one account may have at a time."""

PUBLIC_KEY_SIZE = 32
"""Size in bytes of an ed25519 public key."""


class Balance:
    """Holds one asset of one account: the total amount and the part locked as liabilities."""

    __slots__ = ("amount", "asset", "liabilities")

    def __init__(self, asset: str, amount: int = 0, liabilities: int = 0) -> None:
        """Creates a balance of `asset`; both quantities are integers in 10^-7 units."""
        self.asset = asset
        self.amount = amount
        self.liabilities = liabilities

    @property
    def free(self) -> int:
        """Returns the amount not locked by liabilities (what can be spent or locked)."""
        return self.amount - self.liabilities

    def change_amount(self, delta: int) -> None:
        """Adds `delta` (possibly negative) to the amount; the caller has validated it."""
        amount = self.amount + delta
        assert amount >= 0, (self.asset, self.amount, delta)
        assert amount <= U64_MAX, (self.asset, self.amount, delta)
        self.amount = amount

    def change_liabilities(self, delta: int) -> None:
        """Adds `delta` (possibly negative) to the liabilities; the caller has validated it."""
        liabilities = self.liabilities + delta
        assert liabilities >= 0, (self.asset, self.liabilities, delta)
        self.liabilities = liabilities

    def check_invariants(self) -> None:
        """Asserts that both quantities are in range and liabilities never exceed the amount."""
        assert 0 <= self.amount <= U64_MAX, (self.asset, self.amount)
        assert self.liabilities >= 0, (self.asset, self.liabilities)
        assert self.liabilities <= self.amount, (self.asset, self.amount, self.liabilities)

    def __repr__(self) -> str:
        """Shows the asset, amount and liabilities for debugging."""
        return f"Balance({self.asset!r}, amount={self.amount}, liabilities={self.liabilities})"


class Account:
    """Holds the consensus state of one client account."""

    __slots__ = (
        "balances",
        "id",
        "nonce",
        "open_orders",
        "pending_withdrawal",
        "public_key",
        "sequence",
    )

    def __init__(self, account_id: int, public_key: bytes) -> None:
        """Creates an empty account with nonce 0, no balances and no open orders."""
        assert account_id > 0, account_id
        assert len(public_key) == PUBLIC_KEY_SIZE, len(public_key)
        self.id = account_id
        self.public_key = public_key
        self.nonce = 0
        # How many quanta have touched this account: the `account_sequence` of its effects
        # groups, which lets a client see that its history has no gap.
        self.sequence = 0
        self.balances: dict[str, Balance] = {}
        self.open_orders = 0
        # The apex of the withdrawal quantum still waiting for its provider, if any.
        self.pending_withdrawal: int | None = None

    def balance(self, asset: str) -> Balance | None:
        """Returns the balance of `asset`, or None if the account has never held it."""
        return self.balances.get(asset)

    def create_balance(self, asset: str) -> Balance:
        """Creates and returns an empty balance of `asset` (the BalanceCreate effect)."""
        assert asset not in self.balances, asset
        balance = Balance(asset)
        self.balances[asset] = balance
        return balance

    def remove_balance(self, asset: str) -> Balance:
        """Removes and returns an empty balance of `asset` (reverting BalanceCreate)."""
        balance = self.balances.pop(asset)
        assert balance.amount == 0, balance
        assert balance.liabilities == 0, balance
        return balance

    def change_open_orders(self, delta: int) -> None:
        """Adds `delta` (+1 on placement, -1 on removal) to the open-order count."""
        open_orders = self.open_orders + delta
        assert 0 <= open_orders <= MAX_OPEN_ORDERS, (self.id, self.open_orders, delta)
        self.open_orders = open_orders

    def check_invariants(self) -> None:
        """Asserts the account's own invariants and those of each of its balances."""
        assert self.id > 0, self.id
        assert len(self.public_key) == PUBLIC_KEY_SIZE, self.id
        assert self.nonce >= 0, (self.id, self.nonce)
        assert 0 <= self.open_orders <= MAX_OPEN_ORDERS, (self.id, self.open_orders)
        for asset, balance in self.balances.items():
            assert balance.asset == asset, (self.id, asset)
            balance.check_invariants()

    def state_digest_items(self) -> tuple[object, ...]:
        """Returns a deterministic tuple of the account's state, balances sorted by asset."""
        balances = tuple(
            (asset, self.balances[asset].amount, self.balances[asset].liabilities)
            for asset in sorted(self.balances)
        )
        return (
            self.id,
            self.public_key,
            self.nonce,
            self.sequence,
            self.open_orders,
            self.pending_withdrawal,
            balances,
        )

    def __repr__(self) -> str:
        """Shows the id, nonce and open-order count for debugging."""
        return f"Account({self.id}, nonce={self.nonce}, open_orders={self.open_orders})"


class AccountStorage:
    """Indexes accounts by id and by public key; ids are assigned by the caller (the apex)."""

    __slots__ = ("_by_id", "_by_key")

    def __init__(self) -> None:
        """Creates an empty storage."""
        self._by_id: dict[int, Account] = {}
        self._by_key: dict[bytes, Account] = {}

    def create(self, account_id: int, public_key: bytes) -> Account:
        """Creates, stores and returns a new account (the AccountCreate effect)."""
        assert account_id not in self._by_id, account_id
        assert public_key not in self._by_key, account_id
        account = Account(account_id, public_key)
        self._by_id[account_id] = account
        self._by_key[public_key] = account
        return account

    def add(self, account: Account) -> None:
        """Stores an existing account (used when loading a snapshot)."""
        assert account.id not in self._by_id, account.id
        assert account.public_key not in self._by_key, account.id
        self._by_id[account.id] = account
        self._by_key[account.public_key] = account

    def remove(self, account_id: int) -> Account:
        """Removes and returns the account (reverting AccountCreate)."""
        account = self._by_id.pop(account_id)
        del self._by_key[account.public_key]
        return account

    def get_by_id(self, account_id: int) -> Account | None:
        """Returns the account with this id, or None."""
        return self._by_id.get(account_id)

    def get_by_key(self, public_key: bytes) -> Account | None:
        """Returns the account with this public key, or None."""
        return self._by_key.get(public_key)

    def __len__(self) -> int:
        """Returns the number of accounts."""
        return len(self._by_id)

    def __iter__(self) -> Iterator[Account]:
        """Yields the accounts sorted by id, so any output built from it is deterministic."""
        by_id = self._by_id
        return (by_id[account_id] for account_id in sorted(by_id))

    def check_invariants(self) -> None:
        """Asserts that both indexes agree and every account satisfies its invariants."""
        assert len(self._by_id) == len(self._by_key)
        for account_id, account in self._by_id.items():
            assert account.id == account_id, account_id
            assert self._by_key[account.public_key] is account, account_id
            account.check_invariants()

    def state_digest_items(self) -> list[tuple[object, ...]]:
        """Returns the accounts' digest tuples sorted by id."""
        return [account.state_digest_items() for account in self]
