"""`/api/constellation/settings-chain` serves the signed settings updates from genesis on.

Goal: a client that pinned a constellation id can verify every settings version forward from
genesis without trusting the node: each update it gets is the exact envelope its signers
signed, in version order, paged. Method: a node's database filled by the persistence code from
quanta the engine executed (genesis, a deposit, a rotation, a later update), then the view
through Django's test client; the check a client makes is spelled out here with the core's
own functions.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from quanta import views
from quanta.core.engine import Engine
from quanta.core.pending import PendingUpdates, quantum_row
from quanta.core.processors.settings import count_valid_signers
from quanta.core.signatures import constellation_id_of
from quanta.core.state import ConstellationState
from quanta.core.testing import default_settings, deposit_quantum, keypair, settings_quantum
from quanta.core.xdr.codec import decode
from quanta.core.xdr.schema import ConstellationMessageEnvelope, ConstellationSettings
from quanta.node.persistence import batch_persist, quanta_persist

pytestmark = pytest.mark.django_db(databases=["default", "ledger"])

NODES = [keypair(280), keypair(281), keypair(282)]
NEWCOMER = keypair(283)
GENESIS = default_settings(NODES)
CID = constellation_id_of(GENESIS)


def _later(previous: ConstellationSettings, auditors: list[Any]) -> ConstellationSettings:
    rotated = default_settings(auditors, version=previous.version + 1)
    return dataclasses.replace(rotated, alpha=previous.alpha)


@pytest.fixture
def chain() -> Iterator[list[ConstellationSettings]]:
    """Persists genesis, a deposit, an update that replaces one auditor, and one more."""
    second = _later(GENESIS, [NODES[0], NODES[1], NEWCOMER])
    third = dataclasses.replace(second, version=3, min_allowed_lot_size=5_000)
    bodies = [
        settings_quantum(GENESIS, NODES[:2]),
        deposit_quantum(1, [(keypair(9), "USD", 10_000_000)]),
        settings_quantum(second, NODES[:2], message_id=2, constellation_id=CID),
        settings_quantum(third, [NODES[0], NEWCOMER], message_id=3, constellation_id=CID),
    ]
    engine = Engine(ConstellationState())
    pending = PendingUpdates(5, 50_000)
    rows = []
    for body in bodies:
        executed = engine.execute(body, 1_700_000_000_000)
        pending.record(executed)
        rows.append(quantum_row(executed, 0, b"\x00" * 36))
    quanta_persist(rows=rows)
    batch_persist(batch=pending.cut(engine.state))
    yield [GENESIS, second, third]


def _get(after: object = None) -> Any:
    query = "" if after is None else f"?after={after}"
    return Client().get(f"/api/constellation/settings-chain{query}")


def test_the_chain_verifies_forward_from_the_pinned_id(chain: list[ConstellationSettings]) -> None:
    body = _get().json()
    assert body["constellation_id"] == CID.hex() and body["more"] is False
    assert [(u["version"], u["apex"]) for u in body["updates"]] == [(1, 1), (2, 3), (3, 4)]
    envelopes = [
        decode(ConstellationMessageEnvelope, base64.b64decode(u["envelope"]))
        for u in body["updates"]
    ]
    assert constellation_id_of(envelopes[0].message.settings) == CID  # type: ignore[union-attr]
    signers = GENESIS
    for envelope, settings in zip(envelopes, chain, strict=True):
        assert envelope.message.settings == settings  # type: ignore[union-attr]
        keys = tuple(a.public_key for a in signers.auditors)
        assert count_valid_signers(envelope, keys, CID) >= 2
        signers = settings
    # The same signatures do not verify for another constellation.
    assert count_valid_signers(envelopes[1], keys, bytes(32)) == 0
    # Public and signed: a page of another node may read it (it follows an alpha replacement).
    assert _get().headers["Access-Control-Allow-Origin"] == "*"


def test_the_chain_pages_and_refuses_bad_cursors(
    chain: list[ConstellationSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "CHAIN_PAGE", 2)
    first = _get().json()
    assert [u["version"] for u in first["updates"]] == [1, 2] and first["more"] is True
    rest = _get(after=2).json()
    assert [u["version"] for u in rest["updates"]] == [3] and rest["more"] is False
    for bad in ("-1", "x", str(2**64)):
        response = _get(after=bad)
        assert response.status_code == 400, bad
        assert "after" in response.json()["description"]


def test_the_info_and_chain_of_an_uninitialized_node_say_so() -> None:
    assert Client().get("/api/constellation/info").json()["constellation_id"] is None
    body = _get().json()
    assert body == {"constellation_id": None, "updates": [], "more": False}


def test_the_info_names_the_constellation(chain: list[ConstellationSettings]) -> None:
    assert Client().get("/api/constellation/info").json()["constellation_id"] == CID.hex()
