"""`RequestResult`: what a request became, updated as the node reports more signatures.

The node answers a quantum request first when alpha executed it (acknowledged) and again when a
majority of auditors signed it (finalized). The client's reader task feeds every answer for
the same request into the same `RequestResult`; `wait_final` wakes on each update and returns
once the client itself verified a majority (SPEC.md, "Security": no majority within 5 s means
the result is not final).

What a result is worth is what vouches for it (`attested_by`): a verified majority of the
trusted auditors ("majority": final), alpha's signature alone ("alpha": an acknowledgement, a
rejection in an alpha-signed frame), or nothing. An executed result's status is Success
because its proof shows the request's nonce applied (the client checks that before building
it), whatever the unsigned `status` and `description` of the frame said. Balances and orders
(`account_data`) lie outside every payload proof: they are alpha's word only, even on a final
result (`account_data_attested_by`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace

from constellation_client.outcome import OrderOutcome, OrderTerms, order_outcome, removed_orders
from constellation_client.verify import ResultCheck, check_result, check_signatures
from constellation_client.wire import Constellation
from quanta.core.status import StatusCode
from quanta.core.xdr.schema import (
    AccountDataInfo,
    EffectsGroup,
    QuantumResultMessage,
    ResultMessage,
)

FINALITY_TIMEOUT_S = 5.0
ATTESTED_BY_MAJORITY = "majority"
ATTESTED_BY_ALPHA = "alpha"


@dataclass(eq=False)
class RequestResult:
    """The outcome of one request (or one notification, with `message_id` 0)."""

    message_id: int
    status: StatusCode
    description: str = ""
    apex: int = 0
    quantum_hash: bytes = b""
    effects: EffectsGroup | None = None
    account_data: AccountDataInfo | None = None
    acknowledged: bool = False
    finalized: bool = False
    signatures_verified: int = 0
    auditor_count: int = 0
    message: QuantumResultMessage | None = None
    # The request's nonce, once a proof showed it applied (0: a notification or a rejection).
    nonce: int = 0
    # The orders the request placed (set by the client when it sends one), for `order_outcomes`.
    orders: tuple[OrderTerms, ...] = ()
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _closed: bool = field(default=False, repr=False)
    # The signatures verified of the held message's payload hash, and the keys they were
    # verified under (auditors, alpha's index): a later copy of the same payload hash that
    # repeats one under the same keys is not verified again.
    _verified: tuple[tuple[int, bytes], ...] = field(default=(), repr=False)
    _verified_under: tuple[tuple[bytes, ...], int] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """Tells whether the node accepted the request."""
        return self.status == StatusCode.SUCCESS

    @property
    def attested_by(self) -> str:
        """Returns who vouches for this outcome: "majority" (final, verified by the client),
        "alpha" (alpha's signature alone) or "" (nobody: an unverified payload)."""
        if self.finalized:
            return ATTESTED_BY_MAJORITY
        if self.acknowledged or not self.ok:
            return ATTESTED_BY_ALPHA
        return ""

    @property
    def account_data_attested_by(self) -> str:
        """Returns who vouches for `account_data`: alpha only (it is outside the payload
        proof, so a majority never signs it), or "" without account data."""
        return ATTESTED_BY_ALPHA if self.account_data is not None else ""

    @property
    def order_outcomes(self) -> list[OrderOutcome]:
        """Returns what each order of the request did, read from the account's own proven
        effects; empty for a rejected request or one that placed no order."""
        if not self.ok or self.effects is None or not self.apex:
            return []
        return [order_outcome(self.effects, self.apex, terms) for terms in self.orders]

    @property
    def removed_order_ids(self) -> list[int]:
        """Returns the account's resting orders the quantum took off (cancels, cancel-all,
        self-trade prevention)."""
        if not self.ok or self.effects is None:
            return []
        return removed_orders(self.effects)

    @classmethod
    def rejected(cls, message: ResultMessage) -> RequestResult:
        """Builds the result of a request alpha refused (in a frame alpha signed)."""
        return cls(int(message.message_id), StatusCode(message.status), message.description)

    @classmethod
    def executed(
        cls,
        message: QuantumResultMessage,
        constellation: Constellation,
        *,
        verify_signatures: bool = True,
    ) -> RequestResult:
        """Builds the result of an executed quantum from its first QuantumResultMessage.

        Success and no description: the frame's own status and description are unsigned."""
        result = cls(int(message.message_id), StatusCode.SUCCESS)
        result.auditor_count = len(constellation.auditor_keys)
        result.update(message, constellation, verify_signatures=verify_signatures)
        return result

    @classmethod
    def checked(
        cls, message: QuantumResultMessage, constellation: Constellation, check: ResultCheck
    ) -> RequestResult:
        """Builds the result of an executed quantum whose first message the caller already
        checked (`check_result`), so its signatures are not verified twice."""
        result = cls(int(message.message_id), StatusCode.SUCCESS)
        result.auditor_count = len(constellation.auditor_keys)
        result._take(message, check, constellation)
        return result

    def update(
        self,
        message: QuantumResultMessage,
        constellation: Constellation,
        *,
        verify_signatures: bool = True,
    ) -> None:
        """Takes in a (possibly later, better signed) result of the same quantum.

        `verify_signatures` False (load generators only, see `SignatureSampler`) counts the
        node signatures without verifying them; the payload hash is checked either way (once
        per quantum: a copy for the payload hash already matched only adds signatures)."""
        if self.apex and message.apex != self.apex:
            return
        keys, alpha_index = constellation.auditor_keys, constellation.alpha_index
        verified = self.message
        claimed = message.payload_proof.payload_hash
        if verified is not None and (message.quantum_hash, claimed) == (
            verified.quantum_hash,
            verified.payload_proof.payload_hash,
        ):
            # The payload hash this result already matched against its effects: only the
            # signatures are new. The effects stay those that were checked; the later copy's
            # are not looked at, so nothing unchecked gets in.
            under = (tuple(keys), alpha_index)
            check = check_signatures(
                claimed,
                message.payload_proof.signatures,
                keys,
                alpha_index,
                verify_signatures=verify_signatures,
                verified=dict(self._verified) if self._verified_under == under else None,
            )
            message = replace(
                verified,
                payload_proof=message.payload_proof,
                account_data=message.account_data or verified.account_data,
            )
        else:
            check = check_result(message, constellation, verify_signatures=verify_signatures)
        self._take(message, check, constellation)

    def _take(
        self, message: QuantumResultMessage, check: ResultCheck, constellation: Constellation
    ) -> None:
        """Takes in a checked message unless it proves less than what is already held."""
        if not check.payload_valid or check.valid_count < self.signatures_verified:
            return
        self._verified = check.accepted  # empty when only counted (`SignatureSampler`)
        self._verified_under = (tuple(constellation.auditor_keys), constellation.alpha_index)
        self.apex, self.quantum_hash, self.message = message.apex, message.quantum_hash, message
        own = [info for info in message.effects if isinstance(info, EffectsGroup)]
        self.effects = own[0] if own else self.effects
        self.account_data = message.account_data or self.account_data
        self.acknowledged = self.acknowledged or check.alpha_signed
        self.finalized = self.finalized or check.is_final
        self.signatures_verified = check.valid_count
        self._changed.set()

    def close(self) -> None:
        """Wakes every waiter for good: no more updates will come (connection closed)."""
        self._closed = True
        self._changed.set()

    async def wait_final(self, timeout_s: float = FINALITY_TIMEOUT_S) -> bool:
        """Waits until the client verified a majority of signatures; False after `timeout_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.finalized and self.ok and not self._closed:
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                break
        return self.finalized
