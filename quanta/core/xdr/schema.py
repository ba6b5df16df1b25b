"""The one declarative schema of every wire structure: messages, envelopes, quanta, effects,
settings and the alpha <-> auditor messages.

Each structure is a `record` (an immutable dataclass, `quanta/core/records.py`); its fields,
in declaration order, are its XDR fields, and each annotation names the XDR type (`codec.py`
compiles them). Polymorphic values are discriminated unions on an IntEnum: `MESSAGE` (every
message that travels in an envelope), `QUANTUM_BODY` (the kinds of quanta), `EFFECT` and
`EFFECTS_INFO`. Discriminant values are fixed here, once; changing one is a protocol break.

Conventions chosen where SPEC.md is silent (also in docs/protocol.md):
- Client requests name their account by its ed25519 public key, so a request's signature can
  be verified without any state (in parallel, before the sequential engine).
- A result's `message_id` repeats the `message_id` of the request it answers.
- Effects that belong to no account (provider cursors, settings) are grouped under account 0;
  real account ids start at 1.
- Settings carry a `version`; an update must have exactly version + 1, so an old signed update
  can never be replayed.
- Prices on the wire of an `OrderRequest` are doubles (as in Centaurus); everywhere else (effects,
  account data) a price is an integer number of 10^-7 quote units per whole asset unit, already
  rounded to the market's tick by `exchange.core.amounts.price_to_units`.
"""

from __future__ import annotations

import enum
from typing import Annotated

from exchange.core.matching import TimeInForce
from exchange.core.orderbook import Side as OrderSide
from quanta.core.records import record
from quanta.core.status import StatusCode
from quanta.core.xdr.codec import (
    BOOL,
    DOUBLE,
    INT64,
    UINT32,
    UINT64,
    Array,
    FixedOpaque,
    Optional,
    String,
    Union,
    VarOpaque,
)


class Limits:
    """Every size limit of the protocol, in one place."""

    ENVELOPE_BYTES_MAX = 64 * 1024  # one client message as received by the gateway
    BATCH_BYTES_MAX = 16 * 1024 * 1024  # one alpha <-> auditor batch
    ASSET_CODE_MAX = 12
    DESCRIPTION_MAX = 1024
    NAME_MAX = 64
    ADDRESS_MAX = 256
    CURSOR_MAX = 128
    TOKEN_MAX = 128
    TX_HASH_MAX = 64
    TRANSACTION_MAX = 16 * 1024
    TX_SIGNATURE_MAX = 128
    AUDITORS_MAX = 20
    ASSETS_MAX = 100
    PROVIDERS_MAX = 10
    DEPOSIT_ITEMS_MAX = 1000
    EFFECTS_PER_GROUP_MAX = 4096
    GROUPS_PER_QUANTUM_MAX = 1024
    ORDERS_PER_ACCOUNT_MAX = 1000
    BATCH_QUANTA_MAX = 1000
    QUERY_ITEMS_MAX = 1000
    ORDER_BATCH_ITEMS_MAX = 16  # orders/cancels in one OrderBatchRequest (below 1000 order ids)
    # One quantum's XDR as a history item carries it: above the largest a node can make (a
    # deposit quantum of 1000 items and 1000 outcomes, ~204 KiB; a settings update ~175 KiB;
    # a request is at most one 64 KiB envelope, a withdrawal adds a 16 KiB transaction), see
    # quanta/tests/core/test_history_item_bounds.py.
    QUANTUM_BYTES_MAX = 256 * 1024
    # A history page's items stop before their bytes pass this (at least one item is sent),
    # so a 1000-item page of large quanta stays far below a client's 16 MiB frame limit.
    HISTORY_PAGE_BYTES_MAX = 4 * 1024 * 1024


PublicKey = Annotated[bytes, FixedOpaque(32)]
Hash = Annotated[bytes, FixedOpaque(32)]
Signature64 = Annotated[bytes, FixedOpaque(64)]
HandshakeData = Annotated[bytes, FixedOpaque(32)]
U32 = Annotated[int, UINT32]
U64 = Annotated[int, UINT64]
I64 = Annotated[int, INT64]
Bool = Annotated[bool, BOOL]
Double = Annotated[float, DOUBLE]
AssetCode = Annotated[str, String(Limits.ASSET_CODE_MAX)]
Name = Annotated[str, String(Limits.NAME_MAX)]
Address = Annotated[str, String(Limits.ADDRESS_MAX)]
Cursor = Annotated[str, String(Limits.CURSOR_MAX)]
Description = Annotated[str, String(Limits.DESCRIPTION_MAX)]


# --- enums ---------------------------------------------------------------------------------


class MessageType(enum.IntEnum):
    """Discriminant of `MESSAGE` and `QUANTUM_BODY`."""

    HANDSHAKE_REQUEST = 1
    HANDSHAKE_RESPONSE = 2
    AUDITOR_HANDSHAKE_RESPONSE = 3
    CLIENT_CONNECTION_SUCCESS = 4
    RESULT = 5
    QUANTUM_RESULT = 6
    ACCOUNT_DATA_REQUEST = 10
    PAYMENT_REQUEST = 11
    ORDER_REQUEST = 12
    ORDER_CANCELLATION_REQUEST = 13
    WITHDRAWAL_REQUEST = 14
    QUANTUM_INFO_REQUEST = 15
    QUANTUM_INFO_RESPONSE = 16
    ORDER_BATCH_REQUEST = 17
    CONSTELLATION_UPDATE = 20
    REQUEST_QUANTUM = 30
    DEPOSIT_QUANTUM = 31
    CONSTELLATION_QUANTUM = 32
    WITHDRAWAL_QUANTUM = 33
    QUANTA_BATCH = 40
    RESULTS_BATCH = 41
    STATE_UPDATE = 42
    CATCHUP_QUANTA_BATCH_REQUEST = 43
    CATCHUP_QUANTA_BATCH = 44
    QUANTA_CURSOR_REQUEST = 45


class QueryOrder(enum.IntEnum):
    """Direction of a paged history query."""

    ASC = 0
    DESC = 1


class BalanceUpdateSign(enum.IntEnum):
    """Direction of a `BalanceUpdateEffect`; the amount itself is unsigned."""

    PLUS = 0
    MINUS = 1


class PaymentResult(enum.IntEnum):
    """Outcome of an external payment seen by a provider."""

    SUCCESS = 0
    FAILED = 1


class NodeState(enum.IntEnum):
    """Node states (SPEC.md)."""

    UNDEFINED = 0
    RUNNING = 1
    READY = 2
    RISING = 3
    CHASING = 4
    FAILED = 10
    STOPPED = 20


class EffectType(enum.IntEnum):
    """Discriminant of `EFFECT`."""

    ACCOUNT_CREATE = 1
    NONCE_UPDATE = 2
    BALANCE_CREATE = 3
    BALANCE_UPDATE = 4
    ORDER_PLACED = 5
    ORDER_REMOVED = 6
    TRADE = 7
    CURSOR_UPDATE = 8
    CONSTELLATION_UPDATE = 9
    WITHDRAWAL_CREATE = 10
    WITHDRAWAL_REMOVE = 11


class EffectsInfoType(enum.IntEnum):
    """Whether a quantum result carries an effects group in full or only its hash."""

    FULL = 0
    HASH = 1


# --- signatures ----------------------------------------------------------------------------


@record
class Signature:
    """One ed25519 signature with the public key that made it."""

    signer: PublicKey
    signature: Signature64


@record
class NodeSignature:
    """A constellation node's signature; the signer is its index in the settings' auditors."""

    auditor_index: U32
    signature: Signature64


@record
class TxSignature:
    """A node's signature of a provider transaction (format owned by the provider)."""

    signer: Annotated[bytes, VarOpaque(64)]
    signature: Annotated[bytes, VarOpaque(Limits.TX_SIGNATURE_MAX)]


# --- handshake -----------------------------------------------------------------------------


@record
class HandshakeRequest:
    """Sent by a server on connect: 32 random bytes the peer must sign back."""

    message_id: I64
    handshake_data: HandshakeData


@record
class HandshakeResponse:
    """A client's answer, in an envelope signed with its key."""

    message_id: I64
    handshake_data: HandshakeData


@record
class AuditorHandshakeResponse:
    """An auditor's answer: also where it stands, so alpha knows what to stream."""

    message_id: I64
    handshake_data: HandshakeData
    quanta_cursor: U64
    result_cursor: U64
    state: NodeState


@record
class ClientConnectionSuccess:
    """Sent after a valid handshake; account id 0 means not registered yet."""

    message_id: I64
    account_id: U64


# --- client requests -----------------------------------------------------------------------


@record
class AccountDataRequest:
    """Asks for balances and open orders; the answer carries a hash of the account state."""

    message_id: I64
    account: PublicKey
    nonce: U64


@record
class PaymentRequest:
    """Moves `amount` of `asset` to another registered account."""

    message_id: I64
    account: PublicKey
    nonce: U64
    asset: AssetCode
    amount: U64
    destination: PublicKey


@record
class OrderRequest:
    """A limit order on market {asset}/{quote}; `price` is a double converted once.

    `client_order_id` is the client's own label (0: none): the resting order keeps it, every
    effect of the order repeats it, and a cancellation may name the order by it. At most one
    resting order of an account holds a given label (an order reusing one is refused)."""

    message_id: I64
    account: PublicKey
    nonce: U64
    asset: AssetCode
    side: OrderSide
    amount: U64
    price: Double
    time_in_force: TimeInForce
    client_order_id: U64 = 0


@record
class OrderCancellationRequest:
    """Cancels one of the account's own open orders, named by `order_id`, or with `order_id`
    0 by its `client_order_id` (exactly one of the two is non-zero)."""

    message_id: I64
    account: PublicKey
    nonce: U64
    order_id: U64
    client_order_id: U64 = 0


@record
class WithdrawalRequest:
    """Pays `amount` out of the vault of `provider` to an external `destination`."""

    message_id: I64
    account: PublicKey
    nonce: U64
    provider: Name
    asset: AssetCode
    amount: U64
    destination: Address
    fee: U64


@record
class QuantumInfoRequest:
    """A page of the account's quanta, after (ASC) or before (DESC) the apex `cursor`.

    Not a quantum: it changes nothing, so it carries no nonce."""

    message_id: I64
    account: PublicKey
    cursor: U64
    order: QueryOrder
    limit: U32


# --- order batches (issue 19: several orders and cancels under one signature) --------------
# An OrderBatchRequest is one client request (one envelope, one signature, one nonce, one
# quantum) holding up to Limits.ORDER_BATCH_ITEMS_MAX items, executed in order and all or
# nothing (quanta/core/processors/order.py). Item i's order gets id apex·1000 + i.


class BatchItemType(enum.IntEnum):
    """Discriminant of `BATCH_ITEM`."""

    ORDER = 0
    CANCEL = 1
    CANCEL_ALL = 2


@record
class BatchOrder:
    """A limit order in a batch; `client_order_id` is the client's own label (0: none), with
    the rules of `OrderRequest.client_order_id`."""

    client_order_id: U64
    asset: AssetCode
    side: OrderSide
    amount: U64
    price: Double
    time_in_force: TimeInForce


@record
class BatchCancel:
    """Cancels one of the account's open orders, by `order_id` or (`order_id` 0) by
    `client_order_id`, as `OrderCancellationRequest` does."""

    order_id: U64
    client_order_id: U64 = 0


@record
class BatchCancelAll:
    """Cancels every open order of the account in the market of `asset`."""

    asset: AssetCode


BATCH_ITEM = Union(
    "BatchItem",
    BatchItemType,
    {
        BatchItemType.ORDER: BatchOrder,
        BatchItemType.CANCEL: BatchCancel,
        BatchItemType.CANCEL_ALL: BatchCancelAll,
    },
)
BatchItem = BatchOrder | BatchCancel | BatchCancelAll


@record
class OrderBatchRequest:
    """Up to `Limits.ORDER_BATCH_ITEMS_MAX` orders and cancellations under one signature."""

    message_id: I64
    account: PublicKey
    nonce: U64
    items: Annotated[tuple[BatchItem, ...], Array(BATCH_ITEM, Limits.ORDER_BATCH_ITEMS_MAX)]


# --- results -------------------------------------------------------------------------------


@record
class ResultMessage:
    """The answer to a request that is not (or did not become) a quantum."""

    message_id: I64
    status: StatusCode
    description: Description


@record
class PayloadProof:
    """The signed payload hash of a quantum with the node signatures collected so far."""

    payload_hash: Hash
    signatures: Annotated[tuple[NodeSignature, ...], Array(NodeSignature, Limits.AUDITORS_MAX)]


@record
class BalanceInfo:
    """One balance as seen by its owner."""

    asset: AssetCode
    amount: U64
    liabilities: U64


@record
class OrderInfo:
    """One open order as seen by its owner, with its client order id (0: none)."""

    order_id: U64
    asset: AssetCode
    side: OrderSide
    amount: U64
    price: U64
    client_order_id: U64 = 0


@record
class AccountDataInfo:
    """Account state at the apex of an `AccountDataRequest`, with its hash."""

    account_id: U64
    nonce: U64
    balances: Annotated[tuple[BalanceInfo, ...], Array(BalanceInfo, Limits.ASSETS_MAX)]
    orders: Annotated[tuple[OrderInfo, ...], Array(OrderInfo, Limits.ORDERS_PER_ACCOUNT_MAX)]
    state_hash: Hash


# --- effects -------------------------------------------------------------------------------


@record
class AccountCreateEffect:
    """A new account with its id (the apex of the deposit that created it) and key."""

    account: U64
    public_key: PublicKey


@record
class NonceUpdateEffect:
    """The account's last used nonce changes."""

    nonce: U64
    prev_nonce: U64


@record
class BalanceCreateEffect:
    """A balance in `asset` appears, at zero."""

    asset: AssetCode


@record
class BalanceUpdateEffect:
    """A balance grows (PLUS) or shrinks (MINUS) by `amount`."""

    asset: AssetCode
    sign: BalanceUpdateSign
    amount: U64


@record
class OrderPlacedEffect:
    """An order rests on the book and locks its liabilities; it keeps `client_order_id`."""

    order_id: U64
    price: U64
    asset: AssetCode
    side: OrderSide
    amount: U64
    quote_amount: U64
    client_order_id: U64 = 0


@record
class OrderRemovedEffect:
    """An order leaves the book (filled or cancelled) and unlocks what it still locked; its
    `client_order_id` comes along, so reverting the effect rests the order as it was."""

    order_id: U64
    price: U64
    asset: AssetCode
    side: OrderSide
    amount: U64
    quote_amount: U64
    client_order_id: U64 = 0


@record
class TradeEffect:
    """One fill, from the point of view of one side; moves the asset and the quote amount.

    `order_id` is the resting order (maker) or the incoming one (`is_new_order`), and
    `client_order_id` that order's client order id (so a revert that puts an exhausted maker
    back restores it too)."""

    order_id: U64
    asset: AssetCode
    side: OrderSide
    price: U64
    asset_amount: U64
    quote_amount: U64
    is_new_order: Bool
    client_order_id: U64 = 0


@record
class CursorUpdateEffect:
    """A payment provider's deposit cursor advances."""

    provider: Name
    cursor: Cursor
    prev_cursor: Cursor


@record
class ProviderAsset:
    """Maps a provider's token to a constellation asset, with the smallest withdrawal fee
    (in that asset's units) the provider accepts."""

    token: Annotated[str, String(Limits.TOKEN_MAX)]
    asset: AssetCode
    is_virtual: Bool
    # Issue 18 (custody): a withdrawal's fee must cover what the vault pays the network for
    # it (Stellar: the transaction fee in XLM). Stated here so every node judges a request
    # alike; validated per provider type (`quanta.core.config`).
    withdrawal_fee_min: U64 = 0


@record
class ProviderSettings:
    """One payment provider; its id is `{provider_type}-{name}`."""

    provider_type: Name
    name: Name
    vault: Address
    init_cursor: Cursor
    assets: Annotated[tuple[ProviderAsset, ...], Array(ProviderAsset, Limits.ASSETS_MAX)]
    payment_submit_delay_s: U32


@record
class AuditorSettings:
    """One node of the constellation; alpha is one of them."""

    public_key: PublicKey
    address: Address


@record
class AssetSettings:
    """One asset; exactly one is the quote asset."""

    code: AssetCode
    is_suspended: Bool
    is_quote_asset: Bool


@record
class RequestRateLimits:
    """Requests allowed per account per minute and per hour (0 = unlimited)."""

    minute_limit: U32
    hour_limit: U32


@record
class ConstellationSettings:
    """The whole constellation configuration, versioned."""

    version: U64
    alpha: PublicKey
    auditors: Annotated[tuple[AuditorSettings, ...], Array(AuditorSettings, Limits.AUDITORS_MAX)]
    min_account_balance: U64
    min_allowed_lot_size: U64
    assets: Annotated[tuple[AssetSettings, ...], Array(AssetSettings, Limits.ASSETS_MAX)]
    providers: Annotated[
        tuple[ProviderSettings, ...], Array(ProviderSettings, Limits.PROVIDERS_MAX)
    ]
    request_rate_limits: RequestRateLimits
    # A scheduled halt for upgrades: when non-zero, no quantum but a settings update executes
    # above this apex, on any node (see docs/admin.md "Scheduled halt"); 0 = running.
    halt_after_apex: U64 = 0


@record
class ConstellationUpdateEffect:
    """The settings change; the previous ones are kept so the effect can be reverted."""

    settings: ConstellationSettings
    prev_settings: Annotated[ConstellationSettings | None, Optional(ConstellationSettings)]


@record
class WithdrawalCreateEffect:
    """A withdrawal becomes pending and locks amount + fee."""

    withdrawal_id: U64
    provider: Name
    asset: AssetCode
    amount: U64
    fee: U64
    destination: Address


@record
class WithdrawalRemoveEffect:
    """A pending withdrawal ends (paid out or failed) and unlocks amount + fee."""

    withdrawal_id: U64
    provider: Name
    asset: AssetCode
    amount: U64
    fee: U64
    destination: Address
    is_successful: Bool


EFFECT = Union(
    "Effect",
    EffectType,
    {
        EffectType.ACCOUNT_CREATE: AccountCreateEffect,
        EffectType.NONCE_UPDATE: NonceUpdateEffect,
        EffectType.BALANCE_CREATE: BalanceCreateEffect,
        EffectType.BALANCE_UPDATE: BalanceUpdateEffect,
        EffectType.ORDER_PLACED: OrderPlacedEffect,
        EffectType.ORDER_REMOVED: OrderRemovedEffect,
        EffectType.TRADE: TradeEffect,
        EffectType.CURSOR_UPDATE: CursorUpdateEffect,
        EffectType.CONSTELLATION_UPDATE: ConstellationUpdateEffect,
        EffectType.WITHDRAWAL_CREATE: WithdrawalCreateEffect,
        EffectType.WITHDRAWAL_REMOVE: WithdrawalRemoveEffect,
    },
)
Effect = (
    AccountCreateEffect
    | NonceUpdateEffect
    | BalanceCreateEffect
    | BalanceUpdateEffect
    | OrderPlacedEffect
    | OrderRemovedEffect
    | TradeEffect
    | CursorUpdateEffect
    | ConstellationUpdateEffect
    | WithdrawalCreateEffect
    | WithdrawalRemoveEffect
)


@record
class EffectsGroup:
    """The effects of one quantum on one account (account 0: the constellation itself)."""

    account: U64
    account_sequence: U64
    effects: Annotated[tuple[Effect, ...], Array(EFFECT, Limits.EFFECTS_PER_GROUP_MAX)]


@record
class EffectsGroupHash:
    """Another account's effects group, reduced to its hash."""

    account: U64
    hash: Hash


EFFECTS_INFO = Union(
    "EffectsInfo",
    EffectsInfoType,
    {EffectsInfoType.FULL: EffectsGroup, EffectsInfoType.HASH: EffectsGroupHash},
)


@record
class QuantumResultMessage:
    """The answer to a quantum request: acknowledged (alpha signed) or final (majority)."""

    message_id: I64
    status: StatusCode
    description: Description
    apex: U64
    quantum_hash: Hash
    payload_proof: PayloadProof
    effects: Annotated[
        tuple[EffectsGroup | EffectsGroupHash, ...],
        Array(EFFECTS_INFO, Limits.GROUPS_PER_QUANTUM_MAX),
    ]
    account_data: Annotated[AccountDataInfo | None, Optional(AccountDataInfo)]


@record
class QuantumInfoItem:
    """One quantum of an account's history with what a client needs to verify it.

    `group_hashes` let a client recompute the effects proof with its own group in it, so the
    group is as signed. `quantum` is the quantum's own XDR (SHA-256 of it is `quantum_hash`),
    so a client that checked it reads who paid whom from proven data; absent where the account
    only made the
    book (another account's order filled its resting one: the taker stays private) or the
    quantum is above `Limits.QUANTUM_BYTES_MAX`."""

    apex: U64
    quantum_hash: Hash
    effects_hash: Hash
    timestamp: I64
    effects: EffectsGroup
    signatures: Annotated[tuple[NodeSignature, ...], Array(NodeSignature, Limits.AUDITORS_MAX)]
    quantum: Annotated[bytes | None, Optional(VarOpaque(Limits.QUANTUM_BYTES_MAX))] = None
    # Every group of the quantum as (account, hash), ascending accounts as in the effects
    # proof, the item's own included: they tie `effects` to the signed `effects_hash`.
    group_hashes: Annotated[
        tuple[EffectsGroupHash, ...], Array(EffectsGroupHash, Limits.GROUPS_PER_QUANTUM_MAX)
    ] = ()


@record
class QuantumInfoResponse:
    """A page of history; the cursors are apexes to continue from (absent: no more)."""

    message_id: I64
    status: StatusCode
    description: Description
    items: Annotated[tuple[QuantumInfoItem, ...], Array(QuantumInfoItem, Limits.QUERY_ITEMS_MAX)]
    next_cursor: Annotated[int | None, Optional(UINT64)]
    prev_cursor: Annotated[int | None, Optional(UINT64)]


# --- settings update -----------------------------------------------------------------------


@record
class ConstellationUpdate:
    """New settings; valid only in a `ConstellationMessageEnvelope` signed by a majority."""

    message_id: I64
    settings: ConstellationSettings


# --- alpha <-> auditor ---------------------------------------------------------------------


@record
class StateUpdate:
    """A node tells its peer its state and apex (with a reason when it failed)."""

    message_id: I64
    state: NodeState
    apex: U64
    reason: Description


@record
class AuditorResult:
    """An auditor's signature of one quantum's payload hash (and of its transaction, if any)."""

    apex: U64
    signature: NodeSignature
    tx_signature: Annotated[TxSignature | None, Optional(TxSignature)]
    rotation_signatures: Annotated[
        tuple[TxSignature, ...], Array(TxSignature, Limits.PROVIDERS_MAX)
    ] = ()
    """The node's signatures of the quantum's vault rotations (a settings update's), if it is
    one of the vaults' old signers; each proves itself."""


@record
class ResultsBatch:
    """Auditor -> alpha: signatures of executed quanta."""

    message_id: I64
    results: Annotated[tuple[AuditorResult, ...], Array(AuditorResult, Limits.BATCH_QUANTA_MAX)]


@record
class CatchupQuantaBatchRequest:
    """Rising alpha -> auditor: every quantum above `last_known_apex`."""

    message_id: I64
    last_known_apex: U64


@record
class QuantaCursorRequest:
    """Auditor -> alpha: stream quanta after `quanta_cursor`, results after `result_cursor`."""

    message_id: I64
    quanta_cursor: U64
    result_cursor: U64


# Forward-declared arms are filled in below; the quanta batch needs `SignedQuantum`.


@record
class MessageEnvelope:
    """A message with one ed25519 signature of SHA-256(XDR of the message)."""

    message: Annotated[Message, MESSAGE]
    signature: Signature


@record
class MessageEnvelopeSignless:
    """A message whose proofs live inside it."""

    message: Annotated[Message, MESSAGE]


@record
class ConstellationMessageEnvelope:
    """A message with several auditor signatures (settings updates)."""

    message: Annotated[Message, MESSAGE]
    signatures: Annotated[tuple[Signature, ...], Array(Signature, Limits.AUDITORS_MAX)]


# --- quanta --------------------------------------------------------------------------------


@record
class RequestQuantum:
    """A client request, kept in its original signed envelope."""

    request: MessageEnvelope


@record
class DepositItem:
    """One payment into the vault, as the provider saw it."""

    result: PaymentResult
    tx_hash: Annotated[bytes, VarOpaque(Limits.TX_HASH_MAX)]
    asset: AssetCode
    amount: U64
    destination: PublicKey


@record
class WithdrawalOutcome:
    """A pending withdrawal the provider saw paid out (or failed)."""

    withdrawal_id: U64
    result: PaymentResult
    tx_hash: Annotated[bytes, VarOpaque(Limits.TX_HASH_MAX)]


@record
class DepositQuantum:
    """A provider notification issued by alpha: payments in and withdrawal outcomes up to
    `cursor`."""

    provider: Name
    cursor: Cursor
    items: Annotated[tuple[DepositItem, ...], Array(DepositItem, Limits.DEPOSIT_ITEMS_MAX)]
    withdrawals: Annotated[
        tuple[WithdrawalOutcome, ...], Array(WithdrawalOutcome, Limits.DEPOSIT_ITEMS_MAX)
    ]


@record
class VaultRotationTx:
    """The transaction that gives one provider's vault the auditors a settings update brings
    in: built by alpha, validated by every node and signed by the vault's old signers, like a
    withdrawal's (`payments.core.rotation`)."""

    provider: Name
    transaction: Annotated[bytes, VarOpaque(Limits.TRANSACTION_MAX)]


@record
class ConstellationQuantum:
    """A settings update signed by a majority of the auditors, with the vault rotations it
    calls for (one per provider whose vault answers to the auditors it replaces, in provider
    id order: `quanta.core.processors.settings.rotations_called_for`)."""

    update: ConstellationMessageEnvelope
    rotations: Annotated[
        tuple[VaultRotationTx, ...], Array(VaultRotationTx, Limits.PROVIDERS_MAX)
    ] = ()


@record
class WithdrawalQuantum:
    """A client's withdrawal request with the transaction alpha's provider built for it."""

    request: MessageEnvelope
    transaction: Annotated[bytes, VarOpaque(Limits.TRANSACTION_MAX)]


QUANTUM_BODY = Union(
    "QuantumBody",
    MessageType,
    {
        MessageType.REQUEST_QUANTUM: RequestQuantum,
        MessageType.DEPOSIT_QUANTUM: DepositQuantum,
        MessageType.CONSTELLATION_QUANTUM: ConstellationQuantum,
        MessageType.WITHDRAWAL_QUANTUM: WithdrawalQuantum,
    },
)
QuantumBody = RequestQuantum | DepositQuantum | ConstellationQuantum | WithdrawalQuantum


@record
class Quantum:
    """One executed operation: alpha sets apex, prev_hash, effects_proof and timestamp (ms)."""

    apex: U64
    prev_hash: Hash
    effects_proof: Hash
    timestamp: I64
    body: Annotated[QuantumBody, QUANTUM_BODY]


@record
class SignedQuantum:
    """A quantum with the node signatures of its payload hash known so far (alpha's first)."""

    quantum: Quantum
    signatures: Annotated[tuple[NodeSignature, ...], Array(NodeSignature, Limits.AUDITORS_MAX)]


@record
class QuantaBatch:
    """Alpha -> auditor: quanta in apex order, and alpha's latest apex."""

    message_id: I64
    quanta: Annotated[tuple[SignedQuantum, ...], Array(SignedQuantum, Limits.BATCH_QUANTA_MAX)]
    last_known_apex: U64


@record
class CatchupQuantaBatch:
    """Auditor -> rising alpha: quanta it holds above the requested apex."""

    message_id: I64
    quanta: Annotated[tuple[SignedQuantum, ...], Array(SignedQuantum, Limits.BATCH_QUANTA_MAX)]
    has_more: Bool


MESSAGE = Union(
    "Message",
    MessageType,
    {
        MessageType.HANDSHAKE_REQUEST: HandshakeRequest,
        MessageType.HANDSHAKE_RESPONSE: HandshakeResponse,
        MessageType.AUDITOR_HANDSHAKE_RESPONSE: AuditorHandshakeResponse,
        MessageType.CLIENT_CONNECTION_SUCCESS: ClientConnectionSuccess,
        MessageType.RESULT: ResultMessage,
        MessageType.QUANTUM_RESULT: QuantumResultMessage,
        MessageType.ACCOUNT_DATA_REQUEST: AccountDataRequest,
        MessageType.PAYMENT_REQUEST: PaymentRequest,
        MessageType.ORDER_REQUEST: OrderRequest,
        MessageType.ORDER_CANCELLATION_REQUEST: OrderCancellationRequest,
        MessageType.WITHDRAWAL_REQUEST: WithdrawalRequest,
        MessageType.QUANTUM_INFO_REQUEST: QuantumInfoRequest,
        MessageType.QUANTUM_INFO_RESPONSE: QuantumInfoResponse,
        MessageType.ORDER_BATCH_REQUEST: OrderBatchRequest,
        MessageType.CONSTELLATION_UPDATE: ConstellationUpdate,
        MessageType.QUANTA_BATCH: QuantaBatch,
        MessageType.RESULTS_BATCH: ResultsBatch,
        MessageType.STATE_UPDATE: StateUpdate,
        MessageType.CATCHUP_QUANTA_BATCH_REQUEST: CatchupQuantaBatchRequest,
        MessageType.CATCHUP_QUANTA_BATCH: CatchupQuantaBatch,
        MessageType.QUANTA_CURSOR_REQUEST: QuantaCursorRequest,
    },
)
Message = (
    HandshakeRequest
    | HandshakeResponse
    | AuditorHandshakeResponse
    | ClientConnectionSuccess
    | ResultMessage
    | QuantumResultMessage
    | AccountDataRequest
    | PaymentRequest
    | OrderRequest
    | OrderCancellationRequest
    | WithdrawalRequest
    | QuantumInfoRequest
    | QuantumInfoResponse
    | OrderBatchRequest
    | ConstellationUpdate
    | QuantaBatch
    | ResultsBatch
    | StateUpdate
    | CatchupQuantaBatchRequest
    | CatchupQuantaBatch
    | QuantaCursorRequest
)

CLIENT_REQUESTS = (
    AccountDataRequest,
    PaymentRequest,
    OrderRequest,
    OrderCancellationRequest,
    WithdrawalRequest,
    OrderBatchRequest,
)
"""Requests that become quanta: they carry an account and a nonce."""

ClientRequest = (
    AccountDataRequest
    | PaymentRequest
    | OrderRequest
    | OrderCancellationRequest
    | WithdrawalRequest
    | OrderBatchRequest
)


# --- state commitment (issue 21) -----------------------------------------------------------
# Not messages: the canonical encodings the state commitment hashes (`quanta/core/commitment.py`,
# byte for byte in docs/engine.md, "State commitment"). A field added to the consensus state
# is added here, to the account's leaf if it belongs to one account, to the header otherwise;
# the commitment's rule (leaves, tree, header) does not change.

STATE_CURSORS_MAX = 1000
"""Provider cursors the state may hold (those of providers no longer in the settings stay)."""


@record
class BalanceState:
    """One balance of an account, as committed."""

    asset: AssetCode
    amount: U64
    liabilities: U64


@record
class OrderState:
    """One resting order of an account, as committed (its book follows from price and id)."""

    order_id: U64
    asset: AssetCode
    side: OrderSide
    price: U64
    amount: U64
    client_order_id: U64 = 0


@record
class WithdrawalState:
    """An account's pending withdrawal, as committed (its provider transaction is not: the
    chain holds it, and reverting a WithdrawalRemove cannot restore it)."""

    withdrawal_id: U64
    provider: Name
    asset: AssetCode
    amount: U64
    fee: U64
    destination: Address


@record
class AccountState:
    """One leaf of the state commitment: an account with its balances (by asset code), its
    resting orders (by order id) and its pending withdrawal."""

    account_id: U64
    public_key: PublicKey
    nonce: U64
    sequence: U64
    balances: Annotated[tuple[BalanceState, ...], Array(BalanceState, Limits.ASSETS_MAX)]
    orders: Annotated[tuple[OrderState, ...], Array(OrderState, Limits.ORDERS_PER_ACCOUNT_MAX)]
    withdrawal: Annotated[WithdrawalState | None, Optional(WithdrawalState)]


@record
class FeeBalanceState:
    """One asset of the constellation's fee account (account 0), as committed."""

    asset: AssetCode
    amount: U64


@record
class CursorState:
    """One payment provider's deposit cursor, as committed."""

    provider: Name
    cursor: Cursor


@record
class StateHeader:
    """What the state hash is taken over: the chain head, the state that belongs to no
    account, and the root of the accounts' Merkle tree."""

    apex: U64
    last_hash: Hash
    constellation_id: Hash
    settings: Annotated[ConstellationSettings | None, Optional(ConstellationSettings)]
    cursors: Annotated[tuple[CursorState, ...], Array(CursorState, STATE_CURSORS_MAX)]
    next_account_id: U64
    constellation_sequence: U64
    account_count: U64
    accounts_root: Hash
    # The fee account by asset code (only assets it holds); not a leaf: it has no key.
    fee_balances: Annotated[tuple[FeeBalanceState, ...], Array(FeeBalanceState, Limits.ASSETS_MAX)]
