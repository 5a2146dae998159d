"""A bounded load against the local stack that checks, at the end, that no write was lost or invented.

`python -m loadtest` (= `make loadtest`); `loadtest.runner.run_load` for tests. Loopback only.
"""
