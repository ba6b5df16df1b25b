"""`settings_update_at`: what a restarted alpha reads to recover a settings update's vault
rotations (`AlphaWorker._rotations_recover`)."""

from __future__ import annotations

import dataclasses

import pytest

from quanta.core.testing import default_settings, keypair, settings_quantum
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import PayloadProof, Quantum
from quanta.models import QuantumRecord, SettingsRecord
from quanta.selectors import settings_update_at

pytestmark = pytest.mark.django_db

NODES = [keypair(240), keypair(241), keypair(242)]


def _settings_record(version: int, apex: int) -> None:
    settings = dataclasses.replace(default_settings(NODES), version=version)
    SettingsRecord.objects.create(version=version, apex=apex, data=encode(settings))


def test_it_tells_not_yet_persisted_from_not_held() -> None:
    assert settings_update_at(2) is None  # v2 not persisted yet: alpha looks again
    _settings_record(1, 1)
    _settings_record(2, 7)
    prev, signed = settings_update_at(2) or (None, "missing")
    assert prev is not None and prev.version == 1
    assert signed is None  # no quantum at apex 7 here (a node joined from a snapshot above it)
    body = settings_quantum(default_settings(NODES), NODES)
    quantum = Quantum(7, b"\0" * 32, b"\1" * 32, 5_000, body)
    QuantumRecord.objects.create(
        apex=7,
        quantum_hash=b"\2" * 32,
        payload_hash=b"\3" * 32,
        timestamp_ms=5_000,
        kind=0,
        data=encode(quantum),
        signatures=encode(PayloadProof(b"\3" * 32, ())),
    )
    found = settings_update_at(2)
    assert found is not None and found[1] is not None and found[1].quantum == quantum
    genesis = settings_update_at(1)
    assert genesis is not None and genesis[0] is None  # nothing before the genesis
