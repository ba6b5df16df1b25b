"""Result status codes and the exception root of Constellation.

`StatusCode` mirrors the Centaurus result codes and is the single vocabulary every node and
client uses to say how a request ended. Expected client errors are raised as a
`ConstellationError` subclass carrying one of those codes, so the gateway and the engine can
turn any of them into a result message without knowing which check failed.
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class StatusCode(IntEnum):
    """Enumerates the result codes carried by result messages (values fixed by the protocol)."""

    SUCCESS = 200
    BAD_REQUEST = 400
    UNAUTHORIZED = 401
    FORBIDDEN = 403
    PAYLOAD_TOO_LARGE = 413
    TOO_MANY_REQUESTS = 429
    INVALID_STATE = 450
    INTERNAL_ERROR = 500
    SNAPSHOT_VALIDATION_FAILED = 550
    UNEXPECTED_MESSAGE = 551


class ConstellationError(Exception):
    """Represents an expected failure that is answered to the peer with a status code."""

    def __init__(self, status: StatusCode, message: str) -> None:
        """Stores the status code and the human-readable message; `str()` gives the message."""
        super().__init__(message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        """Returns the human-readable message alone, so it can be sent to the client as is."""
        return self.message

    def __repr__(self) -> str:
        """Shows the class, the status name and the message for logs."""
        return f"{type(self).__name__}({self.status.name}, {self.message!r})"


class _FixedStatusError(ConstellationError):
    """Base for the subclasses whose status code is fixed by the class itself."""

    # Each subclass sets this; keeping it a class attribute lets callers read the code of an
    # error class without instantiating it (e.g. when mapping classes to codes in tests).
    STATUS: ClassVar[StatusCode]

    def __init__(self, message: str) -> None:
        """Builds the error with the class's fixed status code and the given message."""
        super().__init__(self.STATUS, message)


class BadRequest(_FixedStatusError):  # noqa: N818 (status name)
    """Signals a malformed or invalid request (400)."""

    STATUS = StatusCode.BAD_REQUEST


class Unauthorized(_FixedStatusError):  # noqa: N818 (status name)
    """Signals a missing or invalid signature or an unauthenticated connection (401)."""

    STATUS = StatusCode.UNAUTHORIZED


class Forbidden(_FixedStatusError):  # noqa: N818 (status name)
    """Signals an authenticated peer asking for something it may not do (403)."""

    STATUS = StatusCode.FORBIDDEN


class TooManyRequests(_FixedStatusError):  # noqa: N818 (status name)
    """Signals a peer exceeding its rate limit or a full queue (429)."""

    STATUS = StatusCode.TOO_MANY_REQUESTS


class InvalidState(_FixedStatusError):  # noqa: N818 (status name)
    """Signals a request the node cannot serve in its current state, e.g. not Ready (450)."""

    STATUS = StatusCode.INVALID_STATE


class NotYetConfirmed(Exception):  # noqa: N818 - a condition, not an error of the caller
    """Signals that this node cannot confirm a quantum *yet*: its provider has not seen what
    alpha reported, a provider's network failed, or the quantum is stamped ahead of this
    node's clock. Not a ConstellationError on purpose: the engine must not turn it into a
    mismatch. An auditor does not sign, keeps the quantum and checks it again later; only a
    contradiction (a ConstellationError) makes it Failed. `retry_after_ms` is when a retry
    can first succeed, if the cause knows (a clock that must catch up)."""

    def __init__(self, message: str, retry_after_ms: int | None = None) -> None:
        """Keeps the reason and, if known, the earliest useful retry."""
        super().__init__(message)
        self.retry_after_ms = retry_after_ms
