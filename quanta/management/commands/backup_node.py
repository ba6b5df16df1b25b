"""Backs up this node's database into a directory (quanta/backups.py says what it holds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from quanta.backups import BackupError, backup_make


class Command(BaseCommand):
    help = "Back up this node's database (a consistent copy, also of a running node)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", required=True, help="an empty or new directory")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            manifest = backup_make(Path(options["out"]))
        except BackupError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"backed up node {manifest.node} of constellation {manifest.constellation_id} "
            f"at apex {manifest.apex} (snapshot apex {manifest.snapshot_apex}) "
            f"into {options['out']}"
        )
