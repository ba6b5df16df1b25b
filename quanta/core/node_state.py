"""Node states and the transitions a node may take between them (SPEC.md, States).

Undefined (not initialized) -> Running (settings loaded, not yet in step) -> Rising (alpha
collecting quanta from auditors) or Chasing (auditor catching up) -> Ready. A Ready or Chasing
node falls back to Running when it loses its peers (an auditor that hears nothing from alpha;
alpha without a majority of auditors able to sign), and returns to Ready once in step again.
Failed and Stopped are terminal for the process: a failed node stops signing until an operator
restarts it. Every move to Failed is logged at ERROR with its cause, here, so no caller can
fail a node silently.
"""

from __future__ import annotations

import logging

from quanta.core.status import InvalidState
from quanta.core.xdr.schema import NodeState

_ALLOWED: dict[NodeState, frozenset[NodeState]] = {
    NodeState.UNDEFINED: frozenset({NodeState.RUNNING, NodeState.FAILED, NodeState.STOPPED}),
    NodeState.RUNNING: frozenset(
        {NodeState.RISING, NodeState.CHASING, NodeState.READY, NodeState.FAILED, NodeState.STOPPED}
    ),
    # Rising -> Running: an alpha that crashed before its genesis was final rises from its
    # persisted genesis settings, and is not initialized if no auditor holds the genesis.
    NodeState.RISING: frozenset(
        {NodeState.READY, NodeState.RUNNING, NodeState.FAILED, NodeState.STOPPED}
    ),
    NodeState.CHASING: frozenset(
        {NodeState.READY, NodeState.RUNNING, NodeState.FAILED, NodeState.STOPPED}
    ),
    NodeState.READY: frozenset(
        {NodeState.CHASING, NodeState.RUNNING, NodeState.FAILED, NodeState.STOPPED}
    ),
    NodeState.FAILED: frozenset({NodeState.STOPPED}),
    NodeState.STOPPED: frozenset(),
}

logger = logging.getLogger(__name__)


class NodeStatus:
    """The current state of this node with the reason of its last change."""

    __slots__ = ("reason", "state")

    def __init__(self) -> None:
        self.state = NodeState.UNDEFINED
        self.reason = "not initialized"

    def set(self, state: NodeState, reason: str) -> bool:
        """Moves to `state`; returns False (and stays) if the transition is not allowed."""
        if state == self.state:
            self.reason = reason
            return True
        if state not in _ALLOWED[self.state]:
            return False
        if state == NodeState.FAILED:
            logger.error("node Failed (was %s): %s", self.state.name.capitalize(), reason)
        self.state, self.reason = state, reason
        return True

    def require_ready(self) -> None:
        """Raises InvalidState unless the node is Ready to execute client requests."""
        if self.state != NodeState.READY:
            raise InvalidState(f"node is {self.state.name.capitalize()}, not Ready: {self.reason}")
