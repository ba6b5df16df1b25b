"""How far a node's chain is on disk: the apex up to which every row it handed out for
persistence (alpha: every final quantum) is persisted, with no hole below it.

Alpha's final quanta can become final out of apex order (an auditor that reconnects signs only
the quanta above its cursor, so a quantum can wait for another auditor while the next one is
final), and so can reach the disk out of order: only the gap-free prefix tells what a restart
is sure to find. Payouts wait for it (SPEC.md, "No payout without durability").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


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


def gap_free_count(apexes: Sequence[int], apex: int) -> int:
    """Returns how many of the ascending `apexes` follow `apex` without a hole: the persisted
    rows a restarted node may replay. The rows above a hole are final, but what is missing
    below them is not on this node's disk (alpha's rising takes them as its own offer and
    the auditors fill the hole)."""
    count = 0
    for expected, found in enumerate(apexes, start=apex + 1):
        if found != expected:
            break
        count += 1
    return count
