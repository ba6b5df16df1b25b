"""Which auditor keys alpha's herald endpoint admits: those of the settings in force at the
engine, and those of the last settings persisted as final.

Why both, and why not the persisted settings alone: a settings update that replaces auditors
is finalized by the *new* auditors (the update quantum is executed under the new settings),
and it is persisted only once final. Admitting only the keys of persisted settings therefore
refused exactly the auditors that had to sign it: replacing 2 of 3 auditors (or 1 of 3 while
another was down) could never finalize, and every quantum after it stayed unfinal. The
engine publishes the keys in force whenever its settings version changes (it is the only
writer); the herald admits their union with the persisted ones, so the old auditors can still
sign the quanta below the update. Finality is not in apex order, though: the new auditors may
finalize the update while quanta below it still wait for the old ones, so the engine also
publishes the keys of the settings its oldest unfinal quantum was executed under (`signing`),
admitted too; while alpha rises, `signing` holds the keys whose answers its recovery counts
(with those of an update it recorded as unfinal, whose new auditors may hold it final).
Once every quantum up to the update is final and persisted, the union is the new set alone
and a removed auditor is refused at its next handshake. The web process's update
endpoint checks a posted update against the same published settings (`settings_in_force`).
"""

from __future__ import annotations

import base64
import json

from django.conf import settings

from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import ConstellationSettings
from quanta.redis_client import node_redis
from quanta.selectors import settings_current

PROPOSED_TTL_S = 120
"""How long the auditors of a posted, pre-checked update are admitted before it is in force."""


def _key() -> str:
    return f"{settings.REDIS_PREFIX}:auditor-keys-in-force"


def _proposed_key() -> str:
    return f"{settings.REDIS_PREFIX}:auditor-keys-proposed"


def proposed_keys_publish(proposed: ConstellationSettings) -> None:
    """Admits, for PROPOSED_TTL_S, the auditors of an update a majority of the auditors in
    force signed (the web process checked it), so they can connect and catch up before the
    engine executes it: alpha executes an update only once enough of its new auditors are
    there to finalize it, and could never see them if the herald refused them until then."""
    keys = [auditor.public_key.hex() for auditor in proposed.auditors]
    node_redis().set(_proposed_key(), json.dumps(keys), ex=PROPOSED_TTL_S)


def keys_in_force_publish(in_force: ConstellationSettings, signing: tuple[bytes, ...] = ()) -> None:
    """Stores the settings in force at the engine, with their alpha and auditor keys, and the
    keys still needed to sign its oldest unfinal quantum (`AlphaNode.signers_still_needed`)."""
    payload = {
        "version": in_force.version,
        "alpha": in_force.alpha.hex(),
        "auditors": [auditor.public_key.hex() for auditor in in_force.auditors],
        "signing": [key.hex() for key in signing],
        "settings": base64.b64encode(encode(in_force)).decode(),
    }
    node_redis().set(_key(), json.dumps(payload))


def settings_in_force() -> ConstellationSettings | None:
    """Returns the settings the engine last published as in force (they may be newer than
    the persisted ones while an update waits for finality), else the persisted ones."""
    raw = node_redis().get(_key())
    if raw is None:
        return settings_current()
    published: ConstellationSettings = decode(
        ConstellationSettings, base64.b64decode(json.loads(raw)["settings"])
    )
    return published


def keys_in_force_clear() -> None:
    """Forgets the published keys (fresh nodes, tests)."""
    node_redis().delete(_key(), _proposed_key())


def admitted_auditor_keys() -> frozenset[bytes] | None:
    """Returns the keys the herald may bind a connection to (never alpha's own), None before
    the constellation has any settings."""
    persisted = settings_current()
    raw, proposed = node_redis().mget(_key(), _proposed_key())
    if persisted is None and raw is None:
        return None
    keys: set[bytes] = set()
    alphas: set[bytes] = set()
    if persisted is not None:
        keys.update(auditor.public_key for auditor in persisted.auditors)
        alphas.add(persisted.alpha)
    if raw is not None:
        in_force = json.loads(raw)
        keys.update(bytes.fromhex(key) for key in in_force["auditors"])
        keys.update(bytes.fromhex(key) for key in in_force.get("signing", ()))
        alphas.add(bytes.fromhex(in_force["alpha"]))
    if proposed is not None:
        keys.update(bytes.fromhex(key) for key in json.loads(proposed))
    return frozenset(keys - alphas)
