"""An auditor signs a settings draft: the exact bytes the admin shows.

`--message <base64>` signs bytes copied from the admin (offline: no database needed) and
prints `G...:<base64 signature>` to paste into the draft. `--draft ID` reads the draft from
this node's database; with `--add` the signature is verified and recorded in the draft
directly. The key is `--secret S...`, else this node's CONSTELLATION_NODE_SECRET.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from django.conf import settings as django_settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from quanta import settings_drafts
from quanta.core.keys import InvalidKey, KeyPair
from quanta.core.settings_json import settings_to_json
from quanta.core.settings_update import signature_to_text, update_constellation_id, update_sign
from quanta.core.signatures import update_digest
from quanta.core.xdr.codec import XdrError, decode
from quanta.core.xdr.schema import MESSAGE, ConstellationUpdate
from quanta.models import SettingsDraft
from quanta.selectors import constellation_id


class Command(BaseCommand):
    help = "Sign a constellation settings draft with an auditor's key."

    def add_arguments(self, parser: CommandParser) -> None:
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--draft", type=int, help="draft id in this node's database")
        what.add_argument("--message", help="base64 of the bytes shown by the admin")
        parser.add_argument("--secret", help="the auditor's S... secret (default: node secret)")
        parser.add_argument("--add", action="store_true", help="record it in the draft (--draft)")
        parser.add_argument("--show", action="store_true", help="print the settings signed")
        parser.add_argument(
            "--constellation",
            metavar="HEX",
            help="id of the constellation the update is for (default: this node's; not needed "
            "for genesis settings, whose hash it is)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["add"] and options["draft"] is None:
            raise CommandError("--add records the signature in a draft: give --draft ID")
        keypair = _keypair(options["secret"] or django_settings.NODE_SECRET_SEED)
        update = _update(options)
        if options["show"]:
            self.stdout.write(json.dumps(settings_to_json(update.settings), indent=2))
        constellation = _constellation_of(update, options["constellation"])
        self.stdout.write(f"constellation id: {constellation.hex()}")
        self.stdout.write(f"sha256: {update_digest(constellation, update).hex()}")
        signature = update_sign(update, keypair, constellation)
        if options["add"]:
            try:
                settings_drafts.draft_add_signature(draft_id=options["draft"], signature=signature)
            except settings_drafts.DraftError as error:
                raise CommandError(f"refused: {error}") from None
            self.stdout.write(f"signature of {keypair.public_key_strkey} added")
        self.stdout.write(signature_to_text(signature))


def _keypair(secret: str) -> KeyPair:
    if not secret:
        raise CommandError("no key: give --secret S... or set CONSTELLATION_NODE_SECRET")
    try:
        return KeyPair.from_secret(secret)
    except InvalidKey as error:
        raise CommandError(f"bad secret: {error}") from None


def _update(options: dict[str, Any]) -> ConstellationUpdate:
    if options["draft"] is not None:
        draft = SettingsDraft.objects.filter(pk=options["draft"]).first()
        if draft is None:
            raise CommandError(f"no settings draft {options['draft']} in this database")
        return settings_drafts.draft_update(draft)
    try:
        message = decode(MESSAGE, base64.b64decode(options["message"], validate=True))
    except (binascii.Error, XdrError) as error:
        raise CommandError(f"--message is not a base64 Message: {error}") from None
    if not isinstance(message, ConstellationUpdate):
        raise CommandError(f"--message holds a {type(message).__name__}, not a settings update")
    return message


def _constellation_of(update: ConstellationUpdate, given: str | None) -> bytes:
    """Returns the id the update is signed under: its own for genesis settings, else the one
    given, else this node's."""
    if update.settings.version == 1:
        return update_constellation_id(update, None)
    if given:
        try:
            raw = bytes.fromhex(given)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise CommandError("--constellation takes the 64 hex digits of a constellation id")
        return raw
    found = constellation_id()
    if found is None:
        raise CommandError("this node is not initialized: give --constellation HEX")
    return found
