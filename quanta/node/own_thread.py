"""`OwnThread`: a thread of its own for an engine worker's database calls that must not wait.

Every `database_sync_to_async` call of a process runs in one shared thread, one call at a
time. In an engine worker that thread is the flush loop's: it persists the final quanta and
the snapshot batches, 20-80 ms per tick at half load and 100-400 ms saturated on alpha, and
up to 100-300 ms on an auditor (bench/README.md, 2026-12-07). A call queued behind them waited
as long. An auditor's execution of the next batch was such a call, so its signatures, and
alpha's finality, waited for persistence (`AuditorWorker.execution` now). The calls on an
`OwnThread` run one at a time, in order, as before, but never behind persistence. Like
`database_sync_to_async`, each call gives its database connection back to the pool when it
ends (CONN_MAX_AGE 0).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from channels.db import DatabaseSyncToAsync


class OwnThread:
    """One worker thread: calls run there one at a time, in the order they were made."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=name)

    async def run[T](self, call: Callable[[], T]) -> T:
        """Runs `call` (it may use the database) in the thread and returns what it returned."""
        run = DatabaseSyncToAsync(call, thread_sensitive=False, executor=self._executor)
        result: T = await run()
        return result

    def close(self) -> None:
        """Lets the thread end once its last call has (the worker is stopping)."""
        self._executor.shutdown(wait=False)
