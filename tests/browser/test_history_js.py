"""static/js/history.js under Node: the order outcome and the history columns from effects.

Goal: the cases the browser test cannot reach cheaply are stated exactly: several fill prices
(range and average), a cancel of several orders, a withdrawal fee, the fallback of a payment
seen only in a reloaded history, and the counterparty memory's bound (the newest 500 apexes);
the counterparty a history item's quantum proves (checked against the signed quantum hash,
a tampered one refused) comes before what a live result showed or the memory kept.
Method: one Node process imports the module and prints JSON; effects are written the way the
XDR decoder gives them (`_type`, amounts as BigInt).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path
from typing import Any

from constellation_client.tests import test_counterparty as counterparty_cases
from constellation_client.tests.test_counterparty import ALICE, BOB, CAROL
from quanta.core.keys import encode_public_key
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import (
    DepositItem,
    DepositQuantum,
    PaymentRequest,
    PaymentResult,
    RequestQuantum,
    WithdrawalQuantum,
    WithdrawalRequest,
)
from tests.browser.test_xdr_js import NODE, run_js
from tests.browser.test_xdr_js import pytestmark as node_needed

pytestmark = node_needed

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import { CounterpartyMemory, historyColumns, orderOutcome } from "./static/js/history.js";
const u = (whole) => BigInt(Math.round(whole * 1e7));
const trade = (price, amount, isNew = true) => ({
  _type: "TradeEffect", order_id: 5000n, asset: "XLM", side: 2, price: u(price),
  asset_amount: u(amount), quote_amount: u(price * amount), is_new_order: isNew,
});
const removed = (id) => ({ _type: "OrderRemovedEffect", order_id: id, asset: "XLM", side: 1,
  price: u(4), amount: u(1), quote_amount: u(4) });
const context = { quote: "USD", depositProvider: () => null };
const group = (...effects) => ({ effects });
const out = {};
out.twoPrices = historyColumns(group(trade(2, 1), trade(3, 1)), context);
out.cancelAll = historyColumns(group(removed(1000n), removed(2000n)), context);
const withdrawal = { _type: "WithdrawalCreateEffect", withdrawal_id: 1n, provider: "stellar-main",
  asset: "USD", amount: u(5), fee: u(0.5), destination: "GDEST" };
out.fee = historyColumns(group(withdrawal), context);
const sent = group({ _type: "BalanceUpdateEffect", asset: "USD", sign: 1, amount: u(3) });
out.sentReloaded = historyColumns(sent, context);
out.sentRemembered = historyColumns(sent, { ...context, remembered: "to account 7" });
const proven = { text: "paid to GBOB" };
out.sentProven = historyColumns(sent, { ...context, remembered: "to account 7", proven });
const order = { amount: u(3), timeInForce: 1, asset: "XLM" };
out.ioc = orderOutcome(group(trade(2, 1), trade(3, 1), removed(900n)), order, "USD");
const storage = new Map();
const memory = new CounterpartyMemory({ getItem: (k) => storage.get(k) ?? null,
  setItem: (k, v) => storage.set(k, v) }, "scope");
for (let apex = 1; apex <= 600; apex += 1) memory.set(BigInt(apex), `account ${apex}`);
const kept = Object.keys(JSON.parse(storage.get("constellation.counterparties.scope")));
out.memory = { count: kept.length, oldest: memory.get(100n), first: memory.get(101n) };
console.log(JSON.stringify(out));
"""


def test_history_columns_outcomes_and_the_memory_bound() -> None:
    assert NODE is not None
    completed = subprocess.run(
        [NODE, "--input-type=module", "-e", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = json.loads(completed.stdout)
    assert out["twoPrices"] == {
        "amount": "+2 XLM, −5 USD",
        "price": "2.000–3.000 (avg 2.500) USD",
        "counterparty": "the book",
    }
    assert out["cancelAll"]["amount"] == "2 orders"
    assert out["fee"] == {
        "amount": "5 USD (+ fee 0.5)",
        "price": "—",
        "counterparty": "provider stellar-main → GDEST",
    }
    assert out["sentReloaded"]["counterparty"] == "another account (a payment)"
    assert out["sentRemembered"]["counterparty"] == "to account 7"
    assert out["sentProven"]["counterparty"] == "paid to GBOB"
    ioc = out["ioc"]
    assert ioc["kind"] == "partly-cancelled" and ioc["selfTrade"] is True
    assert ioc["text"].startswith(
        "Order partly filled: 2 of 3 XLM at 2.000–3.000 (avg 2.500) USD; the rest (1) was "
        "cancelled (immediate or cancel). Your resting order 900 (sell 1 XLM at 4.000) was "
        "cancelled: this order reached it (self-trade prevention)."
    )
    assert out["memory"] == {"count": 500, "oldest": None, "first": "account 101"}


# --- the counterparty from the item's quantum (verify.js checkHistoryItem + provenCounterparty)


def _short(raw: bytes) -> str:
    key = encode_public_key(raw)
    return f"{key[:6]}…{key[-4:]}"


def test_the_page_names_the_counterparty_from_the_checked_quantum_only() -> None:
    """The same items as the Python client's test (constellation_client/tests/
    test_counterparty.py): a payment names the payee to the payer and the payer to the
    payee, a deposit its provider and the account's own transaction, a withdrawal its
    provider and destination; a tampered quantum (another payee, a flipped byte) makes the
    item unverified and names nobody."""
    payment = counterparty_cases._payment()
    mine = DepositItem(PaymentResult.SUCCESS, bytes.fromhex("ab" * 32), "XLM", 5, BOB.public_key)
    theirs = DepositItem(
        PaymentResult.SUCCESS, bytes.fromhex("cd" * 32), "XLM", 7, CAROL.public_key
    )
    deposit = counterparty_cases._item(DepositQuantum("stellar-main", "c9", (mine, theirs), ()))
    request = WithdrawalRequest(1, ALICE.public_key, 6, "stellar-main", "XLM", 9, "GEXTERNAL", 0)
    envelope = counterparty_cases._envelope(request)
    withdrawal = counterparty_cases._item(WithdrawalQuantum(envelope, b"the transaction"))
    forged = PaymentRequest(1, ALICE.public_key, 5, "USD", 10_000_000, CAROL.public_key)
    forged_quantum = counterparty_cases._item(
        RequestQuantum(counterparty_cases._envelope(forged))
    ).quantum
    flipped = bytearray(payment.quantum or b"")
    flipped[-1] ^= 1
    items = [
        payment,
        deposit,
        withdrawal,
        dataclasses.replace(payment, quantum=forged_quantum),
        dataclasses.replace(payment, quantum=bytes(flipped)),
        dataclasses.replace(payment, quantum=None),
    ]
    trusted = counterparty_cases.TRUSTED
    constellation = {
        "auditorKeys": [{"$hex": key.hex()} for key in trusted.auditor_keys],
        "alphaIndex": trusted.alpha_index,
        "constellationId": {"$hex": trusted.constellation_id.hex()},
    }

    def named(own: bytes) -> list[Any]:
        args = {
            "constellation": constellation,
            "items": [encode(item).hex() for item in items],
            "ownKey": own.hex(),
        }
        return list(run_js("counterparties", args))

    by_alice, by_bob = named(ALICE.public_key), named(BOB.public_key)
    assert [a["isFinal"] for a in by_alice] == [True, True, True, False, False, True]
    assert by_alice[0]["counterparty"] == {
        "kind": "payment sent",
        "text": f"paid to {_short(BOB.public_key)}",
        "account": encode_public_key(BOB.public_key),
    }
    assert by_bob[0]["counterparty"]["text"] == f"paid by {_short(ALICE.public_key)}"
    assert by_bob[1]["counterparty"] == {
        "kind": "deposit",
        "text": f"deposit via provider stellar-main (transaction {'ab' * 8}…)",
        "provider": "stellar-main",
        "external": "ab" * 32,
    }
    assert (
        by_alice[2]["counterparty"]["text"] == "withdrawal via provider stellar-main to GEXTERNAL"
    )
    assert [a["counterparty"] for a in by_alice[3:]] == [None, None, None]
    assert [a["validCount"] for a in by_alice[3:5]] == [0, 0]
