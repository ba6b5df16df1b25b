"""The page's proof-of-reserves panel shows what the node's reserves endpoint says.

Method: alpha alone (demo mode, snapshots every second) receives a faucet deposit; once the
endpoint reports it at a snapshot, headless Chromium opens the page and the panel's table
must show the same apex, state hash and amounts (`static/js/reserves.js`).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from quanta.core.keys import KeyPair
from tests.browser.test_trading import CHROMIUM, CHROMIUM_ARGS
from tests.cluster.conftest import cluster_start
from tools.cluster import Cluster
from tools.reserves_session import faucet

playwright_sync = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.browser, pytest.mark.cluster]


@pytest.fixture(scope="module")
def alpha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium (tools/setup.sh installs it)")
    cluster = cluster_start(
        1, tmp_path_factory, CONSTELLATION_DEMO="1", CONSTELLATION_SNAPSHOT_INTERVAL_S="1"
    )
    yield cluster
    cluster.stop()


def reserves(cluster: Cluster) -> dict[str, Any]:
    with urllib.request.urlopen(  # noqa: S310 - the cluster's own loopback URL
        f"{cluster.alpha.url}/api/constellation/reserves", timeout=10
    ) as response:
        return dict(json.load(response))


def usd_row(report: dict[str, Any]) -> dict[str, Any]:
    return next(row for row in report["assets"] if row["asset"] == "USD")


def test_the_panel_shows_the_endpoint_s_report(alpha: Cluster) -> None:
    faucet(alpha.alpha.url, KeyPair.random().public_key_strkey, "USD", "25")
    deadline = time.monotonic() + 60
    while (report := reserves(alpha)) and usd_row(report)["liabilities"] != "250000000":
        assert time.monotonic() < deadline, report
        time.sleep(0.3)
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page()
        page.goto(f"{alpha.alpha.url}/")
        row = page.locator("#reserves tbody tr", has_text="USD")
        row.wait_for(timeout=20_000)
        cells = row.locator("td").all_text_contents()
        shown_apex = int(page.locator("#reserves-apex").text_content() or "0")
        shown_hash = page.locator("#reserves-hash").get_attribute("title")
        browser.close()
    assert cells[:3] == ["USD", "25", "25"], cells  # decimals as the page shows every amount
    assert cells[4:] == ["0", "0"], cells
    later = reserves(alpha)
    assert shown_apex >= report["apex"] and shown_hash in {
        report["state_hash"],
        later["state_hash"],
    }
