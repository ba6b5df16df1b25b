"""Open pages that poll the node keep its PostgreSQL connections within its pools.

Goal: the review's critical finding was that one idle browser tab exhausted PostgreSQL in
about 80 s (every request left an idle connection behind: 200 `/info` polls took alpha's web
process from 4 to 204 connections). Here several pinned pages stay open, each with a key
connected to the gateway, polling the node as they do (`/info`, the settings chain, account
data), while `pg_stat_activity` is sampled every second: the peak must stay within the pools
(CONSTELLATION_DB_POOL_MAX per alias per process), and the pages must really have polled.
Method: a real single-node constellation, headless Chromium from Debian. The CI form keeps the
pages open for 10 s (a leak of one connection per request, the finding, exceeds the bound in a
few seconds with 4 pages); `CONSTELLATION_PAGE_SOAK_S=300` keeps them for minutes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.test_trading import (
    CHROMIUM,
    CHROMIUM_ARGS,
    TIMEOUT_MS,
    expect,
    pinned_url,
)
from tests.cluster.conftest import cluster_start
from tests.cluster.test_db_connections import POOL_MAX, PROCESSES, connections
from tools.cluster import Cluster

playwright_sync = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.cluster]

PAGES = 4
SOAK_S = float(os.environ.get("CONSTELLATION_PAGE_SOAK_S", "10"))
ALIASES = 2
"""The node's database and the ledger's."""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium (tools/setup.sh installs it)")
    cluster = cluster_start(1, tmp_path_factory, CONSTELLATION_DEMO="1")
    yield cluster
    cluster.stop()


def test_open_pages_polling_stay_within_the_pools(node: Cluster) -> None:
    requests: list[str] = []
    peak = before = connections(node)
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        pages: list[Any] = []
        for _ in range(PAGES):
            page = browser.new_context().new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.on("request", lambda request: requests.append(request.url))
            page.goto(pinned_url(node))
            expect(page.locator("body")).to_have_attribute("data-ready", "1")
            page.click("#create-key")
            expect(page.locator("#connection")).to_have_text("Connected")
            pages.append(page)
        deadline = time.monotonic() + SOAK_S
        while time.monotonic() < deadline:
            # Sampling, not synchronization: the pages poll on their own timers meanwhile.
            pages[0].wait_for_timeout(1_000)
            peak = max(peak, connections(node))
        for page in pages:
            assert page.locator("body").get_attribute("data-trust") == "verified"
        browser.close()
    polls = sum("/api/constellation/info" in url for url in requests)
    assert polls >= PAGES * 2, f"the pages polled /info {polls} times in {SOAK_S:g} s"
    bound = POOL_MAX * PROCESSES * ALIASES
    assert peak <= bound, f"{peak} connections (from {before}) with {PAGES} pages open"
