"""The rules that keep a settings update from stranding funds (they need the state, so the
engine checks them when it executes the update, after `check_update`).

- A provider with pending withdrawals stays: its outcomes settle them, and the engine refuses
  the outcomes of an unknown provider, so the amounts would stay locked for good.
- Every asset the constellation owes (any account's balance or the fee account's) keeps a
  provider that carries it: without one nobody could ever withdraw it.
Two providers on one vault are refused for any settings (`config.validate_settings`), and a
suspended asset can still be withdrawn (`processors/withdrawal.py`): suspension stops trading
and payments, never the way out.
"""

from __future__ import annotations

from quanta.core.config import provider_id
from quanta.core.reserves import total_liabilities
from quanta.core.state import ConstellationState
from quanta.core.status import BadRequest
from quanta.core.xdr.schema import ConstellationSettings


def check_no_stranded_funds(settings: ConstellationSettings, state: ConstellationState) -> None:
    """Raises BadRequest, saying which funds, if `settings` would strand any of them."""
    _check_pending_providers(settings, state)
    _check_owed_assets_carried(settings, state)


def _check_pending_providers(settings: ConstellationSettings, state: ConstellationState) -> None:
    kept = {provider_id(provider) for provider in settings.providers}
    pending: dict[str, list[int]] = {}
    for withdrawal_id in sorted(state.withdrawals):
        withdrawal = state.withdrawals[withdrawal_id]
        if withdrawal.provider not in kept:
            pending.setdefault(withdrawal.provider, []).append(withdrawal_id)
    for provider, ids in sorted(pending.items()):
        raise BadRequest(
            f"provider {provider} cannot be removed: it has pending withdrawals {ids[:10]}"
            " (wait until they settle or expire)"
        )


def _check_owed_assets_carried(settings: ConstellationSettings, state: ConstellationState) -> None:
    carried = {item.asset for provider in settings.providers for item in provider.assets}
    owed = total_liabilities(state)
    stranded = sorted(asset for asset, amount in owed.items() if amount and asset not in carried)
    if stranded:
        raise BadRequest(
            f"no provider would carry {stranded}, which accounts or the fee account hold:"
            " they could never be withdrawn"
        )
