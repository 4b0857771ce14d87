"""Summaries the benchmarks report."""


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile: ``percentile(latencies, 0.99)`` is the p99."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * fraction + 0.5) - 1))]
