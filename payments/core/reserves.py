"""Proof of reserves, the comparison (pure): per asset, what the vaults hold against what the
constellation owes at one finalized apex.

Balances are per asset, not per provider, so the comparison is per asset: the vaults of every
provider carrying it, added up, against the liabilities of that asset (every account's
balance, locked parts included, and the fee account's). The difference is vault minus
liabilities: 0 when every unit is owed to someone, positive when a vault holds payments the
constellation did not credit (a deposit below `min_account_balance`, a payment from a key
that is not an account), negative when funds are missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from quanta.core.config import provider_id
from quanta.core.xdr.schema import ProviderSettings


@dataclass(frozen=True, slots=True)
class ProviderVault:
    """One provider's vault as its network showed it at the apex's cursor (or why not)."""

    provider: str
    vault: str
    cursor: str
    balance: int | None
    error: str = ""


@dataclass(frozen=True, slots=True)
class AssetReserve:
    """One asset: its vaults against its liabilities."""

    asset: str
    accounts: int
    fee_account: int
    vaults: tuple[ProviderVault, ...]

    @property
    def liabilities(self) -> int:
        """Returns what the constellation owes in this asset."""
        return self.accounts + self.fee_account

    @property
    def vault_total(self) -> int | None:
        """Returns the vaults' sum, None if a vault could not be read."""
        if any(vault.balance is None for vault in self.vaults):
            return None
        return sum(vault.balance or 0 for vault in self.vaults)

    @property
    def difference(self) -> int | None:
        """Returns vault minus liabilities, None if a vault could not be read."""
        total = self.vault_total
        return None if total is None else total - self.liabilities


def reserves_compare(
    providers: tuple[ProviderSettings, ...],
    cursors: Mapping[str, str],
    accounts: Mapping[str, int],
    fees: Mapping[str, int],
    vaults: Mapping[str, Mapping[str, int] | str],
) -> list[AssetReserve]:
    """Returns one row per asset any provider carries or anyone holds, sorted by code.

    `vaults` maps a provider id to its vault's balances by asset, or to the error that kept
    it from being read."""
    assets = set(accounts) | set(fees)
    assets |= {item.asset for provider in providers for item in provider.assets}
    rows = []
    for asset in sorted(assets):
        carriers = [p for p in providers if any(item.asset == asset for item in p.assets)]
        rows.append(
            AssetReserve(
                asset,
                accounts.get(asset, 0),
                fees.get(asset, 0),
                tuple(_provider_vault(p, asset, cursors, vaults) for p in carriers),
            )
        )
    return rows


def _provider_vault(
    provider: ProviderSettings,
    asset: str,
    cursors: Mapping[str, str],
    vaults: Mapping[str, Mapping[str, int] | str],
) -> ProviderVault:
    pid = provider_id(provider)
    cursor = cursors.get(pid, provider.init_cursor)
    seen = vaults.get(pid, "not read")
    if isinstance(seen, str):
        return ProviderVault(pid, provider.vault, cursor, None, seen)
    return ProviderVault(pid, provider.vault, cursor, seen.get(asset, 0))


def reserve_json(row: AssetReserve) -> dict[str, object]:
    """Returns the JSON form of one row; amounts as decimal strings of 10^-7 units (u64
    amounts do not fit a JavaScript number)."""

    def text(value: int | None) -> str | None:
        return None if value is None else str(value)

    return {
        "asset": row.asset,
        "accounts": str(row.accounts),
        "fee_account": str(row.fee_account),
        "liabilities": str(row.liabilities),
        "vault": text(row.vault_total),
        "difference": text(row.difference),
        "providers": [
            {
                "provider": vault.provider,
                "vault": vault.vault,
                "cursor": vault.cursor,
                "balance": text(vault.balance),
                "error": vault.error,
            }
            for vault in row.vaults
        ],
    }
