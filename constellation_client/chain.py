"""The settings chain: how the client derives the keys it trusts from a pinned constellation id.

The node publishes every signed `ConstellationUpdate` at `GET /api/constellation/settings-chain`
(pages of at most 64, `?after=V`). The client verifies it forward from its pin
(/work/notes/spec16.md, "Chain verification"):

1. the first update has version 1, its settings hash to the pinned id (`constellation_id_of`),
   and a majority of the auditors *it* lists signed `update_digest(pin, update)`;
2. each next one has version = previous + 1 and is signed by a majority of the *previous*
   settings' auditors (and passes the nodes' own `validate_settings`);
3. the head gives alpha's key and the auditor keys of every later check.

Keys from `/api/constellation/info` are never used for trust: that page is served by the node
being checked (SECURITY.md H3). Every refusal says where the chain breaks and why. Fetching is
bounded: at most `CHAIN_UPDATES_MAX` updates, `CHAIN_PAGE_UPDATES_MAX` per page and
`CHAIN_PAGE_BYTES_MAX` bytes per page, so a hostile node cannot make the client spin or swell.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from constellation_client.digests import constellation_id_of, short_id, update_digest
from constellation_client.wire import Constellation, ConstellationClientError
from quanta.core.config import validate_settings
from quanta.core.keys import verify_signature
from quanta.core.signatures import majority
from quanta.core.status import ConstellationError
from quanta.core.xdr.codec import XdrError, decode
from quanta.core.xdr.schema import (
    ConstellationMessageEnvelope,
    ConstellationSettings,
    ConstellationUpdate,
    Limits,
)

SETTINGS_CHAIN_PATH = "/api/constellation/settings-chain"
CHAIN_UPDATES_MAX = 10_000
CHAIN_PAGE_UPDATES_MAX = 64
CHAIN_PAGE_BYTES_MAX = 8 * 1024 * 1024
"""64 envelopes of at most 64 KiB each, base64-encoded, with room for the JSON around them."""


class ChainError(ConstellationClientError):
    """The settings chain does not lead from the pinned id to a head the client can trust."""


@dataclass(frozen=True, slots=True)
class ChainPage:
    """One page of the published chain, decoded but not yet verified."""

    envelopes: tuple[ConstellationMessageEnvelope, ...]
    more: bool
    claimed_id: str | None


# --- verification (pure) --------------------------------------------------------------------


def _settings_of(envelope: ConstellationMessageEnvelope, position: str) -> ConstellationSettings:
    """Returns the settings an envelope carries; refuses anything but a ConstellationUpdate."""
    update = envelope.message
    if not isinstance(update, ConstellationUpdate):
        raise ChainError(
            f"the settings chain breaks at {position}: it holds a "
            f"{type(update).__name__}, not a ConstellationUpdate"
        )
    return update.settings


def signer_count(
    envelope: ConstellationMessageEnvelope, pin: bytes, signers: Sequence[bytes]
) -> int:
    """Returns how many distinct keys of `signers` validly signed the update bound to `pin`."""
    assert isinstance(envelope.message, ConstellationUpdate)
    digest = update_digest(pin, envelope.message)
    allowed = set(signers)
    valid = {
        signature.signer
        for signature in envelope.signatures
        if signature.signer in allowed
        and verify_signature(signature.signer, digest, signature.signature)
    }
    return len(valid)


def _check_signed(
    envelope: ConstellationMessageEnvelope, pin: bytes, signers: Sequence[bytes], whose: str
) -> None:
    """Raises ChainError unless a majority of `signers` signed the update."""
    version = _settings_of(envelope, "an update").version
    valid = signer_count(envelope, pin, signers)
    needed = majority(len(signers))
    if valid < needed:
        raise ChainError(
            f"the settings chain breaks at version {version}: signed by {valid} of "
            f"{len(signers)} {whose} auditors, {needed} required"
        )


def _check_valid(settings: ConstellationSettings, previous: ConstellationSettings | None) -> None:
    """Raises ChainError unless the nodes' own rules accept `settings` after `previous`."""
    try:
        validate_settings(settings, previous)
    except ConstellationError as error:
        raise ChainError(
            f"the settings chain breaks at version {settings.version}: {error}"
        ) from None


def verify_genesis(pin: bytes, envelope: ConstellationMessageEnvelope) -> Constellation:
    """Returns what the genesis update establishes, if it is the pinned constellation's."""
    settings = _settings_of(envelope, "its first update")
    if settings.version != 1:
        raise ChainError(
            f"the settings chain must start at version 1, the node's starts at {settings.version}"
        )
    genesis_id = constellation_id_of(settings)
    if genesis_id != pin:
        raise ChainError(
            f"constellation id mismatch: pinned {short_id(pin)} but the node's genesis "
            f"settings hash to {short_id(genesis_id)}"
        )
    _check_valid(settings, None)
    own = [auditor.public_key for auditor in settings.auditors]
    _check_signed(envelope, pin, own, "listed")
    return Constellation.from_settings(pin, settings)


def verify_next(head: Constellation, envelope: ConstellationMessageEnvelope) -> Constellation:
    """Returns the new head if `envelope` validly follows `head`."""
    assert head.settings is not None, "only a head verified from the chain can be extended"
    settings = _settings_of(envelope, f"version {head.version + 1}")
    if settings.version != head.version + 1:
        raise ChainError(
            f"the settings chain breaks after version {head.version}: "
            f"the next update has version {settings.version}"
        )
    _check_valid(settings, head.settings)
    _check_signed(envelope, head.constellation_id, head.auditor_keys, "previous")
    return Constellation.from_settings(head.constellation_id, settings)


def verify_chain(
    pin: bytes,
    envelopes: Sequence[ConstellationMessageEnvelope],
    head: Constellation | None = None,
) -> Constellation:
    """Returns the verified head of the chain: from the genesis when `head` is None, else
    extending `head` (whose versions the envelopes must follow)."""
    if head is None:
        if not envelopes:
            raise ChainError("the node published no settings chain (is it initialized?)")
        head, envelopes = verify_genesis(pin, envelopes[0]), envelopes[1:]
    elif head.constellation_id != pin:
        raise ChainError("the head to extend belongs to another constellation")
    for envelope in envelopes:
        head = verify_next(head, envelope)
    return head


# --- fetching (bounded) ---------------------------------------------------------------------


def settings_chain_url(info_url: str, after: int) -> str:
    """Returns the chain page URL after version `after`, next to the node's info URL."""
    parts = urllib.parse.urlsplit(info_url)
    base = parts.path.rsplit("/api/constellation/", 1)[0]
    query = urllib.parse.urlencode({"after": after})
    return urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc, base + SETTINGS_CHAIN_PATH, query, "")
    )


def _decode_envelope(item: Any, after: int) -> ConstellationMessageEnvelope:
    """Decodes one entry of a page and checks its declared version against its content."""
    if not isinstance(item, dict) or not isinstance(item.get("envelope"), str):
        raise ChainError("malformed settings chain page: an update without an envelope")
    text: str = item["envelope"]
    if len(text) > 2 * Limits.ENVELOPE_BYTES_MAX:
        raise ChainError(f"settings chain update of {len(text)} characters: refused")
    try:
        envelope: ConstellationMessageEnvelope = decode(
            ConstellationMessageEnvelope, base64.b64decode(text, validate=True)
        )
    except (binascii.Error, XdrError) as error:
        raise ChainError(f"malformed settings chain update: {error}") from None
    version = _settings_of(envelope, f"the update after version {after}").version
    if item.get("version") != version:
        raise ChainError(
            f"malformed settings chain page: update declared as version {item.get('version')!r} "
            f"holds version {version}"
        )
    return envelope


def parse_chain_page(data: Any, after: int) -> ChainPage:
    """Returns the decoded page of the JSON a node served for `?after=after`; refuses pages
    over the limits, out of order, or promising more without giving any."""
    if not isinstance(data, dict) or not isinstance(data.get("updates"), list):
        raise ChainError("malformed settings chain page: expected an object with updates")
    items: list[Any] = data["updates"]
    if len(items) > CHAIN_PAGE_UPDATES_MAX:
        raise ChainError(
            f"settings chain page of {len(items)} updates exceeds {CHAIN_PAGE_UPDATES_MAX}: refused"
        )
    envelopes = []
    for item in items:
        envelope = _decode_envelope(item, after)
        envelopes.append(envelope)
        after = _settings_of(envelope, "").version
    more = data.get("more", False)
    if not isinstance(more, bool) or (more and not envelopes):
        raise ChainError("malformed settings chain page: 'more' without updates")
    claimed = data.get("constellation_id")
    return ChainPage(tuple(envelopes), more, claimed if isinstance(claimed, str) else None)


def fetch_chain_page(info_url: str, after: int, timeout_s: float) -> ChainPage:
    """GETs one page of the chain (blocking: run it in a thread), reading at most
    CHAIN_PAGE_BYTES_MAX bytes."""
    url = settings_chain_url(info_url, after)
    if not url.startswith(("http://", "https://")):
        raise ChainError(f"not an HTTP URL: {url!r}")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
            body = response.read(CHAIN_PAGE_BYTES_MAX + 1)
    except OSError as error:
        raise ChainError(f"cannot read the settings chain at {url}: {error}") from None
    if len(body) > CHAIN_PAGE_BYTES_MAX:
        raise ChainError(f"settings chain page over {CHAIN_PAGE_BYTES_MAX} bytes: refused")
    try:
        data = json.loads(body)
    except ValueError as error:
        raise ChainError(f"malformed settings chain page: {error}") from None
    return parse_chain_page(data, after)


def fetch_envelopes(
    info_url: str, after: int, timeout_s: float, updates_max: int = CHAIN_UPDATES_MAX
) -> list[ConstellationMessageEnvelope]:
    """Returns every published update after version `after`, page by page, refusing a chain
    of more than `updates_max` updates."""
    envelopes: list[ConstellationMessageEnvelope] = []
    while True:
        page = fetch_chain_page(info_url, after, timeout_s)
        envelopes.extend(page.envelopes)
        if len(envelopes) > updates_max:
            raise ChainError(f"the settings chain is longer than {updates_max} updates: refused")
        if not page.more:
            return envelopes
        after = _settings_of(page.envelopes[-1], "").version


def fetch_verified_head(
    info_url: str,
    pin: bytes,
    timeout_s: float,
    head: Constellation | None = None,
) -> Constellation:
    """Fetches the chain (after `head`'s version, or all of it) and returns its verified head
    (blocking: run it in a thread)."""
    after = 0 if head is None else head.version
    return verify_chain(pin, fetch_envelopes(info_url, after, timeout_s), head)


def genesis_id(info_url: str, timeout_s: float) -> bytes:
    """Returns the id the node's published genesis hashes to: trust on first use, for a caller
    that has no pin yet and says so (the CLI's `--trust-on-first-use`). The chain is then
    verified from it like from any pin."""
    page = fetch_chain_page(info_url, 0, timeout_s)
    if not page.envelopes:
        raise ChainError("the node published no settings chain (is it initialized?)")
    return constellation_id_of(_settings_of(page.envelopes[0], "its first update"))
