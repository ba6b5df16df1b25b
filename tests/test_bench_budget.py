"""The budget `bench/cluster.py` reports per run: each process's CPU per finalized quantum in
single-core verification times (bench/README.md, "The budget of one finalized quantum").

Goal: the figures must be the cores each process kept busy times the verify rate over the
finalized rate, their sum the x of which the run's ratio is the cores busy over x, and a
process that kept nothing busy must not appear. Method: one run's figures, as `measure`
returns them, through `verification_budget`.
"""

from __future__ import annotations

import pytest

from bench.cluster import verification_budget


def test_the_budget_is_each_process_s_cores_in_verification_times_per_finalized_quantum() -> None:
    cores = {"node0-engine": 0.5, "load-generator": 0.4, "node1-web": 0.0, "postgres": 0.1}
    figures: dict[str, object] = {"finalized_per_s": 1_000.0, "saturation_cores_by_process": cores}
    budget = verification_budget(figures, 20_000.0)
    # 0.5 of a core at 20 000 verifications/s is 10 000 verification times a second, over
    # 1 000 quanta: 10 each.
    assert budget["saturation_verifications_per_finalized_by_process"] == {
        "node0-engine": 10.0,
        "load-generator": 8.0,
        "postgres": 2.0,
    }
    x = budget["saturation_verifications_per_finalized"]
    assert x == 20.0
    ratio = 1_000.0 / 20_000.0
    assert ratio == pytest.approx(sum(cores.values()) / x)
