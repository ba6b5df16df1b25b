"""The accounts' Merkle tree (`quanta.core.merkle`) against RFC 6962 and against itself.

Goal: the incremental tree must give RFC 6962's Merkle Tree Hash whatever sequence of leaf
changes, growths and cuts led to its leaves, and its audit paths must prove each leaf.
Method: the reference vectors of Certificate Transparency (the 8 inputs whose roots every
RFC 6962 implementation tests against), a recursive reference written from the RFC's
definition, and seeded random edit sequences compared with a tree built afresh.
"""

from __future__ import annotations

import hashlib
import random

import pytest

from quanta.core.merkle import EMPTY_ROOT, MerkleTree, leaf_hash, path_root

# Certificate Transparency's reference inputs and tree heads for sizes 1..8 (RFC 6962).
CT_INPUTS = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# The audit path of leaf 0 in the tree of all 8 (Certificate Transparency's inclusion vector).
CT_PATH_0_OF_8 = [
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
]


def tree_of(leaves: list[bytes]) -> MerkleTree:
    """Returns a tree built afresh with these leaf hashes."""
    tree = MerkleTree()
    tree.resize(len(leaves))
    for position, digest in enumerate(leaves):
        tree.set(position, digest)
    return tree


def reference_root(leaves: list[bytes]) -> bytes:
    """Returns RFC 6962's MTH, recursively: split at the largest power of two below n."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    left, right = reference_root(leaves[:split]), reference_root(leaves[split:])
    return hashlib.sha256(b"\x01" + left + right).digest()


def test_roots_are_rfc_6962_tree_heads() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert MerkleTree().root() == EMPTY_ROOT
    leaves = [leaf_hash(data) for data in CT_INPUTS]
    for size in range(1, 9):
        assert tree_of(leaves[:size]).root().hex() == CT_ROOTS[size - 1], size


def test_audit_path_is_rfc_6962_path() -> None:
    tree = tree_of([leaf_hash(data) for data in CT_INPUTS])
    assert [node.hex() for node in tree.audit_path(0)] == CT_PATH_0_OF_8


def test_roots_equal_the_recursive_definition_up_to_70_leaves() -> None:
    for size in range(70):
        leaves = [hashlib.sha256(bytes([size, i])).digest() for i in range(size)]
        assert tree_of(leaves).root() == reference_root(leaves), size


@pytest.mark.parametrize("seed", range(12))
def test_any_edit_sequence_gives_the_root_of_a_fresh_tree(seed: int) -> None:
    rng = random.Random(seed)
    tree, leaves = MerkleTree(), []
    for step in range(150):
        roll = rng.random()
        if roll < 0.2:
            # Grow by a few leaves (new accounts) or cut some (reverted ones).
            known = len(leaves)
            size = max(0, known + rng.randint(-3, 5))
            leaves = leaves[:size] + [
                hashlib.sha256(bytes([seed, step, i])).digest() for i in range(size - known)
            ]
            tree.resize(size)
            for position in range(known, size):
                tree.set(position, leaves[position])
        elif leaves:
            for _ in range(rng.randint(1, 4)):
                position = rng.randrange(len(leaves))
                leaves[position] = hashlib.sha256(bytes([seed, step, position % 256])).digest()
                tree.set(position, leaves[position])
        if rng.random() < 0.5:  # roots asked between some edits only, as per batch
            assert tree.root() == reference_root(leaves), (seed, step)
    assert tree.root() == tree_of(leaves).root() == reference_root(leaves)


def test_every_audit_path_proves_its_leaf_and_no_other() -> None:
    for size in range(1, 23):
        leaves = [hashlib.sha256(bytes([size, i])).digest() for i in range(size)]
        tree = tree_of(leaves)
        root = tree.root()
        for position in range(size):
            path = tree.audit_path(position)
            assert path_root(leaves[position], position, size, path) == root
            forged = hashlib.sha256(b"forged").digest()
            assert path_root(forged, position, size, path) != root
            if path:
                tampered = [*path[:-1], forged]
                assert path_root(leaves[position], position, size, tampered) != root


def test_a_path_of_the_wrong_length_or_position_is_refused() -> None:
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(5)]
    tree = tree_of(leaves)
    path = tree.audit_path(2)
    with pytest.raises(ValueError, match="too short"):
        path_root(leaves[2], 2, 5, path[:-1])
    with pytest.raises(ValueError, match="too long"):
        path_root(leaves[2], 2, 5, [*path, path[0]])
    with pytest.raises(ValueError, match="not in a tree"):
        path_root(leaves[2], 5, 5, path)
