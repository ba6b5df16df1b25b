"""A Merkle tree over a list of leaf hashes that can be changed in place (RFC 6962, §2.1).

The root is RFC 6962's Merkle Tree Hash with SHA-256: a node is SHA-256(0x01 ‖ left ‖ right),
a leaf hash is SHA-256(0x00 ‖ leaf bytes) (the caller hashes its leaves with `leaf_hash`), the
root of no leaves is SHA-256 of nothing, and a tree of n leaves splits at the largest power of
two below n. Bottom-up this is: pair the nodes of each level from the left, and carry the last
node of a level up unchanged when it has no partner. So a level is kept as one `bytearray` of
32-byte hashes, and changing k leaves of n costs about k·log2(n) hashes, not n.

`audit_path` and `path_root` are RFC 6962's audit paths: what a later proof of one account's
state needs (its leaf, its index, the leaf count and the path reproduce the root).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """Returns the hash of one leaf's bytes (prefixed, so no leaf can pass for a node)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Returns the hash of an inner node from its two children."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


class MerkleTree:
    """Leaf hashes by position with their Merkle root, recomputed only where leaves changed."""

    __slots__ = ("_changed", "_levels")

    def __init__(self) -> None:
        """Creates a tree without leaves."""
        # _levels[0] holds the leaf hashes, _levels[k + 1] the nodes over pairs of _levels[k],
        # up to the level of one node (the root).
        self._levels: list[list[bytes]] = [[]]
        # Leaf positions set since the last root: their paths to the root are recomputed.
        self._changed: set[int] = set()

    def __len__(self) -> int:
        """Returns the number of leaves."""
        return len(self._levels[0])

    def resize(self, count: int) -> None:
        """Drops the leaves from `count` on, or appends empty placeholders up to `count`,
        which the caller must `set` before asking for the root."""
        assert count >= 0, count
        _fit(self._levels[0], count)

    def set(self, position: int, digest: bytes) -> None:
        """Sets the hash of the leaf at `position`."""
        assert len(digest) == HASH_SIZE, len(digest)
        self._levels[0][position] = digest
        self._changed.add(position)

    def leaf(self, position: int) -> bytes:
        """Returns the hash of the leaf at `position`."""
        return self._levels[0][position]

    def root(self) -> bytes:
        """Returns the Merkle Tree Hash of the leaves, updating the paths of changed leaves."""
        self._rehash()
        if len(self) == 0:
            return EMPTY_ROOT
        return self._levels[-1][0]

    def _rehash(self) -> None:
        levels = self._levels
        changed = sorted(self._changed)
        self._changed.clear()
        count = len(self)
        depth = 0
        while count > 1:
            parent_count = (count + 1) // 2
            if len(levels) == depth + 1:
                levels.append([])
            parent = levels[depth + 1]
            _fit(parent, parent_count)
            # The last parent is always redone: whether it hashes a pair or carries its left
            # child up depends on the count, which may have changed since the last root.
            parents = sorted({position >> 1 for position in changed if position < count})
            if not parents or parents[-1] != parent_count - 1:
                parents.append(parent_count - 1)
            _hash_parents(levels[depth], count, parent, parents)
            changed = parents
            count = parent_count
            depth += 1
        del levels[depth + 1 :]

    def audit_path(self, position: int) -> list[bytes]:
        """Returns the sibling hashes from the leaf at `position` up to the root (RFC 6962
        PATH: a node carried up without a partner contributes nothing)."""
        assert 0 <= position < len(self), (position, len(self))
        self._rehash()
        path = []
        count = len(self)
        for level in self._levels[:-1]:
            sibling = position ^ 1
            if sibling < count:
                path.append(level[sibling])
            position >>= 1
            count = (count + 1) // 2
        return path


def _fit(level: list[bytes], count: int) -> None:
    """Cuts a level to `count` nodes, or extends it with empty placeholders."""
    if len(level) > count:
        del level[count:]
    else:
        level.extend([b""] * (count - len(level)))


def _hash_parents(
    child: list[bytes], count: int, parent: list[bytes], parents: Iterable[int]
) -> None:
    """Recomputes the listed nodes of `parent` from the `count` nodes of level `child`."""
    new_hash = hashlib.sha256
    for index in parents:
        left = index * 2
        if left + 1 < count:
            parent[index] = new_hash(NODE_PREFIX + child[left] + child[left + 1]).digest()
        else:
            parent[index] = child[left]


def path_root(digest: bytes, position: int, count: int, path: Sequence[bytes]) -> bytes:
    """Returns the root that the leaf hash `digest` at `position` of `count` leaves and its
    audit path lead to; a proof holds when it equals the committed root. Raises ValueError for
    a position outside the tree or a path of the wrong length."""
    if not 0 <= position < count:
        raise ValueError(f"position {position} is not in a tree of {count} leaves")
    used = 0
    while count > 1:
        if position & 1 or position + 1 < count:
            if used == len(path):
                raise ValueError("audit path too short")
            sibling = path[used]
            used += 1
            digest = node_hash(sibling, digest) if position & 1 else node_hash(digest, sibling)
        position >>= 1
        count = (count + 1) // 2
    if used != len(path):
        raise ValueError("audit path too long")
    return digest
