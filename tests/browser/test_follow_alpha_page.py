"""The live page follows an alpha replacement (docs/admin.md, "Replacing alpha").

Goal: a page served by alpha stays open while alpha dies for good and the runbook replaces it.
On the lost connection the page reads the settings chain of the nodes its verified settings
name (its own node is dead), verifies it from the pin as at every connection (chain.js), and
once the update naming the new alpha is in force, connects to the address it gives the new
alpha: the page says Connected again, and a payment made from it is executed there. Every
other connection of the page follows too (static/js/node.js): the faucet pays through the new
alpha, the market panel shows a trade made there, a reload of the history is answered there,
and the node table marks the page's dead node.
Method: a 3-node demo cluster from tools/cluster.py, headless Chromium, the replacement's real
commands (tests/cluster/test_alpha_replacement.py), bounded waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from constellation_client import ConstellationClient
from quanta.core.keys import KeyPair
from tests.browser.test_trading import CHROMIUM, CHROMIUM_ARGS, Trader, pinned_url
from tests.cluster.conftest import cluster_start, run
from tests.cluster.test_alpha_replacement import (
    replacement,
    restart_as_alpha,
    submit,
    wait_for_new_alpha,
)
from tests.cluster.test_payments import balances
from tools.cluster import Cluster

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

pytestmark = [pytest.mark.browser, pytest.mark.cluster]


@pytest.fixture
def constellation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium (tools/setup.sh installs it)")
    cluster = cluster_start(
        3, tmp_path_factory, CONSTELLATION_DEMO="1", CONSTELLATION_SNAPSHOT_INTERVAL_S="1"
    )
    yield cluster
    cluster.stop()


def test_the_page_follows_the_alpha_that_replaces_its_dead_node(constellation: Cluster) -> None:
    old, new, other = constellation.nodes
    pin = constellation.constellation_id()
    payee = KeyPair.random()
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        trader = Trader(browser, pinned_url(constellation), "follower")
        trader.create_key()
        trader.fund("USD", "100")

        for process in ("engine", "web"):  # the page's node, alpha, dies for good
            constellation.kill_process(old, process)
        badge = trader.page.locator("#connection")
        expect(badge).to_have_attribute("data-state", "reconnecting")
        envelope = replacement(constellation, new, [new, other], pin)
        version = int(str(constellation.info(new)["settings_version"])) + 1
        restart_as_alpha(constellation, new)
        answer = submit(new, envelope)
        assert answer.get("status") == 200, answer
        wait_for_new_alpha(constellation, new, [new, other], version)

        expect(badge).to_have_text("Connected", timeout=90_000)  # through the new alpha
        trader.page.fill("#pay-destination", payee.public_key_strkey)
        trader.page.select_option("#pay-asset", "USD")
        trader.page.fill("#pay-amount", "5")
        trader.page.click("#pay-form button[type=submit]")

        async def paid() -> dict[str, tuple[int, int]]:
            client = await ConstellationClient.connect(new.url, payee, constellation_id=pin)
            deadline = time.monotonic() + 60
            while (seen := await balances(client)) == {} and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            await client.close()
            return seen

        with ThreadPoolExecutor(1) as thread:  # Playwright's loop runs in this thread
            assert thread.submit(run, paid()).result() == {"USD": (5 * 10_000_000, 0)}
        trader.screenshot("page-followed-alpha")

        page = trader.page
        dead = page.locator('#nodes tbody tr[data-dead="1"]')
        expect(dead).to_have_count(1, timeout=30_000)
        expect(dead).to_contain_text("this page's node")
        trader.fund("XLM", "20")  # the faucet of the new alpha (the old one is dead)
        expect(page.locator("#market-status")).to_have_text("Live market data.", timeout=30_000)
        buyer = Trader(browser, f"{new.url}/?constellation={pin.hex()}", "buyer")
        buyer.create_key()
        buyer.fund("USD", "100")
        trader.order("sell", "10", "2")
        expect(page.locator("#orders tbody")).to_contain_text("10 XLM")
        buyer.order("buy", "10", "2.5")
        expect(page.locator("#fills")).to_contain_text("Sold 10 XLM at 2.000 USD")
        # The chronicler feeds of the new alpha reach the page: the trade and the ticker.
        expect(page.locator("#trades tbody")).to_contain_text("10", timeout=30_000)
        expect(page.locator("#ticker-last")).to_contain_text("2.000", timeout=30_000)
        rows = page.locator("#history tbody tr")
        before = rows.count()
        page.click("#history-refresh")  # the history pages come from the new alpha
        assert trader.finalized_signatures("rests: sell 10 XLM") >= 2
        expect(page.locator("#history tbody tr", has_text="deposit")).not_to_have_count(0)
        assert rows.count() >= before
        expect(page.locator("#history-panel")).not_to_contain_text("Cannot load the history")
        trader.screenshot("page-followed-alpha-market-history")
        assert trader.errors == [] and buyer.errors == []
        browser.close()
