"""Settings drafts: how an operator changes the constellation settings.

Settings change only through a ConstellationUpdate signed by a majority of the auditors in
force. A draft holds the exact bytes they sign (the XDR of the Message union holding the
update), collects their signatures one by one (each verified on arrival), and once a majority
signed, hands the envelope to alpha's engine, which executes it as a quantum that every
auditor re-executes. The admin (`quanta/admin.py`), the `sign_settings_update` command and
the tests all go through these functions.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from django.db import transaction

from quanta.core.config import Config
from quanta.core.keys import InvalidKey, decode_public_key, encode_public_key, verify_signature
from quanta.core.processors.settings import check_settings_change, count_valid_signers
from quanta.core.settings_json import SettingsFormatError, settings_from_json, settings_to_json
from quanta.core.settings_update import signature_from_text
from quanta.core.signatures import update_bytes, update_digest
from quanta.core.status import ConstellationError, StatusCode
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    ConstellationMessageEnvelope,
    ConstellationSettings,
    ConstellationUpdate,
    Signature,
)
from quanta.engine_client import engine_ask
from quanta.models import SettingsDraft, SettingsRecord
from quanta.selectors import constellation_id

UPDATE_TIMEOUT_S = 30.0
# Engine answers after which the same draft may be submitted again: the node was not Ready,
# failed internally, or did not answer (a resubmission of an applied update is refused by
# its version number, so retrying is safe).
TRANSIENT_STATUSES = frozenset({450, 500, 504})
# Keys of the info JSON that are derived, not settings: left out of the editable document.
DERIVED_KEYS = ("settings_version", "quote_asset")

NOT_INITIALIZED = "the constellation is not initialized yet: initialize it first"
NOT_OPEN = "draft {id} is {status}: draft a new update"
STALE = "settings v{current} are in force, this draft follows v{base}: draft again"
NOT_AN_AUDITOR = "{key} is not an auditor of settings v{version}"
BAD_SIGNATURE = "the signature of {key} does not verify over this draft (SHA-256 {digest})"
TOO_FEW = "{needed} of {total} signatures needed, {present} present"


class DraftError(Exception):
    """A draft operation was refused; the message says why, for the operator."""


@dataclasses.dataclass(frozen=True, slots=True)
class SignerStatus:
    """One auditor in force and whether it signed the draft."""

    public_key: str
    address: str
    signed: bool


def settings_in_force() -> ConstellationSettings | None:
    """Returns the newest settings this node recorded, or None before initialization."""
    record = SettingsRecord.objects.order_by("-version").first()
    return None if record is None else decode(ConstellationSettings, bytes(record.data))


def _settings_version(version: int) -> ConstellationSettings:
    record = SettingsRecord.objects.filter(version=version).first()
    if record is None:
        raise DraftError(f"settings v{version} are not recorded on this node")
    return decode(ConstellationSettings, bytes(record.data))


def draft_document_initial() -> str:
    """Returns the settings in force as the editable JSON document a new draft starts from."""
    current = settings_in_force()
    if current is None:
        raise DraftError(NOT_INITIALIZED)
    document = settings_to_json(current)
    for key in DERIVED_KEYS:
        document.pop(key, None)
    providers = document["providers"]
    assert isinstance(providers, list)
    for provider in providers:
        provider.pop("id", None)
    return json.dumps(document, indent=2)


def draft_create(*, document: object, created_by: str = "") -> SettingsDraft:
    """Stores a draft of the settings `document` describes as the next version; raises
    DraftError if they are malformed or may not follow the settings in force."""
    current = settings_in_force()
    if current is None:
        raise DraftError(NOT_INITIALIZED)
    if isinstance(document, dict):
        document = {k: v for k, v in document.items() if k not in DERIVED_KEYS}
    try:
        parsed = settings_from_json(document)
        settings = dataclasses.replace(parsed, version=current.version + 1)
        check_settings_change(settings, _config(current))
    except (SettingsFormatError, ConstellationError) as error:
        raise DraftError(str(error)) from None
    # The message id only makes each draft's bytes distinct; nothing else reads it.
    update = ConstellationUpdate(time.time_ns() // 1_000_000, settings)
    return SettingsDraft.objects.create(
        created_by=created_by, base_version=current.version, message=update_bytes(update)
    )


def draft_update(draft: SettingsDraft) -> ConstellationUpdate:
    """Returns the ConstellationUpdate a draft carries."""
    update = decode(MESSAGE, bytes(draft.message))
    assert isinstance(update, ConstellationUpdate)
    return update


def draft_base_settings(draft: SettingsDraft) -> ConstellationSettings:
    """Returns the settings the draft follows (their auditors are the ones who sign)."""
    return _settings_version(draft.base_version)


def draft_message_base64(draft: SettingsDraft) -> str:
    """Returns the base64 of the exact bytes whose SHA-256 the auditors sign."""
    return base64.b64encode(bytes(draft.message)).decode()


def draft_digest(draft: SettingsDraft) -> bytes:
    """Returns the digest every auditor signs for this draft (bound to this constellation)."""
    return update_digest(_constellation_id(), draft_update(draft))


def draft_signers(draft: SettingsDraft) -> list[SignerStatus]:
    """Returns the auditors whose signatures count (those in force when drafted)."""
    base = _settings_version(draft.base_version)
    return [
        SignerStatus(
            encode_public_key(a.public_key),
            a.address,
            encode_public_key(a.public_key) in draft.signatures,
        )
        for a in base.auditors
    ]


def draft_envelope(draft: SettingsDraft) -> ConstellationMessageEnvelope:
    """Returns the update with the signatures collected so far."""
    signatures = tuple(
        Signature(decode_public_key(key), base64.b64decode(value))
        for key, value in sorted(draft.signatures.items())
    )
    return ConstellationMessageEnvelope(draft_update(draft), signatures)


def draft_signature_count(draft: SettingsDraft) -> tuple[int, int, int]:
    """Returns (valid signatures present, signatures needed, auditors in force)."""
    config = _config(_settings_version(draft.base_version))
    present = count_valid_signers(
        draft_envelope(draft), config.auditor_keys, config.constellation_id
    )
    return present, config.majority, len(config.auditor_keys)


def signature_parse(*, public_key: str, signature: str) -> Signature:
    """Returns the signature an operator pasted: `G...` plus hex or base64, or one line
    `G...:<base64>` as `sign_settings_update` prints it; raises DraftError."""
    text = signature.strip()
    if ":" in text:
        try:
            return signature_from_text(text)
        except ValueError as error:
            raise DraftError(str(error)) from None
    try:
        key = decode_public_key(public_key.strip())
    except InvalidKey as error:
        raise DraftError(f"auditor public key: {error}") from None
    return Signature(key, _signature_bytes(text))


def _signature_bytes(text: str) -> bytes:
    cleaned = "".join(text.split())
    for decoder in (bytes.fromhex, lambda t: base64.b64decode(t, validate=True)):
        try:
            raw = decoder(cleaned)
        except ValueError:
            continue
        if len(raw) == 64:
            return raw
    raise DraftError("a signature is 64 bytes, written as 128 hex digits or 88 base64 chars")


def draft_add_signature(*, draft_id: int, signature: Signature) -> SettingsDraft:
    """Verifies an auditor's signature of the draft and records it; raises DraftError if the
    signer is not an auditor in force or the signature does not verify."""
    with transaction.atomic():
        draft = SettingsDraft.objects.select_for_update().get(pk=draft_id)
        _require_open(draft)
        key = encode_public_key(signature.signer)
        base = _settings_version(draft.base_version)
        if signature.signer not in {a.public_key for a in base.auditors}:
            raise DraftError(NOT_AN_AUDITOR.format(key=key, version=base.version))
        digest = draft_digest(draft)
        if not verify_signature(signature.signer, digest, signature.signature):
            raise DraftError(BAD_SIGNATURE.format(key=key, digest=digest.hex()))
        draft.signatures = {**draft.signatures, key: base64.b64encode(signature.signature).decode()}
        draft.save(update_fields=["signatures"])
    return draft


def _require_open(draft: SettingsDraft) -> None:
    if draft.status != SettingsDraft.Status.DRAFT:
        raise DraftError(NOT_OPEN.format(id=draft.pk, status=draft.get_status_display()))


EngineSend = Callable[[bytes], dict[str, Any]]


def draft_submit(*, draft_id: int, send: EngineSend | None = None) -> SettingsDraft:
    """Submits a draft signed by a majority to alpha's engine and records its verdict;
    raises DraftError (nothing is sent) while signatures are missing or the draft is stale."""
    draft = SettingsDraft.objects.get(pk=draft_id)
    _require_open(draft)
    current = settings_in_force()
    if current is None or current.version != draft.base_version:
        version = 0 if current is None else current.version
        raise DraftError(STALE.format(current=version, base=draft.base_version))
    present, needed, total = draft_signature_count(draft)
    if present < needed:
        raise DraftError(TOO_FEW.format(needed=needed, total=total, present=present))
    answer = (send or engine_settings_update_sync)(_envelope_bytes(draft))
    return _draft_record_answer(draft, answer)


def _envelope_bytes(draft: SettingsDraft) -> bytes:
    return encode(draft_envelope(draft))


def _draft_record_answer(draft: SettingsDraft, answer: dict[str, Any]) -> SettingsDraft:
    status = int(answer.get("status", 500))
    draft.engine_answer = f"{status}: {answer.get('description', '')}"
    if status == StatusCode.SUCCESS:
        draft.status = SettingsDraft.Status.SUBMITTED
        draft.submitted_apex = int(answer["apex"])
    elif status not in TRANSIENT_STATUSES:
        draft.status = SettingsDraft.Status.REFUSED
    draft.save(update_fields=["engine_answer", "status", "submitted_apex"])
    return draft


async def engine_settings_update(envelope: bytes) -> dict[str, Any]:
    """Sends a signed settings update to this node's engine; returns its answer
    ({status, description, apex}) once the update is final, status 504 if that took too long
    (the update may still become final: the settings history shows it if it did)."""
    answer = await engine_ask("quanta.update", envelope, UPDATE_TIMEOUT_S)
    if answer is None:
        text = (
            f"not final within {UPDATE_TIMEOUT_S:.0f} s (are a majority of the auditors "
            "connected?); it may still become final: check the settings history"
        )
        return {"status": 504, "description": text}
    return answer


def engine_settings_update_sync(envelope: bytes) -> dict[str, Any]:
    """Returns `engine_settings_update` for synchronous callers (admin views, commands)."""
    return async_to_sync(engine_settings_update)(envelope)


def _constellation_id() -> bytes:
    found = constellation_id()
    if found is None:
        raise DraftError(NOT_INITIALIZED)
    return found


def _config(settings: ConstellationSettings) -> Config:
    return Config.from_settings(settings, _constellation_id())
