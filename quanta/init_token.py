"""Alpha's one-time initialization token: who may post the genesis to `/api/constellation/init`.

Until it is initialized a node takes its first settings from whoever posts them first; the
genesis checks (`quanta.core.genesis`) already refuse settings alpha did not sign, and the
token also keeps everyone but the operator from trying (a refused init still costs a
signature check). Alpha's engine, the one process of a node that always runs and knows
whether the node is initialized, sets it at start while uninitialized: the operator's
CONSTELLATION_INIT_TOKEN (or _FILE), else a random one it prints in its log. Redis holds only
its SHA-256 under the node's prefix, where every web process of the node reads it (the
operator's token also straight from the environment, before the engine ran); the engine
deletes it once initialized, and from then on the web process answers 409 before it looks at
any token, so the token opens the door once. Compared in constant time (`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from django.conf import settings
from django.http import HttpRequest

from quanta.redis_client import node_redis

logger = logging.getLogger(__name__)

HEADER = "X-Init-Token"
"""The request header that carries the token (or `Authorization: Bearer <token>`)."""
TOKEN_BYTES = 32


def _key() -> str:
    return f"{settings.REDIS_PREFIX}:init-token"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def init_token_set() -> None:
    """Sets the token for this uninitialized node (the operator's, else a random one) and
    says in the log how to use it; the random one is printed there, the operator's is not."""
    token = settings.INIT_TOKEN
    if token:
        logger.warning("not initialized: /api/constellation/init takes CONSTELLATION_INIT_TOKEN")
    else:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        logger.warning(
            "not initialized: the one-time initialization token is %s "
            "(init_constellation --init-token, or header %s)",
            token,
            HEADER,
        )
    node_redis().set(_key(), _digest(token))


def init_token_clear() -> None:
    """Forgets the token: the node is initialized, nobody may initialize it again."""
    node_redis().delete(_key())


def _expected_digest() -> bytes | None:
    """Returns the digest a presented token must have: the one alpha's engine set, else the
    operator's CONSTELLATION_INIT_TOKEN's (this process has the same environment, and an init
    may arrive before the engine ran: the web process comes up first), else None."""
    stored = node_redis().get(_key())
    if stored is not None:
        return stored.encode() if isinstance(stored, str) else bytes(stored)
    token = settings.INIT_TOKEN
    return _digest(token).encode() if token else None


def presented_token(request: HttpRequest) -> str | None:
    """Returns the token a request carries (`X-Init-Token`, or `Authorization: Bearer`)."""
    token = request.headers.get(HEADER)
    if token:
        return token.strip()
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def init_token_refusal(presented: str | None) -> tuple[int, str] | None:
    """Returns (HTTP status, why) if `presented` is not this node's token, else None."""
    if presented is None:
        return 401, (
            f"initialization needs the node's one-time token (header {HEADER} or "
            "Authorization: Bearer; alpha's engine log prints it, or CONSTELLATION_INIT_TOKEN)"
        )
    expected = _expected_digest()
    if expected is None:
        return 503, "no initialization token is set yet: alpha's engine has not started"
    if not hmac.compare_digest(_digest(presented).encode(), expected):
        return 403, "wrong initialization token"
    return None
