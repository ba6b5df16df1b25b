"""Runs this auditor's herald link to alpha (CONSTELLATION_ALPHA_URL) until stopped."""

import asyncio

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from herald.link import HeraldLink
from quanta import gc_policy
from quanta.node_identity import node_keypair
from quanta.node_status import status_read


class Command(BaseCommand):
    help = "Keep this auditor connected to alpha and relay quanta and signatures."

    def handle(self, *args, **options):
        layer = get_channel_layer()
        if layer is None:
            raise CommandError("no channel layer configured")
        try:
            keypair = node_keypair()
        except RuntimeError as error:
            raise CommandError(str(error)) from None
        gc_policy.settle()
        link = HeraldLink(settings.ALPHA_HERALD_URL, keypair, layer, lambda: status_read().apex)
        asyncio.run(link.run_forever())
