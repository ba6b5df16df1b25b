"""The demo faucet endpoint: absent outside demo mode, pays into the settings' vault in it.

Method: Django's test client against the real databases (node and ledger); the constellation
settings are stored as the engine stores them, and the ledger balance of the vault is read
back to prove the deposit happened.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.test.utils import override_settings

from exchange.models import AccountRecord
from payments.providers.local_ledger.ledger import ledger_balance
from quanta.core.testing import default_settings, keypair
from quanta.core.xdr.codec import encode
from quanta.models import SettingsRecord

pytestmark = pytest.mark.django_db(databases=["default", "ledger"])

TRADER = keypair(30).public_key_strkey


def _post(body: object) -> tuple[int, dict[str, object]]:
    response = Client().post("/api/faucet", json.dumps(body), content_type="application/json")
    return response.status_code, response.json() if response.content else {}


def _store_settings() -> None:
    settings = default_settings([keypair(i) for i in range(3)])
    SettingsRecord.objects.create(version=settings.version, apex=1, data=encode(settings))


@override_settings(DEMO_MODE=False)
def test_the_faucet_does_not_exist_outside_demo_mode() -> None:
    """Without CONSTELLATION_DEMO the endpoint answers 404 and pays nothing."""
    _store_settings()
    response = Client().post(
        "/api/faucet",
        json.dumps({"public_key": TRADER, "asset": "USD", "amount": "5"}),
        content_type="application/json",
    )
    assert response.status_code == 404
    assert ledger_balance("VAULT", "USD") == 0


@override_settings(DEMO_MODE=True)
def test_the_faucet_pays_into_the_vault_of_the_local_provider() -> None:
    """A valid request moves the exact amount into the settings' vault."""
    _store_settings()
    status, answer = _post({"public_key": TRADER, "asset": "USD", "amount": "12.5"})
    assert status == 200, answer
    assert answer["amount"] == 125_000_000
    assert ledger_balance("VAULT", "USD") == 125_000_000


@override_settings(DEMO_MODE=True)
def test_a_page_of_another_node_may_call_the_faucet() -> None:
    """A page that followed an alpha replacement calls the new alpha's faucet: the preflight
    of its JSON POST is answered, and so is the POST, for any origin (demo money only)."""
    _store_settings()
    preflight = Client().options("/api/faucet", HTTP_ORIGIN="http://127.0.0.1:1")
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert preflight["Access-Control-Allow-Headers"] == "Content-Type"
    assert ledger_balance("VAULT", "USD") == 0
    body = json.dumps({"public_key": TRADER, "asset": "USD", "amount": "12.5"})
    response = Client().post("/api/faucet", body, content_type="application/json")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"


@override_settings(DEMO_MODE=True)
@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"public_key": "GNOPE", "asset": "USD", "amount": "1"}, "invalid public key"),
        ({"public_key": TRADER, "asset": "USD", "amount": "0"}, "must be positive"),
        ({"public_key": TRADER, "asset": "USD", "amount": "0.00000001"}, "at most 7 decimals"),
        ({"public_key": TRADER, "asset": "USD", "amount": "abc"}, "not a number"),
        ({"public_key": TRADER, "asset": "DOGE", "amount": "1"}, "does not carry 'DOGE'"),
        ({"public_key": TRADER, "asset": "USD", "amount": "1e9"}, "at most"),
    ],
)
def test_the_faucet_explains_what_is_wrong(body: dict[str, str], fragment: str) -> None:
    """Bad keys, amounts and assets get a 400 with a sentence saying why."""
    _store_settings()
    status, answer = _post(body)
    assert status == 400
    assert fragment in str(answer["description"])
    assert ledger_balance("VAULT", "USD") == 0


@override_settings(DEMO_MODE=True)
def test_the_faucet_waits_for_initialization() -> None:
    """Before the constellation has settings there is no vault to pay into."""
    status, answer = _post({"public_key": TRADER, "asset": "USD", "amount": "1"})
    assert status == 409
    assert "not initialized" in str(answer["description"])


@override_settings(DEMO_MODE=True)
@pytest.mark.parametrize(
    ("asset", "amount"),
    [("XLM", "100"), ("USD", "0.5")],
)
def test_a_first_deposit_that_cannot_register_is_refused_up_front(asset: str, amount: str) -> None:
    """An unregistered key gets only the quote asset of at least the minimum balance: anything
    else would stay in the vault uncredited, so the faucet refuses it and pays nothing."""
    _store_settings()
    status, answer = _post({"public_key": TRADER, "asset": asset, "amount": amount})
    assert status == 400, answer
    description = str(answer["description"])
    assert "no account yet" in description and "at least 1 USD" in description, description
    assert ledger_balance("VAULT", asset) == 0


@override_settings(DEMO_MODE=True)
def test_a_registered_key_may_receive_any_asset() -> None:
    """Once the key has an account, the faucet pays other assets too."""
    _store_settings()
    AccountRecord.objects.create(id=1, public_key=keypair(30).public_key)
    status, answer = _post({"public_key": TRADER, "asset": "XLM", "amount": "0.5"})
    assert status == 200, answer
    assert ledger_balance("VAULT", "XLM") == 5_000_000


@override_settings(DEMO_MODE=True)
def test_other_assets_follow_a_registering_deposit_before_its_account_row_exists() -> None:
    """Account rows are snapshot rows: right after a registering USD deposit, XLM is paid."""
    _store_settings()
    assert _post({"public_key": TRADER, "asset": "USD", "amount": "1"})[0] == 200
    status, answer = _post({"public_key": TRADER, "asset": "XLM", "amount": "3"})
    assert status == 200, answer
    assert ledger_balance("VAULT", "XLM") == 30_000_000
