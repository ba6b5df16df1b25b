"""The only place that reads the process environment: typed getters for settings files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str | None = None) -> str:
    """Returns the variable's value, or `default`; a missing required variable fails loudly."""
    value = os.environ.get(name, default)
    if value is None:
        raise ImproperlyConfigured(f"environment variable {name} is required")
    return value


def env_secret(name: str) -> str:
    """Returns a secret from the variable `name`, else from the file the variable
    `name`_FILE names (so a secret need appear neither on a command line nor in an
    environment listing), else ""."""
    value = os.environ.get(name, "")
    if value:
        return value
    file = os.environ.get(f"{name}_FILE", "")
    if not file:
        return ""
    try:
        text = Path(file).read_text().strip()
    except OSError as error:
        raise ImproperlyConfigured(f"cannot read {name}_FILE: {error}") from None
    if not text:
        raise ImproperlyConfigured(f"{name}_FILE {file} is empty")
    return text


def env_int(name: str, default: int) -> int:
    """Returns the variable as an int, refusing anything that is not a whole number."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_bool(name: str, default: bool) -> bool:
    """Returns the variable as a bool: 1/true/yes/on or 0/false/no/off."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean, got {raw!r}")


DEV_SECRET_KEY = "dev-only-insecure-key-change-me"  # noqa: S105 (known by design, debug only)
"""Django's secret key in debug mode when nothing else is given; never used outside debug."""


def secret_key(value: str, node_secret: str, *, debug: bool) -> str:
    """Returns Django's secret key: `value` (DJANGO_SECRET_KEY, or the file
    DJANGO_SECRET_KEY_FILE names: `env_secret`), else a key derived from the node's secret
    seed (so a node needs no second secret), else in debug mode a development key, else ""
    (Django then refuses whatever needs the key, rather than signing sessions with a value
    everyone knows)."""
    if value:
        return value
    if node_secret:
        derived = hashlib.sha256(b"constellation django secret key\0" + node_secret.encode())
        return derived.hexdigest()
    return DEV_SECRET_KEY if debug else ""


def database_from_url(url: str, *, pool_max: int, pool_timeout_s: float) -> dict[str, object]:
    """Turns postgres://user:password@host:port/name into a Django DATABASES entry.

    Connections come from a bounded psycopg pool per process and alias (at most `pool_max`
    open; a request that finds none free within `pool_timeout_s` fails) and go back to it when
    Django closes them, at the end of each request and around each `database_sync_to_async`
    call (CONN_MAX_AGE 0, as Django requires with a pool). Persistent connections must not be
    used under ASGI: daphne runs every request in a thread of its own, so each request kept a
    connection of its own open until CONN_MAX_AGE ran out, and one open page exhausted
    PostgreSQL's connection limit.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured(f"only PostgreSQL database URLs are supported: {url!r}")
    # `?host=/run/postgresql` (libpq's form) names the directory of PostgreSQL's Unix socket:
    # a node in a network namespace of its own reaches its database there (docs/deploy.md).
    socket_dir = parse_qs(parts.query).get("host", [""])[0]
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or "postgres"),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": socket_dir or parts.hostname or "127.0.0.1",
        "PORT": str(parts.port or 5432),
        "CONN_MAX_AGE": 0,
        "OPTIONS": {
            "pool": {
                "min_size": 1,
                "max_size": pool_max,
                "timeout": pool_timeout_s,
                # Connections above min_size close after a minute unused.
                "max_idle": 60.0,
            }
        },
    }
