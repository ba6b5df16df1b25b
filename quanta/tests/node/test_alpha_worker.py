"""Alpha's engine worker, in process: the events it takes and what it sends and persists.

Goal: show the adapter around `AlphaNode` does its part of the protocol: initialized with
genesis settings it answers the web view and records the settings; a hub's request batch is
credited to that hub and its results reach the hubs, a finalization only once the flush loop
persisted the quantum (its `QuantumRecord` row exists when the result arrives); a refused
request is answered to its connection alone and changes neither the state nor the chain;
with an auditor, a quantum is streamed to the herald and becomes final (and persisted) only
with the auditor's signature, which comes back as a `quanta.signatures` event; a quantum is
on alpha's journal before it is streamed, and a restarted alpha re-executes it at its apex.
Method: `RunningWorker` runs a real `AlphaWorker` on Channels' in-memory layer with the real
test databases; the test plays the hub (a channel in the gateways group), the web view (a
reply channel), the herald (a channel in the herald group) and, for the signatures, a pure
`AuditorNode`. Deposits are real: the local ledger's faucet pays into the vault and the
worker's deposit loop turns that into a quantum.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.db import database_sync_to_async

from exchange.models import AccountRecord
from payments.providers.local_ledger.ledger import faucet_deposit
from quanta import events
from quanta.core.auditor import AuditorNode
from quanta.core.engine import Engine
from quanta.core.envelopes import envelope_bytes, server_frame
from quanta.core.hashing import quantum_hash
from quanta.core.keys import KeyPair
from quanta.core.pending import PendingUpdates
from quanta.core.signatures import constellation_id_of
from quanta.core.status import StatusCode
from quanta.core.testing import default_settings, keypair, settings_quantum, sign_message
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    CatchupQuantaBatch,
    MessageType,
    NodeState,
    PaymentRequest,
    QuantaBatch,
    QuantumResultMessage,
    ResultMessage,
    ResultsBatch,
)
from quanta.groups import GATEWAYS_GROUP, HERALD_GROUP
from quanta.models import AlphaJournalRecord, QuantumRecord, SettingsRecord
from quanta.node import engine_worker
from quanta.node.alpha_worker import AlphaWorker
from quanta.tests.node.conftest import TIMEOUT_S, RunningWorker, of_type, receive

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "ledger"])

ALPHA, AUDITOR = keypair(230), keypair(231)
ALICE, BOB = keypair(232), keypair(233)
UNIT = 10_000_000
ALONE_ID = constellation_id_of(default_settings([ALPHA]))
"""The id of the one-node constellation `funded` initializes."""
PAIR_ID = constellation_id_of(default_settings([ALPHA, AUDITOR]))
"""The id of the constellation of alpha and its auditor."""


@pytest.fixture
async def hub(layer: Any) -> str:
    """A gateway hub's channel (in the gateways group, as a web process's hub is)."""
    channel: str = await layer.new_channel()
    await layer.group_add(GATEWAYS_GROUP, channel)
    return channel


@pytest.fixture
async def alpha(node_settings: Any, layer: Any, hub: str) -> AsyncIterator[RunningWorker]:
    """A started alpha on an empty database (it told the hubs it started)."""
    node_settings.NODE_SECRET_SEED = ALPHA.secret
    node_settings.NODE_ROLE = "alpha"
    running = RunningWorker(AlphaWorker())
    running.start()
    await receive(layer, hub, of_type("hub.engine_started"))
    yield running
    await running.stop()


async def initialize(alpha: RunningWorker, layer: Any, nodes: list[KeyPair]) -> Any:
    """Sends genesis settings (signed by every node) as the init view does; returns the answer."""
    reply = await layer.new_channel()
    update = settings_quantum(default_settings(nodes), nodes).update
    await alpha.send(events.engine_ask("quanta.init", encode(update), reply))
    return await receive(layer, reply, of_type("init.result"))


def fund(*who: KeyPair) -> None:
    """Pays 1000 USD into the vault of the local ledger for each key (the demo faucet)."""
    for keys in who:
        faucet_deposit(keys.public_key_strkey, "VAULT", "USD", 1000 * UNIT)


async def account_results(layer: Any, hub: str, keys: set[bytes]) -> dict[bytes, Any]:
    """Returns the next account result of each key in `keys` (from `hub.accounts`)."""
    results: dict[bytes, Any] = {}
    while keys - results.keys():
        message = await receive(layer, hub, of_type("hub.accounts"))
        for public_key, data, _signed in message["messages"]:
            if public_key in keys and public_key not in results:
                results[public_key] = decode(MESSAGE, data)
    return results


def payment(who: KeyPair, nonce: int, amount: int, message_id: int) -> bytes:
    """Returns a payment of `amount` USD to bob, signed as the gateway passes it on (for the
    one-node constellation of `funded`)."""
    request = PaymentRequest(message_id, who.public_key, nonce, "USD", amount, BOB.public_key)
    return encode(sign_message(request, who, ALONE_ID))


def recorded_apexes() -> list[int]:
    return list(QuantumRecord.objects.order_by("apex").values_list("apex", flat=True))


async def funded(alpha: RunningWorker, layer: Any, hub: str) -> None:
    """Initializes a one-node constellation and funds alice and bob through the ledger."""
    answer = await initialize(alpha, layer, [ALPHA])
    assert answer["status"] == 200, answer
    await database_sync_to_async(fund)(ALICE, BOB)
    results = await account_results(layer, hub, {ALICE.public_key, BOB.public_key})
    assert all(isinstance(r, QuantumResultMessage) for r in results.values()), results


async def test_genesis_settings_initialize_alpha_and_are_recorded(
    alpha: RunningWorker, layer: Any
) -> None:
    answer = await initialize(alpha, layer, [ALPHA, AUDITOR])
    assert answer == {
        "type": "init.result",
        "status": 200,
        "description": "initialized",
        "apex": 1,
    }
    records = await database_sync_to_async(list)(SettingsRecord.objects.all())
    assert [(r.apex, r.version) for r in records] == [(1, 1)]
    again = await initialize(alpha, layer, [ALPHA, AUDITOR])
    assert again["status"] == StatusCode.INVALID_STATE and "already" in again["description"]
    assert "apex" not in again


async def test_a_request_batch_is_credited_and_its_final_results_follow_persistence(
    alpha: RunningWorker, layer: Any, hub: str
) -> None:
    await funded(alpha, layer, hub)
    batch = events.quanta_requests(hub, 41, [(3, payment(ALICE, 1, 10 * UNIT, 77))])
    await alpha.send(batch)
    credit = await receive(layer, hub, of_type("hub.replies"))
    assert credit == {"type": "hub.replies", "replies": [], "consumed": [41]}
    results = await account_results(layer, hub, {ALICE.public_key, BOB.public_key})
    mine, theirs = results[ALICE.public_key], results[BOB.public_key]
    assert isinstance(mine, QuantumResultMessage) and isinstance(theirs, QuantumResultMessage)
    assert (mine.message_id, mine.status, theirs.message_id) == (77, StatusCode.SUCCESS, 0)
    assert mine.apex == theirs.apex
    # Final results leave only once the flush loop persisted their quantum: the row is there.
    assert await database_sync_to_async(recorded_apexes)() == list(range(1, mine.apex + 1))
    record = await database_sync_to_async(QuantumRecord.objects.get)(apex=mine.apex)
    assert record.kind == MessageType.REQUEST_QUANTUM
    account = alpha.worker.node.engine.state.accounts.get_by_key(ALICE.public_key)
    assert account is not None and record.initiator == account.id
    balance = account.balance("USD")
    assert balance is not None and balance.amount == 990 * UNIT


async def test_a_refused_request_is_answered_to_its_connection_and_changes_nothing(
    alpha: RunningWorker, layer: Any, hub: str
) -> None:
    await funded(alpha, layer, hub)
    state = alpha.worker.node.engine.state
    apex, state_hash = state.apex, state.state_hash()
    overdraft = payment(ALICE, 1, 5000 * UNIT, 78)
    await alpha.send(events.quanta_requests(hub, 42, [(4, overdraft)]))
    answer = await receive(layer, hub, of_type("hub.replies"))
    assert answer["consumed"] == [42]
    ((number, data),) = answer["replies"]
    refusal = decode(MESSAGE, data)
    assert number == 4 and isinstance(refusal, ResultMessage)
    assert refusal.message_id == 78 and refusal.status == StatusCode.BAD_REQUEST
    assert (state.apex, state.state_hash()) == (apex, state_hash)
    await alpha.stop()  # Its last flush: nothing new to persist.
    assert await database_sync_to_async(recorded_apexes)() == list(range(1, apex + 1))


async def test_a_quantum_becomes_final_with_the_auditor_s_signature(
    alpha: RunningWorker, layer: Any, hub: str
) -> None:
    herald = await layer.new_channel()
    await layer.group_add(HERALD_GROUP, herald)
    auditor = AuditorNode(AUDITOR, Engine(), PendingUpdates())
    answer = await initialize(alpha, layer, [ALPHA, AUDITOR])
    assert answer["status"] == 200, answer

    async def auditor_signs() -> tuple[list[int], ResultsBatch]:
        """Takes the next herald.quanta as the auditor's link and engine would."""
        streamed = await receive(layer, herald, of_type("herald.quanta"))
        batch = decode(MESSAGE, streamed["batch"])
        assert isinstance(batch, QuantaBatch)
        outcome = auditor.handle_frame(server_frame(streamed["batch"], ALPHA, PAIR_ID))
        apexes = [q.quantum.apex for q in batch.quanta]
        assert [r.apex for r in outcome.results] == apexes
        return apexes, ResultsBatch(0, tuple(outcome.results))

    apexes, signed = await auditor_signs()
    assert apexes == [1]
    await alpha.send(
        events.quanta_signatures(
            AUDITOR.public_key, envelope_bytes(encode(signed, MESSAGE), AUDITOR, PAIR_ID)
        )
    )
    await database_sync_to_async(fund)(ALICE)
    apexes, signed = await auditor_signs()
    assert apexes == [2]
    # Alpha alone is no majority of two: the deposit is not final, so not persisted either.
    node = alpha.worker.node
    assert 2 in node.unfinalized and all(row.apex != 2 for row in node.final_rows)
    assert 2 not in await database_sync_to_async(recorded_apexes)()
    await alpha.send(
        events.quanta_signatures(
            AUDITOR.public_key, envelope_bytes(encode(signed, MESSAGE), AUDITOR, PAIR_ID)
        )
    )
    (result,) = (await account_results(layer, hub, {ALICE.public_key})).values()
    assert isinstance(result, QuantumResultMessage) and result.apex == 2
    assert [s.auditor_index for s in result.payload_proof.signatures] == [0, 1]
    assert await database_sync_to_async(recorded_apexes)() == [1, 2]


async def test_alpha_restarted_before_its_genesis_is_final_rises_instead_of_initializing(
    alpha: RunningWorker, layer: Any, hub: str
) -> None:
    # The genesis needs the auditor's signature: alpha stops with it unfinal, its settings on
    # record. Before, the restarted alpha was uninitialized and took a genesis again (a new
    # quantum at apex 1, where the auditor may hold the first one).
    answer = await initialize(alpha, layer, [ALPHA, AUDITOR])
    assert answer["status"] == 200, answer
    await alpha.stop()
    assert await database_sync_to_async(recorded_apexes)() == []
    restarted = RunningWorker(AlphaWorker())
    restarted.start()
    try:
        await receive(layer, hub, of_type("hub.engine_started"))
        assert restarted.worker.node.status.state == NodeState.RISING
        again = await initialize(restarted, layer, [ALPHA, AUDITOR])
        assert again["status"] == StatusCode.INVALID_STATE, again
        assert "recovering" in again["description"]
    finally:
        await restarted.stop()


def _streams_apex_2(message: dict[str, Any]) -> bool:
    # A herald.quanta holding apex 2 (not a heartbeat, nor the genesis sent again).
    if message["type"] != "herald.quanta":
        return False
    batch = decode(MESSAGE, message["batch"])
    return isinstance(batch, QuantaBatch) and 2 in [q.quantum.apex for q in batch.quanta]


def _quantum_at_2(message: dict[str, Any]) -> bytes:
    batch = decode(MESSAGE, message["batch"])
    assert isinstance(batch, QuantaBatch)
    (quantum,) = [q.quantum for q in batch.quanta if q.quantum.apex == 2]
    return quantum_hash(quantum)


def journaled_apexes() -> list[int]:
    return list(AlphaJournalRecord.objects.order_by("apex").values_list("apex", flat=True))


async def test_a_streamed_quantum_is_journaled_and_kept_by_a_restarted_alpha(
    alpha: RunningWorker, layer: Any, hub: str
) -> None:
    # Before the journal, alpha forgot a quantum it had streamed and not yet finalized: it
    # rose without it and executed another one at its apex, where an auditor could hold the
    # first (that auditor then saw two alpha-signed quanta at one apex and went Failed).
    herald = await layer.new_channel()
    await layer.group_add(HERALD_GROUP, herald)
    auditor = AuditorNode(AUDITOR, Engine(), PendingUpdates())
    answer = await initialize(alpha, layer, [ALPHA, AUDITOR])
    assert answer["status"] == 200, answer
    genesis = await receive(layer, herald, of_type("herald.quanta"))
    outcome = auditor.handle_frame(server_frame(genesis["batch"], ALPHA, PAIR_ID))
    signed = encode(ResultsBatch(0, tuple(outcome.results)), MESSAGE)
    await alpha.send(
        events.quanta_signatures(AUDITOR.public_key, envelope_bytes(signed, AUDITOR, PAIR_ID))
    )
    await database_sync_to_async(fund)(ALICE)  # Ready once the genesis is final: apex 2
    sent = _quantum_at_2(await receive(layer, herald, _streams_apex_2))
    assert 2 in await database_sync_to_async(journaled_apexes)(), "journaled before it left"
    await alpha.stop()
    assert await database_sync_to_async(recorded_apexes)() == [1], "apex 2 was not final"
    restarted = RunningWorker(AlphaWorker())
    restarted.start()
    try:
        await receive(layer, hub, of_type("hub.engine_started"))
        node = restarted.worker.node
        assert node.status.state == NodeState.RISING
        # The auditor never saw them (it answers empty): alpha still keeps its own chain.
        empty = encode(CatchupQuantaBatch(0, (), False))
        await restarted.send(events.quanta_catchup(AUDITOR.public_key, empty))
        again = await receive(layer, herald, _streams_apex_2)  # the recovered chain
        assert node.status.state == NodeState.READY, node.status.reason
        assert _quantum_at_2(again) == sent
        assert node.engine.state.apex == 2
    finally:
        await restarted.stop()


async def test_a_key_registered_since_the_snapshot_is_named_by_the_engine(
    alpha: RunningWorker, layer: Any, hub: str
) -> None:
    await funded(alpha, layer, hub)
    # No snapshot was cut (SNAPSHOT_INTERVAL_S is an hour here): alice has no row yet.
    assert not await database_sync_to_async(AccountRecord.objects.exists)()
    account = alpha.worker.node.engine.state.accounts.get_by_key(ALICE.public_key)
    assert account is not None
    for public_key, expected in ((ALICE.public_key, int(account.id)), (keypair(239).public_key, 0)):
        reply = await layer.new_channel()
        await alpha.send(events.quanta_account_of(public_key, reply))
        answer = await receive(layer, reply, of_type("account.of"))
        assert answer == {"type": "account.of", "account_id": expected}


async def test_quanta_taken_by_a_flush_cancelled_mid_write_are_persisted_by_the_last_one(
    alpha: RunningWorker, layer: Any, hub: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker stopped while its flush loop was writing (the write then failed) must not
    drop the rows that flush had taken: they are the last flush's to write. (Cancelled,
    asgiref stops waiting for the call; the rows were dropped then: 3 of 6 runs failed.)"""
    await funded(alpha, layer, hub)
    entered, release = threading.Event(), threading.Event()
    real_persist = engine_worker.quanta_persist
    calls = itertools.count()

    def persist_failing_first(*, rows: Any) -> None:
        if next(calls) == 0:
            entered.set()
            release.wait(TIMEOUT_S)
            raise RuntimeError("the connection dropped mid-write")
        real_persist(rows=rows)

    monkeypatch.setattr(engine_worker, "quanta_persist", persist_failing_first)
    await alpha.send(events.quanta_requests(hub, 43, [(5, payment(ALICE, 1, 10 * UNIT, 79))]))
    assert await asyncio.to_thread(entered.wait, TIMEOUT_S)
    apex = alpha.worker.node.engine.state.apex
    stopping = asyncio.create_task(alpha.stop())
    await asyncio.sleep(0)  # The cancellation reaches the flush loop's await first.
    release.set()
    await stopping
    assert await database_sync_to_async(recorded_apexes)() == list(range(1, apex + 1))
