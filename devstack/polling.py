"""How the local stack's pollers (the stream's reader, devstack/streams.py; the job workers,
devstack/jobs.py) wait between reads: on a wake-up the emulator sets when something arrives, when
they have one, else every `interval_s`.

Polling five times a second whatever happened cost an idle `make run` about a tenth of a core;
with wake-ups an idle poller reads only every `idle_s`, in case one went missing or something
became visible without a call (a delayed or handed-back message).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any


def woken_by(target: Any, method: str) -> threading.Event:
    """An event set after every call of `target.method` (an emulator object in this process: the
    instance attribute shadows the method on that one object only)."""
    wake = threading.Event()
    call = getattr(target, method)

    def calling(*args: Any, **kwargs: Any) -> Any:
        result = call(*args, **kwargs)
        wake.set()
        return result

    setattr(target, method, calling)
    return wake


def poll_until_stopped(
    poll_once: Callable[[], bool],
    stop: threading.Event,
    wake: threading.Event | None,
    interval_s: float,
    idle_s: float,
    log: logging.Logger,
) -> None:
    """Call `poll_once` (whether it found something) until `stop` is set; after a poll that found
    nothing, wait for `wake` up to `idle_s`, or without one `interval_s`. Whoever sets `stop` sets
    `wake` too, so that a waiting poller ends at once."""
    waiting_on, pause_s = (stop, interval_s) if wake is None else (wake, idle_s)
    while not stop.is_set():
        if wake is not None:
            wake.clear()  # before the poll: whatever arrives after it wakes the wait below
        try:
            busy = poll_once()
        except Exception:
            log.debug("polling the emulator failed", exc_info=True)  # the emulator stopping, mostly
            busy = False
        if not busy:
            waiting_on.wait(pause_s)
