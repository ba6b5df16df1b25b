"""Fills this node's empty database from a snapshot another node serves (usually alpha),
trusted only through a majority's signed state hash (`quanta.node.join`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from quanta.core.genesis import genesis_id_parse
from quanta.node.join import JoinError, join_from_snapshot
from quanta.node_identity import genesis_pin


class Command(BaseCommand):
    help = (
        "Join empty: load a snapshot from --from (alpha's HTTP address), verified against the "
        "settings chain of the pinned genesis id and a majority-signed state hash; then start "
        "the node, it catches up the quanta after the snapshot."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="source", required=True, help="a node's HTTP URL")
        parser.add_argument(
            "--genesis-id",
            default="",
            help="the constellation id (hex) to trust; default CONSTELLATION_GENESIS_ID",
        )
        parser.add_argument(
            "--wait", type=float, default=120.0, help="seconds to wait for an attested apex"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            pin = genesis_id_parse(options["genesis_id"]) or genesis_pin()
        except ValueError as error:
            raise CommandError(f"--genesis-id: {error}") from None
        if pin is None:
            raise CommandError(
                "a join trusts only a pinned constellation: set CONSTELLATION_GENESIS_ID "
                "or give --genesis-id"
            )
        try:
            report = join_from_snapshot(
                options["source"],
                pin,
                settings.STATE_ATTEST_EVERY,
                options["wait"],
                say=self.stdout.write,
            )
        except JoinError as error:
            raise CommandError(f"join refused: {error}") from None
        self.stdout.write(
            f"joined at apex {report.apex} (snapshot at {report.snapshot_apex}, "
            f"{report.replayed} quanta replayed, {report.accounts} accounts): state hash "
            f"signed by {report.signers} nodes ({report.needed} needed); "
            f"{report.bytes_in} bytes in {report.seconds:.2f} s; start the node"
        )
