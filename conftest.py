"""Settings of the whole test run.

Hypothesis's per-example deadline (200 ms) measures the machine, not the code: tools/test.sh
runs the tests that start no nodes beside the cluster tests, at a lower CPU priority, where an
example may wait for a core longer than that. Those runs load the "shared_cpu" profile
(CONSTELLATION_HYPOTHESIS_PROFILE), which has no deadline; every other setting is the default.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("shared_cpu", deadline=None)
settings.load_profile(os.environ.get("CONSTELLATION_HYPOTHESIS_PROFILE", "default"))
