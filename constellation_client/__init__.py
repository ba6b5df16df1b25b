"""Constellation client: an asyncio library and a CLI (`python -m constellation_client`).

Pure Python on top of `quanta.core` (XDR schema, keys, signatures) and `websockets`; it never
imports Django, so scripts, tests and other processes can use it without a node's settings.
It trusts only keys verified from a pinned constellation id (docs/client.md).
"""

from constellation_client.amounts import AmountError, format_amount, parse_amount, parse_price
from constellation_client.chain import ChainError, verify_chain
from constellation_client.client import ConstellationClient
from constellation_client.digests import ConstellationIdError, parse_constellation_id
from constellation_client.nonce import NonceSource
from constellation_client.result import FINALITY_TIMEOUT_S, RequestResult
from constellation_client.verify import (
    Finality,
    ResultCheck,
    check_result,
    effects_proof,
    group_digest,
    verify_finality,
    verify_history_item,
)
from constellation_client.wire import (
    Constellation,
    ConstellationClientError,
    UnverifiedOutcomeError,
    node_urls,
)
from exchange.core.matching import TimeInForce
from exchange.core.orderbook import Side
from quanta.core.keys import KeyPair
from quanta.core.status import StatusCode
from quanta.core.xdr.schema import QueryOrder

GTE = TimeInForce.GOOD_TILL_EXPIRE
IOC = TimeInForce.IMMEDIATE_OR_CANCEL
BUY = Side.BUY
SELL = Side.SELL
ASC = QueryOrder.ASC
DESC = QueryOrder.DESC

__all__ = [
    "ASC",
    "BUY",
    "DESC",
    "FINALITY_TIMEOUT_S",
    "GTE",
    "IOC",
    "SELL",
    "AmountError",
    "ChainError",
    "Constellation",
    "ConstellationClient",
    "ConstellationClientError",
    "ConstellationIdError",
    "Finality",
    "KeyPair",
    "NonceSource",
    "QueryOrder",
    "RequestResult",
    "ResultCheck",
    "Side",
    "StatusCode",
    "TimeInForce",
    "UnverifiedOutcomeError",
    "check_result",
    "effects_proof",
    "format_amount",
    "group_digest",
    "node_urls",
    "parse_amount",
    "parse_constellation_id",
    "parse_price",
    "verify_chain",
    "verify_finality",
    "verify_history_item",
]
