"""Samples summarised as the benchmarks report them: the median and how far the samples spread."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    median: float
    low: float  # the smallest sample
    high: float  # the largest
    q1: float  # the quartiles (equal to the median for fewer than two samples)
    q3: float
    samples: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("no samples")
        ordered = sorted(values)
        if len(ordered) < 2:
            only = ordered[0]
            return cls(only, only, only, only, only, 1)
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
        return cls(statistics.median(ordered), ordered[0], ordered[-1], q1, q3, len(ordered))

    def describe(self, digits: int = 2, unit: str = "") -> str:
        """`median 1.12x (IQR 1.10-1.14, min-max 1.08-1.19, 30 samples)`."""

        def shown(value: float) -> str:
            return f"{value:.{digits}f}{unit}"

        return (
            f"median {shown(self.median)} (IQR {shown(self.q1)}-{shown(self.q3)}, "
            f"min-max {shown(self.low)}-{shown(self.high)}, {self.samples} samples)"
        )
