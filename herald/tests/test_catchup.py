"""An auditor's catchup is served by its herald connection, not by alpha's engine.

Goal: the persisted (final) quanta above an auditor's cursor reach it from the web process, in
pages, and the engine is asked only for what lies above them (the security review's M6 and
the abuse runs: alpha's sequential engine streamed every catchup itself, so an auditor that
asked again and again from 0 held every client request behind it: p99 19 s). While alpha is
Rising nothing is sent from the database (the auditor must not take alpha as in step), and
the engine answers as before. Method: Channels' `WebsocketCommunicator` drives the real
consumer on the in-memory layer with quanta the engine executed, persisted by the persistence
code in the test database; the test plays the engine and reads its channel.
"""

from __future__ import annotations

from typing import Any

import pytest

from herald.consumers import HeraldConsumer
from herald.tests.conftest import ALPHA, AUDITOR
from herald.tests.test_consumers import challenged, engine_event, from_alpha, hello, signed
from quanta.core.engine import Engine
from quanta.core.pending import quantum_row
from quanta.core.state import ConstellationState
from quanta.core.testing import default_settings, deposit_quantum, keypair, settings_quantum
from quanta.core.xdr.schema import NodeState, QuantaBatch, QuantaCursorRequest
from quanta.node.persistence import quanta_persist, settings_record_persist
from quanta.node_status import status_clear, status_publish

pytestmark = pytest.mark.django_db(transaction=True)

GENESIS = default_settings([ALPHA, AUDITOR])
PERSISTED = 7
"""Genesis and six deposits, final and persisted."""


@pytest.fixture
def persisted(layer: Any, settings: Any) -> Any:
    """Alpha's web process with PERSISTED quanta in its database."""
    settings.NODE_SECRET_SEED = ALPHA.secret
    engine = Engine(ConstellationState())
    bodies = [settings_quantum(GENESIS, [ALPHA, AUDITOR])]
    bodies += [deposit_quantum(i, [(keypair(30 + i), "USD", 10_000_000)]) for i in range(1, 7)]
    rows = [
        quantum_row(engine.execute(body, 1_000 + i), 0, bytes(36)) for i, body in enumerate(bodies)
    ]
    quanta_persist(rows=rows)
    settings_record_persist(apex=1, settings=GENESIS)
    status_clear()
    yield layer
    status_clear()


async def _connected(layer: Any, cursor: int) -> Any:
    communicator, challenge = await challenged()
    await communicator.send_to(bytes_data=hello(challenge, AUDITOR, cursor))
    return communicator


async def test_persisted_quanta_come_from_the_connection_and_the_engine_gets_the_rest(
    persisted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(HeraldConsumer, "CATCHUP_PAGE", 3)
    communicator = await _connected(persisted, 2)
    pages = [await from_alpha(communicator) for _ in range(2)]
    assert all(isinstance(page, QuantaBatch) for page in pages)
    apexes = [int(q.quantum.apex) for page in pages for q in page.quanta]  # type: ignore[union-attr]
    assert apexes == [3, 4, 5, 6, 7]
    assert [int(page.last_known_apex) for page in pages] == [5, 7]  # type: ignore[union-attr]
    catchup = await engine_event(persisted)
    assert catchup["type"] == "herald.catchup" and catchup["cursor"] == PERSISTED, catchup
    await communicator.disconnect()


async def test_an_auditor_asking_again_does_not_reach_the_engine_from_zero(
    persisted: Any,
) -> None:
    communicator = await _connected(persisted, PERSISTED)
    assert (await engine_event(persisted))["cursor"] == PERSISTED
    for _ in range(3):
        request = QuantaCursorRequest(0, 0, 0)
        await communicator.send_to(bytes_data=signed(request, AUDITOR))
        page = await from_alpha(communicator)
        assert isinstance(page, QuantaBatch) and len(page.quanta) == PERSISTED
        assert (await engine_event(persisted))["cursor"] == PERSISTED
    await communicator.disconnect()


async def test_nothing_is_sent_from_the_database_while_alpha_is_rising(persisted: Any) -> None:
    status_publish(state=NodeState.RISING, apex=PERSISTED, reason="collecting quanta")
    communicator = await _connected(persisted, 2)
    catchup = await engine_event(persisted)
    assert catchup["cursor"] == 2, "the engine decides: it answers a rising request"
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()
