"""Evidence records survive the database and still prove what they say.

Goal: `evidence_persist` keeps every byte of an evidence item (both signed payloads), so the
admin's rebuilt item re-verifies; the info endpoint counts the records; the admin shows them
read-only, re-verifying each record under the node's constellation id. Method: items from the
real cores (a forged auditor signature at alpha, two alpha-signed quanta seen while Rising),
written through the node's persistence.
"""

from __future__ import annotations

import pytest
from django.test import Client

from quanta.admin import evidence_item
from quanta.core.evidence import EvidenceItem, evidence_holds
from quanta.core.rising import Rising, RisingFailed
from quanta.core.signatures import constellation_id_of
from quanta.core.testing import default_settings
from quanta.models import EvidenceRecord
from quanta.node.persistence import evidence_persist, settings_record_persist
from quanta.tests.core import test_evidence as cores

pytestmark = pytest.mark.django_db(databases=["default", "ledger"])

GENESIS = default_settings(cores.NODES)
CONSTELLATION_ID = constellation_id_of(GENESIS)
"""The id of the constellation the cores' items come from."""


def _items() -> list[EvidenceItem]:
    alpha = cores._alpha()
    apex, payload = cores._pay(alpha)
    alpha.add_signature(apex, 2, cores._forged(payload), cores.CARRIER)
    honest, first, second = cores._two_quanta_at_one_apex()
    rising = Rising(honest.engine.state.require_config(), 1)
    rising.offer(1, (first,), True)
    with pytest.raises(RisingFailed):
        rising.offer(2, (second,), True)
    return [*alpha.take_evidence(), *rising.evidence]


def test_persisted_evidence_reverifies_from_its_record() -> None:
    items = _items()
    evidence_persist(items=items)
    records = list(EvidenceRecord.objects.order_by("id"))
    assert [r.kind for r in records] == ["invalid_signature", "alpha_equivocation"]
    for record, item in zip(records, items, strict=True):
        rebuilt = evidence_item(record)
        assert rebuilt == EvidenceItem(item.kind, item.signer, item.apex, item.first, item.second)
        assert evidence_holds(rebuilt, CONSTELLATION_ID)
    assert bytes(records[0].carrier) == cores.CARRIER


def test_info_counts_evidence_and_the_admin_shows_it_read_only(admin_client: Client) -> None:
    settings_record_persist(apex=1, settings=GENESIS)  # The admin checks under its id.
    assert Client().get("/api/constellation/info").json()["evidence_count"] == 0
    evidence_persist(items=_items())
    assert Client().get("/api/constellation/info").json()["evidence_count"] == 2
    record = EvidenceRecord.objects.order_by("id").first()
    assert record is not None
    page = admin_client.get(f"/admin/quanta/evidencerecord/{record.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "does not verify" in text and 'alt="True"' in text
    assert admin_client.post(f"/admin/quanta/evidencerecord/{record.pk}/delete/").status_code == 403
