"""Which auditors alpha can count on to sign, as alpha sees them.

Alpha must not acknowledge a request it cannot finalize: a quantum is final only once a
majority signed it (alpha among them), so alpha needs majority - 1 auditors that are connected
and not Failed. It learns that from its herald endpoint: each auditor's handshake and the
`StateUpdate` the auditor answers to every heartbeat (its state and reason), its signatures,
and its disconnection. An auditor nothing was heard from for `silence_ms` counts as gone even
without a disconnection (a web process of alpha that died takes its disconnections with it).

Auditors are known by key (a connection is bound to a key; an index can change with the
settings). Each is remembered with the connection (`channel`) it last reported over, so the late
disconnection of a connection it already replaced does not count it out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from quanta.core.xdr.schema import NodeState

AUDITOR_SILENCE_MS = 5_000
"""An auditor unheard of for this long cannot be counted on (alpha heartbeats every second)."""

_CANNOT_SIGN = frozenset({NodeState.FAILED, NodeState.STOPPED})


@dataclass(slots=True)
class AuditorSeen:
    """What alpha last heard from one auditor, and when (monotonic ms)."""

    channel: str
    heard_ms: int
    state: NodeState
    reason: str


class AuditorPresence:
    """Tracks the auditors' connections and states; says when a majority cannot sign."""

    def __init__(self, silence_ms: int = AUDITOR_SILENCE_MS) -> None:
        """Starts knowing of no auditor."""
        self.silence_ms = silence_ms
        self.seen: dict[bytes, AuditorSeen] = {}

    def report(self, key: bytes, channel: str, state: NodeState, reason: str, now_ms: int) -> None:
        """Records an auditor's handshake or state report over connection `channel`."""
        self.seen[key] = AuditorSeen(channel, now_ms, state, reason)

    def heard(self, key: bytes, now_ms: int) -> None:
        """Records a sign of life (signatures, catchup answers) without a state in it."""
        seen = self.seen.get(key)
        if seen is None:
            self.seen[key] = AuditorSeen("", now_ms, NodeState.RUNNING, "")
        else:
            seen.heard_ms = now_ms

    def gone(self, key: bytes, channel: str) -> None:
        """Forgets an auditor whose connection `channel` closed (unless it moved on)."""
        seen = self.seen.get(key)
        if seen is not None and seen.channel in (channel, ""):
            del self.seen[key]

    def failed(self, key: bytes) -> str | None:
        """Returns the reason an auditor reported Failed, None if it did not."""
        seen = self.seen.get(key)
        return seen.reason if seen is not None and seen.state == NodeState.FAILED else None

    def cannot_finalize(
        self, auditors: Iterable[tuple[int, bytes]], majority: int, now_ms: int
    ) -> str | None:
        """Returns why a majority cannot sign (None if it can): `auditors` are the (index,
        key) of the auditors besides alpha, and alpha's own signature counts as one."""
        able: list[int] = []
        missing: list[str] = []
        others = list(auditors)
        for index, key in others:
            problem = self._problem(key, now_ms)
            if problem is None:
                able.append(index)
            else:
                missing.append(f"auditor {index} {problem}")
        if 1 + len(able) >= majority:
            return None
        return (
            f"cannot finalize: {len(able)} of {len(others)} auditors can sign, "
            f"{majority - 1} needed ({'; '.join(missing)})"
        )

    def _problem(self, key: bytes, now_ms: int) -> str | None:
        seen = self.seen.get(key)
        if seen is None:
            return "not connected"
        if now_ms - seen.heard_ms > self.silence_ms:
            return f"silent for over {self.silence_ms / 1000:g} s"
        if seen.state in _CANNOT_SIGN:
            return f"{seen.state.name.capitalize()}: {seen.reason}"
        return None
