"""The engine worker's glue: builds the node from the database and persists what it produces.

Used by `EngineConsumer` (the `runworker quanta` process). Startup loads the last snapshot,
replays the final quanta persisted above it, checks the snapshot's state hash, and publishes
the node's state. The flush loop appends final quanta to the chain as soon as they exist (so a
restart loses nothing that was final) and moves the snapshot every 5 s / 50 000 quanta.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

from payments.core.provider import PaymentProvider
from payments.manager import providers_build
from quanta.core.alpha import AlphaNode
from quanta.core.engine import Engine
from quanta.core.keys import KeyPair
from quanta.core.pending import Batch, PendingUpdates, QuantumRow
from quanta.core.xdr.schema import NodeState
from quanta.node_status import status_publish
from quanta.services import batch_persist, quanta_persist, snapshot_load

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


def alpha_node_load() -> AlphaNode:
    """Builds the node from the database: snapshot, replay of final quanta, hash check."""
    loaded = snapshot_load()
    state = loaded.state
    if loaded.state_hash is not None and state.state_hash() != loaded.state_hash:
        node = AlphaNode(node_keypair(), Engine(state), _pending())
        node.status.set(NodeState.FAILED, "snapshot does not match its state hash")
        return node
    engine = Engine(state)
    for quantum in loaded.quanta_above:
        engine.replay(quantum, verified=True)
    node = AlphaNode(node_keypair(), engine, _pending())
    node.pending.count += len(loaded.quanta_above)
    _mark_replayed_dirty(node)
    node.settings_changed()
    logger.info("engine loaded at apex %d (%d replayed)", state.apex, len(loaded.quanta_above))
    return node


def _mark_replayed_dirty(node: AlphaNode) -> None:
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


def providers_for(node: AlphaNode) -> dict[str, PaymentProvider]:
    """Returns the payment providers of the settings in force (none before initialization)."""
    config = node.engine.state.config
    return {} if config is None else providers_build(config)


def node_status_publish(node: AlphaNode) -> None:
    """Publishes the node's state for the web process."""
    status_publish(state=node.status.state, apex=node.engine.state.apex, reason=node.status.reason)


def rows_persist(rows: list[QuantumRow]) -> None:
    """Appends final quanta (runs in a worker thread)."""
    quanta_persist(rows=rows)


def snapshot_persist(batch: Batch) -> None:
    """Moves the snapshot (runs in a worker thread)."""
    batch_persist(batch=batch)
