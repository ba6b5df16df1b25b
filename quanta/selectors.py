"""Reads of persisted node data for the gateway and HTTP views."""

from __future__ import annotations

from exchange.models import AccountRecord
from quanta.core.status import StatusCode
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    ConstellationSettings,
    EffectsGroup,
    PayloadProof,
    Quantum,
    QuantumInfoItem,
    QuantumInfoRequest,
    QuantumInfoResponse,
    QueryOrder,
    ResultMessage,
    SignedQuantum,
)
from quanta.models import EffectsGroupRecord, QuantumRecord, SettingsRecord

HISTORY_LIMIT_MAX = 1000


def account_id_for_key(public_key: bytes) -> int:
    """Returns the persisted account id of a key, 0 if it is not (yet) registered."""
    record = AccountRecord.objects.filter(public_key=public_key).only("id").first()
    return 0 if record is None else int(record.id)


def quantum_info_page(request: QuantumInfoRequest) -> bytes:
    """Returns (as Message XDR) a page of the account's final quanta after/before the cursor."""
    account_id = account_id_for_key(request.account)
    if not 1 <= request.limit <= HISTORY_LIMIT_MAX:
        text = f"limit must be between 1 and {HISTORY_LIMIT_MAX}"
        return encode(ResultMessage(request.message_id, StatusCode.BAD_REQUEST, text), MESSAGE)
    if account_id == 0:
        text = "account is not registered"
        return encode(ResultMessage(request.message_id, StatusCode.UNAUTHORIZED, text), MESSAGE)
    groups = EffectsGroupRecord.objects.filter(account=account_id)
    if request.order == QueryOrder.ASC:
        rows = list(groups.filter(apex__gt=request.cursor).order_by("apex")[: request.limit + 1])
    else:
        cursor = request.cursor or 2**63 - 1
        rows = list(groups.filter(apex__lt=cursor).order_by("-apex")[: request.limit + 1])
    more = len(rows) > request.limit
    rows = rows[: request.limit]
    quanta = QuantumRecord.objects.in_bulk([row.apex for row in rows])
    items = tuple(_item(row, quanta[row.apex]) for row in rows)
    next_cursor = rows[-1].apex if more and rows else None
    prev_cursor = rows[0].apex if rows else None
    response = QuantumInfoResponse(
        request.message_id, StatusCode.SUCCESS, "", items, next_cursor, prev_cursor
    )
    return encode(response, MESSAGE)


def _item(row: EffectsGroupRecord, quantum: QuantumRecord) -> QuantumInfoItem:
    proof = decode(PayloadProof, bytes(quantum.signatures))
    decoded = decode(Quantum, bytes(quantum.data))
    return QuantumInfoItem(
        row.apex,
        bytes(quantum.quantum_hash),
        decoded.effects_proof,
        quantum.timestamp_ms,
        decode(EffectsGroup, bytes(row.data)),
        proof.signatures,
    )


def quanta_signed_after(apex: int, limit: int) -> list[SignedQuantum]:
    """Returns up to `limit` persisted quanta above `apex` with their known signatures."""
    records = QuantumRecord.objects.filter(apex__gt=apex).order_by("apex")[:limit]
    return [
        SignedQuantum(
            decode(Quantum, bytes(r.data)), decode(PayloadProof, bytes(r.signatures)).signatures
        )
        for r in records
    ]


def settings_current() -> ConstellationSettings | None:
    """Returns the latest persisted settings, None before initialization."""
    record = SettingsRecord.objects.order_by("-version").first()
    return None if record is None else decode(ConstellationSettings, bytes(record.data))
