"""What a quantum's execution answers: result messages, their bytes, and the deliveries that
carry them to clients.

`Delivery` is one message for one client key's connections (or for the connection that sent
a request, `ReplyTo`); `result_message` builds a plain `ResultMessage` (refusals, errors) and
`result_delivery` a quantum's `QuantumResultMessage` for one account.

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
from quanta.core.envelopes import result_may_be_signless
from quanta.core.records import record
from quanta.core.signatures import SignatureSet
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
    ResultMessage,
)

ReplyTo = tuple[str, int]
"""Where the answer to one request goes: the worker's address of the connection that sent it
(at the gateway: its web process's hub channel and the connection's number there)."""


@record
class Delivery:
    """A message (XDR of the Message union) for one client key's connections, or for the
    connection that sent a request (`reply_to`)."""

    message: bytes
    public_key: bytes | None = None
    reply_to: ReplyTo | None = None
    # A finalization may only leave once its quantum is persisted (else a crash of alpha
    # alone could undo what a client was told is final): it waits until this many final
    # quanta are on disk. 0: no wait (acknowledgements, rejections).
    finals_persisted_min: int = 0
    # Whether the frame must be signed: False for a quantum result its own proof authenticates
    # (set by `result_delivery`), so the gateway need not decode it to tell.
    signed: bool = True


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


def result_message(message_id: int, status: StatusCode, description: str) -> bytes:
    """Returns the XDR (Message union) of a ResultMessage."""
    return encode(ResultMessage(message_id, status, description[:1000]), MESSAGE)


def proof_of(signatures: SignatureSet) -> tuple[NodeSignature, ...]:
    """Returns a quantum's accepted signatures as they travel, sorted by auditor index."""
    return tuple(NodeSignature(i, s) for i, s in signatures.signatures())


def result_delivery(
    encoder: ResultEncoder,
    public_key: bytes,
    account_id: int | None,
    message_id: int,
    proof: tuple[NodeSignature, ...],
    finals_persisted_min: int = 0,
) -> Delivery:
    """Returns the QuantumResultMessage the account `account_id` (key `public_key`; None if
    it has no account) should get, for its connections, with whether its frame must be signed
    (`result_may_be_signless`: only a result carrying account data, which lies outside the
    payload proof)."""
    account_data = encoder.executed.account_data if message_id else None
    return Delivery(
        encoder.message(message_id, account_id, proof, account_data),
        public_key,
        finals_persisted_min=finals_persisted_min,
        signed=not result_may_be_signless(account_data),
    )
