"""Test overrides only: a database of its own per test run, a Redis prefix of its own."""

from __future__ import annotations

from constellation_site.settings.base import *  # noqa: F403
from constellation_site.settings.base import CHANNEL_LAYERS, DATABASES

DATABASES["default"]["NAME"] = "constellation_test_main"
DATABASES["default"]["TEST"] = {"NAME": "test_constellation"}
DATABASES["ledger"]["NAME"] = "constellation_ledger_test_main"
DATABASES["ledger"]["TEST"] = {"NAME": "test_constellation_ledger"}
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = "constellation-test"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEBUG = False
