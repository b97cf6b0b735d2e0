"""Mean and sample standard deviation over seeds, for experiment reports that tabulate their own layouts
(`experiments/*/report.py`). Comparisons between settings — a paired t over the seeds both have, else Welch's, with
a 95% interval — are `minimath.report.compare`, which every experiment's report uses."""

from __future__ import annotations

import statistics


def mean_std(values: list[float]) -> tuple[float, float]:
    """(mean, sample std); one value has std 0.0."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0
