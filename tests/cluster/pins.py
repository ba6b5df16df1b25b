"""The constellation id a cluster test pins its clients to.

A test starts its cluster itself, so trusting the genesis its alpha publishes is sound here
(trust on first use); the client then verifies the whole settings chain from that pin like
any other client would.
"""

from __future__ import annotations

from constellation_client.chain import genesis_id
from constellation_client.wire import node_urls
from tools.cluster import Cluster

PIN_TIMEOUT_S = 10.0


def pin(cluster: Cluster) -> bytes:
    """Returns the id the cluster's published genesis settings hash to."""
    return genesis_id(node_urls(cluster.alpha.url)[1], PIN_TIMEOUT_S)
