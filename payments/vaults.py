"""A vault's balances on its external network as of a provider cursor (proof of reserves).

The constellation's state at an apex has seen exactly the vault entries up to that apex's
cursor, so the vault is read as of the same cursor, not as of now: otherwise a deposit that
arrived after the apex (or a payout that left) would show as a difference that is not one.
- Local ledger: the applied transfers into and out of the vault at journal positions up to
  the cursor (positions are the cursor: `payments.providers.local_ledger.ledger`).
- Stellar: the vault's balances now (Horizon `/accounts/{vault}`), with every payment after
  the cursor undone (`/accounts/{vault}/payments`, read in bounded pages). Network fees the
  vault paid after the cursor are not undone: its XLM shows them as a small shortfall.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from payments.models import LedgerTransfer
from payments.providers.local_ledger.ledger import APPLIED
from quanta.core.xdr.schema import ProviderSettings

HORIZON_TIMEOUT_S = 10.0
HORIZON_PAGE = 200
HORIZON_PAGES_MAX = 25
"""Payments after the cursor a Stellar vault may have had (x HORIZON_PAGE) to be audited."""


class VaultUnreadableError(RuntimeError):
    """The vault's balance at the cursor cannot be told (network down, too far ahead)."""


def vault_balances_at(
    provider: ProviderSettings, cursor: str, options: Mapping[str, str] | None = None
) -> dict[str, int]:
    """Returns the vault's balance of each asset the provider carries, as of `cursor`."""
    if provider.provider_type == "local":
        return _ledger_balances_at(provider, int(cursor or 0))
    if provider.provider_type == "stellar":
        url = (options or {}).get("horizon_url", "")
        if not url:
            raise VaultUnreadableError("no horizon_url in this node's options for the provider")
        return _horizon_balances_at(provider, cursor, url.rstrip("/"))
    raise VaultUnreadableError(f"no vault reader for provider type {provider.provider_type!r}")


def _ledger_balances_at(provider: ProviderSettings, position: int) -> dict[str, int]:
    vault = provider.vault
    applied = LedgerTransfer.objects.filter(status=APPLIED, position__lte=position)
    incoming = applied.filter(destination=vault).exclude(source=vault)
    outgoing = applied.filter(source=vault).exclude(destination=vault)
    totals: dict[str, int] = {}
    for query, sign in ((incoming, 1), (outgoing, -1)):
        for row in query.values("asset").annotate(total=Sum("amount")):
            totals[row["asset"]] = totals.get(row["asset"], 0) + sign * int(row["total"])
    return {item.asset: totals.get(item.token, 0) for item in provider.assets}


def _token(record: Mapping[str, Any]) -> str:
    if record.get("asset_type") == "native":
        return "XLM"
    return f"{record.get('asset_code')}:{record.get('asset_issuer')}"


def _units(text: str) -> int:
    return int(Decimal(text) * 10_000_000)


def _horizon_get(url: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
    if not url.startswith(("http://", "https://")):
        raise VaultUnreadableError(f"not an HTTP URL: {url!r}")
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    try:
        with urllib.request.urlopen(url + query, timeout=HORIZON_TIMEOUT_S) as response:  # noqa: S310
            data = json.loads(response.read())
    except (OSError, ValueError) as error:
        raise VaultUnreadableError(f"Horizon: {error}") from None
    if not isinstance(data, dict):
        raise VaultUnreadableError(f"Horizon: {url} did not answer a JSON object")
    return data


def _horizon_balances_at(provider: ProviderSettings, cursor: str, url: str) -> dict[str, int]:
    vault = provider.vault
    account = _horizon_get(f"{url}/accounts/{vault}")
    now = {_token(b): _units(b["balance"]) for b in account.get("balances", [])}
    for record in _payments_after(url, vault, cursor):
        if record.get("type") != "payment" or not record.get("transaction_successful", True):
            continue
        amount = _units(record["amount"])
        token = _token(record)
        if record["to"] == vault and record["from"] != vault:
            now[token] = now.get(token, 0) - amount
        elif record["from"] == vault and record["to"] != vault:
            now[token] = now.get(token, 0) + amount
    return {item.asset: now.get(item.token, 0) for item in provider.assets}


def _payments_after(url: str, vault: str, cursor: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    after = cursor or "0"
    for _ in range(HORIZON_PAGES_MAX):
        params = {"cursor": after, "order": "asc", "limit": str(HORIZON_PAGE)}
        page = _horizon_get(f"{url}/accounts/{vault}/payments", params)
        batch = list(page.get("_embedded", {}).get("records", []))
        if not batch:
            return records
        records += batch
        after = str(batch[-1]["paging_token"])
    raise VaultUnreadableError(
        f"more than {HORIZON_PAGES_MAX * HORIZON_PAGE} payments after the cursor"
    )
