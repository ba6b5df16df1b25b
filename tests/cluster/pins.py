"""The constellation id a cluster test pins its clients to.

A test starts its cluster itself, so trusting the genesis its alpha publishes is sound here
(trust on first use); the client then verifies the whole settings chain from that pin like
any other client would. `tools.cluster.published_pin` waits, bounded, until alpha published
it (the benchmarks pin the same way).
"""

from __future__ import annotations

from tools.cluster import published_pin as pin

__all__ = ["pin"]
