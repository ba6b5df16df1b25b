"""Reads of the chronicler: pages of an account's history, the markets, persisted trades.

History pages walk the per-account effects index (`EffectsGroupRecord`, unique on (account,
apex), so one index range scan in either direction) and fetch the page's quanta by primary key:
a page costs the same at apex 10 and at apex 1 000 000 (see bench/chronicler.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import BinaryField, F, Func

from chronicler.core.market_data import TRADES_MAX, Trade, rebuild_since_ms
from chronicler.models import TradeRecord
from exchange.selectors import account_id_for_key
from quanta.core.status import StatusCode
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    ConstellationSettings,
    EffectsGroup,
    EffectsGroupHash,
    Limits,
    NonceUpdateEffect,
    PayloadProof,
    QuantumInfoItem,
    QuantumInfoRequest,
    QuantumInfoResponse,
    QueryOrder,
    ResultMessage,
    TradeEffect,
)
from quanta.models import EffectsGroupRecord, QuantumRecord, SettingsRecord
from quanta.node_identity import history_kept

HISTORY_LIMIT_MAX = 1000
"""Most items one page may ask for (the XDR array bound of QuantumInfoResponse)."""
EFFECTS_PROOF_BYTES = slice(8 + 32, 8 + 32 + 32)
"""Where `effects_proof` lies in a Quantum's XDR (after apex u64 and prev_hash): a page reads it
in place instead of decoding each whole quantum with its signed request."""
GROUP_HASH_BYTES = 8 + 32
"""One (account, hash) of an item's `group_hashes`."""
ITEM_OVERHEAD_BYTES = 128
"""An item's bytes beside its group, quantum and signatures (apex, hashes, timestamp, lengths):
a bound, so the page's sum of estimates bounds its real size."""
NOT_PRIME_TEXT = "this node keeps no full history (auditor participation): ask a prime node"


class HistoryRefused(Exception):  # noqa: N818 (reads as the condition it reports)
    """A history query the chronicler answers with a status instead of a page."""

    def __init__(self, status: StatusCode, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def quantum_info_page(request: QuantumInfoRequest) -> bytes:
    """Returns (as Message XDR) a page of the account's final quanta, or a ResultMessage.

    ASC returns the quanta above `cursor` oldest first, DESC the quanta below `cursor` newest
    first (cursor 0: from the newest). `next_cursor` continues in the same direction (absent:
    no more); `prev_cursor` (the page's first apex) turns back in the other direction (absent:
    nothing there).
    """
    try:
        response = history_page(request)
    except HistoryRefused as error:
        return encode(ResultMessage(request.message_id, error.status, error.text), MESSAGE)
    return encode(response, MESSAGE)


def history_page(request: QuantumInfoRequest) -> QuantumInfoResponse:
    """Returns a page of the account's history; raises `HistoryRefused` for a bad query."""
    account_id = _check_history_request(request)
    groups = EffectsGroupRecord.objects.filter(account=account_id)
    ascending = request.order == QueryOrder.ASC
    if ascending:
        page = groups.filter(apex__gt=request.cursor).order_by("apex")
    else:
        below = groups.filter(apex__lt=request.cursor) if request.cursor else groups
        page = below.order_by("-apex")
    rows = list(page[: request.limit + 1])
    more = len(rows) > request.limit
    rows = rows[: request.limit]
    quanta = QuantumRecord.objects.in_bulk([row.apex for row in rows])
    items = _bounded_items(rows, quanta, _group_hashes([row.apex for row in rows]))
    if len(items) < len(rows):  # the page's bytes reached the bound: the rest comes next
        rows, more = rows[: len(items)], True
    next_cursor = rows[-1].apex if more else None
    prev_cursor = None
    if rows:
        behind = {"apex__lt": rows[0].apex} if ascending else {"apex__gt": rows[0].apex}
        prev_cursor = rows[0].apex if groups.filter(**behind).exists() else None
    return QuantumInfoResponse(
        request.message_id, StatusCode.SUCCESS, "", items, next_cursor, prev_cursor
    )


def _check_history_request(request: QuantumInfoRequest) -> int:
    if not history_kept():
        raise HistoryRefused(StatusCode.FORBIDDEN, NOT_PRIME_TEXT)
    if not 1 <= request.limit <= HISTORY_LIMIT_MAX:
        text = f"limit must be between 1 and {HISTORY_LIMIT_MAX}, got {request.limit}"
        raise HistoryRefused(StatusCode.BAD_REQUEST, text)
    last = QuantumRecord.objects.order_by("-apex").values_list("apex", flat=True).first() or 0
    if request.cursor > last + 1:
        text = f"bad cursor {request.cursor}: the last final quantum is {last}"
        raise HistoryRefused(StatusCode.BAD_REQUEST, text)
    account_id = account_id_for_key(request.account)
    if account_id == 0:
        raise HistoryRefused(StatusCode.UNAUTHORIZED, "account is not registered")
    return account_id


def _group_hashes(apexes: list[int]) -> dict[int, tuple[EffectsGroupHash, ...]]:
    """Returns every group hash of each quantum, ascending accounts (the effects proof's
    order), hashed by PostgreSQL so the groups' bytes stay in the database."""
    found: dict[int, list[EffectsGroupHash]] = {apex: [] for apex in apexes}
    rows = (
        EffectsGroupRecord.objects.filter(apex__in=apexes)
        .annotate(digest=Func(F("data"), function="sha256", output_field=BinaryField()))
        .order_by("apex", "account")
        .values_list("apex", "account", "digest")
    )
    for apex, account, digest in rows:
        found[apex].append(EffectsGroupHash(account, bytes(digest)))
    return {apex: tuple(hashes) for apex, hashes in found.items()}


def _bounded_items(
    rows: list[EffectsGroupRecord],
    quanta: dict[int, QuantumRecord],
    group_hashes: dict[int, tuple[EffectsGroupHash, ...]],
) -> tuple[QuantumInfoItem, ...]:
    """Returns the items of `rows` in order, stopping before their bytes would pass
    `Limits.HISTORY_PAGE_BYTES_MAX` (the first item always goes: one quantum fits a frame)."""
    items: list[QuantumInfoItem] = []
    total = 0
    for row in rows:
        hashes = group_hashes[row.apex]
        item = _item(row, quanta[row.apex], hashes)
        size = ITEM_OVERHEAD_BYTES + len(row.data) + len(item.quantum or b"")
        size += len(quanta[row.apex].signatures) + GROUP_HASH_BYTES * len(hashes)
        if items and total + size > Limits.HISTORY_PAGE_BYTES_MAX:
            break
        items.append(item)
        total += size
    return tuple(items)


def _item(
    row: EffectsGroupRecord, quantum: QuantumRecord, group_hashes: tuple[EffectsGroupHash, ...]
) -> QuantumInfoItem:
    proof = decode(PayloadProof, bytes(quantum.signatures))
    group = decode(EffectsGroup, bytes(row.data))
    return QuantumInfoItem(
        row.apex,
        bytes(quantum.quantum_hash),
        bytes(quantum.data[EFFECTS_PROOF_BYTES]),
        quantum.timestamp_ms,
        group,
        proof.signatures,
        _shown_quantum(group, bytes(quantum.data)),
        group_hashes,
    )


def _shown_quantum(group: EffectsGroup, data: bytes) -> bytes | None:
    """Returns the quantum's XDR for the account's history item, or None: where the account
    only made the book (trades, no request of its own: another account's order filled its
    resting one; the taker is "the book", not a key to hand out) or above the item's bound."""
    effects = group.effects
    maker_only = any(isinstance(e, TradeEffect) for e in effects) and not any(
        isinstance(e, NonceUpdateEffect) for e in effects
    )
    if maker_only or len(data) > Limits.QUANTUM_BYTES_MAX:
        return None
    return data


def markets_list() -> tuple[list[str], str | None]:
    """Returns the tradable asset codes (in settings order) and the quote asset."""
    record = SettingsRecord.objects.order_by("-version").first()
    if record is None:
        return [], None
    config = decode(ConstellationSettings, bytes(record.data))
    quote = next((a.code for a in config.assets if a.is_quote_asset), None)
    return [a.code for a in config.assets if not a.is_quote_asset], quote


def last_timestamp_ms() -> int:
    """Returns the timestamp of the newest persisted quantum (0 if none): the quanta clock."""
    newest = QuantumRecord.objects.order_by("-apex").values_list("timestamp_ms", flat=True)
    return int(newest.first() or 0)


def trades_window(since_ms: int) -> Iterator[Trade]:
    """Yields every persisted trade since `since_ms`, in apex order (streamed)."""
    records = TradeRecord.objects.filter(timestamp_ms__gte=since_ms).order_by("apex", "index")
    return (_trade(r) for r in records.iterator(chunk_size=5_000))


def trades_recent() -> list[Trade]:
    """Returns the newest `TRADES_MAX` trades of every market, in apex order."""
    recent: list[Trade] = []
    for market in markets_list()[0]:
        records = TradeRecord.objects.filter(market=market).order_by("-apex", "-index")
        recent += reversed([_trade(r) for r in records[:TRADES_MAX]])
    return sorted(recent, key=lambda t: (t.apex, t.index))


def rebuild_inputs() -> tuple[int, list[Trade], list[Trade]]:
    """Returns the quanta clock, the trades of the rebuild window and the recent trades."""
    clock_ms = last_timestamp_ms()
    return clock_ms, list(trades_window(rebuild_since_ms(clock_ms))), trades_recent()


def _trade(record: TradeRecord) -> Trade:
    return Trade(
        record.market,
        record.apex,
        record.index,
        record.price,
        int(record.amount),
        int(record.quote_amount),
        record.side,
        record.timestamp_ms,
    )
