"""The constellation id a cluster test pins its clients to.

A test starts its cluster itself, so trusting the genesis its alpha publishes is sound here
(trust on first use); the client then verifies the whole settings chain from that pin like
any other client would.
"""

from __future__ import annotations

import time

from constellation_client.chain import ChainError, genesis_id
from constellation_client.wire import node_urls
from tools.cluster import Cluster

PIN_TIMEOUT_S = 10.0
PUBLISHED_WITHIN_S = 30.0
"""How long alpha may take to publish its genesis after the nodes are Ready: the chain shows
an update only once its quantum is final and persisted (`settings_chain_after`), and with
auditors the genesis is final only once they signed it, persisted at alpha's next flush."""


def pin(cluster: Cluster) -> bytes:
    """Returns the id the cluster's published genesis settings hash to (waiting, bounded,
    until alpha publishes it)."""
    deadline = time.monotonic() + PUBLISHED_WITHIN_S
    while True:
        try:
            return genesis_id(node_urls(cluster.alpha.url)[1], PIN_TIMEOUT_S)
        except ChainError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
