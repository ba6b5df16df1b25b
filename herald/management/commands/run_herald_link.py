"""Runs this auditor's herald link to alpha (CONSTELLATION_ALPHA_URL) until stopped."""

import asyncio

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from herald.core.protocol import AlphaExpected
from herald.link import HeraldLink
from quanta import gc_policy
from quanta.alpha_designation import alpha_followed
from quanta.core.alpha_replacement import herald_url
from quanta.node_identity import alpha_key_pinned, genesis_pin, node_keypair
from quanta.node_status import status_read
from quanta.selectors import constellation_id, settings_current


def alpha_expected() -> AlphaExpected:
    """Returns what alpha's handshake must show: once this node has settings, their alpha key
    and its constellation's id (majority-signed, so they win over the environment), before
    that what CONSTELLATION_ALPHA_KEY and CONSTELLATION_GENESIS_ID pin (None if unset)."""
    settings = settings_current()
    if settings is None:
        return AlphaExpected(alpha_key_pinned(), genesis_pin())
    followed = alpha_followed()  # a replacement, checked against these settings
    alpha = settings.alpha if followed is None else followed[0]
    return AlphaExpected(alpha, constellation_id())


def alpha_url_followed() -> str | None:
    """Returns the herald URL of the alpha a replacement named (None: CONSTELLATION_ALPHA_URL's
    alpha is still the one to follow)."""
    followed = alpha_followed()
    return None if followed is None else herald_url(followed[1])


class Command(BaseCommand):
    help = "Keep this auditor connected to alpha and relay quanta and signatures."
    # As the engine's `runworker`: the system checks ran at `migrate`, not at every restart.
    requires_system_checks: list[str] = []

    def handle(self, *args, **options):
        layer = get_channel_layer()
        if layer is None:
            raise CommandError("no channel layer configured")
        try:
            keypair = node_keypair()
            alpha_expected()  # A malformed pin stops the link at once.
        except RuntimeError as error:
            raise CommandError(str(error)) from None
        gc_policy.settle()
        link = HeraldLink(
            settings.ALPHA_HERALD_URL,
            keypair,
            layer,
            lambda: status_read().apex,
            alpha_expected,
            ca_file=settings.ALPHA_CA_FILE,
            follow=alpha_url_followed,
        )
        asyncio.run(link.run_forever())
