"""Startup of a node: the last snapshot, the final quanta replayed above it, the role check.

Used by the engine workers (`runworker quanta`) when they start: each builds its own node
(`AlphaWorker.load`, `AuditorWorker.load`) around the state `snapshot_load` rebuilt, and
`node_restore` brings it up to the last final quantum persisted and checks that the node's
key holds the role it was started for. The flush loop then appends final quanta to the chain
as soon as they exist (so a restart loses nothing that was final) and moves the snapshot every
5 s / 50 000 quanta (`quanta.node.persistence`).
"""

from __future__ import annotations

import logging
from typing import Protocol

from django.conf import settings

from quanta.alpha_designation import designation_replaces
from quanta.core.engine import Engine
from quanta.core.evidence import EvidenceItem
from quanta.core.keys import KeyPair
from quanta.core.node_state import NodeStatus
from quanta.core.pending import PendingUpdates, QuantumRow
from quanta.core.xdr.schema import NodeState
from quanta.herald_admission import keys_in_force_publish
from quanta.node.snapshot import LoadedNode, quantum_timestamp_ms
from quanta.node_status import status_publish

logger = logging.getLogger(__name__)


class RunningNode(Protocol):
    """What the role-independent part of the engine worker needs of a node (alpha's or an
    auditor's)."""

    keypair: KeyPair
    engine: Engine
    pending: PendingUpdates
    status: NodeStatus
    final_rows: list[QuantumRow]
    evidence: list[EvidenceItem]

    def take_final_rows(self) -> list[QuantumRow]:
        """Returns and forgets the final quanta not yet handed out for persistence."""
        ...

    def take_evidence(self) -> list[EvidenceItem]:
        """Returns and forgets the evidence not yet handed out for persistence."""
        ...

    def signers_still_needed(self) -> tuple[bytes, ...]:
        """Returns the auditor keys the oldest unfinal quantum still needs (alpha's herald
        admits them)."""
        ...


def node_pending() -> PendingUpdates:
    """Returns the pending-updates manager with this node's snapshot interval and size."""
    return PendingUpdates(settings.SNAPSHOT_INTERVAL_S, settings.SNAPSHOT_QUANTA_MAX)


def node_restore(node: RunningNode, loaded: LoadedNode, *, is_alpha: bool) -> bool:
    """Checks the snapshot's state hash and replays the quanta persisted above it.

    Returns whether the node may go on to its role's start: False before initialization, and
    when it went Failed (a snapshot that does not match its hash, or settings that give the
    node's key another role than the one it was started for)."""
    state = node.engine.state
    if loaded.state_hash is not None and state.state_hash() != loaded.state_hash:
        node.status.set(NodeState.FAILED, "snapshot does not match its state hash")
        return False
    node.engine.last_timestamp_ms = quantum_timestamp_ms(state.apex)
    for quantum in loaded.quanta_above:
        # Recorded like any executed quantum, so the next batch rewrites exactly the rows they
        # touched, removed ones included (a withdrawal or order the replay removed is no
        # longer in the state: marking only what is left kept it in the snapshot for good).
        node.pending.record(node.engine.replay(quantum, verified=True))
    logger.info("engine loaded at apex %d (%d replayed)", state.apex, len(loaded.quanta_above))
    config = state.config
    if config is None:
        return False
    own = node.keypair.public_key
    if is_alpha and config.settings.alpha != own and own in config.auditor_keys:
        # An alpha designate (docs/admin.md, "Replacing alpha"): its operator restarted this
        # auditor as alpha; it executes nothing but the update that names it.
        logger.warning("started as alpha while the settings name another: alpha designate")
        return True
    if not is_alpha and config.settings.alpha == own and designation_replaces(own):
        # A replaced alpha back as an auditor: its operator gave it the update replacing it
        # (`manage.py follow_alpha`); it follows the new alpha from its chain on.
        return True
    if (config.settings.alpha == own) != is_alpha:
        node.status.set(
            NodeState.FAILED, f"CONSTELLATION_ROLE={settings.NODE_ROLE} but settings disagree"
        )
        return False
    return True


def node_status_publish(node: RunningNode, vaults: dict[str, str] | None = None) -> None:
    """Publishes the node's state (and `vaults`: provider id -> why its vault does not answer
    to the settings in force; None: the last ones given) for the web process, and (when they
    changed) the keys of the settings in force, which alpha's herald admits
    (`quanta.herald_admission`)."""
    global _published_vaults
    if vaults is not None:
        _published_vaults = dict(vaults)
    status_publish(
        state=node.status.state,
        apex=node.engine.state.apex,
        reason=node.status.reason,
        vaults=_published_vaults,
    )
    global _published_keys
    config = node.engine.state.config
    if config is None:
        return
    keys = (config.settings.version, node.signers_still_needed())
    if keys != _published_keys:
        keys_in_force_publish(config.settings, keys[1])
        _published_keys = keys


_published_vaults: dict[str, str] = {}
"""The vault mismatches this process last published (a publication without them keeps them:
one without used to blank them until the next change)."""

_published_keys: tuple[int, tuple[bytes, ...]] | None = None
"""The settings version and the still-signing keys this process last published."""
