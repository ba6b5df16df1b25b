"""Rotates a local-ledger vault's signers, signed by a majority of its signers in force: the
operators' manual fallback. A settings update that changes the auditors rotates the vault
itself (docs/payments.md, "Rotation as a constellation operation"); this command is for a
rotation that did not happen (lost with a restart of alpha, short of an old majority's
signatures, a second local vault), run with a majority of the old signers' secrets."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from payments.core.local_ledger import (
    LedgerRuleError,
    rotation_encode,
    rotation_transaction,
    transaction_sign,
)
from payments.providers.local_ledger.ledger import ledger_now_ms, vault_rotate
from quanta.core.keys import InvalidKey, KeyPair, decode_public_key
from quanta.core.signatures import majority

VALID_FOR_MS = 600_000
"""How long the rotation this command signs stays valid on the ledger."""


class Command(BaseCommand):
    help = "Give a local-ledger vault new signers (threshold: their majority), signed by old ones."

    def add_arguments(self, parser):
        parser.add_argument("--vault", default="VAULT", help="vault address on the ledger")
        parser.add_argument(
            "--signer", action="append", required=True, help="a new signer's G... key (repeat)"
        )
        parser.add_argument(
            "--sign-file",
            action="append",
            required=True,
            help="a file holding the S... secret of a signer in force (repeat for a majority)",
        )
        parser.add_argument("--reference", required=True, help="e.g. the settings version")

    def handle(self, *args, **options):
        try:
            signers = sorted(set(options["signer"]))
            for key in signers:
                decode_public_key(key)
            secrets = [Path(p).read_text().strip() for p in options["sign_file"]]
            keys = [KeyPair.from_secret(secret) for secret in secrets]
        except (InvalidKey, OSError) as error:
            raise CommandError(str(error)) from None
        threshold = majority(len(signers))
        until = ledger_now_ms() + VALID_FOR_MS
        rotation = rotation_transaction(
            options["vault"], signers, threshold, options["reference"], until
        )
        data = rotation_encode(rotation)
        try:
            position = vault_rotate(data, [transaction_sign(data, key) for key in keys])
        except LedgerRuleError as error:
            raise CommandError(f"the ledger refused the rotation: {error}") from None
        self.stdout.write(
            f"entry {position}: {options['vault']} signed by {len(signers)} keys, threshold"
            f" {threshold}"
        )
