"""Channel and group names of the quanta app, in one place."""

ENGINE_CHANNEL = "quanta"
"""The worker channel the engine consumes (`manage.py runworker quanta`)."""


def account_group(public_key: bytes) -> str:
    """Returns the group every gateway connection of this key joins."""
    return f"key.{public_key.hex()}"


HERALD_GROUP = "herald"
"""The group of alpha's herald connections: every auditor gets every quantum."""
