"""Alpha's pending vault rotations on its database (`payments.rotations`)."""

from __future__ import annotations

import pytest

from payments.core.rotation import VaultRotation, rotation_sign
from payments.models import RotationRecord
from payments.rotations import rotation_record_delete, rotation_record_save, rotation_records_load
from quanta.core.testing import keypair

pytestmark = pytest.mark.django_db

OLD = [keypair(230), keypair(231), keypair(232)]


def test_a_rotation_row_round_trips_and_is_replaced_then_deleted() -> None:
    rotation = VaultRotation(
        7, "local-vault", b"rotation-bytes", tuple(k.public_key for k in OLD), 2, 99
    )
    first = rotation_sign(rotation, OLD[0])
    second = rotation_sign(rotation, OLD[2])
    assert first is not None and second is not None
    rotation_record_save(rotation, [first])
    rotation_record_save(rotation, [first, second])  # a signature arrived: one row, replaced
    assert RotationRecord.objects.count() == 1
    [(loaded, signatures)] = rotation_records_load()
    assert loaded == rotation
    assert sorted(s.signer for s in signatures) == sorted([first.signer, second.signer])
    rotation_record_delete(7)
    assert rotation_records_load() == []
