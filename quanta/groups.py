"""Channel and group names of the quanta app, in one place."""

ENGINE_CHANNEL = "quanta"
"""The worker channel the engine consumes (`manage.py runworker quanta`)."""

GATEWAYS_GROUP = "gateways"
"""The group of every web process's gateway hub: results for account keys go to all of them,
and each hands them to its own connections of those keys (quanta/consumers/hub.py)."""

HERALD_GROUP = "herald"
"""The group of alpha's herald connections: every auditor gets every quantum."""
