"""Test overrides only: a database of its own per test run, a Redis prefix of its own."""

from __future__ import annotations

import os

from constellation_site.settings.base import *  # noqa: F403
from constellation_site.settings.base import CHANNEL_LAYERS, DATABASES

# Two test runs on one machine (a developer's and a helper's) need different databases: a run
# drops its test databases when it ends.
_RUN = os.environ.get("CONSTELLATION_TEST_RUN", "")

DATABASES["default"]["NAME"] = f"constellation_test_main{_RUN}"
DATABASES["default"]["TEST"] = {"NAME": f"test_constellation{_RUN}"}
DATABASES["ledger"]["NAME"] = f"constellation_ledger_test_main{_RUN}"
DATABASES["ledger"]["TEST"] = {"NAME": f"test_constellation_ledger{_RUN}"}
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"constellation-test{_RUN}"
# The node's own Redis keys (status, the settings in force) too: a local constellation on
# the default prefix must not be read by, or overwritten by, a test run.
REDIS_PREFIX = f"constellation-test{_RUN}"
SECRET_KEY = "test-only-secret-key"  # noqa: S105 (the test run's own)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEBUG = False
