"""Speed of the chronicler's history pages at 1 000 000 quanta.

Goal: show that a page of an account's history costs the same at the start, the middle and the
end of a long chain, in both directions, because it is one index range scan of the per-account
effects index plus a primary-key fetch of the page's quanta.

Method:
1. A scratch database (`--database`, cloned from the migrated template of tools/cluster.py,
   dropped at the end unless `--keep`) gets `--quanta` QuantumRecord rows and the effects
   index of two accounts, written by PostgreSQL itself (`INSERT ... SELECT generate_series`):
   account 1 is in every quantum (the deepest possible history), account 2 in every tenth.
   Every row holds real XDR (a payment quantum, its payload proof, an effects group), so
   decoding costs what it costs live. Then ANALYZE.
2. Timed, `--repeat` times each, median: `chronicler.selectors.history_page` (the function the
   WebSocket calls: validation, index scan, fetch, XDR decode) for pages of `--limit` items
   at the first, middle and last apex, ASC and DESC, for both accounts.
3. References in the same run: a primary-key fetch of one QuantumRecord through the ORM, and
   single-core ed25519 verifications per second (PyNaCl); each page is reported as a ratio to
   both. Output: one JSON object on stdout, one human line on stderr.
Not part of the test suite: see bench/README.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script: find the project
    sys.path.insert(0, str(ROOT))

import nacl.signing  # noqa: E402
import psycopg  # noqa: E402

from tools.cluster import PG_ADMIN_URL, database_create, template_database_ensure  # noqa: E402


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quanta", type=int, default=1_000_000)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database", default="constellation_bench_chronicler")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    return parser.parse_args()


def _django_setup(database: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "constellation_site.settings.base"
    os.environ["CONSTELLATION_DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{database}"
    import django

    django.setup()


def _templates() -> dict[str, bytes]:
    """Returns real XDR of one payment quantum, its payload proof and an effects group."""
    from chronicler.tests.builders import UNIT, Chain
    from quanta.core.testing import keypair
    from quanta.core.xdr.codec import encode

    chain = Chain()
    alice, bob = keypair(1), keypair(2)
    chain.fund(alice, ("USD", 100 * UNIT))
    chain.fund(bob, ("USD", 100 * UNIT))
    chain.pay(alice, bob, UNIT)
    row = chain.take_rows()[-1]
    return {"data": row.data, "signatures": row.signatures, "group": encode(row.groups[0])}


def _fill(quanta: int, templates: dict[str, bytes]) -> float:
    """Writes the chain and the effects index; returns the seconds it took."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO quanta_quantumrecord (apex, quantum_hash, payload_hash, timestamp_ms,"
            " kind, initiator, data, signatures)"
            " SELECT g, sha256(int8send(g)), sha256(int8send(-g)), 1700000000000 + g * 10,"
            " 1, 1, %s, %s FROM generate_series(1, %s) AS g",
            [templates["data"], templates["signatures"], quanta],
        )
        cursor.execute(
            "INSERT INTO quanta_effectsgrouprecord (apex, account, account_sequence, data)"
            " SELECT g, 1, g, %s FROM generate_series(1, %s) AS g"
            " UNION ALL SELECT g, 2, g / 10, %s FROM generate_series(10, %s, 10) AS g",
            [templates["group"], quanta, templates["group"], quanta],
        )
        cursor.execute(
            "INSERT INTO exchange_accountrecord (id, public_key, nonce, sequence)"
            " VALUES (1, %s, 0, 0), (2, %s, 0, 0)",
            [bytes([1]) * 32, bytes([2]) * 32],
        )
        cursor.execute("ANALYZE")
    return time.perf_counter() - started


def _median_ms(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _pages(quanta: int, limit: int, repeat: int) -> dict[str, float]:
    from chronicler.selectors import history_page
    from quanta.core.xdr.schema import QuantumInfoRequest, QueryOrder

    middle = quanta // 2
    cases = {
        "first_asc": (0, QueryOrder.ASC),
        "middle_asc": (middle, QueryOrder.ASC),
        "last_asc": (quanta - limit, QueryOrder.ASC),
        "first_desc": (limit + 1, QueryOrder.DESC),
        "middle_desc": (middle, QueryOrder.DESC),
        "last_desc": (0, QueryOrder.DESC),
    }
    results: dict[str, float] = {}
    for account in (1, 2):
        key = bytes([account]) * 32
        for name, (cursor, order) in cases.items():
            request = QuantumInfoRequest(1, key, cursor, order, limit)
            items = len(history_page(request).items)
            # Account 1 is in every quantum; account 2 has only 5 quanta below apex 51.
            assert items == limit or (account == 2 and items > 0), (account, name, items)
            results[f"account{account}_{name}"] = _median_ms(
                functools.partial(history_page, request), repeat
            )
    return results


def _pk_lookup_ms(quanta: int, repeat: int) -> float:
    from quanta.models import QuantumRecord

    apexes = iter(range(1, quanta, max(1, quanta // (repeat * 10))))
    return _median_ms(lambda: QuantumRecord.objects.get(apex=next(apexes)), repeat * 10)


def _ed25519_per_s(count: int = 3000) -> float:
    key = nacl.signing.SigningKey(bytes(32))
    digest = bytes(range(32))
    signature = key.sign(digest).signature
    verify = key.verify_key.verify
    started = time.perf_counter()
    for _ in range(count):
        verify(digest, signature)
    return count / (time.perf_counter() - started)


def _plan() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN SELECT * FROM quanta_effectsgrouprecord WHERE account = 1 AND apex > 500000"
            " ORDER BY apex LIMIT 51"
        )
        return " / ".join(row[0].strip() for row in cursor.fetchall()[:2])


def main() -> None:
    """Runs the benchmark and prints its figures."""
    args = _arguments()
    template_database_ensure()
    database_create(args.database)
    try:
        _django_setup(args.database)
        fill_s = _fill(args.quanta, _templates())
        pages = _pages(args.quanta, args.limit, args.repeat)
        pk_ms = _pk_lookup_ms(args.quanta, args.repeat)
        verifications = _ed25519_per_s()
        result: dict[str, Any] = {
            "quanta": args.quanta,
            "limit": args.limit,
            "fill_s": round(fill_s, 1),
            "page_ms": {k: round(v, 3) for k, v in pages.items()},
            "pk_lookup_ms": round(pk_ms, 3),
            "ed25519_verifications_per_s": round(verifications),
            "page_over_pk_lookup": {k: round(v / pk_ms, 1) for k, v in pages.items()},
            "page_in_ed25519_verifications": {
                k: round(v * verifications / 1000) for k, v in pages.items()
            },
            "plan": _plan(),
        }
        print(json.dumps(result, indent=1))
        worst = max(pages.values())
        print(
            f"{args.quanta} quanta: page of {args.limit} in {min(pages.values()):.2f}-"
            f"{worst:.2f} ms (pk lookup {pk_ms:.3f} ms, x{worst / pk_ms:.1f})",
            file=sys.stderr,
        )
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
