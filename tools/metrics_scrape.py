"""Scrapes a node's `/metrics` and reads samples out of it: used by the metrics cluster test
and `bench/cluster.py` (which prints the figures it measured beside what the node says)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tools.fetch import urlopen

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
"""Sample value by (sample name, sorted labels)."""


def scrape(node_url: str, timeout_s: float = 10.0) -> Samples:
    """Returns every sample of the node's `/metrics`."""
    with urlopen(f"{node_url}/metrics", timeout=timeout_s) as response:
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """Returns one sample's value (KeyError if the node does not show it)."""
    return samples[(name, tuple(sorted(labels.items())))]


def labelled(samples: Samples, name: str, label: str) -> dict[str, float]:
    """Returns the samples of `name` by the value of their label `label`."""
    found: dict[str, float] = {}
    for (sample_name, labels), sample_value in samples.items():
        if sample_name == name:
            found[dict(labels)[label]] = sample_value
    return found


def histogram_quantile_s(
    samples: Samples,
    name: str,
    fraction: float,
    since: Samples | None = None,
    **labels: str,
) -> float:
    """Returns the upper bound (s) of the bucket that holds the `fraction` quantile of a
    histogram (`name` without `_bucket`), as the node's buckets resolve it; of what it counted
    after the scrape `since`, if given."""
    buckets = []
    for key, count in samples.items():
        sample_name, sample_labels = key
        found = dict(sample_labels)
        le = found.pop("le", None)
        if sample_name == f"{name}_bucket" and le is not None and found == labels:
            buckets.append((float(le), count - (since or {}).get(key, 0.0)))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0.0
    for bound, count in buckets:
        if total and count >= fraction * total:
            return bound
    return float("nan")
