"""The local ledger's entries reach its readers in commit order, without gaps.

Goal: two transfers into the vault whose transactions commit in the opposite order of their
start must both be reported, each once, whatever moment the provider reads at: a reader that
has passed one entry never meets an earlier one later (ids are taken at insert and become
visible at commit, so `id > cursor` skipped such an entry for good).
Method: real PostgreSQL transactions on two threads; the first stays open (outer atomic
block) while the second transfers; the provider reads in between and again after both
committed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connections, transaction

from payments.providers.local_ledger.ledger import ISSUER, ledger_transfer, vault_open
from payments.providers.local_ledger.provider import LocalLedgerProvider
from quanta.core.testing import keypair
from quanta.core.xdr.schema import ProviderAsset, ProviderSettings

pytestmark = pytest.mark.django_db(databases=["default", "ledger"], transaction=True)

NODES = [keypair(i) for i in range(3)]
FIRST, SECOND = keypair(30), keypair(31)
WAIT_S = 10


def _provider() -> LocalLedgerProvider:
    assets = (ProviderAsset("USD", "USD", False),)
    settings = ProviderSettings("local", "vault", "VAULT", "", assets, 0)
    return LocalLedgerProvider(settings, NODES[0], tuple(k.public_key for k in NODES))


def _in_thread(target: Callable[[], None]) -> tuple[threading.Thread, threading.Event]:
    done = threading.Event()

    def run() -> None:
        try:
            target()
        finally:
            connections.close_all()
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done


def _waits_on_a_lock_or_is(done: threading.Event) -> None:
    """Returns once the thread finished or its transaction waits on a lock (the ledger may
    serialize writers); bounded by WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    sql = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock'"
    )
    with connections["ledger"].cursor() as cursor:
        while not done.is_set():
            cursor.execute(sql)
            if cursor.fetchone()[0] > 0:
                return
            assert time.monotonic() < deadline, "the second transfer neither ended nor waited"
            done.wait(0.01)


def test_a_transfer_committing_after_a_later_one_is_still_reported_once() -> None:
    vault_open("VAULT", tuple(k.public_key for k in NODES), 2)
    for payer in (FIRST, SECOND):
        ledger_transfer(ISSUER, payer.public_key_strkey, "USD", 100)
    provider = _provider()
    start = provider.notification_after("", 0).cursor
    first_inserted, release = threading.Event(), threading.Event()

    def first() -> None:
        with transaction.atomic(using="ledger"):
            ledger_transfer(FIRST.public_key_strkey, "VAULT", "USD", 10)
            first_inserted.set()
            assert release.wait(WAIT_S)

    first_thread, _ = _in_thread(first)
    assert first_inserted.wait(WAIT_S)
    second_thread, second_done = _in_thread(
        lambda: ledger_transfer(SECOND.public_key_strkey, "VAULT", "USD", 20) and None
    )
    _waits_on_a_lock_or_is(second_done)
    now_ms = time.time_ns() // 1_000_000 + 1_000
    early = provider.notification_after(start, now_ms)
    release.set()
    first_thread.join(WAIT_S)
    second_thread.join(WAIT_S)
    late = provider.notification_after(early.cursor, now_ms)

    reported = [(item.destination, item.amount) for item in (*early.items, *late.items)]
    assert reported == [(FIRST.public_key, 10), (SECOND.public_key, 20)]
    # Every node reading between the same cursors sees the same entries.
    between = provider.notification_between(start, late.cursor)
    assert [(i.destination, i.amount) for i in between.items] == reported
