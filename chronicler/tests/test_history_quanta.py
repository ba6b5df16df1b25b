"""Goal: history items carry their quantum, so a client names the counterparty from proven
data after a reload; a maker's trade item keeps the taker private; a page's bytes stay bounded.

Method: a real engine (`Chain`) runs deposits, a payment and a trade; the real persistence
writes them to PostgreSQL; `history_page` serves them and the client's own checks
(`constellation_client.counterparty`) read them under the single node's key.
"""

from __future__ import annotations

from typing import Any

import pytest

from chronicler.selectors import history_page
from chronicler.tests.builders import NODE, UNIT, Chain
from chronicler.tests.test_consumers import persist
from constellation_client.counterparty import proven_counterparty
from constellation_client.verify import verify_history_item
from constellation_client.wire import Constellation
from exchange.core.orderbook import Side
from quanta.core.hashing import sha256
from quanta.core.keys import encode_public_key
from quanta.core.testing import keypair
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import (
    MESSAGE,
    Limits,
    QuantumInfoRequest,
    QuantumInfoResponse,
    QueryOrder,
    TradeEffect,
)
from quanta.node.persistence import settings_record_persist

pytestmark = pytest.mark.django_db(transaction=True)

ALICE, BOB = keypair(1), keypair(2)
U64_MAX = 2**64 - 1


@pytest.fixture
def chain() -> Chain:
    """Alice and bob funded, alice pays bob, bob rests a sell that alice's buy takes."""
    chain = Chain()
    settings_record_persist(apex=1, settings=chain.settings)
    chain.fund(ALICE, ("USD", 1000 * UNIT), ("XLM", 1000 * UNIT))
    chain.fund(BOB, ("USD", 1000 * UNIT), ("XLM", 1000 * UNIT))
    chain.pay(ALICE, BOB, 3 * UNIT)
    chain.order(BOB, Side.SELL, 10 * UNIT, 0.2)
    chain.order(ALICE, Side.BUY, 10 * UNIT, 0.2)
    persist(chain)
    return chain


def _page(who: Any, limit: int = 100, cursor: int = 0) -> QuantumInfoResponse:
    return history_page(QuantumInfoRequest(1, who.public_key, cursor, QueryOrder.ASC, limit))


def _trusted(chain: Chain) -> Constellation:
    return Constellation.from_keys([NODE.public_key], constellation_id=chain.constellation_id)


def test_items_carry_the_quantum_that_hashes_to_their_quantum_hash(chain: Chain) -> None:
    for item in _page(ALICE).items:
        assert item.quantum is not None
        assert sha256(item.quantum) == item.quantum_hash
        assert verify_history_item(item, _trusted(chain)).is_final


def test_the_payment_names_the_other_side_for_both_accounts(chain: Chain) -> None:
    trusted = _trusted(chain)
    named = {
        who: [proven_counterparty(i, trusted, who.public_key) for i in _page(who).items]
        for who in (ALICE, BOB)
    }
    alice_texts = [c.text for c in named[ALICE] if c is not None]
    bob_texts = [c.text for c in named[BOB] if c is not None]
    assert f"paid to {encode_public_key(BOB.public_key)}" in alice_texts
    assert f"paid by {encode_public_key(ALICE.public_key)}" in bob_texts
    assert any(text.startswith("deposit via provider ") for text in bob_texts)


def test_a_maker_s_trade_item_carries_no_quantum_the_taker_s_does(chain: Chain) -> None:
    def trade_items(who: Any) -> list[Any]:
        items = _page(who).items
        return [i for i in items if any(isinstance(e, TradeEffect) for e in i.effects.effects)]

    (maker,) = trade_items(BOB)
    (taker,) = trade_items(ALICE)
    assert maker.apex == taker.apex
    assert maker.quantum is None and verify_history_item(maker, _trusted(chain)).is_final
    assert taker.quantum is not None


def test_a_page_stops_at_its_byte_bound_and_continues_without_gaps(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    every = [item.apex for item in _page(ALICE).items]
    assert len(every) == 3  # deposit, payment, order
    # Room for about one and a half of alice's items: each page is cut, next_cursor
    # continues after it.
    size = len(encode(_page(ALICE, limit=1), MESSAGE))
    monkeypatch.setattr(Limits, "HISTORY_PAGE_BYTES_MAX", size + size // 2)
    walked: list[int] = []
    cursor: int | None = 0
    while cursor is not None:
        page = _page(ALICE, cursor=cursor)
        assert 1 <= len(page.items) < len(every)
        walked += [item.apex for item in page.items]
        cursor = page.next_cursor
    assert walked == every
    # Even a bound below one item sends that item (a page is never empty while there is more).
    monkeypatch.setattr(Limits, "HISTORY_PAGE_BYTES_MAX", 1)
    assert len(_page(ALICE).items) == 1
