"""Settings of a node whose auditor forges its signatures (tests/cluster/tampering.py)."""

from constellation_site.settings.base import *  # noqa: F403

AUDITOR_NODE_CLASS = "tests.cluster.tampering.TamperingAuditorNode"
