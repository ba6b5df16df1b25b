"""The XDR of a quantum's results, spliced from the effects-group XDR the engine already has.

Alpha sends every executed quantum's `QuantumResultMessage` several times: to the requester
when acknowledged and again when final, and to every other account it touched. Each copy holds
all of the quantum's effects groups, its account's own in full and the others as hashes.
Encoding each message whole encoded every group again for every copy. `ResultEncoder` encodes
each group's two forms once per quantum: the full form from the XDR the engine hashed
(`Executed.group_data`), the hash form from the hash it computed. Each message is then one
small encode of its head (ids, status, hashes, proof, account data) and a join.

The bytes are exactly `encode(QuantumResultMessage(...), MESSAGE)`'s (the unit tests compare
them, with and without account data).
"""

from __future__ import annotations

from typing import Final

from quanta.core.engine import Executed
from quanta.core.status import StatusCode
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import (
    EFFECTS_INFO,
    MESSAGE,
    AccountDataInfo,
    EffectsGroup,
    EffectsGroupHash,
    NodeSignature,
    PayloadProof,
    QuantumResultMessage,
)

# The account data comes last: an XDR optional, its flag (4 bytes) then the value if present.
_ABSENT: Final = b"\0\0\0\0"
_PRESENT: Final = b"\0\0\0\1"
_COUNT_BYTES: Final = 4
_FULL_ARM: Final = encode(EffectsGroup(0, 0, ()), EFFECTS_INFO)[:4]


class ResultEncoder:
    """Builds the result messages of one executed quantum for any account and proof."""

    __slots__ = ("_full", "_hashed", "executed")

    def __init__(self, executed: Executed) -> None:
        """Encodes each effects group's two forms once."""
        self.executed = executed
        self._full = [_FULL_ARM + data for data in executed.group_data]
        self._hashed = [
            encode(EffectsGroupHash(group.account, digest), EFFECTS_INFO)
            for group, digest in zip(executed.groups, executed.group_hashes, strict=True)
        ]

    def message(
        self,
        message_id: int,
        account_id: int | None,
        signatures: tuple[NodeSignature, ...],
        account_data: AccountDataInfo | None,
    ) -> bytes:
        """Returns the XDR (Message union) of the result for `account_id`'s connections: its
        own effects group in full, every other group as its hash."""
        executed = self.executed
        proof = PayloadProof(executed.payload_hash, signatures)
        apex, quantum_hash = executed.apex, executed.quantum_hash
        head = QuantumResultMessage(
            message_id, StatusCode.SUCCESS, "", apex, quantum_hash, proof, (), account_data
        )
        # The head's XDR ends with its empty effects array's count, then the account data:
        # the groups go between the two.
        data = _ABSENT if account_data is None else _PRESENT + encode(account_data)
        prefix = encode(head, MESSAGE)[: -(_COUNT_BYTES + len(data))]
        groups = executed.groups
        effects = [
            self._full[index] if groups[index].account == account_id else self._hashed[index]
            for index in range(len(groups))
        ]
        count = len(effects).to_bytes(_COUNT_BYTES, "big")
        return b"".join((prefix, count, *effects, data))
