"""A man in the middle between real clients and a real constellation (issue 16).

Goal: what SECURITY.md H3, M2, M8 and L3 describe cannot fool a client any more. Through
`tools/mitm_proxy.py`, a real process between the client and alpha:
(a) rewritten `status` / `message_id` of unsigned results: the client neither reports an
    executed payment as failed (so nobody pays twice) nor takes another request's result as
    its own;
(b) a finalized notification replayed 3 times is reported once;
(c) a fake alpha whose auditors are the attacker's keys (forged info and settings chain,
    self-signed "final" results) is refused before anything is sent;
(d) the WebSocket handshake relayed to a second constellation's alpha (same alpha key) is
    refused;
and without a proxy, a request signed for constellation A is refused by constellation B.
The same attacks against the page in headless Chromium show the refusal in `#trust-error`
(or the page's verification log). The proxy's own checks: pass-through changes nothing (a
payment through it is final and debited once; the page works through it), and a client
message above the gateway's bound is closed with 1009 by the proxy.

Method: constellation A = alpha + 2 auditors, B = one node whose key is A's alpha key (an
operator reusing a node key for a test constellation); both run at once. Accounts are funded
with the faucet. The proxy runs as a subprocess per test (`ready <port>` on stdout, tampering
log on stderr, counted). Before the client fixes (main at 024fde1), these attacks worked: see
docs/security.md, "Man in the middle".
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from constellation_client import ConstellationClient
from constellation_client.wire import ConstellationClientError
from quanta.core.envelopes import envelope_bytes
from quanta.core.keys import KeyPair
from quanta.core.xdr.codec import decode_prefix, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    AccountDataRequest,
    ClientConnectionSuccess,
    HandshakeRequest,
    HandshakeResponse,
    Message,
    PaymentRequest,
    QuantumResultMessage,
    ResultMessage,
)
from tests.cluster import conftest
from tests.cluster.conftest import cluster_start, run
from tools.cluster import Cluster, free_base_port, wait_for_state

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
PROXY = ROOT / "tools" / "mitm_proxy.py"
UNIT = 10_000_000
CHROMIUM = Path("/usr/bin/chromium")


# --- the constellations -----------------------------------------------------------------


def cluster_with_keys(
    size: int, tmp_path_factory: pytest.TempPathFactory, seeds: list[KeyPair], **env: str
) -> Cluster:
    """Like `conftest.cluster_start`, with the nodes' keys given (B reuses A's alpha key)."""
    name = f"t{os.getpid()}k{int(time.monotonic() * 1000) % 100_000}"
    base_port = free_base_port(size, conftest._next_port)
    conftest._next_port = base_port + 10 * ((size + 9) // 10)
    cluster = Cluster(
        size,
        name=name,
        base_port=base_port,
        workdir=tmp_path_factory.mktemp(name),
        seeds=seeds,
        extra_env=env,
    )
    try:
        cluster.start()
        answer = cluster.initialize()
        assert answer.get("status") == 200, answer
        wait_for_state(cluster, "Ready", 60)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="module")
def a(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Constellation A: alpha and two auditors (majority 2), demo mode (the page's faucet)."""
    cluster = cluster_start(3, tmp_path_factory, CONSTELLATION_DEMO="1")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def b(a: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Constellation B: one node whose key is A's alpha key, running beside A."""
    cluster = cluster_with_keys(1, tmp_path_factory, [a.alpha.keypair])
    yield cluster
    cluster.stop()


def in_thread[T](coroutine: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Runs a coroutine in a thread of its own: a fixture may be set up inside Playwright's
    sync API, whose event loop is running in this thread."""
    with ThreadPoolExecutor(1) as executor:
        return executor.submit(lambda: run(coroutine())).result()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def people(a: Cluster) -> tuple[KeyPair, KeyPair]:
    """A payer and a payee with 100 USD each on A (funded once, at the same time)."""

    async def both() -> tuple[KeyPair, KeyPair]:
        payer, payee = await asyncio.gather(funded(a), funded(a))
        return payer, payee

    return in_thread(both)


@pytest.fixture(scope="module")
def people_on_b(b: Cluster, people: tuple[KeyPair, KeyPair]) -> tuple[KeyPair, KeyPair]:
    """The same payer and payee, registered on B too (100 USD each there)."""

    async def both() -> None:
        await asyncio.gather(funded(b, people[0]), funded(b, people[1]))

    in_thread(both)
    return people


def pin(cluster: Cluster) -> str:
    """Returns the constellation id a user of `cluster` pins (hex), as its alpha serves it."""
    return cluster.constellation_id().hex()


# --- the proxy --------------------------------------------------------------------------


class Mitm:
    """A running `tools/mitm_proxy.py`."""

    def __init__(self, process: subprocess.Popen[str], port: int, log: Path) -> None:
        self.process, self.url, self.log_path = process, f"http://127.0.0.1:{port}", log

    def log(self) -> str:
        return self.log_path.read_text()

    def count(self, what: str) -> int:
        """How many tamperings of one kind the proxy logged."""
        return len(re.findall(rf"^mitm: {re.escape(what)} #\d+:", self.log(), re.MULTILINE))


@contextmanager
def mitm(upstream: Cluster, tmp_path: Path, *flags: str) -> Iterator[Mitm]:
    """Runs the proxy in front of `upstream`'s alpha; stops it with SIGTERM (exit 0)."""
    log = tmp_path / f"mitm-{len(list(tmp_path.glob('mitm-*')))}.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(PROXY), "--upstream", upstream.alpha.url, *flags],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("ready "), (line, log.read_text())
        proxy = Mitm(process, int(line.split()[1]), log)
        yield proxy
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0, log.read_text()
    print(log.read_text())  # Shown when a test fails: what the proxy tampered with.


# --- a raw session (signs with whatever id it is given, independent of the client) --------


class Raw:
    """A hand-made gateway session: handshake and requests signed for `constellation_id`."""

    def __init__(self, websocket: object, keypair: KeyPair, constellation_id: bytes) -> None:
        self.websocket, self.keypair, self.constellation_id = websocket, keypair, constellation_id
        self.account_id = 0

    @classmethod
    async def open(cls, url: str, keypair: KeyPair, constellation_id: bytes) -> Raw:
        websocket = await connect(url.replace("http://", "ws://") + "/ws/")
        session = cls(websocket, keypair, constellation_id)
        challenge = await session.receive()
        assert isinstance(challenge, HandshakeRequest), challenge
        await session.send(HandshakeResponse(1, challenge.handshake_data))
        answer = await session.receive()
        while isinstance(answer, QuantumResultMessage):
            # Results go to every connection of the key: a late copy of an earlier
            # connection's result may come first.
            answer = await session.receive()
        assert isinstance(answer, ClientConnectionSuccess), answer
        session.account_id = int(answer.account_id)
        return session

    async def send(self, message: Message, constellation_id: bytes | None = None) -> None:
        body = encode(message, MESSAGE)
        frame = envelope_bytes(body, self.keypair, constellation_id or self.constellation_id)
        await self.websocket.send(frame)  # type: ignore[attr-defined]

    async def receive(self) -> Message:
        data = await asyncio.wait_for(self.websocket.recv(), 20)  # type: ignore[attr-defined]
        message, _ = decode_prefix(MESSAGE, data)
        return message  # type: ignore[no-any-return]

    async def ask(self, message: Message, constellation_id: bytes | None = None) -> Message:
        """Sends a request; returns the first answer that carries its message id."""
        await self.send(message, constellation_id)
        wanted = int(getattr(message, "message_id", 0))
        while True:
            answer = await self.receive()
            if int(getattr(answer, "message_id", 0)) == wanted:
                return answer

    def header(self) -> tuple[int, bytes, int]:
        now = time.time_ns() // 1000
        return now, self.keypair.public_key, now

    async def usd(self) -> int:
        answer = await self.ask(AccountDataRequest(*self.header()))
        assert isinstance(answer, QuantumResultMessage) and answer.account_data, answer
        return {b.asset: int(b.amount) for b in answer.account_data.balances}.get("USD", 0)

    async def close(self) -> None:
        await self.websocket.close()  # type: ignore[attr-defined]


async def funded(cluster: Cluster, keypair: KeyPair | None = None, usd: str = "100") -> KeyPair:
    """Returns the key (a new one by default) once a faucet deposit of `usd` USD on `cluster`
    has registered it."""
    keypair = keypair or KeyPair.random()
    await asyncio.to_thread(cluster.faucet, keypair.public_key_strkey, "USD", usd)
    identity = bytes.fromhex(pin(cluster))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        session = await Raw.open(cluster.alpha.url, keypair, identity)
        try:
            if session.account_id:
                return keypair
        finally:
            await session.close()
        await asyncio.sleep(0.3)
    raise AssertionError("the deposit did not register the account within 30 s")


async def usd_of(cluster: Cluster, keypair: KeyPair) -> int:
    """Returns an account's USD balance, asked of alpha directly (no proxy)."""
    session = await Raw.open(cluster.alpha.url, keypair, bytes.fromhex(pin(cluster)))
    try:
        return await session.usd()
    finally:
        await session.close()


async def client(url: str, keypair: KeyPair, cluster: Cluster) -> ConstellationClient:
    """The real Python client, pinned to `cluster`'s constellation id, connecting to `url`."""
    return await ConstellationClient.connect(url, keypair, constellation_id=pin(cluster))


# --- the proxy itself -------------------------------------------------------------------


def test_pass_through_changes_nothing(
    a: Cluster, people: tuple[KeyPair, KeyPair], tmp_path: Path
) -> None:
    """With no attack flag a payment through the proxy is final and debited once, and a client
    message above the gateway's bound is closed by the proxy with 1009."""

    async def scenario() -> None:
        payer, payee = people
        before = await usd_of(a, payer)
        with mitm(a, tmp_path) as proxy:
            session = await Raw.open(proxy.url, payer, bytes.fromhex(pin(a)))
            answer = await session.ask(
                PaymentRequest(*session.header(), "USD", 3 * UNIT, payee.public_key)
            )
            assert isinstance(answer, QuantumResultMessage) and answer.status == 200, answer
            await session.websocket.send(b"\0" * 70_000)  # type: ignore[attr-defined]
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await session.receive()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
            assert "websocket refused: frame of 70000 bytes above" in proxy.log()  # not alpha
        assert "tampered {}" in proxy.log()  # Its last line, on SIGTERM: nothing was changed.
        assert before - await usd_of(a, payer) == 3 * UNIT

    run(scenario())


# --- (a) rewritten status and message ids ------------------------------------------------


def test_a_rewritten_status_does_not_make_the_app_pay_twice(
    a: Cluster, people: tuple[KeyPair, KeyPair], tmp_path: Path
) -> None:
    """Status 200 -> 500 on every unsigned result: the client still reports the payment as
    executed and final (the status lies outside the proof), so no retry, one debit.
    Before: pay() returned 500, three retries paid 15 USD for one payment of 5."""

    async def scenario() -> None:
        payer, payee = people
        before = await usd_of(a, payer)
        with mitm(a, tmp_path, "--rewrite-status", "500") as proxy:
            async with await client(proxy.url, payer, a) as user:
                result = await user.pay(payee.public_key_strkey, "USD", 5 * UNIT)
                assert result.ok, result
                assert await result.wait_final(10)
            assert proxy.count("rewrite") >= 1
        assert before - await usd_of(a, payer) == 5 * UNIT

    run(scenario())


def test_a_message_id_zero_still_answers_the_request(
    a: Cluster, people: tuple[KeyPair, KeyPair], tmp_path: Path
) -> None:
    """message_id -> 0: the result is still matched to its request by the nonce it proves.
    Before: pay() raised 'no answer to request ...' after the timeout although it was
    executed, and its result surfaced as an unfinalized notification."""

    async def scenario() -> None:
        payer, payee = people
        before = await usd_of(a, payer)
        with mitm(a, tmp_path, "--rewrite-id", "zero") as proxy:
            async with await client(proxy.url, payer, a) as user:
                user.request_timeout_s = 10
                result = await user.pay(payee.public_key_strkey, "USD", 1 * UNIT)
                assert result.ok and await result.wait_final(10), result
            assert proxy.count("rewrite") >= 1
        assert before - await usd_of(a, payer) == 1 * UNIT

    run(scenario())


def test_a_another_requests_result_is_not_taken(
    a: Cluster, people: tuple[KeyPair, KeyPair], tmp_path: Path
) -> None:
    """A refused payment answered with the (final, valid) result of an earlier request under
    the new id: the client does not report it as executed.
    Before: a 10 000 USD payment alpha refused was reported as status 200, final."""

    async def scenario() -> None:
        payer, payee = people
        with mitm(a, tmp_path, "--rewrite-id", "stale") as proxy:
            async with await client(proxy.url, payer, a) as user:
                first = await user.pay(payee.public_key_strkey, "USD", 1 * UNIT)
                assert first.ok and await first.wait_final(10)
                user.request_timeout_s = 3
                with pytest.raises(ConstellationClientError) as unanswered:
                    await user.pay(payee.public_key_strkey, "USD", 10_000 * UNIT)
                print("second payment:", unanswered.value)
                assert "no verified answer" in str(unanswered.value)
                assert "may or may not have been executed" in str(unanswered.value)
            assert proxy.count("stale") == 1

    run(scenario())


# --- (b) a replayed finalized notification -------------------------------------------------


def test_b_a_replayed_notification_is_reported_once(
    a: Cluster, people: tuple[KeyPair, KeyPair], tmp_path: Path
) -> None:
    """The payee's connection gets the final notification of one payment, then 3 replays of
    it (valid proof): the client reports one. Before: 4 final notifications for 1 payment."""

    async def scenario() -> None:
        payer, payee = people
        with mitm(a, tmp_path, "--replay", "3", "--replay-delay", "0.2") as proxy:
            async with await client(proxy.url, payee, a) as user:
                sender = await Raw.open(a.alpha.url, payer, bytes.fromhex(pin(a)))
                paid = await sender.ask(
                    PaymentRequest(*sender.header(), "USD", 2 * UNIT, payee.public_key)
                )
                await sender.close()
                assert isinstance(paid, QuantumResultMessage), paid
                finals = 0
                while (notice := await user.next_notification(2)) is not None:
                    finals += await notice.wait_final(2)
                assert proxy.count("replay") == 3
                assert finals == 1, finals

    run(scenario())


# --- (c) forged auditor keys --------------------------------------------------------------


def test_c_forged_auditor_keys_are_refused(a: Cluster, tmp_path: Path) -> None:
    """A fake alpha serves info and a settings chain naming the attacker's keys (signed
    under A's real id) and would answer with self-signed final results: the pinned client
    refuses to connect, so no request is ever sent to it.
    Before: pay(50 000 USD) came back 'final, 3 of 3 signatures', balances 1 000 000 USD."""

    async def scenario() -> None:
        payer = KeyPair.random()
        with mitm(a, tmp_path, "--forge-keys") as proxy:
            with pytest.raises(ConstellationClientError) as refused:
                async with await client(proxy.url, payer, a) as user:
                    await user.pay(payer.public_key_strkey, "USD", 50_000 * UNIT)
            print("refused:", refused.value)
            assert proxy.count("forged-chain") >= 1
            assert proxy.count("forged-result") == 0
            assert "constellation id mismatch" in str(refused.value)

    run(scenario())


# --- (d) the handshake relayed to another constellation, and M8 ---------------------------


def test_d_a_handshake_relayed_to_another_constellation_is_refused(
    a: Cluster, b: Cluster, people_on_b: tuple[KeyPair, KeyPair], tmp_path: Path
) -> None:
    """HTTP from A, /ws/ relayed to B's alpha (same key as A's alpha): B's challenge is not
    signed for A, so the client pinned to A refuses the handshake.
    Before: the client connected to B (account 1 there) and its requests ran on B."""

    async def scenario() -> None:
        victim, _ = people_on_b
        with mitm(a, tmp_path, "--relay-to", b.alpha.url) as proxy:
            with pytest.raises(ConstellationClientError) as refused:
                async with await client(proxy.url, victim, a) as user:
                    await user.account_data()
            print("refused:", refused.value)
            assert proxy.count("relay") == 1
            assert "handshake refused" in str(refused.value)
            assert "not signed for the pinned constellation" in str(refused.value)

    run(scenario())


def test_a_request_signed_for_a_is_refused_by_b(
    a: Cluster, b: Cluster, people_on_b: tuple[KeyPair, KeyPair]
) -> None:
    """The same keys are registered on A and B. A payment signed for A and executed on A,
    sent again as the same bytes on a B session, is refused (401); signed for B, the same
    payment is executed there. Before (M8): nothing told the two constellations apart."""

    async def scenario() -> None:
        payer, payee = people_on_b
        on_a = await Raw.open(a.alpha.url, payer, bytes.fromhex(pin(a)))
        on_b = await Raw.open(b.alpha.url, payer, bytes.fromhex(pin(b)))
        try:
            request = PaymentRequest(*on_a.header(), "USD", 1 * UNIT, payee.public_key)
            executed_on_a = await on_a.ask(request)
            assert isinstance(executed_on_a, QuantumResultMessage), executed_on_a
            assert executed_on_a.status == 200
            replayed_on_b = await on_b.ask(request, bytes.fromhex(pin(a)))
            assert isinstance(replayed_on_b, ResultMessage), replayed_on_b
            assert replayed_on_b.status == 401 and "signature" in replayed_on_b.description
            signed_for_b = await on_b.ask(request)
            assert isinstance(signed_for_b, QuantumResultMessage), signed_for_b
            assert signed_for_b.status == 200
        finally:
            await on_a.close()
            await on_b.close()

    assert pin(a) != pin(b)
    run(scenario())


# --- the page through the proxy -----------------------------------------------------------


@pytest.fixture(scope="module")
def chromium(a: Cluster) -> Iterator[object]:
    """Headless Chromium from the Debian package (no browser download)."""
    playwright_sync = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium (tools/setup.sh installs it)")
    from tests.browser.test_trading import CHROMIUM_ARGS

    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def page_through(chromium: object, proxy: Mitm, cluster: Cluster) -> object:
    """Opens the page through the proxy, pinned by its link to `cluster`'s id."""
    context = chromium.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{proxy.url}/?constellation={pin(cluster)}")
    return page


@pytest.mark.browser
def test_the_page_works_through_the_proxy(chromium: object, a: Cluster, tmp_path: Path) -> None:
    """Pass-through: the page, its scripts and its WebSocket load through the proxy."""
    from playwright.sync_api import expect

    with mitm(a, tmp_path) as proxy:
        page = page_through(chromium, proxy, a)
        page.click("#create-key")  # type: ignore[attr-defined]
        expect(page.locator("#connection")).to_have_text("Connected")  # type: ignore[attr-defined]
        expect(page.locator("#trust-error")).to_be_hidden()  # type: ignore[attr-defined]


@pytest.mark.browser
def test_the_page_refuses_forged_keys(chromium: object, a: Cluster, tmp_path: Path) -> None:
    """(c) in the browser: the forged chain does not verify from the pinned id."""
    from playwright.sync_api import expect

    with mitm(a, tmp_path, "--forge-keys") as proxy:
        page = page_through(chromium, proxy, a)
        banner = page.locator("#trust-error")  # type: ignore[attr-defined]
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("this node serves another constellation")
        expect(banner).to_have_attribute("data-reason", "genesis-mismatch")
        expect(page.locator("body")).to_have_attribute("data-trust", "refused")  # type: ignore[attr-defined]
        print("page says:", banner.inner_text())
        assert proxy.count("forged-result") == 0


@pytest.mark.browser
def test_the_page_refuses_a_relayed_handshake(
    chromium: object, a: Cluster, b: Cluster, tmp_path: Path
) -> None:
    """(d) in the browser: the challenge of B's alpha is refused by a page pinned to A."""
    from playwright.sync_api import expect

    with mitm(a, tmp_path, "--relay-to", b.alpha.url) as proxy:
        page = page_through(chromium, proxy, a)
        page.click("#create-key")  # type: ignore[attr-defined]
        banner = page.locator("#trust-error")  # type: ignore[attr-defined]
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("Refused")
        expect(page.locator("body")).to_have_attribute("data-trust", "refused")  # type: ignore[attr-defined]
        expect(page.locator("#connection")).to_have_text("Refused")  # type: ignore[attr-defined]
        print("page says:", banner.inner_text())
        assert proxy.count("relay") >= 1


@pytest.mark.browser
def test_the_page_counts_replays_and_ignores_them(
    chromium: object, a: Cluster, tmp_path: Path
) -> None:
    """(b) in the browser: the deposit's final notification replayed 3 times is counted in
    the verification log as ignored, and the balance shows the deposit once."""
    from playwright.sync_api import expect

    with mitm(a, tmp_path, "--replay", "3", "--replay-delay", "0.2") as proxy:
        page = page_through(chromium, proxy, a)
        page.click("#create-key")  # type: ignore[attr-defined]
        expect(page.locator("#connection")).to_have_text("Connected")  # type: ignore[attr-defined]
        address = page.locator("#public-key").inner_text()  # type: ignore[attr-defined]
        a.faucet(address, "USD", "7")
        row = page.locator("#balances tbody tr", has_text="USD")  # type: ignore[attr-defined]
        total = row.locator("td").nth(1)  # asset, total, locked, available (decimals)
        expect(total).to_have_text("7", timeout=30_000)
        expect(page.locator("#replay-count")).to_have_text("3", timeout=10_000)  # type: ignore[attr-defined]
        expect(total).to_have_text("7")  # not 14: a replayed deposit is not counted twice
        assert proxy.count("replay") == 3


@pytest.mark.browser
def test_the_page_ignores_a_rewritten_status(
    chromium: object, a: Cluster, people: tuple[KeyPair, KeyPair], tmp_path: Path
) -> None:
    """(a) in the browser: a payment whose results say 500 is shown finalized, no error, and
    the balance moves once."""
    from playwright.sync_api import expect

    _, payee = people
    with mitm(a, tmp_path, "--rewrite-status", "500") as proxy:
        page = page_through(chromium, proxy, a)
        page.click("#create-key")  # type: ignore[attr-defined]
        expect(page.locator("#connection")).to_have_text("Connected")  # type: ignore[attr-defined]
        a.faucet(page.locator("#public-key").inner_text(), "USD", "5")  # type: ignore[attr-defined]
        row = page.locator("#balances tbody tr", has_text="USD")  # type: ignore[attr-defined]
        total = row.locator("td").nth(1)  # asset, total, locked, available (decimals)
        expect(total).to_have_text("5", timeout=30_000)
        page.fill("#pay-destination", payee.public_key_strkey)  # type: ignore[attr-defined]
        page.select_option("#pay-asset", "USD")  # type: ignore[attr-defined]
        page.fill("#pay-amount", "1")  # type: ignore[attr-defined]
        page.click("#pay-form button[type=submit]")  # type: ignore[attr-defined]
        history = page.locator("#history tbody tr", has_text="sent 1 USD")  # type: ignore[attr-defined]
        expect(history.first).to_contain_text("finalized")
        expect(total).to_have_text("4")
        expect(page.locator("#messages")).not_to_contain_text("internal error")  # type: ignore[attr-defined]
        assert proxy.count("rewrite") >= 1
