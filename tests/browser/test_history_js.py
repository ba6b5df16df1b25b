"""static/js/history.js under Node: the order outcome and the history columns from effects.

Goal: the cases the browser test cannot reach cheaply are stated exactly: several fill prices
(range and average), a cancel of several orders, a withdrawal fee, the fallback of a payment
seen only in a reloaded history, and the counterparty memory's bound (the newest 500 apexes).
Method: one Node process imports the module and prints JSON; effects are written the way the
XDR decoder gives them (`_type`, amounts as BigInt).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.browser.test_xdr_js import NODE
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
    ioc = out["ioc"]
    assert ioc["kind"] == "partly-cancelled" and ioc["selfTrade"] is True
    assert ioc["text"].startswith(
        "Order partly filled: 2 of 3 XLM at 2.000–3.000 (avg 2.500) USD; the rest (1) was "
        "cancelled (immediate or cancel). Your resting order 900 (sell 1 XLM at 4.000) was "
        "cancelled: this order reached it (self-trade prevention)."
    )
    assert out["memory"] == {"count": 500, "oldest": None, "first": "account 101"}
