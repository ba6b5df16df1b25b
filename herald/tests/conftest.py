"""Fixtures of the herald's in-process tests: an in-memory channel layer and alpha's key.

The consumer and the link talk to the engine through the channel layer; here it is Channels'
in-memory one, shared by the code under test and the test, which plays the engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from channels.layers import get_channel_layer

from quanta.core.testing import keypair
from quanta.tests.db_threads import thread_connections_closed  # noqa: F401 (autouse)

ALPHA, AUDITOR, STRANGER = keypair(250), keypair(251), keypair(252)
"""Alpha and its one auditor; a key the constellation does not know."""

TIMEOUT_S = 5.0
"""Bound of every wait in these tests."""


@pytest.fixture
def layer(settings: Any) -> Iterator[Any]:
    """The in-memory channel layer, as every process of the test sees it."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    yield get_channel_layer()
