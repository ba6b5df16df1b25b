"""Alpha's pending vault rotations on its database (`RotationRecord`): saved as they are
built and as each old signer's signature arrives, restored when alpha starts, deleted once
submitted, refused for good or expired (`payments.payouts.PayoutDesk`)."""

from __future__ import annotations

import os

from payments.core.rotation import VaultRotation
from payments.models import RotationRecord
from quanta.core.xdr.schema import TxSignature

KEY_BYTES = 32

TEST_DROP_ROTATION_ROWS_ENV = "CONSTELLATION_TEST_DROP_ROTATION_ROWS"
"""TEST-ONLY FAULT HOOK, inert unless this variable is set (never in production): the path of
a file; while that file exists, alpha writes no rotation row, as if it were killed between
executing a settings update and writing its rows (tests/cluster/test_vault_rotation_flow.py:
the restarted alpha recovers the rotation from the chain)."""

_test_drop_rows = os.environ.get(TEST_DROP_ROTATION_ROWS_ENV)


def _test_rows_dropped() -> bool:
    """Tells whether the test-only hook above drops rotation rows now (False unless set)."""
    return _test_drop_rows is not None and os.path.exists(_test_drop_rows)


class DatabaseRotationStore:
    """The `payments.payouts.RotationStore` alpha uses: its own database."""

    def save(self, rotation: VaultRotation, signatures: list[TxSignature]) -> None:
        if not _test_rows_dropped():
            rotation_record_save(rotation, signatures)

    def delete(self, apex: int, provider: str) -> None:
        rotation_record_delete(apex, provider)


def rotation_record_save(rotation: VaultRotation, signatures: list[TxSignature]) -> None:
    """Writes the rotation and the signatures collected so far (replacing its row)."""
    RotationRecord.objects.update_or_create(
        apex=rotation.apex,
        provider=rotation.provider,
        defaults={
            "transaction": rotation.transaction,
            "old_signers": b"".join(rotation.old_signers),
            "old_threshold": rotation.old_threshold,
            "expiry_ms": rotation.expiry_ms,
            "signatures": {s.signer.hex(): s.signature.hex() for s in signatures},
        },
    )


def rotation_record_delete(apex: int, provider: str) -> None:
    """Forgets the rotation of `provider` at quantum `apex` (applied, refused for good or
    expired)."""
    RotationRecord.objects.filter(apex=apex, provider=provider).delete()


def rotation_records_load() -> list[tuple[VaultRotation, list[TxSignature]]]:
    """Returns the pending rotations and their signatures, oldest first."""
    loaded = []
    for record in RotationRecord.objects.order_by("apex", "provider"):
        keys = bytes(record.old_signers)
        signers = tuple(keys[i : i + KEY_BYTES] for i in range(0, len(keys), KEY_BYTES))
        rotation = VaultRotation(
            int(record.apex),
            record.provider,
            bytes(record.transaction),
            signers,
            int(record.old_threshold),
            int(record.expiry_ms),
        )
        signatures = [
            TxSignature(bytes.fromhex(signer), bytes.fromhex(signature))
            for signer, signature in dict(record.signatures).items()
        ]
        loaded.append((rotation, signatures))
    return loaded
