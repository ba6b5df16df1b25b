"""Frames, node addresses and the public constellation info a client relies on.

Client frames are `MessageEnvelope`s: the XDR of the message as a `Message` union, then the
signer's raw public key and its ed25519 signature of SHA-256 of that XDR. Server frames have
the same shape and must be signed by alpha's key, except quantum results: they come as a
`MessageEnvelopeSignless` (the Message XDR alone), since their payload proof is verified
anyway (docs/protocol.md, "Frames"). The Message union is self-delimiting, so what follows it
tells the two forms apart: nothing, or exactly a signature.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from quanta.core.envelopes import SIGNATURE_TAIL, may_be_signless
from quanta.core.keys import KEY_LENGTH, InvalidKey, KeyPair, decode_public_key, verify_signature
from quanta.core.xdr.codec import XdrError, decode_prefix, encode
from quanta.core.xdr.schema import MESSAGE, Limits, Message, ResultMessage

INFO_PATH = "/api/constellation/info"
WS_PATH = "/ws/"


class ConstellationClientError(Exception):
    """Signals a transport or protocol failure (not a business rejection of a request)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        description: str = "",
        result: ResultMessage | None = None,
    ) -> None:
        """Stores the text and, when the node answered, its status, description and message."""
        super().__init__(message)
        self.status = status
        self.description = description
        self.result = result


def seal(message: Message, keypair: KeyPair) -> bytes:
    """Returns the frame of `message` signed by `keypair`; refuses frames above 64 KiB."""
    body = encode(message, MESSAGE)
    frame = body + keypair.public_key + keypair.sign(hashlib.sha256(body).digest())
    if len(frame) > Limits.ENVELOPE_BYTES_MAX:
        raise ConstellationClientError(
            f"frame of {len(frame)} bytes exceeds {Limits.ENVELOPE_BYTES_MAX}", status=413
        )
    return frame


def open_frame(data: bytes, signer: bytes) -> Message:
    """Returns the message of a server frame: a `MessageEnvelope` signed by `signer`, or a
    `MessageEnvelopeSignless` holding a message that carries its own proof (a quantum result,
    whose signatures the caller verifies). Anything else is refused."""
    try:
        decoded: tuple[Message, int] = decode_prefix(MESSAGE, data)
    except XdrError as error:
        raise ConstellationClientError(f"malformed frame from the node: {error}") from None
    message, end = decoded
    tail = len(data) - end
    if tail == 0:
        if not may_be_signless(message):
            raise ConstellationClientError(f"unsigned {type(message).__name__} from the node")
        return message
    if tail != SIGNATURE_TAIL:
        raise ConstellationClientError(
            f"malformed frame from the node: {tail} bytes after the message, "
            f"expected 0 or a {SIGNATURE_TAIL}-byte signature"
        )
    if data[end : end + KEY_LENGTH] != signer:
        raise ConstellationClientError("frame not signed by alpha's key")
    digest = hashlib.sha256(data[:end]).digest()
    if not verify_signature(signer, digest, data[end + KEY_LENGTH :]):
        raise ConstellationClientError("invalid signature on a frame from the node")
    return message


def node_urls(url: str) -> tuple[str, str]:
    """Returns (WebSocket URL, info URL) for a node base such as http://127.0.0.1:8000."""
    parts = urllib.parse.urlsplit(url.rstrip("/"))
    schemes = {"http": ("ws", "http"), "https": ("wss", "https")}
    schemes |= {"ws": ("ws", "http"), "wss": ("wss", "https")}
    if parts.scheme not in schemes or not parts.netloc:
        raise ConstellationClientError(f"not a node URL: {url!r}")
    ws_scheme, http_scheme = schemes[parts.scheme]
    base = parts.path.removesuffix(WS_PATH.rstrip("/"))
    ws_url = urllib.parse.urlunsplit((ws_scheme, parts.netloc, base + WS_PATH, "", ""))
    info_url = urllib.parse.urlunsplit((http_scheme, parts.netloc, base + INFO_PATH, "", ""))
    return ws_url, info_url


def fetch_info(info_url: str, timeout_s: float) -> dict[str, Any]:
    """GETs the node's public info JSON (blocking: run it in a thread)."""
    if not info_url.startswith(("http://", "https://")):
        raise ConstellationClientError(f"not an HTTP URL: {info_url!r}")
    try:
        with urllib.request.urlopen(info_url, timeout=timeout_s) as response:  # noqa: S310
            data = json.loads(response.read())
    except (OSError, ValueError) as error:
        raise ConstellationClientError(f"cannot read {info_url}: {error}") from None
    if not isinstance(data, dict):
        raise ConstellationClientError(f"{info_url} did not return a JSON object")
    return data


def _raw_key(key: str | bytes) -> bytes:
    """Returns a raw public key from a G... strkey or 32 raw bytes."""
    try:
        return KeyPair.from_public_key(key).public_key
    except InvalidKey as error:
        raise ConstellationClientError(f"invalid public key {key!r}: {error}") from None


@dataclass(frozen=True, slots=True)
class Constellation:
    """What the client trusts: the auditor keys in settings order, alpha among them."""

    auditor_keys: tuple[bytes, ...]
    alpha_index: int
    quote_asset: str | None = None

    @property
    def alpha_key(self) -> bytes:
        """Returns alpha's raw public key."""
        return self.auditor_keys[self.alpha_index]

    @classmethod
    def from_keys(
        cls,
        auditor_keys: Sequence[str | bytes],
        alpha_key: str | bytes | None = None,
        quote_asset: str | None = None,
    ) -> Constellation:
        """Builds it from auditor keys; alpha defaults to the first one."""
        keys = tuple(_raw_key(key) for key in auditor_keys)
        if not keys or len(set(keys)) != len(keys):
            raise ConstellationClientError("auditor keys must be non-empty and distinct")
        alpha = keys[0] if alpha_key is None else _raw_key(alpha_key)
        if alpha not in keys:
            raise ConstellationClientError("alpha's key is not among the auditor keys")
        return cls(keys, keys.index(alpha), quote_asset)

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> Constellation:
        """Builds it from `/api/constellation/info` JSON."""
        auditors = info.get("auditors")
        alpha = info.get("alpha")
        if not isinstance(auditors, list) or not isinstance(alpha, str):
            raise ConstellationClientError("the node is not initialized (no auditors in info)")
        try:
            keys = [str(auditor["public_key"]) for auditor in auditors]
        except (KeyError, TypeError):
            raise ConstellationClientError("malformed auditors in info") from None
        quote = info.get("quote_asset")
        return cls.from_keys(keys, alpha, quote if isinstance(quote, str) else None)


def decode_destination(destination: str | bytes) -> bytes:
    """Returns a raw 32-byte public key from a G... strkey or raw bytes."""
    if isinstance(destination, str):
        try:
            return decode_public_key(destination)
        except InvalidKey as error:
            raise ConstellationClientError(f"invalid destination: {error}") from None
    if isinstance(destination, bytes) and len(destination) == KEY_LENGTH:
        return destination  # already raw: nothing to decode (any 32 bytes name a key)
    return _raw_key(destination)
