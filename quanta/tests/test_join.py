"""The database side of joining from a snapshot (`quanta.node.join`, its views in
`constellation_site.join_views`).

Goal: the state a join writes loads back (`snapshot_load`) to the same state hash, a node
serves that snapshot as bytes that decode to it, attestations are kept bounded and served with
a signature that verifies (an engine-signed one, or the snapshot's own state hash signed on
request), a database holding anything is refused, and malformed parameters get 400, missing
things 404. Method: a real engine's state (the commitment's golden-vector state), a real
PostgreSQL test database and Django's test client.
"""

from __future__ import annotations

import base64

import pytest
from django.test import Client

from quanta.core.state_snapshot import (
    StateSnapshot,
    attestation_digest,
    attested_by_majority,
    snapshot_decode,
)
from quanta.models import StateAttestationRecord
from quanta.node.join import _persist, attestation_json, node_is_empty, served_snapshot
from quanta.node.persistence import ATTESTATIONS_KEPT, attestations_persist
from quanta.node.snapshot import snapshot_load
from quanta.tests.core.test_commitment import AUDITORS, CID, GENESIS, fixed_engine

pytestmark = pytest.mark.django_db


def joined() -> bytes:
    """Writes the golden-vector state as a join does; returns its state hash."""
    state = fixed_engine().state
    state_hash = state.state_hash()
    _persist(state, StateSnapshot(state, state_hash, GENESIS, 1), 1)
    return state_hash


def test_a_joined_state_loads_back_and_is_served_as_it_was() -> None:
    assert node_is_empty() is None
    state_hash = joined()
    loaded = snapshot_load()
    assert loaded.state_hash == state_hash and loaded.state.state_hash() == state_hash
    assert loaded.quanta_above == []  # no quantum row: nothing at or below it is signed again
    served = served_snapshot()
    assert served is not None and served[0] == loaded.state.apex
    assert snapshot_decode(served[1]).state_hash == state_hash
    assert "holds a chain already" in str(node_is_empty())


def test_attestations_are_kept_bounded_and_verify() -> None:
    node = AUDITORS[1]
    settings = fixed_engine().state.require_config().settings
    attested = [(apex, bytes([apex % 256]) * 32) for apex in range(1, ATTESTATIONS_KEPT + 11)]
    attestations_persist(keypair=node, constellation_id=CID, attested=attested[:10])
    attestations_persist(keypair=node, constellation_id=CID, attested=attested[10:])
    apexes = sorted(StateAttestationRecord.objects.values_list("apex", flat=True))
    assert apexes == [apex for apex, _ in attested[-ATTESTATIONS_KEPT:]]
    apex, state_hash = attested[-1]
    answer = attestation_json(apex, node)
    assert answer is not None and answer["state_hash"] == state_hash.hex()
    signature = base64.b64decode(str(answer["signature"]))
    pairs = [(node.public_key, signature)]
    assert attested_by_majority(settings, CID, apex, state_hash, pairs)[0] == 1
    assert attestation_json(1, node) is None  # dropped: older than the newest kept
    other = bytes(32)  # the same apex again (re-executed after a rising alpha): the new hash
    attestations_persist(keypair=node, constellation_id=CID, attested=[(apex, other)])
    again = attestation_json(apex, node)
    assert again is not None and again["state_hash"] == other.hex()


def test_a_node_signs_its_own_snapshot_s_state_hash_when_asked_at_its_apex() -> None:
    state_hash = joined()
    apex = snapshot_load().state.apex
    node = AUDITORS[2]
    answer = attestation_json(apex, node)
    assert answer is not None and answer["state_hash"] == state_hash.hex()
    digest = attestation_digest(CID, apex, state_hash)
    assert node.verify(digest, base64.b64decode(str(answer["signature"])))
    assert attestation_json(apex + 1, node) is None


def test_the_endpoints_answer_status_codes(client: Client, settings: object) -> None:
    settings.NODE_SECRET_SEED = AUDITORS[0].secret  # type: ignore[attr-defined]
    assert client.get("/api/constellation/snapshot").status_code == 404
    assert client.get("/api/constellation/quanta?after=x").status_code == 400
    assert client.get("/api/constellation/quanta?after=0&limit=0").status_code == 400
    assert client.get("/api/constellation/quanta?after=0&limit=501").status_code == 400
    empty = client.get("/api/constellation/quanta?after=0")
    assert empty.status_code == 200 and empty.content == b""
    assert client.get("/api/constellation/attestation?apex=-1").status_code == 400
    assert client.get("/api/constellation/attestation?apex=5").status_code == 404
    assert client.post("/api/constellation/snapshot").status_code == 405
    joined()
    answer = client.get("/api/constellation/snapshot")
    assert answer.status_code == 200 and answer["X-Attest-Every"]
    assert snapshot_decode(answer.content).state.apex == int(answer["X-Snapshot-Apex"])
