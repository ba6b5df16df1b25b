"""The alpha replacement a node was given, shared by its processes (in Redis), and its
forwarding to the other nodes (`quanta.core.alpha_replacement`, docs/admin.md).

An auditor's engine stores a replacement update it checked; its herald link reads it back
(`alpha_followed`), checks it again against the settings the node persisted (a majority of
their auditors must have signed it: no single node's word moves the link), and connects to
the address the update gives the new alpha. Once settings in force name an alpha other than
the genesis one (whose herald CONSTELLATION_ALPHA_URL names), the link follows the address they
give it, Redis lost or not. The alpha designate hands the update to every other
node at its address (`designation_forward`), so their operators need not submit it to each.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from base64 import b64encode

from django.conf import settings

from quanta.core.alpha_replacement import alpha_address, replacement_check
from quanta.core.config import Config
from quanta.core.status import ConstellationError
from quanta.core.xdr.codec import XdrError, decode
from quanta.core.xdr.schema import ConstellationMessageEnvelope, ConstellationSettings
from quanta.models import SettingsRecord
from quanta.redis_client import node_redis
from quanta.selectors import constellation_id, settings_current

logger = logging.getLogger(__name__)

FORWARD_TIMEOUT_S = 5.0


def _key() -> str:
    return f"{settings.REDIS_PREFIX}:alpha-designation"


def designation_store(envelope: bytes) -> None:
    """Keeps the replacement update (an envelope the engine checked) for the herald link."""
    node_redis().set(_key(), envelope)


def designation_read() -> ConstellationMessageEnvelope | None:
    """Returns the stored replacement update, None if there is none (or it does not decode)."""
    raw = node_redis().get(_key())
    if not isinstance(raw, bytes):
        return None
    try:
        envelope: ConstellationMessageEnvelope = decode(ConstellationMessageEnvelope, raw)
    except XdrError:
        return None
    return envelope


def alpha_followed() -> tuple[bytes, str] | None:
    """Returns the alpha (key, address) this node's herald link follows instead of the one its
    environment names: that of a stored replacement update valid against the persisted
    settings, or once such an update is in force the alpha of the settings in force; None
    when no replacement concerns this node."""
    current = settings_current()
    genesis_id = constellation_id()
    if current is None or genesis_id is None:
        return None
    envelope = designation_read()
    brought = None if envelope is None else getattr(envelope.message, "settings", None)
    if envelope is not None and isinstance(brought, ConstellationSettings):
        try:
            replacement_check(envelope, Config.from_settings(current, genesis_id))
            return brought.alpha, alpha_address(brought)
        except ConstellationError:
            pass  # in force already, or overtaken: the settings in force tell
    if current.alpha == _genesis_alpha():
        return None  # CONSTELLATION_ALPHA_URL names it
    return current.alpha, alpha_address(current)


def _genesis_alpha() -> bytes | None:
    record = SettingsRecord.objects.filter(version=1).first()
    return None if record is None else decode(ConstellationSettings, bytes(record.data)).alpha


def designation_replaces(own: bytes) -> bool:
    """Tells whether a stored replacement update, valid against the persisted settings,
    replaces the alpha `own` (a replaced alpha may then start as an auditor)."""
    followed = alpha_followed()
    current = settings_current()
    return followed is not None and current is not None and current.alpha == own != followed[0]


def designation_forward(envelope: bytes, brought: ConstellationSettings, own: bytes) -> None:
    """POSTs the replacement update to every other node's /api/constellation/update (best
    effort: a dead node, the old alpha among them, is only logged)."""
    body = json.dumps({"envelope": b64encode(envelope).decode()}).encode()
    for auditor in brought.auditors:
        if auditor.public_key == own:
            continue
        url = f"{auditor.address.rstrip('/')}/api/constellation/update"
        if not url.startswith(("http://", "https://")):
            logger.warning("alpha replacement not handed to %r: not an HTTP address", url)
            continue
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=FORWARD_TIMEOUT_S) as response:  # noqa: S310
                logger.info("alpha replacement handed to %s: %s", url, response.status)
        except urllib.error.HTTPError as error:
            logger.warning("alpha replacement refused by %s: %s", url, error.read()[:200])
        except (OSError, TimeoutError) as error:
            logger.warning("alpha replacement not handed to %s: %s", url, error)
