"""Pure parts of the chronicler's selectors (no database)."""

from __future__ import annotations

from chronicler.selectors import EFFECTS_PROOF_BYTES
from chronicler.tests.builders import UNIT, Chain
from quanta.core.testing import keypair
from quanta.core.xdr.codec import decode
from quanta.core.xdr.schema import Quantum


def test_effects_proof_is_read_in_place_from_the_quantum_xdr() -> None:
    chain = Chain()
    chain.fund(keypair(1), ("USD", 10 * UNIT))
    chain.fund(keypair(2), ("USD", 10 * UNIT))
    chain.pay(keypair(1), keypair(2), UNIT)
    for row in chain.take_rows():
        assert row.data[EFFECTS_PROOF_BYTES] == decode(Quantum, row.data).effects_proof
