"""Goal: `Limits.QUANTUM_BYTES_MAX` (the bound of the quantum a history item carries) is above
the largest quantum a node can make, and a page of items stays below a client's frame limit.

Method: the largest XDR encoding of each quantum body, computed from the schema itself
(arrays and strings at their bounds, unions at their largest arm). A client request travels in
one envelope the gateway bounds by `Limits.ENVELOPE_BYTES_MAX` (the schema's message union is
recursive, so the envelope's own bound is the one that counts); a settings update is a
`ConstellationUpdate` under at most `AUDITORS_MAX` signatures.
"""

from __future__ import annotations

from typing import Any

from quanta.core.xdr import codec
from quanta.core.xdr.schema import (
    EFFECT,
    ConstellationSettings,
    ConstellationUpdateEffect,
    DepositQuantum,
    Limits,
    NodeSignature,
    Signature,
)

QUANTUM_HEADER = 8 + 32 + 32 + 8 + 4  # apex, prev_hash, effects_proof, timestamp, body arm


def _padded(size: int) -> int:
    return (size + 3) // 4 * 4


def largest(xdr_type: Any) -> int:
    """Returns the largest XDR encoding of a non-recursive type, in bytes."""
    kind = codec.resolve(xdr_type)
    if kind.fixed_size:
        return kind.fixed_size
    if isinstance(kind, codec.FixedOpaque):
        return _padded(kind.size)
    if isinstance(kind, codec.VarOpaque | codec.String):
        return 4 + _padded(kind.maximum)
    if isinstance(kind, codec.Array):
        return 4 + kind.maximum * largest(kind.item)
    if isinstance(kind, codec.Optional):
        return 4 + largest(kind.item)
    if isinstance(kind, codec.Union):
        return 4 + max(largest(arm) for arm in kind.arms.values())
    assert isinstance(kind, codec.Struct), kind
    return sum(largest(field) for _, field in codec.struct_codec(kind.cls).fields)


def test_every_kind_of_quantum_fits_a_history_item() -> None:
    request = QUANTUM_HEADER + Limits.ENVELOPE_BYTES_MAX
    withdrawal = request + 4 + Limits.TRANSACTION_MAX
    deposit = QUANTUM_HEADER + largest(DepositQuantum)
    update = QUANTUM_HEADER + 4 + 8 + largest(ConstellationSettings)
    update += 4 + Limits.AUDITORS_MAX * largest(Signature)
    largest_quantum = max(request, withdrawal, deposit, update)
    assert largest_quantum == deposit  # 1000 deposits and 1000 withdrawal outcomes
    assert largest_quantum <= Limits.QUANTUM_BYTES_MAX


def test_a_page_at_its_byte_bound_plus_one_item_stays_below_a_client_frame() -> None:
    """The chronicler stops adding items before the page passes HISTORY_PAGE_BYTES_MAX, and
    sends one item alone whatever its size: the page is below the Python client's 16 MiB
    frame limit (`constellation_client.client.FRAME_BYTES_MAX`) for every realistic own
    group (here 1000 effects of the largest an account's group can hold, far above any
    processor's output; a settings effect goes to account 0 only, which has no history)."""
    arms = [arm for arm in EFFECT.arms.values() if arm is not ConstellationUpdateEffect]
    group = 16 + 4 + 1000 * (4 + max(largest(arm) for arm in arms))
    item = 128 + group + Limits.QUANTUM_BYTES_MAX + 4 + Limits.AUDITORS_MAX * largest(NodeSignature)
    assert Limits.HISTORY_PAGE_BYTES_MAX + item < Limits.BATCH_BYTES_MAX
