"""Restores a backup made by `backup_node` into this node's database (checks first)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from quanta.backups import BackupError, backup_restore


class Command(BaseCommand):
    help = "Restore this node's database from a backup directory; the node then catches up."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="source", required=True, help="the backup directory")
        parser.add_argument(
            "--force", action="store_true", help="replace a database that already holds quanta"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            manifest = backup_restore(Path(options["source"]), force=options["force"])
        except BackupError as error:
            raise CommandError(str(error)) from None
        # A newer release may carry migrations the backup's schema lacks.
        call_command("migrate", "--noinput", verbosity=0)
        self.stdout.write(
            f"restored node {manifest.node} of constellation {manifest.constellation_id} "
            f"at apex {manifest.apex}; start the node: it catches up from alpha"
        )
