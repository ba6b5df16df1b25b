"""How far a node's chain is on disk: the apex up to which every row it handed out for
persistence (alpha: every final quantum) is persisted, with no hole below it.

Alpha's final quanta can become final out of apex order (an auditor that reconnects signs only
the quanta above its cursor, so a quantum can wait for another auditor while the next one is
final), and so can reach the disk out of order: only the gap-free prefix tells what a restart
is sure to find. Payouts wait for it (SPEC.md, "No payout without durability").
"""

from __future__ import annotations

from collections.abc import Iterable


class PersistedPrefix:
    """The highest apex such that every quantum up to it is persisted."""

    __slots__ = ("_above", "apex")

    def __init__(self, apex: int) -> None:
        """Starts at `apex`, what the node loaded from disk."""
        self.apex = apex
        # Persisted apexes above a hole; bounded by the quanta alpha keeps unfinalized.
        self._above: set[int] = set()

    def persisted(self, apexes: Iterable[int]) -> None:
        """Records that the rows of `apexes` are on disk; advances over what is now gap-free."""
        self._above.update(a for a in apexes if a > self.apex)
        while self.apex + 1 in self._above:
            self.apex += 1
            self._above.discard(self.apex)
