"""The one fixture tests of async code that reads the database share.

`database_sync_to_async` runs in a worker thread with its own database connection; left open,
it keeps the test database from being dropped at the end of the session. A module (or
conftest) that needs it imports `thread_connections_closed` by name: pytest then applies it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest


@pytest.fixture(autouse=True)
async def thread_connections_closed() -> AsyncIterator[None]:
    """Closes the database connections of the threads `database_sync_to_async` ran in."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()
