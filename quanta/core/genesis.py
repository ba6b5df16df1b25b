"""Who may initialize a node: the checks on the first settings (genesis) beyond the majority.

A majority of the auditors a genesis lists is no proof on its own: anyone can list keys of
their own, sign with them, and name the real alpha (its key is public). So a node accepts a
genesis only if it took part in it (SECURITY.md H1, SPEC.md "Initialization"):
- alpha, only settings that name it as alpha and carry its own valid signature
  (`alpha_genesis_check`); settings naming another alpha are refused rather than executed, so
  they cannot leave the node initialized for a constellation it does not lead;
- an auditor the genesis lists, only one its own key signed (`auditor_genesis_check`); an
  auditor it does not list (one joining later) cannot tell by its key and relies on the pin;
- with a pinned constellation id (CONSTELLATION_GENESIS_ID, hex), only the genesis whose id it
  is, on either role.
Every check raises `Forbidden` saying why; nothing here changes state.
"""

from __future__ import annotations

from quanta.core.keys import encode_public_key
from quanta.core.processors.settings import count_valid_signers
from quanta.core.signatures import CONSTELLATION_ID_LENGTH, constellation_id_of
from quanta.core.status import BadRequest, Forbidden
from quanta.core.xdr.schema import ConstellationMessageEnvelope, ConstellationUpdate

GENESIS_ID_BYTES = CONSTELLATION_ID_LENGTH


def genesis_id(update: ConstellationUpdate) -> bytes:
    """Returns the constellation id a genesis founds (`constellation_id_of` its settings)."""
    return constellation_id_of(update.settings)


def genesis_id_parse(text: str) -> bytes | None:
    """Returns the pinned id from its hex text ("" = not pinned); ValueError if malformed."""
    text = text.strip().lower()
    if not text:
        return None
    raw = bytes.fromhex(text)
    if len(raw) != GENESIS_ID_BYTES:
        raise ValueError(f"a constellation id is {GENESIS_ID_BYTES} bytes (64 hex), got {len(raw)}")
    return raw


def signed_by(envelope: ConstellationMessageEnvelope, key: bytes) -> bool:
    """Tells whether `key` validly signed the envelope's genesis update, under the id it
    founds (the rule every signer of a genesis uses)."""
    update = _update_of(envelope)
    return count_valid_signers(envelope, (key,), genesis_id(update)) == 1


def _update_of(envelope: ConstellationMessageEnvelope) -> ConstellationUpdate:
    update = envelope.message
    if not isinstance(update, ConstellationUpdate):
        raise BadRequest("a constellation quantum must carry a ConstellationUpdate")
    return update


def _check_pin(update: ConstellationUpdate, pinned: bytes | None) -> None:
    if pinned is not None and genesis_id(update) != pinned:
        raise Forbidden(
            f"genesis {genesis_id(update).hex()} is not the pinned constellation {pinned.hex()}"
        )


def alpha_genesis_check(
    envelope: ConstellationMessageEnvelope, own_key: bytes, pinned: bytes | None = None
) -> None:
    """Raises Forbidden unless alpha (`own_key`) may take this genesis: it names this node as
    alpha and this node signed it (and it is the pinned one, if pinned)."""
    update = _update_of(envelope)
    named = update.settings.alpha
    if named != own_key:
        raise Forbidden(
            f"the settings name {encode_public_key(named)} as alpha, "
            f"this node is {encode_public_key(own_key)}"
        )
    if not signed_by(envelope, own_key):
        raise Forbidden(
            f"the settings carry no valid signature of alpha {encode_public_key(own_key)}"
        )
    _check_pin(update, pinned)


def auditor_genesis_check(
    envelope: ConstellationMessageEnvelope, own_key: bytes, pinned: bytes | None = None
) -> None:
    """Raises Forbidden unless this auditor (`own_key`) may take this genesis from alpha: if it
    lists this node, this node signed it (and it is the pinned one, if pinned)."""
    update = _update_of(envelope)
    listed = any(auditor.public_key == own_key for auditor in update.settings.auditors)
    if listed and not signed_by(envelope, own_key):
        raise Forbidden(
            f"the genesis lists this auditor ({encode_public_key(own_key)}) "
            "but carries no valid signature of its key: refused"
        )
    _check_pin(update, pinned)
