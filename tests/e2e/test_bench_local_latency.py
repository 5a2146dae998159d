"""The local-latency benchmark's measurement, briefly, against the session's stack."""

from __future__ import annotations

from bench.local_latency import measure
from devstack.process import Stack


def test_measures_successful_gets(stack: Stack) -> None:
    sample = measure(stack, 20)
    assert sample.failures == 0
    assert len(sample.latencies_ms) == 20
    ordered = sorted(sample.latencies_ms)
    assert 0 < ordered[len(ordered) // 2] <= ordered[-1]
    assert sample.elapsed_s * 1000 >= sum(sample.latencies_ms)
