"""The engine's monitoring figures (quanta.core.metrics): histogram buckets and quantiles,
quanta per second over a window, a histogram's growth over a window. Pure: no database."""

from __future__ import annotations

from quanta.core.metrics import AuditorFigures, HistogramWindow, LatencyHistogram, RateWindow


def test_histogram_counts_each_latency_in_the_first_bucket_that_holds_it() -> None:
    histogram = LatencyHistogram((10, 100))
    for latency_ms in (0, 10, 11, 100, 101, -5):
        histogram.observe(latency_ms)
    assert histogram.counts == [3, 2, 1]  # <=10 (0, 10, -5 as 0), <=100, +Inf
    assert histogram.sum_ms == 0 + 10 + 11 + 100 + 101 + 0
    assert histogram.count == 6


def test_histogram_observes_many_at_once_and_survives_json() -> None:
    histogram = LatencyHistogram((10, 100))
    histogram.observe(50, times=4)
    again = LatencyHistogram.from_json(histogram.to_json())
    assert again == histogram
    assert again.counts == [0, 4, 0] and again.sum_ms == 200


def test_quantile_is_the_upper_bound_of_its_bucket() -> None:
    histogram = LatencyHistogram((10, 100, 1000))
    histogram.observe(5, times=90)
    histogram.observe(500, times=10)
    assert histogram.quantile_ms(0.5) == 10
    assert histogram.quantile_ms(0.95) == 1000
    assert LatencyHistogram().quantile_ms(0.5) is None


def test_rate_window_tells_growth_per_second_over_the_last_five_seconds() -> None:
    window = RateWindow()
    assert window.sample(0, 0) == 0.0
    assert window.sample(1_000, 100) == 100.0
    for second in range(2, 20):
        rate = window.sample(second * 1_000, second * 100)
    assert rate == 100.0
    # The window forgets old samples: a stop shows within the window.
    for second in range(20, 26):
        rate = window.sample(second * 1_000, 1_900)
    assert rate == 0.0


def test_histogram_window_tells_only_what_was_counted_lately() -> None:
    histogram = LatencyHistogram((10, 100))
    window = HistogramWindow()
    histogram.observe(50, times=10)
    window.sample(0, histogram)
    for second in range(1, 7):
        recent = window.sample(second * 1_000, histogram)
    assert recent.count == 0  # The ten old ones are out of the window.
    histogram.observe(5)
    recent = window.sample(7_000, histogram)
    assert recent.counts == [1, 0, 0]
    assert recent.quantile_ms(0.5) == 10


def test_auditor_figures_keep_the_highest_signed_apex() -> None:
    figures = AuditorFigures()
    figures.signed(7, 30)
    figures.signed(5, None)  # A late signature of an older quantum: no latency known.
    assert figures.signed_apex == 7
    assert figures.signing.count == 1
