"""Ed25519 keys and their Stellar strkey text form.

Every node and client identifies itself by an ed25519 key written as a Stellar strkey: `G...`
for a public key, `S...` for a secret seed. A strkey is the RFC 4648 base32 encoding (upper
case, no padding) of one version byte, the 32-byte payload and a CRC16-XModem checksum of
those 33 bytes stored little-endian, 35 bytes in all, hence exactly 56 characters.

Decoding is strict: keys arrive from settings and from peers, and two spellings of one key
would break equality checks and caches, so anything but the single canonical spelling raises
`InvalidKey`.

`KeyPair` wraps PyNaCl's signing and verify keys; `verify_signature` is the fast path used on
every incoming message, with a bounded cache of verify keys because the same accounts sign
many requests.
"""

from __future__ import annotations

import base64
import binascii
import functools
from typing import Final

import nacl.exceptions
import nacl.signing

KEY_LENGTH: Final = 32
SIGNATURE_LENGTH: Final = 64

VERSION_PUBLIC_KEY: Final = 6 << 3  # encodes to a leading "G"
VERSION_SECRET_SEED: Final = 18 << 3  # encodes to a leading "S"

_STRKEY_BYTES: Final = 1 + KEY_LENGTH + 2
_STRKEY_LENGTH: Final = 56  # 35 bytes = 280 bits = 56 base32 digits, no padding needed
_BASE32_ALPHABET: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")

# Enough distinct signers for a busy node; bounded so a flood of fresh keys cannot grow memory.
_VERIFY_KEY_CACHE_SIZE: Final = 4096


class InvalidKey(ValueError):  # noqa: N818 (public name fixed by the API)
    """Signals a malformed strkey or raw key (length, checksum, version byte or alphabet)."""


def _crc16_xmodem(data: bytes) -> bytes:
    """Returns the CRC16-XModem checksum of data as two little-endian bytes (strkey order)."""
    return binascii.crc_hqx(data, 0).to_bytes(2, "little")


def _encode(version: int, raw: bytes) -> str:
    """Encodes a 32-byte payload under the given version byte as a strkey."""
    if not isinstance(raw, bytes) or len(raw) != KEY_LENGTH:
        raise InvalidKey(f"a key payload must be {KEY_LENGTH} bytes")
    body = bytes([version]) + raw
    return base64.b32encode(body + _crc16_xmodem(body)).decode("ascii")


def _decode(version: int, strkey: str) -> bytes:
    """Decodes a strkey, checking alphabet, length, version byte and checksum."""
    if not isinstance(strkey, str) or len(strkey) != _STRKEY_LENGTH:
        raise InvalidKey(f"a strkey must be a string of {_STRKEY_LENGTH} characters")
    # Checked before b32decode so lowercase, padding, whitespace and non-ASCII are all refused
    # explicitly instead of depending on the decoder's leniency.
    if not _BASE32_ALPHABET.issuperset(strkey):
        raise InvalidKey("a strkey uses only the upper-case base32 alphabet, without padding")
    try:
        decoded = base64.b32decode(strkey)
    except binascii.Error as error:
        raise InvalidKey("a strkey must be valid base32") from error
    assert len(decoded) == _STRKEY_BYTES
    body, checksum = decoded[:-2], decoded[-2:]
    if body[0] != version:
        raise InvalidKey(f"wrong strkey version byte {body[0]}, expected {version}")
    if _crc16_xmodem(body) != checksum:
        raise InvalidKey("strkey checksum mismatch")
    return body[1:]


def encode_public_key(raw: bytes) -> str:
    """Returns the `G...` strkey of a raw 32-byte ed25519 public key."""
    return _encode(VERSION_PUBLIC_KEY, raw)


def decode_public_key(strkey: str) -> bytes:
    """Returns the raw 32-byte public key of a `G...` strkey, or raises `InvalidKey`."""
    return _decode(VERSION_PUBLIC_KEY, strkey)


def encode_secret_seed(raw: bytes) -> str:
    """Returns the `S...` strkey of a raw 32-byte ed25519 seed."""
    return _encode(VERSION_SECRET_SEED, raw)


def decode_secret_seed(strkey: str) -> bytes:
    """Returns the raw 32-byte seed of an `S...` strkey, or raises `InvalidKey`."""
    return _decode(VERSION_SECRET_SEED, strkey)


@functools.lru_cache(maxsize=_VERIFY_KEY_CACHE_SIZE)
def _verify_key(public_key: bytes) -> nacl.signing.VerifyKey:
    """Returns the (cached) PyNaCl verify key of a raw 32-byte public key."""
    return nacl.signing.VerifyKey(public_key)


def _verify_with(verify_key: nacl.signing.VerifyKey, data: bytes, signature: bytes) -> bool:
    """Checks a detached signature with a verify key, turning every failure into False."""
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_LENGTH:
        return False
    try:
        verify_key.verify(data, signature)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        return False
    return True


def verify_signature(public_key: bytes, data: bytes, signature: bytes) -> bool:
    """Tells whether signature is a valid ed25519 signature of data by public_key.

    Never raises on peer-supplied input: wrong lengths or types and bad signatures give False.
    """
    if not isinstance(public_key, bytes) or len(public_key) != KEY_LENGTH:
        return False
    try:
        verify_key = _verify_key(public_key)
    except (ValueError, TypeError):
        return False
    return _verify_with(verify_key, data, signature)


class KeyPair:
    """Holds an ed25519 verify key and, unless built from a public key alone, its signing key."""

    __slots__ = ("_signing_key", "_verify_key")

    def __init__(
        self,
        verify_key: nacl.signing.VerifyKey,
        signing_key: nacl.signing.SigningKey | None = None,
    ) -> None:
        """Wraps PyNaCl keys; prefer the `random`/`from_*` constructors."""
        assert signing_key is None or signing_key.verify_key == verify_key
        self._verify_key = verify_key
        self._signing_key = signing_key

    @classmethod
    def random(cls) -> KeyPair:
        """Creates a key pair from a fresh seed drawn from the OS random source."""
        signing_key = nacl.signing.SigningKey.generate()
        return cls(signing_key.verify_key, signing_key)

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        """Creates a key pair from a raw 32-byte seed, raising `InvalidKey` on a wrong length."""
        if not isinstance(seed, bytes) or len(seed) != KEY_LENGTH:
            raise InvalidKey(f"a seed must be {KEY_LENGTH} bytes")
        signing_key = nacl.signing.SigningKey(seed)
        return cls(signing_key.verify_key, signing_key)

    @classmethod
    def from_secret(cls, strkey: str) -> KeyPair:
        """Creates a key pair from an `S...` secret strkey."""
        return cls.from_seed(decode_secret_seed(strkey))

    @classmethod
    def from_public_key(cls, public_key: str | bytes) -> KeyPair:
        """Creates a verify-only key pair from a `G...` strkey or a raw 32-byte public key."""
        if isinstance(public_key, str):
            raw = decode_public_key(public_key)
        elif isinstance(public_key, bytes) and len(public_key) == KEY_LENGTH:
            raw = public_key
        else:
            raise InvalidKey(f"a public key must be a G... strkey or {KEY_LENGTH} raw bytes")
        return cls(nacl.signing.VerifyKey(raw))

    @property
    def public_key(self) -> bytes:
        """Returns the raw 32-byte public key."""
        return bytes(self._verify_key)

    @property
    def public_key_strkey(self) -> str:
        """Returns the public key as a `G...` strkey."""
        return encode_public_key(self.public_key)

    @property
    def can_sign(self) -> bool:
        """Tells whether this key pair holds a signing key."""
        return self._signing_key is not None

    @property
    def secret(self) -> str:
        """Returns the seed as an `S...` strkey; raises `ValueError` for a verify-only pair."""
        return encode_secret_seed(bytes(self._require_signing_key()))

    def sign(self, data: bytes) -> bytes:
        """Returns the 64-byte detached ed25519 signature of data."""
        return self._require_signing_key().sign(data).signature

    def verify(self, data: bytes, signature: bytes) -> bool:
        """Tells whether signature is valid for data; never raises on malformed input."""
        return _verify_with(self._verify_key, data, signature)

    def _require_signing_key(self) -> nacl.signing.SigningKey:
        """Returns the signing key, refusing verify-only pairs."""
        if self._signing_key is None:
            raise ValueError(f"{self!r} is verify-only and holds no secret")
        return self._signing_key

    def __eq__(self, other: object) -> bool:
        """Compares key pairs by public key only."""
        if not isinstance(other, KeyPair):
            return NotImplemented
        return self.public_key == other.public_key

    def __hash__(self) -> int:
        """Hashes by public key, consistent with equality."""
        return hash(self.public_key)

    def __repr__(self) -> str:
        """Shows the public strkey only, so a secret can never leak into logs."""
        return f"KeyPair({self.public_key_strkey})"
