"""XDR schema and codec: every message, envelope, quantum and effect on the wire."""

from quanta.core.xdr.codec import XdrError, decode, encode

__all__ = ["XdrError", "decode", "encode"]
