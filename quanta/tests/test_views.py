"""The web process refuses what the engine would refuse, without asking the engine.

Goal: `/api/constellation/init` on an initialized node, an update signed by too few auditors
or with the wrong version, and bodies of other content types are answered by the web process
at once; `/api/constellation/nodes` serves one fetch of the other nodes to every caller for a
few seconds. Before, each of these reached the engine (an init made it cut a snapshot with a
full state hash; an update cost one signature check per listed signature, in the sequential
engine) and each `/nodes` call ran its own blocking fetches. Method: Django's test client
with no engine running: a request that reached the engine would wait for it and time out.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest
from django.test import Client

from constellation_site import views as site_views
from quanta.core.settings_update import update_envelope, update_sign
from quanta.core.signatures import constellation_id_of
from quanta.core.testing import default_settings, keypair, settings_quantum
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import ConstellationUpdate
from quanta.models import SettingsRecord
from quanta.node.persistence import settings_record_persist

pytestmark = pytest.mark.django_db

NODES = [keypair(260), keypair(261), keypair(262)]
SETTINGS = default_settings(NODES, addresses=["http://a.invalid", "", "http://c.invalid"])
CONSTELLATION_ID = constellation_id_of(SETTINGS)


@pytest.fixture
def initialized() -> None:
    settings_record_persist(apex=1, settings=SETTINGS)


def post(path: str, envelope: bytes) -> Any:
    body = json.dumps({"envelope": base64.b64encode(envelope).decode()})
    return Client().post(path, body, content_type="application/json")


def test_init_on_an_initialized_node_is_409_from_the_web_process(initialized: None) -> None:
    quantum = settings_quantum(dataclasses.replace(SETTINGS, version=1), NODES)
    response = post("/api/constellation/init", encode(quantum.update))
    assert response.status_code == 409
    assert response.json() == {
        "status": 409,
        "description": "the constellation is already initialized",
    }
    assert SettingsRecord.objects.count() == 1


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_bodies_a_foreign_page_could_post_are_refused(content_type: str) -> None:
    response = Client().post("/api/constellation/init", b"\x00" * 64, content_type=content_type)
    assert response.status_code == 400
    assert "application/json" in response.json()["description"]


def test_an_update_with_too_few_signatures_is_refused_before_the_engine(initialized: None) -> None:
    update = ConstellationUpdate(7, dataclasses.replace(SETTINGS, version=2))
    response = post(
        "/api/constellation/update",
        encode(update_envelope(update, [update_sign(update, NODES[1], CONSTELLATION_ID)])),
    )
    assert response.status_code == 401
    assert "2 required" in response.json()["description"]


def test_an_update_signed_for_another_constellation_is_refused_before_the_engine(
    initialized: None,
) -> None:
    # Every auditor signed it, but for a constellation whose genesis is other settings (their
    # version 1 with other addresses): none of these signatures counts here.
    other = constellation_id_of(default_settings(NODES))
    assert other != CONSTELLATION_ID
    update = ConstellationUpdate(7, dataclasses.replace(SETTINGS, version=2))
    signatures = [update_sign(update, key, other) for key in NODES]
    response = post("/api/constellation/update", encode(update_envelope(update, signatures)))
    assert response.status_code == 401
    assert response.json()["description"] == "update signed by 0 auditors, 2 required"


def test_an_update_of_the_wrong_version_is_refused_before_the_engine(initialized: None) -> None:
    update = ConstellationUpdate(7, dataclasses.replace(SETTINGS, version=5))
    signatures = [update_sign(update, key, CONSTELLATION_ID) for key in NODES]
    response = post("/api/constellation/update", encode(update_envelope(update, signatures)))
    assert response.status_code == 400
    assert "version" in response.json()["description"]


def test_a_malformed_update_is_400(initialized: None) -> None:
    response = post("/api/constellation/update", b"\x00\x01")
    assert response.status_code == 400


def test_the_node_list_is_fetched_once_per_interval(
    initialized: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetched: list[str] = []

    def node_state(address: str) -> dict[str, object]:
        fetched.append(address)
        return {"state": "Ready", "apex": 1}

    monkeypatch.setattr(site_views, "_node_state", node_state)
    site_views._nodes_cache.clear()
    answers = [Client().get("/api/constellation/nodes").json() for _ in range(5)]
    assert len(fetched) == len(SETTINGS.auditors)
    assert all(answer == answers[0] for answer in answers)
    assert [node["state"] for node in answers[0]["nodes"]] == ["Ready"] * 3
