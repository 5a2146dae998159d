"""The bulk workers' pace and the token bucket that keeps it.

The pace: how many workers run at once, rows a second (Cognito's UserCreation quota) and read
units a second (the users table's read capacity). Here rather than with the job model, since
app.py declares the worker with the first at import and the API's INIT loads no job module.

The bucket: at most `rate` units a second on average, with bursts of up to `burst` units. A cost
bigger than what is in the bucket is taken anyway and paid off by waiting, so a page of many read
units is followed by a longer pause.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# At most this many worker invocations at once (the event source mapping's MaximumConcurrency;
# 2 is the least Lambda accepts), each creating at most ROWS_PER_SECOND users a second: 16 rows/s,
# 32 AdminCreateUser calls a second with invitations (create, then resend), inside Cognito's
# UserCreation quota of 50 a second per account and region, which the live API shares.
WORKER_MAX_CONCURRENCY = 2
ROWS_PER_SECOND = 8.0
# Read request units a second an export may take from the users table (its Scan).
EXPORT_READ_UNITS_PER_SECOND = 100.0


class Pacer:
    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        """`rate` 0 (or less): no pacing."""
        self.rate = rate
        self._burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = burst
        self._last = clock()
        self._lock = threading.Lock()
        self.waited_s = 0.0  # in all, for the figures

    def take(self, units: float = 1.0) -> float:
        """Take `units`, waiting first if the bucket is in debt; the seconds waited."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= units
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
            self.waited_s += wait
        return wait
