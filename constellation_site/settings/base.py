"""Settings of one node, all read from the environment through `env.py`.

Node identity (secret seed, database, Redis prefix, ports) is environment, never code, so the
same code runs alpha and every auditor of a constellation on one machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.utils.csp import CSP

from constellation_site.settings.env import (
    database_from_url,
    env_bool,
    env_int,
    env_secret,
    env_str,
    secret_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent

DEBUG = env_bool("CONSTELLATION_DEBUG", False)
# Signs the admin's sessions and CSRF tokens. No known fallback outside debug: DJANGO_SECRET_KEY,
# else the file DJANGO_SECRET_KEY_FILE names, else one derived from the node's own secret
# seed; a process with none of them refuses whatever needs the key (Django's own error).
SECRET_KEY = secret_key(
    env_secret("DJANGO_SECRET_KEY"), env_secret("CONSTELLATION_NODE_SECRET"), debug=DEBUG
)
ALLOWED_HOSTS = env_str("CONSTELLATION_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

# Behind TLS (CONSTELLATION_HTTPS: the node is reached over https/wss, directly or through a
# reverse proxy that sets X-Forwarded-Proto), cookies are sent over TLS only and browsers are
# told to use nothing else for a year (HSTS).
HTTPS = env_bool("CONSTELLATION_HTTPS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 365 * 24 * 3600 if HTTPS else 0
if env_bool("CONSTELLATION_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# The page loads only its own modules and talks only to its own node (fetch and WebSockets:
# 'self' covers ws/wss of the same host); the page's view adds the nodes the settings in force
# name to connect-src (`constellation_site.views.index`: it follows an alpha replacement).
# Styles allow inline attributes, which the admin's templates use; scripts never run inline.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# Not "daphne": that app only brings `runserver` (nodes run constellation_site.server) and
# imports Twisted into every process at django.setup(), ~0.25 s of each engine and herald
# link start that never serve HTTP.
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Before channels: quanta's `runworker` (which starts the engine at once) overrides it.
    "quanta",
    "channels",
    "exchange",
    "payments",
    "herald",
    "chronicler",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "constellation_site.urls"
ASGI_APPLICATION = "constellation_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Each process holds at most DB_POOL_MAX connections per database (a pool; see
# `database_from_url`), whatever the request rate; a request that waits DB_POOL_TIMEOUT_S for
# one fails instead of waiting on.
DB_POOL_MAX = env_int("CONSTELLATION_DB_POOL_MAX", 8)
DB_POOL_TIMEOUT_S = float(env_int("CONSTELLATION_DB_POOL_TIMEOUT_S", 10))
DATABASES = {
    "default": database_from_url(
        env_str("CONSTELLATION_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/constellation"),
        pool_max=DB_POOL_MAX,
        pool_timeout_s=DB_POOL_TIMEOUT_S,
    )
}
# The local ledger (the embedded payment network of the local-ledger provider) is a database
# of its own, shared by every node of a local constellation.
DATABASES["ledger"] = database_from_url(
    env_str("CONSTELLATION_LEDGER_URL", "postgres://postgres@127.0.0.1:5432/constellation_ledger"),
    pool_max=DB_POOL_MAX,
    pool_timeout_s=DB_POOL_TIMEOUT_S,
)
DATABASE_ROUTERS = ["payments.routers.LedgerRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("CONSTELLATION_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_PREFIX = env_str("CONSTELLATION_REDIS_PREFIX", "constellation")

# The channel layer is at-most-once. Admission is what turns overload into backpressure: each
# web process's gateway hub lets at most GATEWAY_INFLIGHT_MAX requests wait at the engine and
# answers the next ones TooManyRequests at once (quanta/consumers/hub.py), so nothing is
# dropped silently. A full engine channel (capacity in messages, each a batch of requests)
# is answered the same way. Expiry is the only silent loss, so it is set far above the longest
# a message can wait: the engine drains thousands of requests per second, i.e. seconds,
# against an expiry of 120 s. A batch the engine never credits stops counting after it.
CHANNEL_EXPIRY_S = 120
CHANNEL_QUANTA_CAPACITY = env_int("CONSTELLATION_QUANTA_CAPACITY", 20_000)
GATEWAY_INFLIGHT_MAX = env_int("CONSTELLATION_GATEWAY_INFLIGHT", 5_000)
GATEWAY_INFLIGHT_EXPIRY_S = float(CHANNEL_EXPIRY_S)
# Of those, at most this many of one connection, so one client cannot take all the room.
GATEWAY_SESSION_INFLIGHT_MAX = env_int("CONSTELLATION_GATEWAY_SESSION_INFLIGHT", 1_000)
# Connections one key may hold on one web process (each gets a copy of every result).
GATEWAY_KEY_CONNECTIONS_MAX = env_int("CONSTELLATION_GATEWAY_KEY_CONNECTIONS", 16)
# History items (QuantumInfoRequest on /ws/ and /ws/chronicler/, a page costing its limit, at
# least HISTORY_PAGE_COST_MIN) one connection may ask per second on average, and at once:
# five 1 000-item pages a second, ten at once; small pages go faster.
HISTORY_ITEMS_PER_S = env_int("CONSTELLATION_HISTORY_ITEMS_PER_S", 5_000)
HISTORY_ITEMS_BURST = env_int("CONSTELLATION_HISTORY_ITEMS_BURST", 10_000)
# Requests a connection whose key has no account yet may send per second, and at once: alpha
# can only refuse them (no account), and its per-account limits cannot count them.
UNREGISTERED_REQUESTS_PER_S = env_int("CONSTELLATION_UNREGISTERED_REQUESTS_PER_S", 1)
UNREGISTERED_REQUESTS_BURST = env_int("CONSTELLATION_UNREGISTERED_REQUESTS_BURST", 5)
CHANNEL_LAYERS: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": "quanta.channel_layer.NodeChannelLayer",
        "CONFIG": {
            # redis-py 8 times reads out after 5 s by default, which is exactly how long
            # channels_redis blocks in BZPOPMIN on an idle channel: give reads more room.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
            "prefix": REDIS_PREFIX,
            "capacity": 1_000,
            "expiry": CHANNEL_EXPIRY_S,
            "group_expiry": 86_400,
            "channel_capacity": {"quanta": CHANNEL_QUANTA_CAPACITY},
            # Gateway hubs re-join every 30 s (quanta/consumers/hub.py): a hub whose web process
            # died is dropped from the group after 90 s instead of a day.
            "group_expiries": {"gateways": 90},
        },
    }
}

# Node identity and roles.
# The node's S... key: CONSTELLATION_NODE_SECRET, or the file CONSTELLATION_NODE_SECRET_FILE names.
NODE_SECRET_SEED = env_secret("CONSTELLATION_NODE_SECRET")
NODE_PARTICIPATION = env_str("CONSTELLATION_PARTICIPATION", "prime")
# alpha: executes client requests; auditor: follows alpha through its herald link. A node's
# role must agree with the settings (alpha is the node whose key is the settings' alpha key).
NODE_ROLE = env_str("CONSTELLATION_ROLE", "alpha")
# The class of an auditor's node (dotted path). Never read from the environment: only a
# settings module of the tests swaps it (tests/cluster/settings_tampering.py: a forging auditor).
AUDITOR_NODE_CLASS = "quanta.core.auditor.AuditorNode"
# This node's own options per payment provider id (endpoints, secrets, TTL), as JSON, e.g.
# {"stellar-main": {"horizon_url": "https://..."}, "local-vault": {"ttl_ms": "60000"}}.
PAYMENT_PROVIDERS = json.loads(env_str("CONSTELLATION_PAYMENT_PROVIDERS", "{}"))
# Demo only: enables the local-ledger faucet endpoint (POST /api/faucet) and its button.
DEMO_MODE = env_bool("CONSTELLATION_DEMO", False)
# ws:// is for a constellation on one machine (loopback) only: between machines use
# wss://, or an attacker on the wire can stand in for alpha (README.md, Configuration).
ALPHA_HERALD_URL = env_str("CONSTELLATION_ALPHA_URL", "ws://127.0.0.1:8000/ws/herald/")
# The CA certificate(s) (PEM) a wss:// herald link verifies alpha's certificate against, when
# alpha's comes from a CA of the operators' own; "" = the system's trusted CAs.
ALPHA_CA_FILE = env_str("CONSTELLATION_ALPHA_CA_FILE", "")
# The bearer token a scrape of /metrics must present (or the file CONSTELLATION_METRICS_TOKEN_FILE
# names); "" = /metrics is open (keep it on the operators' network then, docs/deploy.md).
METRICS_TOKEN = env_secret("CONSTELLATION_METRICS_TOKEN")
# Alpha's G... key, which an auditor requires alpha's herald handshake to be signed by before
# it has settings (afterwards the settings' alpha key is required). "" = not pinned.
ALPHA_KEY = env_str("CONSTELLATION_ALPHA_KEY", "")
# The one constellation id (hex SHA-256 of the genesis settings) this node may be initialized
# with; "" = any genesis that passes the other checks (quanta/core/genesis.py).
GENESIS_ID = env_str("CONSTELLATION_GENESIS_ID", "")
# Alpha's one-time initialization token (or the file CONSTELLATION_INIT_TOKEN_FILE names);
# "" = alpha's engine makes a random one at start and prints it in its log (quanta/init_token.py).
INIT_TOKEN = env_secret("CONSTELLATION_INIT_TOKEN")
HTTP_PORT = env_int("CONSTELLATION_HTTP_PORT", 8000)

# Pending-updates (snapshot) batching: every 5 s or 50 000 quanta (SPEC.md).
SNAPSHOT_INTERVAL_S = env_int("CONSTELLATION_SNAPSHOT_INTERVAL_S", 5)
SNAPSHOT_QUANTA_MAX = env_int("CONSTELLATION_SNAPSHOT_QUANTA_MAX", 50_000)
# Every node signs its state hash after each quantum whose apex is a multiple of this (what a
# node joining from a snapshot trusts, docs/admin.md "Joining empty"): equal on every node.
STATE_ATTEST_EVERY = env_int("CONSTELLATION_STATE_ATTEST_EVERY", 1000)
# Alpha checks 1 in this many auditor signatures that arrive after their quantum is final, for
# evidence (quanta.core.alpha.LATE_SIGNATURES_CHECKED_ONE_IN; 1: every one).
LATE_SIGNATURES_CHECK_ONE_IN = env_int("CONSTELLATION_LATE_SIGNATURES_CHECK_ONE_IN", 16)
# How long a settings update posted to alpha waits for enough of its new auditors to connect
# and catch up before it is refused (450, "could not finalize"); nothing is executed meanwhile.
UPDATE_AUDITORS_WAIT_S = env_int("CONSTELLATION_UPDATE_AUDITORS_WAIT_S", 20)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "static"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("CONSTELLATION_LOG_LEVEL", "INFO")},
}
