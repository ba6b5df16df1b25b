"""Fixtures of the chronicler's integration tests: a test database and Redis names of their own.

Other apps' tests may run at the same time on this machine: the test databases get a suffix
and every test gets its own Redis prefix (channel layer and market-data snapshots).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings

from chronicler.tests.builders import NODE
from quanta.tests.db_threads import thread_connections_closed  # noqa: F401 (autouse)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """Gives the chronicler's test databases names of their own."""
    for database in django_settings.DATABASES.values():
        test = database.setdefault("TEST", {})
        test["NAME"] = f"{test.get('NAME') or 'test_' + database['NAME']}_chronicler"


@pytest.fixture
def node_settings(settings: Any) -> Iterator[Any]:
    """Sets the node key and a fresh Redis prefix for the channel layer and the snapshots."""
    prefix = f"chronicler-test-{uuid.uuid4().hex[:12]}"
    layers = copy.deepcopy(django_settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["prefix"] = prefix
    settings.CHANNEL_LAYERS = layers
    settings.REDIS_PREFIX = prefix
    settings.NODE_SECRET_SEED = NODE.secret
    settings.NODE_PARTICIPATION = "prime"
    yield settings
    from chronicler.publisher import snapshots_clear

    snapshots_clear()
