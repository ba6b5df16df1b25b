"""Proves the status codes match the protocol values and each error carries its code."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from quanta.core.status import (
    BadRequest,
    ConstellationError,
    Forbidden,
    InvalidState,
    StatusCode,
    TooManyRequests,
    Unauthorized,
)

# The wire values from the specification; a renumbering would break every peer.
EXPECTED_CODES = {
    "SUCCESS": 200,
    "BAD_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "PAYLOAD_TOO_LARGE": 413,
    "TOO_MANY_REQUESTS": 429,
    "INVALID_STATE": 450,
    "INTERNAL_ERROR": 500,
    "SNAPSHOT_VALIDATION_FAILED": 550,
    "UNEXPECTED_MESSAGE": 551,
}

ERROR_CLASSES = [
    (BadRequest, StatusCode.BAD_REQUEST),
    (Unauthorized, StatusCode.UNAUTHORIZED),
    (Forbidden, StatusCode.FORBIDDEN),
    (TooManyRequests, StatusCode.TOO_MANY_REQUESTS),
    (InvalidState, StatusCode.INVALID_STATE),
]


def test_status_codes_have_exactly_the_protocol_values() -> None:
    assert {code.name: code.value for code in StatusCode} == EXPECTED_CODES


def test_status_codes_are_ints_and_round_trip_from_wire_values() -> None:
    for name, value in EXPECTED_CODES.items():
        assert StatusCode(value) is StatusCode[name]
        assert StatusCode[name] == value


def test_unknown_status_value_is_refused() -> None:
    with pytest.raises(ValueError):
        StatusCode(201)


def test_constellation_error_carries_status_and_message() -> None:
    error = ConstellationError(StatusCode.INTERNAL_ERROR, "engine stopped")
    assert error.status is StatusCode.INTERNAL_ERROR
    assert error.message == "engine stopped"
    assert str(error) == "engine stopped"
    assert "INTERNAL_ERROR" in repr(error)


@pytest.mark.parametrize(("error_class", "status"), ERROR_CLASSES)
def test_each_subclass_has_its_fixed_status(
    error_class: Callable[[str], ConstellationError], status: StatusCode
) -> None:
    with pytest.raises(ConstellationError) as caught:
        raise error_class("nonce is too low")
    assert type(caught.value) is error_class
    assert caught.value.status is status
    assert str(caught.value) == "nonce is too low"


def test_subclass_statuses_are_distinct() -> None:
    statuses = [status for _, status in ERROR_CLASSES]
    assert len(set(statuses)) == len(statuses)
