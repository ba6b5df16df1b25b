"""What persisting final quanta costs as the history grows from 0 to 1 000 000 quanta (issue 21).

Goal: the history is the one part of a node that grows without bound (the quanta, effects
groups and trades tables and their indexes); the engine's state does not hold it, and the
engine's in-memory buffers of quanta are bounded (`RECENT_QUANTA_MAX`, `RESEND_QUANTA_MAX`,
`RECENT_EXECUTED_MAX`). So a finalized/s that stays flat needs `quanta_persist` (every final
quantum on every node, at every flush) to cost the same at any history length.

Method:
1. A scratch database (cloned from the migrated template of tools/cluster.py, dropped at the
   end) is filled by PostgreSQL itself (`INSERT ... SELECT generate_series`) up to each of
   `--history` lengths in turn: per quantum one QuantumRecord with real XDR, two effects groups
   (of 10 000 accounts, round robin) and, every third quantum, a trade. Then ANALYZE.
2. At each length, timed: `quanta_persist` of `--batches` batches of `--rows` real rows (payments
   and crossing orders executed by a real engine, renumbered above the history), as the flush
   loop writes them; wall and process CPU per row, median batch.
3. Reference in the same run: single-core ed25519 verifications/s; the JSON line of each
   length carries the per-row cost in verification-equivalents.
Output: one JSON line per history length on stdout. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script: find the project
    sys.path.insert(0, str(ROOT))

from bench.engine import ed25519_verifications_per_second  # noqa: E402
from tools.cluster import database_create, template_database_ensure  # noqa: E402

RUN = os.environ.get("CONSTELLATION_TEST_RUN", "")
ACCOUNTS = 10_000


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--history", default="0,100000,1000000", help="lengths, ascending")
    parser.add_argument("--rows", type=int, default=50, help="final quanta per flush")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--database", default=f"constellation_bench_history{RUN}")
    return parser.parse_args()


def _django_setup(database: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "constellation_site.settings.base"
    os.environ["CONSTELLATION_DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{database}"
    import django

    django.setup()


def _real_rows(count: int) -> list[Any]:
    """Returns `count` final rows of payments and crossing orders from a real engine."""
    from chronicler.tests.builders import UNIT, Chain
    from exchange.core.orderbook import Side
    from quanta.core.testing import keypair

    chain = Chain()
    traders = [keypair(10 + i) for i in range(8)]
    for trader in traders:
        chain.fund(trader, ("USD", 1_000_000 * UNIT), ("XLM", 1_000_000 * UNIT))
    chain.take_rows()
    for i in range(count):
        who, other = traders[i % 8], traders[(i + 3) % 8]
        if i % 2:
            chain.pay(who, other, UNIT)
        else:
            chain.order(who, Side.BUY if i % 4 else Side.SELL, UNIT, 1.0)
    return chain.take_rows()[:count]


def _fill(start: int, end: int, template: Any) -> float:
    """Writes history rows for apexes start..end; returns the seconds it took."""
    from django.db import connection

    started = time.perf_counter()
    if end < start:
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO quanta_quantumrecord (apex, quantum_hash, payload_hash, timestamp_ms,"
            " kind, initiator, data, signatures)"
            " SELECT g, sha256(int8send(g)), sha256(int8send(-g)), 1700000000000 + g,"
            " 1, 1 + g %% %s, %s, %s FROM generate_series(%s, %s) AS g",
            [ACCOUNTS, template.data, template.signatures, start, end],
        )
        cursor.execute(
            "INSERT INTO quanta_effectsgrouprecord (apex, account, account_sequence, data)"
            " SELECT g, 1 + g %% %s, g, %s FROM generate_series(%s, %s) AS g"
            " UNION ALL SELECT g, 1 + (g + 1) %% %s, g, %s FROM generate_series(%s, %s) AS g",
            [ACCOUNTS, template.group_data[0], start, end] * 2,
        )
        cursor.execute(
            "INSERT INTO chronicler_traderecord (market, apex, index, price, amount,"
            " quote_amount, side, timestamp_ms)"
            " SELECT 'XLM', g, 0, 10000000, 10000000, 10000000, 2, 1700000000000 + g"
            " FROM generate_series(%s, %s, 3) AS g",
            [start, end],
        )
        cursor.execute("ANALYZE")
    return time.perf_counter() - started


def _persist_costs(rows: list[Any], above: int, per_batch: int) -> tuple[float, float]:
    """Persists `rows` renumbered above apex `above`, `per_batch` at a time; returns the
    median wall and CPU ms per row."""
    from quanta.node.persistence import quanta_persist

    renumbered = [dataclasses.replace(row, apex=above + 1 + i) for i, row in enumerate(rows)]
    wall, cpu = [], []
    for first in range(0, len(renumbered), per_batch):
        batch = renumbered[first : first + per_batch]
        started, started_cpu = time.perf_counter(), time.process_time()
        quanta_persist(rows=batch)
        wall.append((time.perf_counter() - started) * 1000 / len(batch))
        cpu.append((time.process_time() - started_cpu) * 1000 / len(batch))
    return statistics.median(wall), statistics.median(cpu)


def main() -> int:
    """Fills the history length by length and prints the persistence cost at each."""
    args = _arguments()
    template_database_ensure()
    database_create(args.database)
    try:
        _django_setup(args.database)
        from quanta.node_identity import history_kept

        assert history_kept(), "alpha keeps the history: the bench measures a prime node"
        rows = _real_rows(args.rows * args.batches)
        filled = 0
        for length in (int(h) for h in args.history.split(",")):
            fill_s = _fill(filled + 1, length, rows[0])
            filled = max(filled, length)
            wall_ms, cpu_ms = _persist_costs(rows, filled, args.rows)
            filled += len(rows)
            verify_per_s = ed25519_verifications_per_second(3000)
            print(
                json.dumps(
                    {
                        "history_quanta": length,
                        "rows_per_flush": args.rows,
                        "batches": args.batches,
                        "fill_s": round(fill_s, 1),
                        "persist_ms_per_quantum": round(wall_ms, 4),
                        "persist_cpu_ms_per_quantum": round(cpu_ms, 4),
                        "ed25519_verify_per_s": round(verify_per_s),
                        "persist_in_verifications": round(wall_ms * verify_per_s / 1000, 2),
                    }
                ),
                flush=True,
            )
    finally:
        from django.db import connections

        connections.close_all()
        database_create(args.database)  # leaves an empty clone, not a million rows
    return 0


if __name__ == "__main__":
    sys.exit(main())
