"""Runs this auditor's herald link to alpha (CONSTELLATION_ALPHA_URL) until stopped."""

import asyncio

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from herald.link import HeraldLink
from quanta import gc_policy
from quanta.node_identity import alpha_key_pinned, node_keypair
from quanta.node_status import status_read
from quanta.selectors import settings_current


def alpha_key_expected() -> bytes | None:
    """Returns the key alpha's handshake must be signed by: the settings' alpha key once this
    node has settings (majority-signed, so they win over the environment), else the one
    CONSTELLATION_ALPHA_KEY pins, else None."""
    settings = settings_current()
    return alpha_key_pinned() if settings is None else settings.alpha


class Command(BaseCommand):
    help = "Keep this auditor connected to alpha and relay quanta and signatures."

    def handle(self, *args, **options):
        layer = get_channel_layer()
        if layer is None:
            raise CommandError("no channel layer configured")
        try:
            keypair = node_keypair()
            alpha_key_pinned()  # A malformed CONSTELLATION_ALPHA_KEY stops the link at once.
        except RuntimeError as error:
            raise CommandError(str(error)) from None
        gc_policy.settle()
        link = HeraldLink(
            settings.ALPHA_HERALD_URL,
            keypair,
            layer,
            lambda: status_read().apex,
            alpha_key_expected,
        )
        asyncio.run(link.run_forever())
