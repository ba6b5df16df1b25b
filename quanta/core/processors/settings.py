"""ConstellationQuantum: new settings signed by a majority of the auditors.

The first settings (initialization) must be signed by a majority of the auditors they list;
later ones by a majority of the auditors in force. Signatures are bound to the constellation
(`signatures.update_digest`): the genesis to the id of its own settings. Assets can be added or
suspended but not removed, and the quote asset never changes, because open orders and balances
refer to them; nor may an update strand funds (`settings_funds.py`).

An update that changes the auditors leaves every kept vault answering to the old ones: the
quantum carries, per such provider, the transaction alpha built to rotate it
(`rotations_called_for`, `check_rotations`); an auditor's payment providers judge each one
(`RotationValidator`) the way they judge a withdrawal's transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

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
    VaultRotationTx,
)

ROTATION_TTL_MS = 600_000
"""How long a vault rotation stays valid after its update's quantum: longer than a withdrawal's
TTL, so the withdrawals built before the update (old signers) are paid or expired first."""

RotationValidator = Callable[[Config, Config, int, VaultRotationTx], None]
"""Raises a ConstellationError unless the rotation's transaction gives its provider's vault
the auditors of the second config in place of those of the first, valid after the quantum's
timestamp (ms) for at most ROTATION_TTL_MS; never from a node's clock, so all judge alike."""


class RotationBuilder(Protocol):
    """Alpha's side of the rotations, the mirror of `RotationValidator`: alpha's payment
    providers build them for the timestamp the update's quantum gets."""

    def build_rotations(
        self, prev: Config, new: Config, timestamp_ms: int
    ) -> tuple[VaultRotationTx, ...]:
        """Returns the rotation of each provider `rotations_called_for` names, in that order;
        raises a ConstellationError if one cannot be built (the update is then refused)."""
        ...


def rotations_called_for(prev: Config, new: Config) -> tuple[str, ...]:
    """Returns the ids (sorted) of the providers whose vault the update from `prev` to `new`
    must rotate: all kept with their vault, if the auditors changed (a new vault is opened
    with the new signers; a removed provider holds nothing: `settings_funds`)."""
    if set(prev.auditor_keys) == set(new.auditor_keys):
        return ()
    return tuple(
        provider_id
        for provider_id, provider in sorted(new.providers.items())
        if (before := prev.providers.get(provider_id)) is not None
        and before.vault == provider.vault
    )


def check_rotations(
    rotations: tuple[VaultRotationTx, ...],
    current: Config | None,
    settings: ConstellationSettings,
    timestamp_ms: int,
    validate: RotationValidator | None,
) -> None:
    """Raises BadRequest unless the quantum carries exactly the rotations the update calls
    for, in provider order, each judged sound by `validate`: an auditor's providers. Alpha
    built them itself, and an engine without providers (a pure test, the fault simulator)
    has nothing to judge them by, so both pass None and only a genesis's are refused."""
    if current is None:
        if rotations:
            raise BadRequest("the genesis rotates no vault")
        return
    if validate is None:
        return
    new = Config.from_settings(settings, current.constellation_id)
    called = rotations_called_for(current, new)
    carried = tuple(rotation.provider for rotation in rotations)
    if carried != called:
        raise BadRequest(
            f"the update calls for vault rotations of {list(called)}, the quantum carries"
            f" {list(carried)}"
        )
    for rotation in rotations:
        validate(current, new, timestamp_ms, rotation)


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


def process_settings(
    ctx: QuantumContext,
    body: ConstellationQuantum,
    validate_rotation: RotationValidator | None = None,
) -> None:
    """Validates the signed update and its vault rotations, then puts the new settings in
    force."""
    current = ctx.state.config
    settings = check_update(body.update, current)
    check_no_stranded_funds(settings, ctx.state)
    check_rotations(body.rotations, current, settings, ctx.timestamp_ms, validate_rotation)
    prev = None if current is None else current.settings
    ctx.emit(0, ConstellationUpdateEffect(settings, prev))
