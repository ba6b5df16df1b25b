"""The operators' tools for replacing alpha without alpha (docs/admin.md, "Replacing alpha").

- `replace_alpha draft --alpha G...` prints the base64 bytes of the update that names `G...`
  alpha (the settings this node persisted, version + 1): what each auditor signs with
  `sign_settings_update --message` (offline).
- `replace_alpha envelope --message B64 --signature G...:B64 ...` prints the base64 envelope
  to POST to the new alpha's `/api/constellation/update` (`{"envelope": ...}`).
- `replace_alpha follow --envelope B64` makes this node follow the alpha the update names (it
  is checked against the settings this node persisted: a majority of their auditors must have
  signed it): for the replaced alpha coming back as an auditor, or an auditor the new alpha
  could not reach. Then (re)start the node's processes as an auditor.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from quanta.alpha_designation import designation_store
from quanta.core.alpha_replacement import alpha_address, replacement_check
from quanta.core.config import Config
from quanta.core.keys import InvalidKey, decode_public_key
from quanta.core.settings_update import signature_from_text, update_envelope
from quanta.core.signatures import update_bytes
from quanta.core.status import ConstellationError
from quanta.core.xdr.codec import XdrError, decode, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    ConstellationMessageEnvelope,
    ConstellationSettings,
    ConstellationUpdate,
)
from quanta.selectors import constellation_id, settings_current


class Command(BaseCommand):
    help = "Draft, assemble or follow an update replacing alpha (docs/admin.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        steps = parser.add_subparsers(dest="step", required=True)
        draft = steps.add_parser("draft", help="print the update naming a new alpha")
        draft.add_argument("--alpha", required=True, help="the new alpha's G... key")
        envelope = steps.add_parser("envelope", help="print the signed envelope")
        envelope.add_argument("--message", required=True, help="base64 printed by draft")
        envelope.add_argument("--signature", action="append", default=[], help="G...:<b64>")
        follow = steps.add_parser("follow", help="follow the alpha a signed update names")
        follow.add_argument("--envelope", required=True, help="base64 printed by envelope")

    def handle(self, *args: Any, **options: Any) -> None:
        step = options["step"]
        if step == "draft":
            self.stdout.write(_draft(options["alpha"]))
        elif step == "envelope":
            self.stdout.write(_envelope(options["message"], options["signature"]))
        else:
            self.stdout.write(_follow(options["envelope"]))


def _in_force() -> tuple[ConstellationSettings, bytes]:
    settings = settings_current()
    found = constellation_id()
    if settings is None or found is None:
        raise CommandError("this node holds no settings: it is not initialized")
    return settings, found


def _draft(alpha_text: str) -> str:
    settings, _ = _in_force()
    try:
        alpha = decode_public_key(alpha_text)
    except InvalidKey as error:
        raise CommandError(f"--alpha: {error}") from None
    if alpha not in {auditor.public_key for auditor in settings.auditors}:
        raise CommandError("the new alpha must be one of the auditors in force")
    if alpha == settings.alpha:
        raise CommandError("that key is alpha already")
    brought = dataclasses.replace(settings, version=settings.version + 1, alpha=alpha)
    update = ConstellationUpdate(int(time.time()), brought)
    return base64.b64encode(update_bytes(update)).decode()


def _envelope(message: str, signatures: list[str]) -> str:
    try:
        update = decode(MESSAGE, base64.b64decode(message, validate=True))
        signed = [signature_from_text(text) for text in signatures]
    except (binascii.Error, XdrError, ValueError) as error:
        raise CommandError(str(error)) from None
    if not isinstance(update, ConstellationUpdate):
        raise CommandError("--message does not hold a settings update")
    return base64.b64encode(encode(update_envelope(update, signed))).decode()


def _follow(text: str) -> str:
    settings, genesis_id = _in_force()
    try:
        raw = base64.b64decode(text, validate=True)
        envelope = decode(ConstellationMessageEnvelope, raw)
        brought = replacement_check(envelope, Config.from_settings(settings, genesis_id))
    except (binascii.Error, XdrError) as error:
        raise CommandError(f"--envelope: {error}") from None
    except ConstellationError as error:
        raise CommandError(f"refused: {error}") from None
    designation_store(raw)
    return f"following the new alpha at {alpha_address(brought)}"
