"""Who this node is and what it keeps: its key, its clock and its participation level.

Read by every process of a node (web consumers, engine, herald link), so these live below
all of them: nothing here imports more than the settings and the pure key type.
"""

from __future__ import annotations

import time

from django.conf import settings

from quanta.core.genesis import genesis_id_parse
from quanta.core.keys import InvalidKey, KeyPair, decode_public_key


def node_keypair() -> KeyPair:
    """Returns this node's key pair from CONSTELLATION_NODE_SECRET."""
    secret = settings.NODE_SECRET_SEED
    if not secret:
        raise RuntimeError("CONSTELLATION_NODE_SECRET is not set: a node needs its S... key")
    return KeyPair.from_secret(secret)


def genesis_pin() -> bytes | None:
    """Returns the constellation id CONSTELLATION_GENESIS_ID pins this node to, None if unset;
    a malformed value fails the node's start (a pin that silently pins nothing is worse)."""
    try:
        return genesis_id_parse(settings.GENESIS_ID)
    except ValueError as error:
        raise RuntimeError(f"CONSTELLATION_GENESIS_ID: {error}") from None


def alpha_key_pinned() -> bytes | None:
    """Returns alpha's key as CONSTELLATION_ALPHA_KEY gives it, None if unset; a malformed
    value fails loudly."""
    text = settings.ALPHA_KEY.strip()
    if not text:
        return None
    try:
        return decode_public_key(text)
    except InvalidKey as error:
        raise RuntimeError(f"CONSTELLATION_ALPHA_KEY: {error}") from None


def now_ms() -> int:
    """Returns the wall clock in milliseconds (alpha's quantum timestamps)."""
    return time.time_ns() // 1_000_000


def history_kept() -> bool:
    """Tells whether this node keeps the public history: SPEC.md's Prime participation keeps
    every account's effects, the trades and the market feeds; an Auditor-level node talks to
    no clients and keeps only what it needs to validate (quanta, their signatures, the state),
    so it writes none of these and refuses the queries that would read them."""
    return bool(settings.NODE_PARTICIPATION == "prime")
