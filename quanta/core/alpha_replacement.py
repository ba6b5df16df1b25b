"""Replacing alpha: a settings update, signed by a majority of the auditors in force, that
names another of them as alpha (docs/admin.md, "Replacing alpha").

The update is executed by the alpha it names, never by the one it replaces: alpha signs a
settings quantum under the settings it brings (`rising.py`), so only the new alpha's key can
sign it at its own index, and a replaced alpha that is dead could not anyway. Before the
update is in force the new alpha is an *alpha designate*: restarted as alpha by its operator,
it goes Rising like any restarted alpha (collecting the highest prefix from the auditors,
counting its own chain as one answer), executes nothing for clients, and executes the update
as the next quantum once Rising completed. The other auditors learn of the update from it (or
from their operators) and then take frames signed by the designate: each quantum in them is
checked against the alpha of the settings at its apex (the old alpha's signature below the
update, the new one's on it), so the designate can relay what the old alpha signed and
nothing else until the update is final.
"""

from __future__ import annotations

from quanta.core.config import Config
from quanta.core.processors.settings import check_update
from quanta.core.status import BadRequest
from quanta.core.xdr.schema import ConstellationMessageEnvelope, ConstellationSettings


def replacement_check(
    envelope: ConstellationMessageEnvelope, current: Config
) -> ConstellationSettings:
    """Returns the settings of a valid alpha replacement (the next version, signed by a
    majority of the auditors in force, naming another alpha); raises ConstellationError
    (BadRequest if it names the same alpha) otherwise."""
    settings = check_update(envelope, current)
    if settings.alpha == current.settings.alpha:
        raise BadRequest("the update does not replace alpha")
    return settings


def is_replacement(envelope: ConstellationMessageEnvelope, current: Config | None) -> bool:
    """Tells whether the envelope is an update naming an alpha other than the one in force
    (valid or not: the caller checks it)."""
    settings = getattr(envelope.message, "settings", None)
    return (
        current is not None
        and isinstance(settings, ConstellationSettings)
        and settings.alpha != current.settings.alpha
    )


def alpha_address(settings: ConstellationSettings) -> str:
    """Returns the address (HTTP base URL) the settings give their alpha."""
    return next(a.address for a in settings.auditors if a.public_key == settings.alpha)


def herald_url(address: str) -> str:
    """Returns the herald endpoint of the node at `address` (http -> ws, https -> wss)."""
    base = address.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    return f"{base}/ws/herald/"
