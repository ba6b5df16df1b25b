"""Alpha's watch over its payment providers: deposits and withdrawal outcomes become quanta.

Each poll asks every provider for what arrived after the state's cursor and for the outcomes
of the withdrawals pending there (paid, failed, or expired unpaid), and executes one
`DepositQuantum` per provider with news. Provider reads run in threads; the node is only
touched on the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from channels.db import database_sync_to_async

from payments.core.provider import PaymentProvider
from quanta.core.alpha import AlphaNode
from quanta.core.results import Delivery
from quanta.core.status import ConstellationError
from quanta.core.xdr.schema import DepositQuantum, NodeState, WithdrawalOutcome
from quanta.node.providers import NodeProviders, pending_transactions
from quanta.node_identity import now_ms

logger = logging.getLogger(__name__)


def _halted(alpha: AlphaNode) -> bool:
    # A scheduled halt: notifications wait (at the provider's cursor) for the update that
    # resumes; polling meanwhile would only be refused, once per tick.
    state = alpha.engine.state
    return state.config is not None and state.config.halt_reason(state.apex + 1) is not None


class DepositWatcher:
    """Turns what alpha's providers report into DepositQuanta."""

    def __init__(
        self,
        alpha: AlphaNode,
        providers: NodeProviders,
        deliver: Callable[[list[Delivery]], None],
    ) -> None:
        """Executes on `alpha` with `providers`; hands the results to `deliver`."""
        self.alpha = alpha
        self.providers = providers
        self.deliver = deliver

    async def poll(self) -> None:
        """Polls every provider once (only while alpha is Ready). Each on its own: one that
        raises (its network is down, a bug) is logged and the others are still polled."""
        alpha = self.alpha
        if alpha.status.state != NodeState.READY or _halted(alpha):
            return
        for provider_id, provider in self.providers.current().items():
            try:
                await self._poll_one(provider_id, provider)
            except Exception:
                logger.exception("polling provider %s failed; the others go on", provider_id)

    async def _poll_one(self, provider_id: str, provider: PaymentProvider) -> None:
        state = self.alpha.engine.state
        initial = provider.settings.init_cursor
        cursor = state.cursors.get(provider_id, initial)
        expired = await self._expired_outcomes(provider_id, provider)
        seen = await database_sync_to_async(provider.notification_after)(cursor, now_ms())
        # The cursor may have moved while the provider was read: only a notification that
        # still starts at the current cursor may become a quantum.
        moved = state.cursors.get(provider_id, initial) != cursor
        if moved or (seen.is_empty and not expired):
            return
        # Outcomes are kept for the withdrawals pending now, as auditors will judge them.
        pending = pending_transactions(state, provider_id)
        seen = seen.keeping(provider.pending_hashes(pending))
        kept = {o.withdrawal_id for o in seen.withdrawals}
        extra = tuple(o for o in expired if o.withdrawal_id in pending.keys() - kept)
        outcomes = seen.withdrawals + extra
        body = DepositQuantum(provider_id, seen.cursor, seen.items, outcomes)
        try:
            deliveries = self.alpha.notify(body, now_ms())
        except ConstellationError as error:
            logger.error("provider %s notification refused: %s", provider_id, error)
            return
        self.deliver(deliveries)

    async def _expired_outcomes(
        self, provider_id: str, provider: PaymentProvider
    ) -> tuple[WithdrawalOutcome, ...]:
        pending = pending_transactions(self.alpha.engine.state, provider_id)
        if not pending:
            return ()
        outcomes: tuple[WithdrawalOutcome, ...] = await database_sync_to_async(
            provider.expired_outcomes
        )(pending, now_ms())
        return outcomes
