"""An auditor's engine worker, in process: a quanta batch in, its signatures out.

Goal: show the adapter around `AuditorNode` does its part of the protocol: a `quanta.batch`
event carrying quanta alpha really executed (its herald frame) is re-executed, checked against
this node's own view of the payment network (the deposit must be in the local ledger's vault)
and answered with a `herald.results` event of signatures that verify, to the link's reply
channel; the quanta are persisted. A batch whose quantum has a wrong effects proof, a frame
not signed by alpha, or a deposit the vault does not show makes the auditor Failed: it answers
nothing for that batch, publishes its state, and persists nothing of it. Requests meant for
alpha are refused with a status. A restarted auditor signs again, from the rows it persisted,
the quanta alpha resends because their signatures were lost.
Method: a pure `AlphaNode` executes genesis settings and a deposit the local ledger's faucet
really made (its notification read from the ledger by alpha's provider); its streamed batch is
framed as alpha's herald endpoint frames it (`server_frame` with alpha's key, for the
constellation; a frame alpha signed for another constellation is one not signed by alpha).
`RunningWorker` runs a real `AuditorWorker` on Channels' in-memory layer with the real test
databases; the test plays the herald link (the reply channel). Handlers run one message at a
time, so a later message's answer on the same reply channel proves nothing came before it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async

from payments.providers.local_ledger.ledger import faucet_deposit
from quanta import events
from quanta.core.alpha import AlphaNode
from quanta.core.engine import Engine
from quanta.core.envelopes import server_frame
from quanta.core.hashing import sha256
from quanta.core.keys import KeyPair, verify_signature
from quanta.core.pending import PendingUpdates
from quanta.core.signatures import constellation_id_of
from quanta.core.status import StatusCode
from quanta.core.testing import (
    default_settings,
    deposit_quantum,
    keypair,
    settings_quantum,
    sign_message,
)
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    DepositItem,
    DepositQuantum,
    NodeState,
    PaymentRequest,
    PaymentResult,
    QuantaBatch,
    ResultMessage,
    ResultsBatch,
    SignedQuantum,
    StateUpdate,
)
from quanta.groups import GATEWAYS_GROUP
from quanta.models import QuantumRecord
from quanta.node.auditor_worker import AuditorWorker, persisted_quanta
from quanta.node.providers import NodeProviders
from quanta.node_identity import now_ms
from quanta.node_status import status_read
from quanta.tests.node.conftest import TIMEOUT_S, RunningWorker, of_type, receive

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "ledger"])

ALPHA, AUDITOR = keypair(240), keypair(241)
ALICE = keypair(242)
NODES = [ALPHA, AUDITOR]
UNIT = 10_000_000
CONSTELLATION_ID = constellation_id_of(default_settings(NODES))


class Alpha:
    """Alpha's core on its own: executes, and frames what it streams as its herald does."""

    def __init__(self) -> None:
        self.node = AlphaNode(ALPHA, Engine(), PendingUpdates())
        self.node.initialize(settings_quantum(default_settings(NODES), NODES).update, now_ms())

    def deposit_from_ledger(self) -> None:
        """Pays into the vault through the faucet and notifies what alpha's provider reads."""
        faucet_deposit(ALICE.public_key_strkey, "VAULT", "USD", 100 * UNIT)
        (provider_id, provider), *_ = NodeProviders(ALPHA, self.node.engine.state).current().items()
        # + 1: the row's time has microseconds, now_ms() floors to the millisecond.
        seen = provider.notification_after(provider.settings.init_cursor, now_ms() + 1)
        assert seen.items, "the faucet's payment is in the vault"
        self.node.notify(DepositQuantum(provider_id, seen.cursor, seen.items, ()), now_ms())

    def take(self) -> list[SignedQuantum]:
        return self.node.take_outgoing()

    def frame(
        self,
        quanta: list[SignedQuantum],
        signer: KeyPair = ALPHA,
        constellation_id: bytes = CONSTELLATION_ID,
    ) -> bytes:
        """Returns the herald frame of a `herald.quanta` event's batch."""
        batch = events.herald_quanta(
            encode(QuantaBatch(0, tuple(quanta), self.node.engine.state.apex), MESSAGE)
        )
        return server_frame(batch["batch"], signer, constellation_id)

    def payload_hash(self, apex: int) -> bytes:
        return self.node.unfinalized[apex].executed.payload_hash


@pytest.fixture
async def auditor(node_settings: Any) -> AsyncIterator[RunningWorker]:
    """A started auditor on an empty database."""
    node_settings.NODE_SECRET_SEED = AUDITOR.secret
    node_settings.NODE_ROLE = "auditor"
    running = RunningWorker(AuditorWorker())
    running.start()
    yield running
    await running.stop()


def recorded_apexes() -> list[int]:
    return list(QuantumRecord.objects.order_by("apex").values_list("apex", flat=True))


async def signatures_for(auditor: RunningWorker, layer: Any, frame: bytes) -> ResultsBatch:
    """Sends a frame as the herald link does; returns the ResultsBatch the engine answers."""
    reply = await layer.new_channel()
    await auditor.send(events.quanta_batch(frame, reply))
    answer = await receive(layer, reply, lambda message: True)
    assert answer["type"] == "herald.results", answer
    results = decode(MESSAGE, answer["message"])
    assert isinstance(results, ResultsBatch)
    return results


async def test_an_alpha_batch_is_re_executed_signed_and_persisted(
    auditor: RunningWorker, layer: Any
) -> None:
    alpha = Alpha()
    await database_sync_to_async(alpha.deposit_from_ledger)()
    results = await signatures_for(auditor, layer, alpha.frame(alpha.take()))
    assert [r.apex for r in results.results] == [1, 2]
    for result in results.results:
        assert result.signature.auditor_index == 1 and result.tx_signature is None
        signature = result.signature.signature
        assert verify_signature(AUDITOR.public_key, alpha.payload_hash(result.apex), signature)
    # Alpha takes them: the deposit is final with both signatures.
    for result in results.results:
        alpha.node.add_signature(result.apex, 1, result.signature.signature)
    assert not alpha.node.unfinalized
    account = auditor.worker.node.engine.state.accounts.get_by_key(ALICE.public_key)
    assert account is not None
    await auditor.stop()
    assert await database_sync_to_async(recorded_apexes)() == [1, 2]


async def test_a_flush_ask_is_answered_once_what_it_signed_is_persisted(
    auditor: RunningWorker, layer: Any
) -> None:
    # The herald link answers a rising alpha from the database only after this answer: the
    # signatures left before the rows were flushed (the simulator's --strict-timing race).
    alpha = Alpha()
    await database_sync_to_async(alpha.deposit_from_ledger)()
    await signatures_for(auditor, layer, alpha.frame(alpha.take()))
    flushed = await layer.new_channel()
    await auditor.send(events.quanta_flush_ask(flushed))
    answer = await receive(layer, flushed, lambda message: True)
    assert answer["type"] == "herald.flushed", answer
    assert await database_sync_to_async(recorded_apexes)() == [1, 2]


async def test_a_restarted_auditor_signs_again_what_it_persisted(
    auditor: RunningWorker, layer: Any
) -> None:
    alpha = Alpha()
    await database_sync_to_async(alpha.deposit_from_ledger)()
    quanta = alpha.take()
    lost = await signatures_for(auditor, layer, alpha.frame(quanta))
    await auditor.stop()  # Its results never reached alpha; its rows are on disk.
    persisted = await database_sync_to_async(persisted_quanta)({1, 2, 3})
    assert sorted(persisted) == [1, 2]
    assert persisted[2].payload == alpha.payload_hash(2)
    assert persisted[2].signed.quantum == quanta[1].quantum

    restarted = RunningWorker(AuditorWorker())
    restarted.start()
    try:
        again = await signatures_for(restarted, layer, alpha.frame(quanta))
    finally:
        await restarted.stop()
    assert again.results == lost.results, "the same payload hashes, so the same signatures"
    for result in again.results:
        alpha.node.add_signature(result.apex, 1, result.signature.signature)
    assert not alpha.node.unfinalized


async def test_a_batch_is_signed_while_persistence_holds_the_database_thread(
    auditor: RunningWorker, layer: Any
) -> None:
    # The process's shared database thread (every `database_sync_to_async` call, the flush
    # loop's persistence among them) is held, as a snapshot's batch holds it for 30-100 ms:
    # the auditor still executes and signs the next batch. It used to run there too, so its
    # signatures, and alpha's finality, waited for whatever persistence ran before them.
    alpha = Alpha()
    await signatures_for(auditor, layer, alpha.frame(alpha.take()))  # The genesis: loaded.
    await database_sync_to_async(alpha.deposit_from_ledger)()
    released = threading.Event()
    holding = asyncio.create_task(database_sync_to_async(released.wait)(timeout=TIMEOUT_S))
    try:
        results = await signatures_for(auditor, layer, alpha.frame(alpha.take()))
        assert not holding.done(), "signed while the database thread was still held"
    finally:
        released.set()
        await holding
    assert [r.apex for r in results.results] == [2]
    signature = results.results[0].signature.signature
    assert verify_signature(AUDITOR.public_key, alpha.payload_hash(2), signature)


def wrong_effects_proof(alpha: Alpha) -> bytes:
    alpha.deposit_from_ledger()
    (signed,) = alpha.take()
    forged = dataclasses.replace(signed.quantum, effects_proof=sha256(b"other effects"))
    return alpha.frame([dataclasses.replace(signed, quantum=forged)])


def not_signed_by_alpha(alpha: Alpha) -> bytes:
    alpha.deposit_from_ledger()
    return alpha.frame(alpha.take(), signer=AUDITOR)


def signed_for_another_constellation(alpha: Alpha) -> bytes:
    # Alpha's key, but bound to another constellation (one whose genesis has a third node).
    alpha.deposit_from_ledger()
    other = constellation_id_of(default_settings([*NODES, ALICE]))
    return alpha.frame(alpha.take(), constellation_id=other)


def deposit_the_vault_contradicts(alpha: Alpha) -> bytes:
    # A notification of alpha's own making at a cursor the vault has reached: it shows
    # another payment there.
    faucet_deposit(ALICE.public_key_strkey, "VAULT", "USD", 100 * UNIT)
    (_, provider), *_ = NodeProviders(ALPHA, alpha.node.engine.state).current().items()
    cursor = provider.notification_after(provider.settings.init_cursor, now_ms() + 1).cursor
    alpha.node.notify(deposit_quantum(int(cursor), [(ALICE, "USD", 200 * UNIT)]), now_ms())
    return alpha.frame(alpha.take())


@pytest.mark.parametrize(
    ("tampered", "reason"),
    [
        (wrong_effects_proof, "quantum 2: effects proof differs from alpha's"),
        (not_signed_by_alpha, "not signed by alpha"),
        (signed_for_another_constellation, "not signed by alpha"),
        (deposit_the_vault_contradicts, "quantum 2 rejected here: local-vault: the notification"),
    ],
)
async def test_a_bad_batch_fails_the_auditor_and_it_signs_nothing(
    auditor: RunningWorker, layer: Any, tampered: Callable[[Alpha], bytes], reason: str
) -> None:
    alpha = Alpha()
    results = await signatures_for(auditor, layer, alpha.frame(alpha.take()))
    assert [r.apex for r in results.results] == [1]
    frame = await database_sync_to_async(tampered)(alpha)
    reply = await layer.new_channel()
    await auditor.send(events.quanta_batch(frame, reply))
    # Then a message the auditor refuses on the same reply channel: its answer comes right
    # after the state report (Failed, why) only if the tampered batch got no signatures.
    await auditor.send(events.engine_ask("quanta.init", b"", reply))
    report = await receive(layer, reply, lambda message: True)
    assert report["type"] == "herald.results", report
    state = decode(MESSAGE, report["message"])
    assert isinstance(state, StateUpdate) and state.state == NodeState.FAILED, state
    assert reason in state.reason
    answer = await receive(layer, reply, lambda message: True)
    assert answer["type"] == "init.result", answer
    assert answer["status"] == StatusCode.INVALID_STATE
    published = await database_sync_to_async(status_read)()
    assert published.state == "Failed" and published.apex == 1, published
    assert reason in published.reason
    await auditor.stop()
    assert await database_sync_to_async(recorded_apexes)() == [1]


async def test_a_deposit_the_vault_does_not_show_yet_is_signed_once_it_does(
    auditor: RunningWorker, layer: Any
) -> None:
    alpha = Alpha()
    results = await signatures_for(auditor, layer, alpha.frame(alpha.take()))
    assert [r.apex for r in results.results] == [1]
    # Alpha's view is ahead of the auditor's: the payment (ledger positions 1: mint, 2: into
    # the vault) is announced before the auditor's ledger shows it.
    source, amount = ALICE.public_key_strkey, 100 * UNIT
    tx_hash = sha256(f"{source}|VAULT|USD|{amount}|".encode())
    item = DepositItem(PaymentResult.SUCCESS, tx_hash, "USD", amount, ALICE.public_key)
    (provider_id, _), *_ = NodeProviders(ALPHA, alpha.node.engine.state).current().items()
    alpha.node.notify(DepositQuantum(provider_id, "2", (item,), ()), now_ms())
    reply = await layer.new_channel()
    await auditor.send(events.quanta_batch(alpha.frame(alpha.take()), reply))
    await auditor.send(events.engine_ask("quanta.init", b"", reply))
    # First the state report (Chasing: cannot confirm yet), then the init refusal: no
    # signatures came before it.
    report = await receive(layer, reply, lambda message: True)
    assert report["type"] == "herald.results", report
    state = decode(MESSAGE, report["message"])
    assert isinstance(state, StateUpdate) and state.state == NodeState.CHASING, state
    assert "cannot confirm yet" in state.reason
    answer = await receive(layer, reply, lambda message: True)
    assert answer["type"] == "init.result", answer
    published = await database_sync_to_async(status_read)()
    assert published.state == "Chasing" and "cannot confirm yet" in published.reason, published

    await database_sync_to_async(faucet_deposit)(source, "VAULT", "USD", amount)
    # A check that ran before the ledger showed the payment reported Chasing again (every
    # check that signs nothing reports the state); the signatures follow those reports.
    while True:
        answer = await receive(layer, reply, of_type("herald.results"))
        signed = decode(MESSAGE, answer["message"])
        if not isinstance(signed, StateUpdate):
            break
        assert signed.state == NodeState.CHASING and "cannot confirm yet" in signed.reason
    assert isinstance(signed, ResultsBatch) and [r.apex for r in signed.results] == [2]
    await auditor.stop()
    assert await database_sync_to_async(recorded_apexes)() == [1, 2]


async def test_requests_meant_for_alpha_are_refused(auditor: RunningWorker, layer: Any) -> None:
    hub = await layer.new_channel()
    await layer.group_add(GATEWAYS_GROUP, hub)
    request = PaymentRequest(9, ALICE.public_key, 1, "USD", UNIT, AUDITOR.public_key)
    await auditor.send(
        events.quanta_requests(
            hub, 5, [(2, encode(sign_message(request, ALICE, CONSTELLATION_ID)))]
        )
    )
    answer = await receive(layer, hub, of_type("hub.replies"))
    ((number, data),) = answer["replies"]
    refusal = decode(MESSAGE, data)
    assert answer["consumed"] == [5] and number == 2 and isinstance(refusal, ResultMessage)
    assert (refusal.message_id, refusal.status) == (9, StatusCode.INVALID_STATE)
    assert "auditor" in refusal.description
