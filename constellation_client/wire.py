"""Frames, node addresses, and `Constellation`: the keys a client trusts.

Client frames are `MessageEnvelope`s: the XDR of the message as a `Message` union, then the
signer's raw public key and its ed25519 signature of `message_digest(constellation id, XDR)`
(bound to the pinned constellation, so a frame signed for one constellation means nothing on
another). Server frames have the same shape and must be signed by alpha's key under the same
binding, except quantum results: they come as a `MessageEnvelopeSignless` (the Message XDR
alone), since their payload proof is verified anyway (docs/protocol.md, "Frames"). The Message
union is self-delimiting, so what follows it tells the two forms apart: nothing, or exactly a
signature.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from constellation_client.digests import message_digest
from quanta.core.envelopes import SIGNATURE_TAIL, may_be_signless
from quanta.core.keys import KEY_LENGTH, InvalidKey, KeyPair, decode_public_key, verify_signature
from quanta.core.xdr.codec import XdrError, decode_prefix, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    ConstellationSettings,
    Limits,
    Message,
    ResultMessage,
)

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


class UnverifiedOutcomeError(ConstellationClientError):
    """No verified answer to a quantum request: it may or may not have been executed.

    Raised when the answer timed out, the connection was lost, or only answers the client
    could not verify (unsigned, badly signed, not proving the request's nonce) arrived.
    Retrying with a fresh nonce could execute it twice: check `account_data` or the history
    first (or retry with the same nonce, which the node refuses if it was applied)."""

    def __init__(self, text: str, *, message_id: int, nonce: int) -> None:
        """Stores the text and the request's message id and nonce."""
        super().__init__(text)
        self.message_id = message_id
        self.nonce = nonce


class RefusedFrameError(ConstellationClientError):
    """A server frame the client will not act on: malformed, unsigned when it must be signed,
    or not signed by the trusted alpha under the pinned constellation. `message` is what the
    frame claimed to hold, if it decoded (evidence only: never act on it)."""

    def __init__(self, text: str, message: Message | None = None, *, signed: bool = False) -> None:
        """Stores the reason, the decoded (untrusted) message, and whether the frame carried
        a signature (one that failed might come from rotated keys)."""
        super().__init__(text)
        self.message = message
        self.signed = signed


def seal(message: Message, keypair: KeyPair, constellation_id: bytes) -> bytes:
    """Returns the frame of `message` signed by `keypair` for the constellation
    `constellation_id`; refuses frames above 64 KiB."""
    body = encode(message, MESSAGE)
    frame = body + keypair.public_key + keypair.sign(message_digest(constellation_id, body))
    if len(frame) > Limits.ENVELOPE_BYTES_MAX:
        raise ConstellationClientError(
            f"frame of {len(frame)} bytes exceeds {Limits.ENVELOPE_BYTES_MAX}", status=413
        )
    return frame


def open_frame(data: bytes, signer: bytes, constellation_id: bytes) -> Message:
    """Returns the message of a server frame: a `MessageEnvelope` signed by `signer` over the
    digest bound to `constellation_id`, or a `MessageEnvelopeSignless` holding a message that
    carries its own proof (a quantum result, whose signatures the caller verifies). Anything
    else raises `RefusedFrameError`."""
    try:
        decoded: tuple[Message, int] = decode_prefix(MESSAGE, data)
    except XdrError as error:
        raise RefusedFrameError(f"malformed frame from the node: {error}") from None
    message, end = decoded
    name = type(message).__name__
    tail = len(data) - end
    if tail == 0:
        if not may_be_signless(message):
            raise RefusedFrameError(f"unsigned {name} from the node", message)
        return message
    if tail != SIGNATURE_TAIL:
        raise RefusedFrameError(
            f"malformed frame from the node: {tail} bytes after the message, "
            f"expected 0 or a {SIGNATURE_TAIL}-byte signature",
            message,
        )
    if data[end : end + KEY_LENGTH] != signer:
        raise RefusedFrameError(
            f"{name} not signed by the pinned constellation's alpha", message, signed=True
        )
    digest = message_digest(constellation_id, data[:end])
    if not verify_signature(signer, digest, data[end + KEY_LENGTH :]):
        raise RefusedFrameError(
            f"invalid signature on a {name} from the node (not signed for the pinned "
            "constellation, or tampered with)",
            message,
            signed=True,
        )
    return message


def node_urls(url: str) -> tuple[str, str]:
    """Returns (WebSocket URL, info URL) for a node base such as http://127.0.0.1:8000."""
    parts = urllib.parse.urlsplit(url.rstrip("/"))
    schemes = {"http": ("ws", "http"), "https": ("wss", "https")}
    schemes |= {"ws": ("ws", "http"), "wss": ("wss", "https")}
    if parts.scheme not in schemes or not parts.netloc:
        hint = f" (did you mean http://{url}?)" if "://" not in url else ""
        raise ConstellationClientError(f"not a node URL: {url!r}{hint}")
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
    """What the client trusts: the pinned constellation id and the auditor keys in settings
    order, alpha among them, taken from the verified head of the settings chain
    (`constellation_client.chain`) or pinned out of band (`from_keys`)."""

    constellation_id: bytes
    auditor_keys: tuple[bytes, ...]
    alpha_index: int
    quote_asset: str | None = None
    # The settings version of the verified head, and its settings (to verify the next update
    # against); 0 and None when the keys were pinned out of band.
    version: int = 0
    settings: ConstellationSettings | None = None

    @property
    def alpha_key(self) -> bytes:
        """Returns alpha's raw public key."""
        return self.auditor_keys[self.alpha_index]

    @classmethod
    def from_settings(
        cls, constellation_id: bytes, settings: ConstellationSettings
    ) -> Constellation:
        """Builds it from settings the caller verified (`chain.verify_chain`)."""
        keys = tuple(auditor.public_key for auditor in settings.auditors)
        quote = next((a.code for a in settings.assets if a.is_quote_asset), None)
        return cls(
            constellation_id,
            keys,
            keys.index(settings.alpha),
            quote,
            int(settings.version),
            settings,
        )

    @classmethod
    def from_keys(
        cls,
        auditor_keys: Sequence[str | bytes],
        alpha_key: str | bytes | None = None,
        quote_asset: str | None = None,
        *,
        constellation_id: bytes,
    ) -> Constellation:
        """Builds it from auditor keys pinned out of band; alpha defaults to the first one.
        Such a set cannot follow a rotation (no chain head to extend)."""
        keys = tuple(_raw_key(key) for key in auditor_keys)
        if not keys or len(set(keys)) != len(keys):
            raise ConstellationClientError("auditor keys must be non-empty and distinct")
        alpha = keys[0] if alpha_key is None else _raw_key(alpha_key)
        if alpha not in keys:
            raise ConstellationClientError("alpha's key is not among the auditor keys")
        return cls(constellation_id, keys, keys.index(alpha), quote_asset)


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
