"""Goal: `decode_prefix` reads one value from the start of a buffer, as strictly as `decode`,
and says how many bytes it took, so a caller can judge what follows (a server frame is a
Message followed by nothing or by a 96-byte signature).

Method: encode a few messages, append bytes or cut them short, and compare with `decode`.
"""

from __future__ import annotations

import pytest

from quanta.core.status import StatusCode
from quanta.core.xdr.codec import XdrError, decode, decode_prefix, encode
from quanta.core.xdr.schema import MESSAGE, HandshakeRequest, ResultMessage

MESSAGES = [HandshakeRequest(0, b"\x07" * 32), ResultMessage(3, StatusCode.FORBIDDEN, "no")]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_prefix_returns_the_value_and_its_length(message: object) -> None:
    data = encode(message, MESSAGE)
    for tail in (b"", b"\x00", b"\xff" * 96):
        assert decode_prefix(MESSAGE, data + tail) == (message, len(data))


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_prefix_refuses_truncation_at_every_offset(message: object) -> None:
    data = encode(message, MESSAGE)
    for end in range(len(data)):
        with pytest.raises(XdrError):
            decode_prefix(MESSAGE, data[:end])


def test_prefix_is_as_strict_as_decode_about_the_value_itself() -> None:
    data = encode(ResultMessage(3, StatusCode.FORBIDDEN, "no"), MESSAGE)
    bad_padding = data[:-1] + b"\x01"  # "no" is padded with two zero bytes
    unknown_arm = b"\x00\x00\x03\xe7" + data[4:]
    for bad in (bad_padding, unknown_arm):
        with pytest.raises(XdrError):
            decode_prefix(MESSAGE, bad)
        with pytest.raises(XdrError):
            decode(MESSAGE, bad)
    with pytest.raises(XdrError, match="bytes"):
        decode_prefix(MESSAGE, "not bytes")  # type: ignore[arg-type]


def test_decode_still_refuses_what_the_prefix_leaves() -> None:
    data = encode(MESSAGES[0], MESSAGE)
    with pytest.raises(XdrError, match="3 trailing bytes"):
        decode(MESSAGE, data + b"abc")
