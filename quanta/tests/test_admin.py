"""The admin: login required, read-only browsing, settings drafts and their signatures.

The node's rows are produced the real way: the engine executes an initialization and a
deposit, and the persistence services write the chain and a snapshot batch.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.http import HttpResponse
from django.test import Client

from quanta import settings_drafts
from quanta.core.engine import Engine
from quanta.core.keys import encode_public_key
from quanta.core.pending import PendingUpdates, quantum_row
from quanta.core.settings_json import settings_to_json
from quanta.core.settings_update import update_sign
from quanta.core.signatures import constellation_id_of, update_bytes, update_digest
from quanta.core.state import ConstellationState
from quanta.core.testing import default_settings, deposit_quantum, keypair, settings_quantum
from quanta.core.xdr.schema import ConstellationSettings, ConstellationUpdate, MessageType
from quanta.models import QuantumRecord, SettingsDraft, SettingsRecord, UnfinalSettingsRecord
from quanta.node.persistence import (
    batch_persist,
    quanta_persist,
    settings_record_persist,
    unfinal_settings_persist,
)

pytestmark = pytest.mark.django_db(databases=["default", "ledger"])

AUDITORS = [keypair(1), keypair(2), keypair(3)]
DEPOSITOR = keypair(7)
UNIT = 10_000_000

READ_ONLY_PAGES = [
    "quanta/quantumrecord",
    "quanta/effectsgrouprecord",
    "quanta/settingsrecord",
    "quanta/providercursorrecord",
    "quanta/feebalancerecord",
    "quanta/snapshotrecord",
    "quanta/unfinalsettingsrecord",
    "quanta/evidencerecord",
    "exchange/accountrecord",
    "exchange/balancerecord",
    "exchange/orderrecord",
    "payments/withdrawalrecord",
    "payments/ledgertransfer",
]


@pytest.fixture
def node() -> Iterator[ConstellationSettings]:
    """A node initialized with 3 auditors and one funded account, persisted."""
    settings = default_settings(AUDITORS)
    engine = Engine(ConstellationState())
    pending = PendingUpdates(5, 50_000)
    rows = []
    for body in (
        settings_quantum(settings, AUDITORS[:2]),
        deposit_quantum(1, [(DEPOSITOR, "USD", 100 * UNIT)]),
    ):
        executed = engine.execute(body, 1_700_000_000_000)
        pending.record(executed)
        rows.append(quantum_row(executed, 0, b"\x00" * 36))
    quanta_persist(rows=rows)
    batch_persist(batch=pending.cut(engine.state))
    yield settings


def draft_with(settings: ConstellationSettings, **changes: object) -> SettingsDraft:
    """Returns a stored draft of `settings` with `changes`."""
    document = settings_to_json(dataclasses.replace(settings, **changes))  # type: ignore[arg-type]
    return settings_drafts.draft_create(document=document)


def change_url(draft: SettingsDraft) -> str:
    return f"/admin/quanta/settingsdraft/{draft.pk}/change/"


def text_of(response: HttpResponse) -> str:
    """Returns a page's HTML with entities unescaped (quotes in JSON blocks)."""
    return html.unescape(response.content.decode())


def test_admin_pages_require_login(node: ConstellationSettings, client: Client) -> None:
    for page in [*READ_ONLY_PAGES, "quanta/settingsdraft"]:
        response = client.get(f"/admin/{page}/")
        assert response.status_code == 302, page
        assert response["Location"].startswith("/admin/login/"), page
    response = client.post("/admin/quanta/settingsdraft/add/", {"document": "{}"})
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert not SettingsDraft.objects.exists()


def test_browsing_is_read_only(node: ConstellationSettings, admin_client: Client) -> None:
    for page in READ_ONLY_PAGES:
        response = admin_client.get(f"/admin/{page}/")
        assert response.status_code == 200, page
        assert f'href="/admin/{page}/add/"' not in response.content.decode(), page
        assert admin_client.get(f"/admin/{page}/add/").status_code == 403, page
    change = "/admin/quanta/quantumrecord/1/change/"
    assert admin_client.post(change, {"apex": "5"}).status_code == 403
    assert admin_client.post("/admin/quanta/quantumrecord/1/delete/").status_code == 403
    assert QuantumRecord.objects.filter(apex=1).exists()


def test_decoded_views_show_keys_and_settings(
    node: ConstellationSettings, admin_client: Client
) -> None:
    quantum = admin_client.get("/admin/quanta/quantumrecord/1/change/").content.decode()
    assert "ConstellationQuantum" in quantum
    assert AUDITORS[0].public_key_strkey in quantum
    settings_page = text_of(admin_client.get("/admin/quanta/settingsrecord/1/change/"))
    assert "(first settings)" in settings_page and '"min_allowed_lot_size": 1000' in settings_page


def test_search_and_filters(node: ConstellationSettings, admin_client: Client) -> None:
    found = admin_client.get(
        "/admin/exchange/accountrecord/", {"q": DEPOSITOR.public_key_strkey}
    ).content.decode()
    assert DEPOSITOR.public_key_strkey in found
    missing = admin_client.get(
        "/admin/exchange/accountrecord/", {"q": keypair(8).public_key_strkey}
    ).content.decode()
    assert DEPOSITOR.public_key_strkey not in missing
    deposit = str(int(MessageType.DEPOSIT_QUANTUM))
    deposits = admin_client.get("/admin/quanta/quantumrecord/", {"kind": deposit}).context
    assert [record.apex for record in deposits["cl"].result_list] == [2]
    balances = admin_client.get("/admin/exchange/balancerecord/", {"asset": "USD"}).context
    assert [b.asset for b in balances["cl"].result_list] == ["USD"]


def test_draft_form_is_prefilled_and_shows_the_bytes_to_sign(
    node: ConstellationSettings, admin_client: Client
) -> None:
    form = admin_client.get("/admin/quanta/settingsdraft/add/")
    document = json.loads(form.context["form"].initial["document"])
    assert document["min_allowed_lot_size"] == 1_000
    document["min_allowed_lot_size"] = 5_000
    response = admin_client.post(
        "/admin/quanta/settingsdraft/add/", {"document": json.dumps(document)}
    )
    draft = SettingsDraft.objects.get()
    assert response.status_code == 302 and response["Location"] == change_url(draft)
    update = settings_drafts.draft_update(draft)
    assert update.settings.version == 2 and update.settings.min_allowed_lot_size == 5_000
    page = text_of(admin_client.get(change_url(draft)))
    assert update_digest(constellation_id_of(node), update).hex() in page
    assert base64.b64encode(update_bytes(update)).decode() in page
    assert "0 of 3 auditors signed, 2 needed" in page


def test_draft_that_breaks_the_rules_is_refused(
    node: ConstellationSettings, admin_client: Client
) -> None:
    document = json.loads(settings_drafts.draft_document_initial())
    document["assets"] = [a for a in document["assets"] if a["code"] != "BTC"]
    for provider in document["providers"]:
        provider["assets"] = [a for a in provider["assets"] if a["asset"] != "BTC"]
    response = admin_client.post(
        "/admin/quanta/settingsdraft/add/", {"document": json.dumps(document)}
    )
    assert response.status_code == 200
    assert "assets cannot be removed" in response.content.decode()
    broken = admin_client.post("/admin/quanta/settingsdraft/add/", {"document": "{not json"})
    assert "not valid JSON" in broken.content.decode()
    assert not SettingsDraft.objects.exists()


def test_bad_signatures_are_refused(node: ConstellationSettings, admin_client: Client) -> None:
    draft = draft_with(node, min_allowed_lot_size=5_000)
    stranger = update_sign(
        settings_drafts.draft_update(draft), keypair(9), constellation_id_of(node)
    )
    other_update = ConstellationUpdate(1, dataclasses.replace(node, version=2))
    wrong_bytes = update_sign(other_update, AUDITORS[1], constellation_id_of(node))
    cases = [
        (keypair(9).public_key_strkey, stranger.signature.hex(), "is not an auditor"),
        (AUDITORS[1].public_key_strkey, wrong_bytes.signature.hex(), "does not verify"),
        (AUDITORS[1].public_key_strkey, "abcd", "signature is 64 bytes"),
        ("GNOTAKEY", stranger.signature.hex(), "auditor public key"),
    ]
    for public_key, signature, error in cases:
        response = admin_client.post(
            change_url(draft),
            {"action": "sign", "public_key": public_key, "signature": signature},
            follow=True,
        )
        assert error in text_of(response), (error, text_of(response)[-3000:])
    draft.refresh_from_db()
    assert draft.signatures == {}


def test_submit_with_too_few_signatures_is_refused(
    node: ConstellationSettings, admin_client: Client
) -> None:
    draft = draft_with(node, min_allowed_lot_size=5_000)
    signature = update_sign(
        settings_drafts.draft_update(draft), AUDITORS[0], constellation_id_of(node)
    )
    admin_client.post(
        change_url(draft),
        {
            "action": "sign",
            "public_key": AUDITORS[0].public_key_strkey,
            "signature": base64.b64encode(signature.signature).decode(),
        },
    )
    response = admin_client.post(change_url(draft), {"action": "submit"}, follow=True)
    assert "2 of 3 signatures needed, 1 present" in response.content.decode()
    draft.refresh_from_db()
    # Nothing reached the engine: no answer recorded, no new quantum, settings unchanged.
    assert draft.status == SettingsDraft.Status.DRAFT and draft.engine_answer == ""
    assert list(draft.signatures) == [AUDITORS[0].public_key_strkey]
    assert QuantumRecord.objects.count() == 2
    assert SettingsRecord.objects.count() == 1


def test_a_stale_draft_is_refused(node: ConstellationSettings) -> None:
    draft = draft_with(node, min_allowed_lot_size=5_000)
    for auditor in AUDITORS[:2]:
        signature = update_sign(
            settings_drafts.draft_update(draft), auditor, constellation_id_of(node)
        )
        settings_drafts.draft_add_signature(draft_id=draft.pk, signature=signature)
    settings_record_persist(apex=3, settings=dataclasses.replace(node, version=2))
    with pytest.raises(settings_drafts.DraftError, match="v2 are in force"):
        settings_drafts.draft_submit(draft_id=draft.pk)


def test_signatures_through_the_command(node: ConstellationSettings, admin_client: Client) -> None:
    draft = draft_with(node, min_allowed_lot_size=5_000)
    out = io.StringIO()
    call_command(
        "sign_settings_update", draft=draft.pk, secret=AUDITORS[1].secret, add=True, stdout=out
    )
    assert f"signature of {AUDITORS[1].public_key_strkey} added" in out.getvalue()
    offline = io.StringIO()
    message = settings_drafts.draft_message_base64(draft)
    call_command("sign_settings_update", message=message, secret=AUDITORS[2].secret, stdout=offline)
    line = offline.getvalue().strip().splitlines()[-1]
    assert line.startswith(AUDITORS[2].public_key_strkey + ":")
    admin_client.post(change_url(draft), {"action": "sign", "signature": line})
    draft.refresh_from_db()
    signed = {encode_public_key(a.public_key) for a in AUDITORS[1:]}
    assert set(draft.signatures) == signed
    assert settings_drafts.draft_signature_count(draft) == (2, 2, 3)


def test_the_command_refuses_a_stranger(node: ConstellationSettings) -> None:
    draft = draft_with(node, min_allowed_lot_size=5_000)
    with pytest.raises(CommandError, match="is not an auditor"):
        call_command(
            "sign_settings_update",
            draft=draft.pk,
            secret=keypair(9).secret,
            add=True,
            stdout=io.StringIO(),
        )


def test_unfinal_settings_are_shown_decoded(
    node: ConstellationSettings, admin_client: Client
) -> None:
    newer = dataclasses.replace(node, version=2)
    unfinal_settings_persist(settings=newer)
    listing = text_of(admin_client.get("/admin/quanta/unfinalsettingsrecord/"))
    assert "unfinal settings" in listing.lower() and "3" in listing  # three auditors
    record = UnfinalSettingsRecord.objects.get()
    page = text_of(admin_client.get(f"/admin/quanta/unfinalsettingsrecord/{record.pk}/change/"))
    assert '"settings_version": 2' in page
