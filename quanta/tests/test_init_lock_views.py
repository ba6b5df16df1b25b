"""Who may post the genesis: the web process's one-time token and genesis checks (H1).

Goal: on an uninitialized alpha, `/api/constellation/init` answers 401 without the one-time
token, 403 with a wrong one and 503 while the engine has set none (the operator's
CONSTELLATION_INIT_TOKEN counts before the engine ran); with the right token, the
H1 takeover (the real alpha key, made-up auditors signing) and settings naming another alpha
are refused 403 and a genesis without a majority 400, all by the web process (the engine
never hears of them); the token is taken from `X-Init-Token` or `Authorization: Bearer`, and
is gone once cleared (the engine clears it when initialized); an auditor's web process sends
the operator to alpha (450).
Method: Django's test client with no engine running (a request that reached the engine would
wait for it and time out, 504); the token is set as alpha's engine sets it, in the test
run's own Redis prefix.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client, RequestFactory

from quanta.core.testing import default_settings, keypair, settings_quantum
from quanta.core.xdr.codec import encode
from quanta.init_token import init_token_clear, init_token_set, presented_token

pytestmark = pytest.mark.django_db

NODES = [keypair(270), keypair(271), keypair(272)]
ATTACKERS = [keypair(275), keypair(276)]
TOKEN = "the-operator-s-token"


@pytest.fixture(autouse=True)
def alpha_node(settings: Any) -> Iterator[None]:
    """This web process is alpha's (NODES[0]), its engine set TOKEN."""
    settings.NODE_SECRET_SEED = NODES[0].secret
    settings.INIT_TOKEN = TOKEN
    init_token_set()
    yield
    init_token_clear()


def _init(envelope: bytes, **headers: str) -> Any:
    body = json.dumps({"envelope": base64.b64encode(envelope).decode()})
    return Client().post(
        "/api/constellation/init", body, content_type="application/json", headers=headers
    )


GOOD = encode(settings_quantum(default_settings(NODES), NODES).update)


def test_no_token_is_401_and_a_wrong_one_403() -> None:
    missing = _init(GOOD)
    assert missing.status_code == 401 and "token" in missing.json()["description"]
    wrong = _init(GOOD, **{"X-Init-Token": "guess"})
    assert wrong.status_code == 403 and wrong.json()["description"] == "wrong initialization token"


def test_no_token_set_yet_is_503(settings: Any) -> None:
    init_token_clear()
    settings.INIT_TOKEN = ""
    assert _init(GOOD, **{"X-Init-Token": TOKEN}).status_code == 503


def test_before_the_engine_ran_the_operator_s_token_is_checked_from_the_environment() -> None:
    init_token_clear()  # The web process came up first (the harness initializes at once).
    assert _init(GOOD, **{"X-Init-Token": "guess"}).status_code == 403
    takeover = settings_quantum(default_settings([NODES[0], *ATTACKERS]), ATTACKERS).update
    response = _init(encode(takeover), **{"X-Init-Token": TOKEN})
    assert response.status_code == 403 and "alpha" in response.json()["description"]


def test_the_h1_takeover_is_refused_by_the_web_process() -> None:
    takeover = settings_quantum(default_settings([NODES[0], *ATTACKERS]), ATTACKERS).update
    response = _init(encode(takeover), Authorization=f"Bearer {TOKEN}")
    assert response.status_code == 403
    assert "no valid signature of alpha" in response.json()["description"]


def test_settings_naming_another_alpha_are_refused_by_the_web_process() -> None:
    settings = dataclasses.replace(default_settings(NODES), alpha=NODES[1].public_key)
    response = _init(encode(settings_quantum(settings, NODES).update), **{"X-Init-Token": TOKEN})
    assert response.status_code == 403
    assert "as alpha" in response.json()["description"]


def test_a_genesis_without_a_majority_is_400() -> None:
    response = _init(
        encode(settings_quantum(default_settings(NODES), NODES[:1]).update),
        **{"X-Init-Token": TOKEN},
    )
    assert response.status_code == 400
    assert "2 required" in response.json()["description"]


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ({"X-Init-Token": " t1 "}, "t1"),
        ({"Authorization": "Bearer t2"}, "t2"),
        ({"Authorization": "bearer  t3"}, "t3"),
        ({"Authorization": "Basic t4"}, None),
        ({}, None),
    ],
)
def test_the_token_is_read_from_either_header(headers: dict[str, str], token: str | None) -> None:
    request = RequestFactory().post("/api/constellation/init", headers=headers)
    assert presented_token(request) == token


def test_an_auditor_s_web_process_sends_the_operator_to_alpha(settings: Any) -> None:
    settings.NODE_ROLE = "auditor"
    response = _init(GOOD, **{"X-Init-Token": TOKEN})
    assert response.status_code == 450
    assert "initialize through alpha" in response.json()["description"]
