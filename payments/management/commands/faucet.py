"""Pays into the local-ledger vault on behalf of a key (the demo faucet)."""

from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from payments.providers.local_ledger.ledger import faucet_deposit
from quanta.core.keys import InvalidKey, KeyPair


class Command(BaseCommand):
    help = "Mint funds on the local ledger for a key and pay them into the vault (a deposit)."

    def add_arguments(self, parser):
        parser.add_argument("account", help="the depositor: a G... public key or an S... secret")
        parser.add_argument("asset", help="ledger token, e.g. USD")
        parser.add_argument("amount", help="decimal amount, e.g. 100 or 12.5")
        parser.add_argument("--vault", default="VAULT", help="vault address on the ledger")

    def handle(self, *args, **options):
        account = options["account"]
        try:
            public = (
                KeyPair.from_secret(account).public_key_strkey
                if account.startswith("S")
                else account
            )
            units = Decimal(options["amount"]) * 10_000_000
        except (InvalidKey, InvalidOperation) as error:
            raise CommandError(str(error)) from None
        if units != units.to_integral_value() or units <= 0:
            raise CommandError("amount must be positive with at most 7 decimals")
        try:
            transfer_id = faucet_deposit(public, options["vault"], options["asset"], int(units))
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"transfer {transfer_id}: {options['amount']} {options['asset']} "
            f"from {public} to the vault"
        )
