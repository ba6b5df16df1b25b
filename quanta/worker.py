"""The engine worker's glue: builds the node from the database and persists what it produces.

Used by `EngineConsumer` (the `runworker quanta` process). Startup loads the last snapshot,
replays the final quanta persisted above it, checks the snapshot's state hash, and publishes
the node's state. The flush loop appends final quanta to the chain as soon as they exist (so a
restart loses nothing that was final) and moves the snapshot every 5 s / 50 000 quanta.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings

from payments.core.provider import PaymentProvider
from payments.manager import providers_build
from quanta.core.alpha import AlphaNode
from quanta.core.auditor import AuditorNode
from quanta.core.engine import Engine
from quanta.core.keys import KeyPair
from quanta.core.pending import Batch, PendingUpdates, QuantumRow
from quanta.core.status import BadRequest
from quanta.core.xdr.schema import (
    ConstellationSettings,
    DepositQuantum,
    NodeState,
    TxSignature,
    WithdrawalQuantum,
    WithdrawalRequest,
)
from quanta.node_status import status_publish
from quanta.services import batch_persist, quanta_persist, settings_record_persist, snapshot_load
from quanta.tampering import TamperingAuditorNode

logger = logging.getLogger(__name__)


def node_keypair() -> KeyPair:
    """Returns this node's key pair from CONSTELLATION_NODE_SECRET."""
    secret = settings.NODE_SECRET_SEED
    if not secret:
        raise RuntimeError("CONSTELLATION_NODE_SECRET is not set: a node needs its S... key")
    return KeyPair.from_secret(secret)


def now_ms() -> int:
    """Returns the wall clock in milliseconds (alpha's quantum timestamps)."""
    return time.time_ns() // 1_000_000


Node = AlphaNode | AuditorNode


def node_load() -> Node:
    """Builds this node (alpha or auditor, per CONSTELLATION_ROLE) from the database:
    snapshot, replay of the quanta persisted above it, state hash check."""
    loaded = snapshot_load()
    state = loaded.state
    engine = Engine(state)
    cls: type[Node] = AuditorNode if settings.NODE_ROLE == "auditor" else AlphaNode
    if cls is AuditorNode and settings.NODE_TAMPER:
        cls = TamperingAuditorNode
    node = cls(node_keypair(), engine, _pending())
    if loaded.state_hash is not None and state.state_hash() != loaded.state_hash:
        node.status.set(NodeState.FAILED, "snapshot does not match its state hash")
        return node
    for quantum in loaded.quanta_above:
        engine.replay(quantum, verified=True)
    node.pending.count += len(loaded.quanta_above)
    _mark_replayed_dirty(node)
    _check_role(node)
    logger.info("engine loaded at apex %d (%d replayed)", state.apex, len(loaded.quanta_above))
    return node


def _check_role(node: Node) -> None:
    config = node.engine.state.config
    if config is None:
        return
    is_alpha = config.settings.alpha == node.keypair.public_key
    if is_alpha != isinstance(node, AlphaNode):
        node.status.set(
            NodeState.FAILED, f"CONSTELLATION_ROLE={settings.NODE_ROLE} but settings disagree"
        )
        return
    if isinstance(node, AlphaNode):
        # Rising first: once Ready, alpha would execute requests on top of a chain the
        # auditors may have finalized further than this node persisted.
        if config.majority > 1:
            node.begin_rising()
        node.settings_changed()
    else:
        node.status.set(NodeState.RUNNING, "loaded; waiting for alpha")


def _mark_replayed_dirty(node: Node) -> None:
    # Replayed quanta changed rows the snapshot does not have yet: mark everything so the next
    # batch rewrites it. Rare (only after a crash) and bounded by one batch of quanta.
    state = node.engine.state
    node.pending.accounts.update(account.id for account in state.accounts)
    if state.exchange is not None:
        node.pending.orders.update(state.exchange.orders)
    node.pending.providers.update(state.cursors)
    node.pending.withdrawals.update(state.withdrawals)


def _pending() -> PendingUpdates:
    return PendingUpdates(settings.SNAPSHOT_INTERVAL_S, settings.SNAPSHOT_QUANTA_MAX)


def providers_for(node: Node) -> dict[str, PaymentProvider]:
    """Returns the payment providers of the settings in force (none before initialization),
    with this node's key and its own options for each (settings.PAYMENT_PROVIDERS)."""
    config = node.engine.state.config
    options = getattr(settings, "PAYMENT_PROVIDERS", {})
    return {} if config is None else providers_build(config, node.keypair, options)


def node_status_publish(node: Node) -> None:
    """Publishes the node's state for the web process."""
    status_publish(state=node.status.state, apex=node.engine.state.apex, reason=node.status.reason)


def rows_persist(rows: list[QuantumRow]) -> None:
    """Appends final quanta (runs in a worker thread)."""
    quanta_persist(rows=rows)


def snapshot_persist(batch: Batch) -> None:
    """Moves the snapshot (runs in a worker thread)."""
    batch_persist(batch=batch)


def settings_persist(apex: int, settings_in_force: ConstellationSettings) -> None:
    """Records settings as soon as they are in force (the web process needs them)."""
    settings_record_persist(apex=apex, settings=settings_in_force)


def deposit_validation_install(
    node: Node, providers: Callable[[], dict[str, PaymentProvider]]
) -> None:
    """Makes an auditor check every deposit notification against its own provider's view."""
    if isinstance(node, AlphaNode):
        return  # Alpha built the notification from its own provider.
    state = node.engine.state

    def validate(body: DepositQuantum) -> None:
        provider = providers().get(body.provider)
        if provider is None:
            raise BadRequest(f"provider {body.provider} is not available on this node")
        config = state.require_config()
        initial = config.providers[body.provider].init_cursor
        pending = pending_transactions(node, body.provider)
        provider.validate_notification(body, state.cursors.get(body.provider, initial), pending)

    node.engine.validate_deposit = validate


def pending_transactions(node: Node, provider_id: str) -> dict[int, bytes]:
    """Returns id -> transaction of the withdrawals pending at a provider."""
    withdrawals = node.engine.state.withdrawals
    return {w: item.transaction for w, item in withdrawals.items() if item.provider == provider_id}


def withdrawal_validation_install(
    node: Node, providers: Callable[[], dict[str, PaymentProvider]]
) -> None:
    """Makes an auditor validate every withdrawal transaction through its own provider and
    sign it (the signature goes back to alpha in its AuditorResult)."""
    if not isinstance(node, AuditorNode):
        return  # Alpha built the transaction itself.

    def provider_of(name: str) -> PaymentProvider:
        provider = providers().get(name)
        if provider is None:
            raise BadRequest(f"provider {name} is not available on this node")
        return provider

    def validate(apex: int, timestamp_ms: int, request: WithdrawalRequest, tx: bytes) -> None:
        provider_of(request.provider).validate_withdrawal(apex, timestamp_ms, request, tx)

    def sign(body: WithdrawalQuantum) -> TxSignature:
        provider = str(getattr(body.request.message, "provider", ""))
        return provider_of(provider).sign_withdrawal(body.transaction)

    node.engine.validate_transaction = validate
    node.sign_transaction = sign
