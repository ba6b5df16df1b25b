"""The trader's page states that issue 19 fixed, in headless Chromium, at desktop width and at
a 390 px phone width, against a real 3-node demo constellation.

Goal: each fixed state is shown and screenshotted (artifacts/trader-*.png): no sideways scroll
at 390 px; errors next to the form that caused them, closable, replacing each other; a
double click places one order; the faucet refuses a first deposit that cannot register; the
market panel has a ticker, a candle chart, cumulative depth with click-to-fill, the market
rules and a cost preview with "max"; finality states its threshold and warns when an
acknowledged quantum stays unfinal (both auditors' herald links frozen with SIGSTOP); a payee
is told the amount; disconnected is not shown as empty and the stale node table is marked.
Method: the fixtures and the Trader helper of test_trading.py (Playwright's auto-waiting
`expect`, bounded timeouts, no sleeps).
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from decimal import Decimal

import pytest

from tests.browser.test_trading import (  # noqa: F401 (module fixtures)
    PHONE,
    Trader,
    browser,
    constellation,
    expect,
    funded_traders,
    pinned_url,
)
from tools.cluster import Cluster, wait_for_http

pytestmark = [pytest.mark.browser, pytest.mark.cluster]


@pytest.fixture(scope="module")
def pair(browser: object, constellation: Cluster) -> Iterator[tuple[Trader, Trader]]:  # noqa: F811
    """A funded seller (USD, XLM) at desktop width and a funded buyer (USD) on a phone."""
    yield from funded_traders(browser, constellation, PHONE)


def _no_sideways_scroll(trader: Trader) -> None:
    width = trader.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide at {PHONE['width']} px"


def test_the_phone_width_has_no_sideways_scroll(pair: tuple[Trader, Trader]) -> None:
    _, buyer = pair
    expect(buyer.page.locator("#balances tbody tr", has_text="USD")).to_be_visible()
    _no_sideways_scroll(buyer)
    buyer.screenshot("trader-phone-overview")


def test_errors_stand_next_to_their_form_close_and_do_not_pile_up(
    pair: tuple[Trader, Trader],
) -> None:
    seller, buyer = pair
    for trader, name in ((buyer, "phone"), (seller, "desktop")):
        panel_errors = trader.page.locator("#trade-panel .panel-messages .message.error")
        trader.order("sell", "0", "2")
        expect(panel_errors).to_contain_text("the amount must be greater than zero")
        trader.order("sell", "abc", "2")
        expect(panel_errors).to_have_count(1)
        expect(panel_errors).to_contain_text('"abc" is not a number')
        expect(panel_errors).to_be_in_viewport()
        expect(trader.page.locator("#messages .message.error")).to_have_count(0)
        trader.screenshot(f"trader-{name}-error-beside-the-form")
        panel_errors.locator("button.close").click()
        expect(panel_errors).to_have_count(0)
    _no_sideways_scroll(buyer)


def test_a_double_click_places_one_order(pair: tuple[Trader, Trader]) -> None:
    seller, _ = pair
    page = seller.page
    page.select_option("#order-side", "1")
    page.select_option("#order-asset", "XLM")
    page.fill("#order-amount", "1.5")
    page.fill("#order-price", "9")
    page.dblclick("#order-submit")
    expect(page.locator("#trade-panel .panel-messages")).to_contain_text("rests on the book")
    # A marker order after it: requests execute in order, so a second copy of the double
    # click would be in the history before the marker is final.
    seller.order("sell", "1.25", "9")
    assert seller.finalized_signatures("rests: sell 1.25 XLM") >= 2
    expect(page.locator("#history tbody tr", has_text="rests: sell 1.5 XLM")).to_have_count(1)
    expect(page.locator("#orders tbody tr", has_text="1.5 XLM")).to_have_count(1)
    cancel = page.locator("#orders tbody button", has_text="Cancel")
    for remaining in (1, 0):
        cancel.first.click()
        expect(cancel).to_have_count(remaining, timeout=30_000)


def test_the_faucet_refuses_a_first_deposit_that_cannot_register(
    browser: object,  # noqa: F811
    constellation: Cluster,  # noqa: F811
) -> None:
    newcomer = Trader(browser, pinned_url(constellation), "newcomer", viewport=PHONE)
    newcomer.create_key()
    newcomer.page.select_option("#faucet-asset", "XLM")
    newcomer.page.fill("#faucet-amount", "100")
    newcomer.page.click("#faucet-button")
    refusal = newcomer.page.locator("#faucet .message.error")
    expect(refusal).to_contain_text("this key has no account yet")
    expect(refusal).to_contain_text("at least 1 USD")
    expect(newcomer.page.locator("#faucet-hint")).to_contain_text("at least 1 USD")
    expect(newcomer.page.locator("#balances tbody")).to_contain_text("No balances yet")
    _no_sideways_scroll(newcomer)
    newcomer.screenshot("trader-phone-faucet-refused")
    newcomer.page.fill("#withdraw-amount", "1")
    newcomer.page.fill("#withdraw-fee", "5")
    newcomer.page.fill("#withdraw-destination", "somewhere")
    newcomer.page.click("#withdraw-form button[type=submit]")
    fee = newcomer.page.locator("#withdraw-panel .message.error")
    expect(fee).to_contain_text("the fee (5) is larger than the amount (1)")
    newcomer.context.close()


def test_the_market_panel_ticker_chart_depth_rules_and_preview(
    pair: tuple[Trader, Trader],
) -> None:
    seller, buyer = pair
    page = seller.page
    expect(page.locator("#market option", has_text="XLM/USD")).to_have_count(1)
    expect(page.locator("#market-rules")).to_contain_text("Tick 0.001 USD")
    expect(page.locator("#market-rules")).to_contain_text("minimum balance to register 1 USD")
    seller.order("sell", "2", "2")
    seller.order("sell", "3", "2.5")
    asks = page.locator("#asks tbody tr")
    expect(asks).to_have_count(2)
    expect(asks.first).to_have_text(re.compile(r"2\.500\s*3\s*5"))
    asks.first.click()
    expect(page.locator("#order-price")).to_have_value("2.500")
    expect(page.locator("#order-amount")).to_have_value("5")
    expect(page.locator("#order-side")).to_have_value("2")
    expect(page.locator("#order-preview")).to_contain_text("Total ≈ 12.5 USD")
    page.fill("#order-price", "0.123456789")
    expect(page.locator("#order-preview")).to_contain_text("rounded to the tick: 0.123")
    page.select_option("#order-side", "1")
    page.click("#order-max")
    expect(page.locator("#order-available")).to_contain_text("Available: ")
    expect(page.locator("#order-amount")).not_to_have_value("5")

    buyer.order("buy", "2", "2")
    expect(buyer.page.locator("#trade-panel .panel-messages")).to_contain_text(
        "Order filled: 2 of 2"
    )
    expect(page.locator("#ticker-last")).to_have_text("2.000")
    expect(page.locator("#ticker-volume")).to_contain_text("XLM")
    expect(page.locator("#chart")).to_have_attribute("data-candles", re.compile(r"[1-9]"))
    expect(page.locator("#trades tbody")).to_contain_text("2.000")
    seller.screenshot("trader-desktop-market")
    buyer.page.locator("#market-panel").scroll_into_view_if_needed()
    _no_sideways_scroll(buyer)
    buyer.screenshot("trader-phone-market")


def test_finality_states_the_threshold_and_warns_when_it_stalls(
    pair: tuple[Trader, Trader],
    constellation: Cluster,  # noqa: F811
) -> None:
    seller, buyer = pair
    buyer.order("buy", "1", "1")
    expect(buyer.page.locator("#messages")).to_contain_text("(2 needed) signatures verified")
    auditors = constellation.nodes[1:]
    for node in auditors:
        constellation.signal_process(node, "herald", signal.SIGSTOP)
    try:
        seller.order("sell", "1", "7")
        warning = seller.page.locator("#messages .message.error", has_text="not final after 5 s")
        expect(warning).to_contain_text("do not rely on it yet", timeout=20_000)
        expect(seller.page.locator("#history tbody tr").first).to_contain_text("not final yet")
        seller.screenshot("trader-desktop-finality-stalled")
    finally:
        for node in auditors:
            constellation.signal_process(node, "herald", signal.SIGCONT)
    assert seller.finalized_signatures("rests: sell 1 XLM at 7.000") >= 2


def test_a_payee_is_told_the_amount(pair: tuple[Trader, Trader]) -> None:
    seller, buyer = pair
    buyer.page.fill("#pay-destination", seller.page.locator("#public-key").inner_text())
    buyer.page.select_option("#pay-asset", "USD")
    buyer.page.fill("#pay-amount", "3.5")
    buyer.page.click("#pay-form button[type=submit]")
    payer = buyer.page.locator("#account-id").inner_text()
    expect(seller.page.locator("#messages")).to_contain_text(
        f"Funds received 3.5 USD from account {payer} (a payment)", timeout=30_000
    )
    seller.screenshot("trader-desktop-payee-notice")


def test_balances_follow_the_account_s_effects_without_a_read_per_change(
    pair: tuple[Trader, Trader],
) -> None:
    """A fill of a resting order (someone else's quantum) moves the seller's balances and
    shrinks the order from the notification's effects alone: no balance read (no quantum) is
    spent, and a read afterwards agrees."""
    seller, buyer = pair
    body = seller.page.locator("body")
    reads = body.get_attribute("data-balance-reads")
    usd = Decimal(seller.balance("USD")[0])
    resting = seller.page.locator("#orders tbody tr", has_text="2.500")
    expect(resting).to_contain_text("3 XLM")
    buyer.order("buy", "1", "2.5")
    expect(buyer.page.locator("#trade-panel .panel-messages")).to_contain_text("Order filled")
    total = seller.page.locator("#balances tbody tr", has_text="USD").locator("td").nth(1)
    paid = f"{(usd + Decimal('2.5')).normalize():f}"
    expect(total).to_have_text(paid)
    expect(resting).to_contain_text("2 XLM")
    assert body.get_attribute("data-balance-reads") == reads
    seller.page.click("#refresh")
    expect(body).not_to_have_attribute("data-balance-reads", reads or "")
    expect(total).to_have_text(paid)
    expect(resting).to_contain_text("2 XLM")


def test_the_history_pages_back_and_keeps_its_words_after_a_reload(
    pair: tuple[Trader, Trader],
) -> None:
    seller, _ = pair
    page = seller.page
    for index in range(6):  # Enough quanta for more than one page of 15.
        seller.order("sell", f"0.{index + 1}", "50")
        expect(page.locator("#trade-panel .panel-messages")).to_contain_text("rests on the book")
        expect(page.locator("#order-submit")).to_be_enabled()
    rows = page.locator("#history tbody tr")
    expect(rows.first).to_contain_text("rests: sell 0.6 XLM at 50.000")
    live = rows.first.inner_text()
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    expect(rows).to_have_count(15)
    expect(rows.first).to_contain_text("rests: sell 0.6 XLM at 50.000")
    assert rows.first.locator("td").nth(2).inner_text() in live
    page.click("#history-older")
    expect(rows).not_to_have_count(15)
    assert rows.count() > 15
    seller.screenshot("trader-desktop-history")


def test_disconnected_is_not_shown_as_empty(
    browser: object,  # noqa: F811
    constellation: Cluster,  # noqa: F811
) -> None:
    person = Trader(browser, pinned_url(constellation), "offline")
    person.create_key()
    constellation.kill_process(constellation.alpha, "web")
    try:
        page = person.page
        expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
        expect(page.locator("#account-id")).to_have_text("unknown (not connected to the node)")
        expect(page.locator("#balances tbody")).to_contain_text("Unknown: not connected")
        expect(page.locator("#nodes")).to_have_attribute("data-stale", "1", timeout=20_000)
        expect(page.locator("#nodes-freshness")).to_contain_text("STALE")
        expect(page.locator("#node-state")).not_to_contain_text("Unexpected token")
        person.screenshot("trader-desktop-disconnected")
    finally:
        constellation.start_process(constellation.alpha, "web")
        wait_for_http(f"{constellation.alpha.url}/api/constellation/info", 60)
    expect(person.page.locator("#connection")).to_have_text("Connected", timeout=60_000)
    person.context.close()
