"""One alpha node serving real clients: real daphne, real engine worker, PostgreSQL, Redis.

Goal: show the whole client path works and fails cleanly: registration by deposit, payments,
a trade across two clients, cancellation, every rejection from the client's side, concurrent
clients, and a worker killed mid-stream that comes back with the same state.
Method: a module-scoped single-node constellation (tools/cluster.py); the real Python client;
deposits through the local ledger's faucet command. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import time

from websockets.asyncio.client import connect

from constellation_client import BUY, SELL, ConstellationClient, StatusCode
from exchange.core.matching import order_id_of
from quanta.core.envelopes import signature_valid
from quanta.core.keys import KeyPair
from quanta.core.testing import sign_message
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import HandshakeResponse, MessageEnvelope, PaymentRequest
from tests.cluster.conftest import run
from tests.cluster.pins import pin
from tools.cluster import Cluster, info_reaches, wait_for_restart

UNIT = 10_000_000


async def funded(cluster: Cluster, deposits: list[tuple[str, str]]) -> ConstellationClient:
    """Connects a new key and deposits (asset, amount) pairs; waits for each notification."""
    keypair = KeyPair.random()
    client = await ConstellationClient.connect(
        cluster.alpha.url, keypair, constellation_id=pin(cluster)
    )
    for asset, amount in deposits:
        await asyncio.to_thread(cluster.faucet, keypair.public_key_strkey, asset, amount)
        notification = await client.next_notification(timeout_s=15)
        assert notification is not None, f"no deposit notification for {asset}"
        assert notification.finalized
    return client


async def balances(client: ConstellationClient) -> dict[str, tuple[int, int]]:
    result = await client.account_data()
    assert result.ok, result.description
    assert result.account_data is not None
    return {b.asset: (b.amount, b.liabilities) for b in result.account_data.balances}


def test_deposit_registers_the_account(single_node: Cluster) -> None:
    async def scenario() -> None:
        client = await funded(single_node, [("USD", "100")])
        assert await balances(client) == {"USD": (100 * UNIT, 0)}
        await client.close()

    run(scenario())


def test_deposit_below_minimum_does_not_register(single_node: Cluster) -> None:
    async def scenario() -> None:
        keypair = KeyPair.random()
        client = await ConstellationClient.connect(
            single_node.alpha.url, keypair, constellation_id=pin(single_node)
        )
        await asyncio.to_thread(single_node.faucet, keypair.public_key_strkey, "USD", "0.5")
        assert await client.next_notification(timeout_s=2) is None
        result = await client.account_data()
        assert result.status == StatusCode.UNAUTHORIZED
        await client.close()

    run(scenario())


def test_payment_is_final_and_reaches_the_payee(single_node: Cluster) -> None:
    async def scenario() -> None:
        alice = await funded(single_node, [("USD", "50")])
        bob = await funded(single_node, [("USD", "20")])
        result = await alice.pay(bob.public_key, "USD", 5 * UNIT)
        assert result.ok, result.description
        assert await result.wait_final(5)
        assert result.signatures_verified == 1
        notification = await bob.next_notification(timeout_s=10)
        assert notification is not None
        assert notification.apex == result.apex
        assert (await balances(bob))["USD"] == (25 * UNIT, 0)
        assert (await balances(alice))["USD"] == (45 * UNIT, 0)
        await alice.close()
        await bob.close()

    run(scenario())


def test_two_clients_trade_to_a_fill_and_cancel(single_node: Cluster) -> None:
    async def scenario() -> None:
        seller = await funded(single_node, [("USD", "10"), ("XLM", "100")])
        buyer = await funded(single_node, [("USD", "100")])
        sell = await seller.place_order("XLM", SELL, 40 * UNIT, 0.5)
        assert sell.ok, sell.description
        assert (await balances(seller))["XLM"] == (100 * UNIT, 40 * UNIT)
        buy = await buyer.place_order("XLM", BUY, 30 * UNIT, 0.6)
        assert buy.ok, buy.description
        assert await buy.wait_final(5)
        assert (await balances(buyer)) == {"USD": (85 * UNIT, 0), "XLM": (30 * UNIT, 0)}
        assert (await balances(seller)) == {"USD": (25 * UNIT, 0), "XLM": (70 * UNIT, 10 * UNIT)}
        cancel = await seller.cancel_order(order_id_of(sell.apex))
        assert cancel.ok, cancel.description
        assert (await balances(seller))["XLM"] == (70 * UNIT, 0)
        again = await seller.cancel_order(order_id_of(sell.apex))
        assert again.status == StatusCode.BAD_REQUEST
        assert "unknown order" in again.description
        await seller.close()
        await buyer.close()

    run(scenario())


def test_business_rejections_change_nothing(single_node: Cluster) -> None:
    async def scenario() -> None:
        alice = await funded(single_node, [("USD", "10")])
        before = await balances(alice)
        cases = [
            (
                await alice.pay(alice.public_key, "DOGE", UNIT),
                StatusCode.BAD_REQUEST,
                "unknown asset",
            ),
            (
                # XLM: a quote-asset payment of the minimum balance would register the key.
                await alice.pay(KeyPair.random().public_key_strkey, "XLM", UNIT),
                StatusCode.BAD_REQUEST,
                "not registered",
            ),
            (
                await alice.place_order("XLM", SELL, UNIT, 1.0),
                StatusCode.BAD_REQUEST,
                "insufficient",
            ),
            (
                await alice.place_order("XLM", BUY, UNIT, float("nan")),
                StatusCode.BAD_REQUEST,
                "price",
            ),
            (await alice.place_order("USD", BUY, UNIT, 1.0), StatusCode.BAD_REQUEST, "no market"),
            (await alice.cancel_order(123_456_789), StatusCode.BAD_REQUEST, "unknown order"),
        ]
        for result, status, fragment in cases:
            assert result.status == status, (result.status, result.description)
            assert fragment in result.description
        assert await balances(alice) == before
        await alice.close()

    run(scenario())


def test_malformed_frames_get_status_codes_and_the_connection_survives(
    single_node: Cluster,
) -> None:
    async def scenario() -> None:
        keypair = KeyPair.random()
        cid = single_node.constellation_id()
        ws_url = single_node.alpha.url.replace("http", "ws") + "/ws/"
        async with connect(ws_url, max_size=2**24) as ws:
            challenge = decode(MessageEnvelope, await ws.recv()).message.handshake_data
            await ws.send(encode(sign_message(HandshakeResponse(1, challenge), keypair, cid)))
            assert decode(MessageEnvelope, await ws.recv()).message.account_id == 0

            async def answer_to(frame: bytes) -> tuple[int, str]:
                await ws.send(frame)
                message = decode(MessageEnvelope, await asyncio.wait_for(ws.recv(), 10)).message
                return int(message.status), message.description

            assert (await answer_to(b"\x00\x01garbage"))[0] == 400
            assert (await answer_to(b"\x00" * (64 * 1024 + 4)))[0] == 413
            request = PaymentRequest(7, keypair.public_key, 1, "USD", 1, keypair.public_key)
            forged = sign_message(request, KeyPair.random(), cid)
            assert (await answer_to(encode(forged)))[0] == 401
            tampered = bytearray(encode(sign_message(request, keypair, cid)))
            tampered[-1] ^= 1
            invalid = (401, "invalid signature (signed for another constellation?)")
            assert (await answer_to(bytes(tampered))) == invalid
            # Signed by the right key for another constellation: refused like a forgery.
            elsewhere = sign_message(request, keypair, bytes(reversed(cid)))
            assert (await answer_to(encode(elsewhere))) == invalid
            status, text = await answer_to(encode(sign_message(request, keypair, cid)))
            assert (status, "not registered" in text) == (401, True)

    run(scenario())


def test_failed_handshake_closes_the_connection(single_node: Cluster) -> None:
    async def scenario() -> None:
        cid = single_node.constellation_id()
        ws_url = single_node.alpha.url.replace("http", "ws") + "/ws/"
        async with connect(ws_url) as ws:
            await ws.recv()
            wrong = HandshakeResponse(1, bytes(32))
            await ws.send(encode(sign_message(wrong, KeyPair.random(), cid)))
            answer = decode(MessageEnvelope, await ws.recv()).message
            assert answer.status == StatusCode.UNAUTHORIZED
            await asyncio.wait_for(ws.wait_closed(), 10)
            assert ws.close_code == 4401
        # The right challenge, signed for another constellation, fails the same way.
        async with connect(ws_url) as ws:
            frame = await ws.recv()
            request = decode(MessageEnvelope, frame)
            assert request.signature.signer == single_node.alpha.keypair.public_key
            assert signature_valid(frame, request, cid)  # the node signs for its constellation
            challenge = request.message.handshake_data
            elsewhere = HandshakeResponse(1, challenge)
            await ws.send(encode(sign_message(elsewhere, KeyPair.random(), bytes(32))))
            answer = decode(MessageEnvelope, await ws.recv()).message
            assert answer.status == StatusCode.UNAUTHORIZED
            await asyncio.wait_for(ws.wait_closed(), 10)
            assert ws.close_code == 4401

    run(scenario())


def test_concurrent_clients_conserve_funds(single_node: Cluster) -> None:
    async def scenario() -> None:
        clients = [await funded(single_node, [("USD", "10")]) for _ in range(8)]

        async def pay_ring(index: int) -> list[bool]:
            client, target = clients[index], clients[(index + 1) % len(clients)]
            results = [await client.pay(target.public_key, "USD", UNIT // 10) for _ in range(15)]
            return [r.ok and r.finalized for r in results]

        outcomes = await asyncio.gather(*(pay_ring(i) for i in range(len(clients))))
        assert all(all(ok) for ok in outcomes)
        totals = [(await balances(c))["USD"][0] for c in clients]
        assert sum(totals) == 8 * 10 * UNIT
        assert totals == [10 * UNIT] * 8  # every account paid and received the same
        for client in clients:
            await client.close()

    run(scenario())


def test_engine_killed_mid_stream_restarts_with_the_same_state(single_node: Cluster) -> None:
    async def scenario() -> None:
        alice = await funded(single_node, [("USD", "30")])
        bob = await funded(single_node, [("USD", "30")])
        for _ in range(10):
            assert (await alice.pay(bob.public_key, "USD", UNIT)).finalized
        before_alice, before_bob = await balances(alice), await balances(bob)
        apex = single_node.info()["apex"]
        await asyncio.to_thread(single_node.kill_process, single_node.alpha, "engine")
        restarted_ms = time.time_ns() // 1_000_000
        await asyncio.to_thread(single_node.start_process, single_node.alpha, "engine")
        await asyncio.to_thread(wait_for_restart, single_node, restarted_ms, "Ready", 30)
        assert await balances(alice) == before_alice
        assert await balances(bob) == before_bob
        after = await alice.pay(bob.public_key, "USD", UNIT)
        assert after.ok, after.description
        assert after.apex > apex
        await alice.close()
        await bob.close()

    run(scenario())


def test_nonces_near_two_to_the_64_are_snapshotted_and_reloaded(single_node: Cluster) -> None:
    # A nonce of 2^63 + 5 is valid (XDR uint64); it once stopped every snapshot save for good
    # (a signed 64-bit column), so the snapshot froze while quanta kept executing.
    async def scenario() -> None:
        alice = await funded(single_node, [("USD", "30")])
        bob = await funded(single_node, [("USD", "30")])
        alice.nonces.observe(2**63 + 4)
        high = await alice.pay(bob.public_key, "USD", UNIT)
        assert high.finalized, high.description
        alice.nonces.observe(2**64 - 3)
        top = await alice.pay(bob.public_key, "USD", UNIT)  # nonce 2^64 - 2
        assert top.finalized, top.description
        assert await asyncio.to_thread(info_reaches, single_node, "snapshot_apex", top.apex, 20)
        await asyncio.to_thread(single_node.kill_process, single_node.alpha, "engine")
        restarted_ms = time.time_ns() // 1_000_000
        await asyncio.to_thread(single_node.start_process, single_node.alpha, "engine")
        await asyncio.to_thread(wait_for_restart, single_node, restarted_ms, "Ready", 30)
        data = await alice.account_data()  # the last nonce there is: 2^64 - 1
        assert data.account_data is not None and data.account_data.nonce == 2**64 - 1
        assert (await balances(bob))["USD"] == (32 * UNIT, 0)
        after = await bob.pay(alice.public_key, "USD", UNIT)
        assert after.finalized, after.description
        assert await asyncio.to_thread(info_reaches, single_node, "snapshot_apex", after.apex, 20)
        await alice.close()
        await bob.close()

    run(scenario())
