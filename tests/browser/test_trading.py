"""Two traders use the web page of a real constellation in headless Chromium.

Goal: everything a person does on the page works end to end against real nodes: create a key
in the browser, fund it from the demo faucet, sell and buy against each other, both see the
fill, the history shows the quanta finalized with signatures the browser verified itself, an
invalid order explains what is wrong, and a lost connection reconnects and says so.

The page pins the constellation (issue 16): the traders open it with
`?constellation=<id>` (the id of the cluster's genesis, from /info), a fresh browser without
it pins on first use, and a wrong pin is a loud refusal (#trust-error) with nothing to trade.

Method: a 3-node cluster (alpha + 2 auditors, demo mode) from the cluster harness; two
browser contexts (two separate key stores) on alpha's page, driven with Playwright's
auto-waiting `expect` (bounded timeouts, no sleeps). Screenshots go to `artifacts/`.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from quanta.core.testing import default_settings, keypair
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import ConstellationMessageEnvelope
from tests.browser import bound
from tests.cluster.conftest import cluster_start
from tools.cluster import Cluster, wait_for_http

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
TIMEOUT_MS = 30_000

pytestmark = [pytest.mark.browser, pytest.mark.cluster]


@pytest.fixture(scope="module")
def constellation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A 3-node constellation in demo mode (the faucet endpoint is on)."""
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium (tools/setup.sh installs it)")
    cluster = cluster_start(
        3, tmp_path_factory, CONSTELLATION_DEMO="1", CONSTELLATION_SNAPSHOT_INTERVAL_S="1"
    )
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def browser(constellation: Cluster) -> Iterator[object]:
    """Headless Chromium from the Debian package (no browser download)."""
    with playwright_sync.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


def node_json(cluster: Cluster, path: str) -> Any:
    """Returns the JSON alpha serves at `path`."""
    with urllib.request.urlopen(f"{cluster.alpha.url}{path}", timeout=10) as response:
        return json.load(response)


def constellation_id(cluster: Cluster) -> str:
    """Returns the cluster's constellation id as alpha's /info serves it (the tests trust it:
    the cluster is theirs, which is what a person's out-of-band id stands for)."""
    found = node_json(cluster, "/api/constellation/info")["constellation_id"]
    assert re.fullmatch(r"[0-9a-f]{64}", found), found
    return str(found)


def pinned_url(cluster: Cluster) -> str:
    """Returns alpha's page with the constellation pinned in the link."""
    return f"{cluster.alpha.url}/?constellation={constellation_id(cluster)}"


class Trader:
    """One person at the page: a browser context of its own, so a key store of its own."""

    def __init__(
        self,
        browser: object,
        url: str,
        name: str,
        routes: dict[str, Callable[[Any], None]] | None = None,
        viewport: dict[str, int] | None = None,
    ) -> None:
        """Opens `url` in a new context; `routes` (URL pattern: handler) intercept requests
        first, as a man in the middle between the page and the node would."""
        self.name = name
        size = viewport or {"width": 1400, "height": 1100}
        self.context = browser.new_context(viewport=size)  # type: ignore[attr-defined]
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        for pattern, handler in (routes or {}).items():
            self.page.route(pattern, handler)
        self.page.goto(url)
        expect(self.page.locator("body")).to_have_attribute("data-ready", "1")

    def create_key(self) -> str:
        """Creates a key in the browser and waits until the gateway accepted the handshake."""
        self.page.click("#create-key")
        expect(self.page.locator("#connection")).to_have_text("Connected")
        address = self.page.locator("#public-key").inner_text()
        assert re.fullmatch(r"G[A-Z2-7]{55}", address), address
        return address

    def fund(self, asset: str, amount: str) -> None:
        """Uses the faucet button and waits until the deposit shows in the balances."""
        self.page.select_option("#faucet-asset", asset)
        self.page.fill("#faucet-amount", amount)
        self.page.click("#faucet-button")
        row = self.page.locator("#balances tbody tr", has_text=asset)
        expect(row.locator("td").nth(1)).to_have_text(amount, timeout=60_000)

    def order(self, side: str, amount: str, price: str, tif: str = "0") -> None:
        """Fills in and submits the order form."""
        self.page.select_option("#order-side", "1" if side == "sell" else "2")
        self.page.select_option("#order-asset", "XLM")
        self.page.fill("#order-amount", amount)
        self.page.fill("#order-price", price)
        self.page.select_option("#order-tif", tif)
        self.page.click("#order-submit")

    def balance(self, asset: str) -> list[str]:
        """Returns the (total, locked, available) cells of one balance row."""
        cells = self.page.locator("#balances tbody tr", has_text=asset).locator("td")
        return cells.all_inner_texts()[1:]

    def finalized_signatures(self, label: str, count: int = 1) -> int:
        """Waits for the `count`-th history row of `label` (the newest, listed first) to be
        finalized; returns its verified count. Waiting for the count first keeps an older
        row of the same label from being read while the new one is still on its way."""
        rows = self.page.locator("#history tbody tr", has_text=label)
        expect(rows).to_have_count(count)
        row = rows.first
        expect(row).to_contain_text("finalized")
        print(f"history row {label!r} first seen final: {row.inner_text()!r}")
        # The count shown is what the browser verified; wait (bounded) for the majority.
        expect(row).to_contain_text(re.compile(r"[2-9] of \d"))
        text = row.inner_text()
        print(f"history row {label!r}: {text!r}")  # Shown by pytest if an assertion fails.
        match = re.search(r"(\d+) of (\d+)", text)
        assert match is not None, row.inner_text()
        assert int(match.group(2)) == 3
        return int(match.group(1))

    def screenshot(self, name: str) -> None:
        """Writes a full-page screenshot to artifacts/."""
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


PHONE = {"width": 390, "height": 844}


def funded_traders(
    browser: object, constellation: Cluster, buyer_viewport: dict[str, int] | None = None
) -> Iterator[tuple[Trader, Trader]]:
    """Yields two funded traders, the seller holding USD and XLM, the buyer USD (at
    `buyer_viewport`), and closes their contexts after: a module fixture's body."""
    url = pinned_url(constellation)
    seller = Trader(browser, url, "seller")
    buyer = Trader(browser, url, "buyer", viewport=buyer_viewport)
    seller.create_key()
    buyer.create_key()
    seller.fund("USD", "100")
    seller.fund("XLM", "50")
    buyer.fund("USD", "100")
    yield seller, buyer
    for trader in (seller, buyer):
        trader.context.close()


@pytest.fixture(scope="module")
def traders(browser: object, constellation: Cluster) -> Iterator[tuple[Trader, Trader]]:
    """Two funded traders at desktop width: the seller holds USD and XLM, the buyer USD."""
    yield from funded_traders(browser, constellation)


def test_two_traders_trade_and_see_the_fill_finalized(traders: tuple[Trader, Trader]) -> None:
    """A resting sell and a crossing buy fill at the maker's price; both pages show the fill,
    the balances move, and the history shows the orders finalized by >= 2 of 3 signatures."""
    seller, buyer = traders
    expect(seller.page.locator("#constellation")).to_contain_text("Ready")
    expect(seller.page.locator("body")).to_have_attribute("data-trust", "verified")
    expect(seller.page.locator("#trust-error")).to_be_hidden()
    expect(seller.page.locator("#balances-attestation")).to_contain_text("Alpha-attested")
    seller.order("sell", "10", "2")
    expect(seller.page.locator("#orders tbody")).to_contain_text("10 XLM")
    assert seller.finalized_signatures("rests: sell 10 XLM") >= 2

    buyer.order("buy", "10", "2.5")
    fill = "10 XLM at 2.000 USD"
    expect(buyer.page.locator("#fills")).to_contain_text(f"Bought {fill}")
    expect(seller.page.locator("#fills")).to_contain_text(f"Sold {fill}")
    assert buyer.finalized_signatures("bought 10 XLM") >= 2

    expect(seller.page.locator("#orders tbody")).to_contain_text("No open orders.")
    expect(seller.page.locator("#balances tbody tr", has_text="XLM")).to_contain_text("40")
    expect(buyer.page.locator("#balances tbody tr", has_text="XLM")).to_contain_text("10")
    expect(buyer.page.locator("#balances tbody tr", has_text="USD")).to_contain_text("80")
    assert seller.balance("USD") == ["120", "0", "120"]
    seller.screenshot("trading-seller")
    buyer.screenshot("trading-buyer")
    assert seller.errors == [] and buyer.errors == []


def test_invalid_orders_show_a_sentence_not_a_status_number(
    traders: tuple[Trader, Trader],
) -> None:
    """An amount of zero is caught in the page; selling more than one holds is refused by the
    node, and the page says how much is available."""
    _, buyer = traders
    buyer.order("sell", "0", "2")
    errors = buyer.page.locator("#trade-panel .message.error")
    expect(errors.first).to_contain_text("the amount must be greater than zero")

    buyer.order("sell", "1000", "2")
    expect(errors.first).to_contain_text("Your order was refused: not enough XLM")
    expect(errors.first).to_contain_text("1000 are needed")
    buyer.screenshot("trading-invalid-order")


def test_a_lost_connection_reconnects_and_says_so(
    traders: tuple[Trader, Trader], constellation: Cluster
) -> None:
    """When alpha's web process dies the page says it is reconnecting; once the process is
    back it reconnects by itself and says so."""
    seller, _ = traders
    badge = seller.page.locator("#connection")
    constellation.kill_process(constellation.alpha, "web")
    expect(badge).to_have_attribute("data-state", "reconnecting")
    expect(seller.page.locator("#messages")).to_contain_text("Connection to the node lost")
    constellation.start_process(constellation.alpha, "web")
    wait_for_http(f"{constellation.alpha.url}/api/constellation/info", 60)
    expect(badge).to_have_text("Connected", timeout=60_000)
    expect(seller.page.locator("#messages")).to_contain_text("Reconnected to the node.")
    seller.screenshot("trading-reconnected")


def test_cancel_ioc_payment_and_withdrawal_from_the_page(
    traders: tuple[Trader, Trader], constellation: Cluster
) -> None:
    """A resting order is cancelled with its button, an IOC order rests nothing, a payment
    reaches the other trader's page, and a withdrawal request is finalized."""
    seller, buyer = traders
    expect(seller.page.locator("#connection")).to_have_text("Connected", timeout=60_000)
    # After the previous test restarted alpha's web process the auditors' herald links come
    # back with a growing delay; an order sent before is refused (450, not ready).
    expect(seller.page.locator("#node-state")).to_have_text("Ready", timeout=60_000)
    seller.order("sell", "5", "3")
    cancel = seller.page.locator("#orders tbody button", has_text="Cancel")
    expect(cancel).to_have_count(1)
    cancel.click()
    expect(seller.page.locator("#orders tbody")).to_contain_text("No open orders.")
    assert seller.finalized_signatures("left the book") >= 2

    buyer.order("buy", "1", "1", tif="1")
    assert buyer.finalized_signatures("buy XLM: nothing changed") >= 2
    expect(buyer.page.locator("#orders tbody")).to_contain_text("No open orders.")

    seller.page.fill("#pay-destination", buyer.page.locator("#public-key").inner_text())
    seller.page.select_option("#pay-asset", "USD")
    seller.page.fill("#pay-amount", "5")
    seller.page.click("#pay-form button[type=submit]")
    assert seller.finalized_signatures("sent 5 USD") >= 2
    expect(buyer.page.locator("#balances tbody tr", has_text="USD")).to_contain_text("85")

    buyer.page.select_option("#withdraw-asset", "USD")
    buyer.page.fill("#withdraw-amount", "1")
    buyer.page.fill("#withdraw-destination", seller.page.locator("#public-key").inner_text())
    buyer.page.click("#withdraw-form button[type=submit]")
    assert buyer.finalized_signatures("withdrawal of 1 USD") >= 2
    buyer.screenshot("trading-payments")
    assert seller.errors == [] and buyer.errors == []


def test_the_page_pins_on_first_use_and_refuses_another_constellation(
    browser: object, constellation: Cluster
) -> None:
    """A fresh browser pins the id it verified and shows it (short, full on hover); a link
    naming another id asks before re-pinning, and declining keeps the pin; a browser pinned
    to another constellation refuses loudly: #trust-error names both ids, nothing can be
    used. A damaged pin is refused too, and a link with the id mends it."""
    expected = constellation_id(constellation)
    person = Trader(browser, constellation.alpha.url, "first-use")
    page = person.page
    pin = page.locator("#constellation-pin")
    expect(pin).to_have_attribute("title", expected)
    expect(pin).to_have_text(f"{expected[:8]}…{expected[-4:]}")
    expect(page.locator("#pin-source")).to_have_text("pinned on first use")
    assert page.evaluate("localStorage.getItem('constellation.pin')") == expected

    other = "ab" * 32
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{constellation.alpha.url}/?constellation={other}")
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    assert len(dialogs) == 1 and other in dialogs[0] and expected in dialogs[0]
    expect(page.locator("#pin-source")).to_contain_text("re-pin declined")
    expect(page.locator("#trust-error")).to_be_hidden()

    page.evaluate(f"localStorage.setItem('constellation.pin', '{other}')")
    page.goto(constellation.alpha.url)
    banner = page.locator("#trust-error")
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("data-reason", "genesis-mismatch")
    expect(banner).to_have_attribute("data-expected", other)
    expect(banner).to_have_attribute("data-served", expected)
    expect(banner).to_contain_text(
        "Refused: constellation id mismatch — this node serves another constellation: "
        f"expected constellation {other}, but the genesis settings it serves hash to {expected}"
    )
    expect(page.locator("body")).to_have_attribute("data-trust", "refused")
    assert page.locator("main").evaluate("main => main.inert") is True
    expect(page.locator("#connection")).to_have_text("Refused")
    person.screenshot("trading-refused")

    page.evaluate("localStorage.setItem('constellation.pin', 'garbage')")
    page.goto(constellation.alpha.url)
    expect(banner).to_have_attribute("data-reason", "bad-pin")
    expect(banner).to_contain_text("Refused: unusable constellation id")
    page.goto(f"{constellation.alpha.url}/#constellation={expected}")  # a link mends it
    expect(page.locator("body")).to_have_attribute("data-trust", "verified")
    expect(page.locator("#pin-source")).to_have_text("pinned from the link")
    assert page.evaluate("localStorage.getItem('constellation.pin')") == expected
    assert person.errors == []
    person.context.close()


def test_a_key_made_before_the_chain_is_verified_connects_once_it_is(
    browser: object, constellation: Cluster
) -> None:
    """The key buttons work as soon as the page shows them, before the settings chain is
    verified (a slow link, a proxy). A key made then got a client without trusted keys: it
    failed at once and retried for ever ("Cannot read the settings chain (Cannot read
    properties of null ...)"), over the status line of the client the page made once the
    chain was verified (CI's test_the_page_works_through_the_proxy saw only those retries
    once). Method: the chain's requests are held until the key is made; every text the
    status line takes is recorded. It failed before (the status showed that error)."""
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.add_init_script(
        """document.addEventListener("DOMContentLoaded", () => {
          const line = document.querySelector("#connection");
          window.connectionTexts = [];
          new MutationObserver(() => window.connectionTexts.push(line.textContent))
            .observe(line, { childList: true, characterData: true, subtree: true });
        });"""
    )
    held: list[Any] = []
    chain_route = "**/api/constellation/settings-chain*"
    page.route(chain_route, lambda route: held.append(route))
    with page.expect_request(chain_route):
        page.goto(pinned_url(constellation))
    page.click("#create-key")
    expect(page.locator("#has-key")).to_be_visible()  # The key is made; the chain still held.
    assert held, "the chain's request was not held"
    page.unroute(chain_route)  # The held requests go on to the node now.
    expect(page.locator("#connection")).to_have_text("Connected")
    texts = page.evaluate("window.connectionTexts")
    assert not [t for t in texts if "Cannot read the settings chain" in t], texts
    assert errors == []
    context.close()


def _serve(body: dict[str, Any]) -> Callable[[Any], None]:
    """Returns a route handler answering every request with `body` as JSON."""
    return lambda route: route.fulfill(json=body)


def test_forged_info_keys_are_ignored_and_forged_chains_are_refused(
    browser: object, constellation: Cluster
) -> None:
    """SECURITY.md H3 from the page's side. /info naming other keys changes nothing: the page
    verifies alpha's frames with the chain's keys and trades. A chain of another
    constellation (the attacker's own keys) is a genesis mismatch; the real genesis stripped
    of its signatures but one is a broken chain."""
    info = node_json(constellation, "/api/constellation/info")
    forged = [keypair(60 + i).public_key_strkey for i in range(3)]
    lying_info = {
        **info,
        "alpha": forged[0],
        "auditors": [{"public_key": key, "address": "http://evil"} for key in forged],
    }
    url = pinned_url(constellation)
    person = Trader(browser, url, "lying-info", {"**/api/constellation/info": _serve(lying_info)})
    expect(person.page.locator("#alpha-key")).to_have_text(info["alpha"])
    person.create_key()
    person.fund("USD", "7")
    expect(person.page.locator("#trust-error")).to_be_hidden()
    person.context.close()

    attacker = default_settings([keypair(50 + i) for i in range(3)])
    attacker_id = bound.constellation_id(attacker).hex()
    own_chain = {
        "constellation_id": attacker_id,
        "updates": [bound.update_entry(attacker, [keypair(50), keypair(51)])],
        "more": False,
    }
    chain_route = "**/api/constellation/settings-chain*"
    victim = Trader(browser, url, "forged-chain", {chain_route: _serve(own_chain)})
    banner = victim.page.locator("#trust-error")
    expect(banner).to_have_attribute("data-reason", "genesis-mismatch")
    expect(banner).to_have_attribute("data-served", attacker_id)
    expect(banner).to_contain_text(f"hash to {attacker_id}")
    victim.context.close()

    real = node_json(constellation, "/api/constellation/settings-chain")
    genesis = decode(ConstellationMessageEnvelope, base64.b64decode(real["updates"][0]["envelope"]))
    stripped = dataclasses.replace(genesis, signatures=genesis.signatures[:1])
    entry = {**real["updates"][0], "envelope": base64.b64encode(encode(stripped)).decode()}
    broken = {**real, "updates": [entry], "more": False}
    victim = Trader(browser, url, "broken-chain", {chain_route: _serve(broken)})
    banner = victim.page.locator("#trust-error")
    expect(banner).to_have_attribute("data-reason", "broken-chain")
    expect(banner).to_contain_text("validly signed by 1 of the 3 auditors it lists; 2 are required")
    victim.page.locator("#create-key").click(force=True)  # inert: the click reaches nothing
    expect(victim.page.locator("#has-key")).to_be_hidden()
    assert victim.page.evaluate("localStorage.getItem('constellation.secret')") is None
    victim.screenshot("trading-broken-chain")
    victim.context.close()
