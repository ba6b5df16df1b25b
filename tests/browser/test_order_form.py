"""The page's order form and history (issue 19): order types, outcomes in a trader's words,
cancel-all per market, self-trade prevention and the history's counterparties, in headless
Chromium at desktop width and at a 390 px phone width, against a real 3-node constellation.

Goal: each time in force (good till cancelled, immediate or cancel, fill or kill, post only)
has its one-line explanation; a post-only order that would cross is refused with the
engine's sentence next to the form; once final, the page states what an order did (filled,
partly filled with the rest resting or cancelled, nothing filled, killed) from the proven
effects it folds; "cancel all" cancels a market's orders in one request; an order reaching
the trader's own resting order cancels it and says so; history rows carry amount, price,
time and the counterparty (the book, the other account, the provider), still after a reload
with nothing remembered in the browser (read from each item's checked quantum), and the fills
list is rebuilt from the history after a reload.
Method: the fixtures and the Trader helper of test_trading.py (Playwright's auto-waiting
`expect`, bounded timeouts, no sleeps); screenshots go to artifacts/orders-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.browser.test_trading import (  # noqa: F401 (module fixtures)
    ARTIFACTS,
    PHONE,
    Trader,
    browser,
    constellation,
    expect,
    funded_traders,
    pinned_url,
)
from tools.cluster import Cluster

pytestmark = [pytest.mark.browser, pytest.mark.cluster]


@pytest.fixture(scope="module")
def pair(browser: object, constellation: Cluster) -> Iterator[tuple[Trader, Trader]]:  # noqa: F811
    """A funded seller (USD, XLM) at desktop width and a funded buyer (USD) on a phone."""
    yield from funded_traders(browser, constellation, PHONE)


GTC, IOC, FOK, POST_ONLY = "0", "1", "2", "3"


FORGET_COUNTERPARTIES = """Object.keys(localStorage)
  .filter((key) => key.startsWith("constellation.counterparties."))
  .forEach((key) => localStorage.removeItem(key))"""


def _short(key: str) -> str:
    """Returns a key as the history's counterparty column shortens it."""
    return f"{key[:6]}…{key[-4:]}"


def _no_sideways_scroll(trader: Trader) -> None:
    width = trader.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide at {PHONE['width']} px"


def panel_shot(trader: Trader, selector: str, name: str) -> None:
    """Writes a screenshot of one panel to artifacts/ (a full phone page is too tall to read)."""
    ARTIFACTS.mkdir(exist_ok=True)
    trader.page.locator(selector).screenshot(path=str(ARTIFACTS / f"{name}.png"))


def outcome(trader: Trader, kind: str, text: str) -> None:
    """Waits for the final outcome of the last order, stated next to the form."""
    message = trader.page.locator(f"#trade-panel .panel-messages .message[data-outcome={kind}]")
    expect(message).to_contain_text(text)
    expect(message).to_contain_text(re.compile(r"Final \(apex \d+\): [2-3] of 3 \(2 needed\)"))
    expect(trader.page.locator("#order-submit")).to_be_enabled()


def test_each_time_in_force_has_its_explanation(pair: tuple[Trader, Trader]) -> None:
    seller, buyer = pair
    help_lines = {
        GTC: "Good till cancelled: fills what it can now; the rest rests on the book",
        IOC: "Immediate or cancel: fills what it can now; the rest is cancelled at once",
        FOK: "Fill or kill: fills the whole amount now or nothing at all",
        POST_ONLY: "Post only: rests on the book as a maker; refused if it would trade at once",
    }
    for trader in (seller, buyer):
        page = trader.page
        expect(page.locator("#order-tif option")).to_have_count(4)
        expect(page.locator("#self-trade-note")).to_contain_text(
            "if this order reaches one of your own resting orders, that resting order is cancelled"
        )
        for value, line in help_lines.items():
            page.select_option("#order-tif", value)
            expect(page.locator("#order-tif-help")).to_contain_text(line)
    buyer.page.locator("#trade-panel").scroll_into_view_if_needed()
    _no_sideways_scroll(buyer)
    buyer.screenshot("orders-phone-form")
    panel_shot(buyer, "#trade-panel", "orders-phone-form-panel")
    seller.screenshot("orders-desktop-form")


def test_post_only_rests_or_is_refused_with_the_engine_s_words(
    pair: tuple[Trader, Trader],
) -> None:
    seller, buyer = pair
    seller.order("sell", "2", "2", POST_ONLY)
    outcome(seller, "resting", "Nothing filled yet: the post-only order rests on the book")
    expect(buyer.page.locator("#asks tbody")).to_contain_text("2.000")
    buyer.order("buy", "1", "2.5", POST_ONLY)
    expect(buyer.page.locator("#order-preview")).to_contain_text(
        "post only: the best ask is 2.000, so this order would trade at once and be refused"
    )
    refusal = buyer.page.locator("#trade-panel .panel-messages .message.error")
    expect(refusal).to_contain_text(
        "Your order was refused: post-only order would trade at once: refused, nothing placed"
    )
    expect(refusal).to_be_in_viewport()
    expect(buyer.page.locator("#orders tbody")).to_contain_text("No open orders.")
    _no_sideways_scroll(buyer)
    buyer.screenshot("orders-phone-post-only-refused")
    panel_shot(buyer, "#trade-panel", "orders-phone-post-only-refused-panel")


def test_outcomes_after_finality_in_a_trader_s_words(pair: tuple[Trader, Trader]) -> None:
    """The ask of 2 XLM at 2 from the post-only test is on the book."""
    seller, buyer = pair
    buyer.order("buy", "5", "2", IOC)
    outcome(
        buyer,
        "partly-cancelled",
        "Order partly filled: 2 of 5 XLM at 2.000 USD; the rest (3) was cancelled",
    )
    buyer.screenshot("orders-phone-ioc-partly-filled")
    panel_shot(buyer, "#trade-panel", "orders-phone-ioc-partly-filled-panel")
    buyer.order("buy", "1", "1", IOC)
    outcome(buyer, "nothing-filled", "Nothing filled: no order on the book matched your price")
    buyer.order("buy", "1", "2", FOK)
    outcome(buyer, "killed", "Killed: the fill-or-kill order could not fill all 1 XLM at once")
    buyer.screenshot("orders-phone-fok-killed")
    panel_shot(buyer, "#trade-panel", "orders-phone-fok-killed-panel")

    seller.order("sell", "1", "3")
    outcome(seller, "resting", "Nothing filled yet: the order rests on the book")
    buyer.order("buy", "1", "3", FOK)
    outcome(buyer, "filled", "Order filled: 1 of 1 XLM at 3.000 USD.")

    seller.order("sell", "1", "3")
    outcome(seller, "resting", "rests on the book")
    buyer.order("buy", "2", "3")
    outcome(buyer, "partly-resting", "Order partly filled: 1 of 2 XLM at 3.000 USD; the rest (1)")
    expect(buyer.page.locator("#orders tbody tr", has_text="1 XLM")).to_have_count(1)
    buyer.screenshot("orders-phone-partly-resting")
    panel_shot(buyer, "#balances-panel", "orders-phone-partly-resting-panel")
    cancel_all = buyer.page.locator("#cancel-all button", has_text="Cancel all XLM orders (1)")
    cancel_all.click()
    expect(buyer.page.locator("#orders tbody")).to_contain_text("No open orders.")
    expect(buyer.page.locator("#balances-panel .panel-messages")).to_contain_text(
        "Cancelled 1 XLM/USD order"
    )
    assert seller.errors == [] and buyer.errors == []


def test_self_trade_prevention_and_cancel_all(pair: tuple[Trader, Trader]) -> None:
    seller, _ = pair
    page = seller.page
    seller.order("sell", "1", "4")
    outcome(seller, "resting", "rests on the book")
    seller.order("buy", "1", "4")
    outcome(seller, "resting", "Nothing filled yet: the order rests on the book")
    message = page.locator("#trade-panel .panel-messages .message[data-self-trade='1']")
    expect(message).to_contain_text(
        re.compile(
            r"Your resting order \d+ \(sell 1 XLM at 4\.000\) was cancelled: this order reached "
            r"it \(self-trade prevention\)"
        )
    )
    expect(page.locator("#orders tbody tr", has_text="sell")).to_have_count(0)
    seller.screenshot("orders-desktop-self-trade")

    seller.order("sell", "1", "9")
    outcome(seller, "resting", "rests on the book")
    seller.order("sell", "2", "10")
    outcome(seller, "resting", "rests on the book")
    cancel_all = page.locator("#cancel-all button", has_text="Cancel all XLM orders (3)")
    expect(cancel_all).to_have_count(1)
    seller.screenshot("orders-desktop-cancel-all")
    cancel_all.click()
    expect(page.locator("#orders tbody")).to_contain_text("No open orders.")
    expect(page.locator("#balances-panel .panel-messages")).to_contain_text(
        "Cancelled 3 XLM/USD orders"
    )
    expect(page.locator("#cancel-all button")).to_have_count(0)
    # Two rows: the self-trade cancellation and the cancel-all.
    assert seller.finalized_signatures("left the book", count=2) >= 2


def history_cells(trader: Trader, label: str) -> list[str]:
    """Returns the cells of the newest history row whose text has `label`, once final."""
    row = trader.page.locator("#history tbody tr", has_text=label).first
    expect(row).to_contain_text("finalized")
    return row.locator("td").all_inner_texts()


def test_history_rows_name_amount_price_time_and_counterparty(
    pair: tuple[Trader, Trader],
) -> None:
    seller, buyer = pair
    buyer_key = buyer.page.locator("#public-key").inner_text()
    buyer_id = buyer.page.locator("#account-id").inner_text()
    seller_id = seller.page.locator("#account-id").inner_text()
    seller.page.fill("#pay-destination", buyer_key)
    seller.page.select_option("#pay-asset", "USD")
    seller.page.fill("#pay-amount", "3")
    seller.page.click("#pay-form button[type=submit]")
    paid = f"to account {buyer_id} ({buyer_key[:6]}…{buyer_key[-4:]})"
    cells = history_cells(seller, "sent 3 USD")
    assert cells[3:6] == ["−3 USD", "—", paid], cells
    assert re.search(r"\d", cells[1]), cells  # the time
    received = history_cells(buyer, "received 3 USD")
    assert received[3:6] == ["+3 USD", "—", f"from account {seller_id}"], received

    trade = history_cells(buyer, "bought 2 XLM")
    assert trade[3:6] == ["+2 XLM, −4 USD", "2.000 USD", "the book"], trade
    funded = history_cells(seller, "received 50 XLM")
    assert "deposit" in funded[5], funded

    buyer.page.select_option("#withdraw-asset", "USD")
    buyer.page.fill("#withdraw-amount", "1")
    buyer.page.fill("#withdraw-destination", seller.page.locator("#public-key").inner_text())
    buyer.page.click("#withdraw-form button[type=submit]")
    withdrawal = history_cells(buyer, "withdrawal of 1 USD")
    assert withdrawal[3] == "1 USD" and withdrawal[5].startswith("provider "), withdrawal
    buyer.page.locator("#history-panel").scroll_into_view_if_needed()
    _no_sideways_scroll(buyer)
    buyer.screenshot("orders-phone-history")
    panel_shot(buyer, "#history-panel", "orders-phone-history-panel")

    # A reload with nothing remembered (as on another browser holding only the secret): the
    # counterparties come from each item's quantum, checked against its signed hash.
    seller_key = seller.page.locator("#public-key").inner_text()
    for trader in (seller, buyer):
        trader.page.evaluate(FORGET_COUNTERPARTIES)
        trader.page.reload()
        expect(trader.page.locator("body")).to_have_attribute("data-ready", "1")
    again = history_cells(seller, "sent 3 USD")
    assert again[3:6] == ["−3 USD", "—", f"paid to {_short(buyer_key)}"], again
    from_seller = history_cells(buyer, "received 3 USD")
    assert from_seller[3:6] == ["+3 USD", "—", f"paid by {_short(seller_key)}"], from_seller
    sold = history_cells(seller, "sold 1 XLM")
    assert sold[3:6] == ["−1 XLM, +3 USD", "3.000 USD", "the book"], sold
    # The fills come from the history's effects, so they are listed again after the reload.
    expect(seller.page.locator("#fills")).to_contain_text("Sold 1 XLM at 3.000 USD")
    expect(seller.page.locator("#fills-empty")).to_be_hidden()
    seller.screenshot("orders-desktop-history")
    assert seller.errors == [] and buyer.errors == []
