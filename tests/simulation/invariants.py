"""What must hold after every step of a simulation, and once its faults have stopped.

1. No fork: every quantum an honest node holds as final (alpha: finalized, in memory or on
   disk; an auditor: signed by alpha and itself when that is a majority; a follower, not a
   signer at that apex, holds nothing final) agrees, apex by apex,
   with every other honest node's final quanta and with every quantum any honest node holds.
2. What a client was told is final (alpha persisted it, then told) is such a final quantum,
   so (1) keeps it at its apex on every honest node; the quiet tail brings everyone there.
3. Every transaction the vault paid is a withdrawal quantum final and persisted at alpha.
4. After a quiet tail honest nodes are Ready, at one apex and one state hash: the auditors
   of the settings in force (a node a rotation removed is refused by the herald).
5. After a quiet tail new requests are final: nothing stays unfinalized at alpha.
6. After a quiet tail every rotation the operator posted is in force, final and persisted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from quanta.core.pending import QuantumRow
from quanta.core.xdr.codec import decode
from quanta.core.xdr.schema import NodeState, PayloadProof, Quantum, WithdrawalQuantum

if TYPE_CHECKING:
    from .nodes import SimAlpha, SimAuditor


class InvariantBroken(AssertionError):  # noqa: N818 - a verdict, named as one
    """An invariant does not hold; the message says which and where."""


@dataclass(slots=True)
class Invariants:
    """Checks the invariants of one constellation, counting each check."""

    alpha: SimAlpha
    auditors: list[SimAuditor]
    majority: int
    checks: int = 0
    # Paid transactions already found durable (a persisted row never changes).
    _paid_ok: set[bytes] = field(default_factory=set)
    # Whether each auditor signed its disk row at each apex (a persisted row never changes).
    _signed_on_disk: dict[tuple[int, int], bool] = field(default_factory=dict)

    def _honest(self) -> list[SimAuditor]:
        return [a for a in self.auditors if not a.malicious]

    def after_step(self) -> None:
        """Checks invariants 1-3."""
        self.no_fork()
        self.payouts_durable()

    def _finals(self) -> Iterator[tuple[str, int, bytes]]:
        alpha = self.alpha
        for apex, row in alpha.store.rows.items():
            yield "alpha's disk", apex, row.quantum_hash
        for apex, digest in alpha.final_in_memory().items():
            yield "alpha's memory", apex, digest
        if self.majority > 2:
            return  # Alpha and one auditor are not a majority: an auditor cannot tell.
        for auditor in self._honest():
            for apex, row in auditor.store.rows.items():
                signed = self._signed_on_disk.get((auditor.index, apex))
                if signed is None:
                    signed = self._signed_on_disk[(auditor.index, apex)] = _signed_by_two(row)
                if signed:
                    yield f"auditor {auditor.index}'s disk", apex, row.quantum_hash
            if auditor.node is not None:
                for row in auditor.node.final_rows:  # executed, not flushed yet
                    if _signed_by_two(row):
                        yield f"auditor {auditor.index}'s memory", row.apex, row.quantum_hash

    def no_fork(self) -> None:
        """Invariants 1 and 2: one final quantum per apex, never replaced on an honest node."""
        self.checks += 1
        finals: dict[int, tuple[bytes, str]] = {}
        for where, apex, digest in self._finals():
            held = finals.setdefault(apex, (digest, where))
            if held[0] != digest:
                raise InvariantBroken(
                    f"fork at apex {apex}: {held[1]} holds {held[0].hex()[:12]} final, "
                    f"{where} holds {digest.hex()[:12]} final"
                )
        for node in (self.alpha, *self._honest()):
            if node.node is None:
                continue
            for apex, digest in node.chain.items():
                final = finals.get(apex)
                if final is not None and final[0] != digest:
                    raise InvariantBroken(
                        f"fork at apex {apex}: node {node.index} executed {digest.hex()[:12]} "
                        f"where {final[1]} holds {final[0].hex()[:12]} final"
                    )

    def payouts_durable(self) -> None:
        """Invariant 3: the vault paid only withdrawals final and persisted at alpha."""
        self.checks += 1
        for transaction, apex in self.alpha.vault.paid.items():
            if transaction in self._paid_ok:
                continue
            row = self.alpha.store.rows.get(apex)
            body = None if row is None else decode(Quantum, row.data).body
            if not isinstance(body, WithdrawalQuantum) or body.transaction != transaction:
                raise InvariantBroken(
                    f"the vault paid withdrawal {apex}, which is not final and persisted at "
                    f"alpha (alpha's disk holds {'nothing' if row is None else 'another quantum'}"
                    " there)"
                )
            self._paid_ok.add(transaction)

    def converged(self) -> None:
        """Invariant 4 (and the catch-up of 2): honest nodes Ready, at one apex and one state
        hash (checked after the quiet tail's new requests: an idle auditor restarted waits for
        alpha's next quantum, issue 15 item 7)."""
        self.checks += 1
        alpha = self.alpha.node
        if alpha is None or alpha.status.state != NodeState.READY:
            reason = "down" if alpha is None else alpha.status.reason
            raise InvariantBroken(f"alpha is not Ready after the quiet tail: {reason}")
        told = max(self.alpha.store.rows, default=0)
        expected = (alpha.engine.state.apex, alpha.engine.state.state_hash())
        members = alpha.engine.state.require_config().auditor_keys
        for auditor in self._honest():
            if auditor.keypair.public_key not in members:
                continue  # removed by a rotation, or a follower never brought in
            node = auditor.node
            assert node is not None, f"auditor {auditor.index} of the settings in force is down"
            if node.status.state != NodeState.READY:
                raise InvariantBroken(
                    f"auditor {auditor.index} is {node.status.state.name}: {node.status.reason}"
                )
            got = (node.engine.state.apex, node.engine.state.state_hash())
            if got != expected or got[0] < told:
                raise InvariantBroken(
                    f"auditor {auditor.index} at apex {got[0]} does not match alpha at "
                    f"{expected[0]} (told final up to {told}) after the quiet tail"
                )

    def rotated(self, version: int, refused: str | None) -> None:
        """Invariant 6: the settings at alpha are those of the last update posted (`version`),
        final and persisted (`refused`: why alpha last refused it, None if nothing pending)."""
        self.checks += 1
        alpha = self.alpha.node
        assert alpha is not None
        in_force = alpha.engine.state.require_config().settings.version
        if in_force != version or version not in self.alpha.store.settings:
            raise InvariantBroken(
                f"the settings update to version {version} did not take effect after the quiet "
                f"tail (version {in_force} in force"
                + (f"; last refused: {refused}" if refused else "")
                + ")"
            )

    def live(self, requested_above: int) -> None:
        """Invariant 5: the quiet tail's requests (above `requested_above`) are all final."""
        self.checks += 1
        alpha = self.alpha.node
        assert alpha is not None
        if alpha.unfinalized:
            raise InvariantBroken(
                f"quanta {sorted(alpha.unfinalized)[:5]} stay unfinal with every node up"
            )
        if alpha.engine.state.apex <= requested_above:
            raise InvariantBroken("the quiet tail's requests did not execute")
        if max(self.alpha.store.rows, default=0) < alpha.engine.state.apex:
            raise InvariantBroken("the quiet tail's final quanta were not persisted")


def _signed_by_two(row: QuantumRow) -> bool:
    """Tells whether an auditor's row carries its own signature besides alpha's (it signed:
    a majority of three); a follower's row carries alpha's alone."""
    proof: PayloadProof = decode(PayloadProof, row.signatures)
    return len(proof.signatures) >= 2
