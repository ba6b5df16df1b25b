"""Alpha's pending vault rotations on its database (`payments.rotations`)."""

from __future__ import annotations

import dataclasses

import pytest

from payments.core.local_ledger import transaction_sign
from payments.core.rotation import VaultRotation
from payments.models import RotationRecord
from payments.rotations import rotation_record_delete, rotation_record_save, rotation_records_load
from quanta.core.testing import keypair

pytestmark = pytest.mark.django_db

OLD = [keypair(230), keypair(231), keypair(232)]


def test_a_rotation_row_round_trips_and_is_replaced_then_deleted() -> None:
    rotation = VaultRotation(
        7, "local-vault", b"rotation-bytes", tuple(k.public_key for k in OLD), 2, 99
    )
    other = dataclasses.replace(rotation, provider="stellar-main", transaction=b"other-bytes")
    first = transaction_sign(rotation.transaction, OLD[0])
    second = transaction_sign(rotation.transaction, OLD[2])
    rotation_record_save(rotation, [first])
    rotation_record_save(rotation, [first, second])  # a signature arrived: one row, replaced
    rotation_record_save(other, [])  # the same update's rotation of another vault: its own row
    assert RotationRecord.objects.count() == 2
    [(loaded, signatures), (loaded_other, none)] = rotation_records_load()
    assert (loaded, loaded_other, none) == (rotation, other, [])
    assert sorted(s.signer for s in signatures) == sorted([first.signer, second.signer])
    rotation_record_delete(7, "local-vault")
    assert rotation_records_load() == [(other, [])]
