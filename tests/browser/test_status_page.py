"""The operators' status page (`/status/`) of a real constellation in headless Chromium.

Goal: an operator sees every node's state, apex, lag and last error live, and a chart of
alpha's throughput and finality that grows while the page is open; a node that goes down shows
as such with its error, without reloading the page, and comes back.
Method: a 3-node cluster of real processes; the real Python client pays while the page is
open; one auditor's herald link is killed and restarted. Playwright's auto-waiting `expect`
(bounded timeouts, no sleeps). A screenshot goes to `artifacts/status_page.png`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.cluster.conftest import cluster_start, run
from tests.cluster.test_consensus import UNIT, funded_pair
from tools.cluster import Cluster, info_reaches, wait_for_state

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
TIMEOUT_MS = 30_000

pytestmark = [pytest.mark.browser, pytest.mark.cluster]


@pytest.fixture(scope="module")
def constellation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium (tools/setup.sh installs it)")
    cluster = cluster_start(3, tmp_path_factory)
    yield cluster
    cluster.stop()


@pytest.fixture()
def page(constellation: Cluster) -> Iterator[object]:
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1100, "height": 640})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page
        browser.close()
        assert not errors, errors


def pay(cluster: Cluster, count: int) -> None:
    """Pays `count` times between two new clients, on a thread of its own (Playwright's sync
    API holds this thread's event loop)."""

    async def scenario() -> None:
        alice, bob = await funded_pair(cluster)
        for _ in range(count):
            result = await alice.pay(bob.public_key, "USD", UNIT // 10)
            assert await result.wait_final(5)
        await alice.close()
        await bob.close()

    with ThreadPoolExecutor(max_workers=1) as worker:
        worker.submit(run, scenario()).result(timeout=120)


def test_status_page_shows_every_node_live_and_a_node_going_down(
    constellation: Cluster, page: object
) -> None:
    page.goto(f"{constellation.alpha.url}/status/")  # type: ignore[attr-defined]
    rows = page.locator("#nodes tbody tr")  # type: ignore[attr-defined]
    expect(rows).to_have_count(3, timeout=TIMEOUT_MS)
    for index in range(3):
        expect(rows.nth(index).locator(".state")).to_have_text("Ready", timeout=TIMEOUT_MS)
    expect(rows.nth(0)).to_contain_text("alpha")
    pay(constellation, 30)
    # The page follows without a reload: alpha's apex moves past the payments, no node lags.
    # (The apex alpha publishes trails a final result by up to one tick.)
    assert info_reaches(constellation, "apex", 32, timeout_s=TIMEOUT_MS / 1000)
    for index in range(3):
        expect(rows.nth(index).locator(".apex")).to_have_text(
            re.compile(r"^\d+$"), timeout=TIMEOUT_MS
        )
        expect(rows.nth(index).locator(".lag")).to_have_text("0", timeout=TIMEOUT_MS)
    chart = page.locator("#chart")  # type: ignore[attr-defined]
    expect(chart).to_have_attribute(
        "data-points", re.compile(r"^([3-9]|\d\d+)$"), timeout=TIMEOUT_MS
    )
    auditor = constellation.nodes[2]
    constellation.kill_process(auditor, "herald")
    try:
        wait_for_state(constellation, "Running", 30, auditor)
        expect(rows.nth(2).locator(".state")).to_have_text("Running", timeout=TIMEOUT_MS)
        expect(rows.nth(2).locator(".error")).to_contain_text("lost alpha", timeout=TIMEOUT_MS)
        pay(constellation, 5)  # Alpha and one auditor still finalize; the downed one lags.
        expect(rows.nth(2).locator(".lag")).not_to_have_text("0", timeout=TIMEOUT_MS)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "status_page.png"), full_page=True)  # type: ignore[attr-defined]
    finally:
        constellation.start_process(auditor, "herald")
    expect(rows.nth(2).locator(".state")).to_have_text("Ready", timeout=60_000)
    expect(rows.nth(2).locator(".lag")).to_have_text("0", timeout=TIMEOUT_MS)
