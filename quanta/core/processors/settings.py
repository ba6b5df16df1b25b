"""ConstellationQuantum: new settings signed by a majority of the auditors.

The first settings (initialization) must be signed by a majority of the auditors they list;
later ones by a majority of the auditors in force. Signatures are bound to the constellation
(`signatures.update_digest`): the genesis to the id of its own settings. Assets can be added or
suspended but not removed, and the quote asset never changes, because open orders and balances
refer to them; nor may an update strand funds (`settings_funds.py`).
"""

from __future__ import annotations

from quanta.core.config import Config, validate_settings
from quanta.core.context import QuantumContext
from quanta.core.keys import verify_signature
from quanta.core.processors.settings_funds import check_no_stranded_funds
from quanta.core.signatures import update_digest
from quanta.core.status import BadRequest, Unauthorized
from quanta.core.xdr.schema import (
    ConstellationMessageEnvelope,
    ConstellationQuantum,
    ConstellationSettings,
    ConstellationUpdate,
    ConstellationUpdateEffect,
)


def count_valid_signers(
    envelope: ConstellationMessageEnvelope, keys: tuple[bytes, ...], constellation_id: bytes
) -> int:
    """Returns how many distinct keys of `keys` validly signed the envelope's message for the
    constellation `constellation_id`."""
    digest = update_digest(constellation_id, envelope.message)
    allowed = set(keys)
    signers = {
        s.signer
        for s in envelope.signatures
        if s.signer in allowed and verify_signature(s.signer, digest, s.signature)
    }
    return len(signers)


def check_update(
    envelope: ConstellationMessageEnvelope, current: Config | None
) -> ConstellationSettings:
    """Returns the new settings if the signed update may replace `current`; raises otherwise."""
    update = envelope.message
    if not isinstance(update, ConstellationUpdate):
        raise BadRequest("a constellation quantum must carry a ConstellationUpdate")
    settings = update.settings
    check_settings_change(settings, current)
    signers = Config.from_settings(settings) if current is None else current
    valid = count_valid_signers(envelope, signers.auditor_keys, signers.constellation_id)
    if valid < signers.majority:
        raise Unauthorized(f"update signed by {valid} auditors, {signers.majority} required")
    return settings


def check_settings_change(settings: ConstellationSettings, current: Config | None) -> None:
    """Raises BadRequest unless `settings` may follow `current` (signatures aside)."""
    validate_settings(settings, None if current is None else current.settings)
    if current is not None:
        _check_compatible(settings, current)


def _check_compatible(settings: ConstellationSettings, current: Config) -> None:
    codes = {asset.code for asset in settings.assets}
    removed = sorted(set(current.assets) - codes)
    if removed:
        raise BadRequest(f"assets cannot be removed (suspend them instead): {removed}")
    quote = next(asset.code for asset in settings.assets if asset.is_quote_asset)
    if quote != current.quote_asset:
        raise BadRequest("the quote asset cannot change")


def process_settings(ctx: QuantumContext, body: ConstellationQuantum) -> None:
    """Validates the signed update, then puts the new settings in force."""
    current = ctx.state.config
    settings = check_update(body.update, current)
    check_no_stranded_funds(settings, ctx.state)
    prev = None if current is None else current.settings
    ctx.emit(0, ConstellationUpdateEffect(settings, prev))
