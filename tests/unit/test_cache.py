from __future__ import annotations

import pytest

from chalicelib.cache import TTLCache
from tests.unit.fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(0.0)


def test_get_and_set(clock):
    cache: TTLCache[str, int] = TTLCache(max_size=3, ttl_seconds=10, clock=clock)
    cache.set("a", 1)
    assert cache.get("a") == 1
    assert cache.get("b") is None
    assert (cache.hits, cache.misses) == (1, 1)


def test_never_exceeds_max_size(clock):
    cache: TTLCache[int, int] = TTLCache(max_size=5, ttl_seconds=100, clock=clock)
    for i in range(100):
        cache.set(i, i)
        assert len(cache) <= 5
    assert len(cache) == 5
    assert [cache.get(i) for i in range(95, 100)] == list(range(95, 100))
    assert all(cache.get(i) is None for i in range(95))


def test_evicts_least_recently_used(clock):
    cache: TTLCache[str, str] = TTLCache(max_size=3, ttl_seconds=100, clock=clock)
    cache.set("a", "A")
    cache.set("b", "B")
    cache.set("c", "C")
    assert cache.get("a") == "A"  # a is now the most recently used; b the least
    cache.set("d", "D")
    assert len(cache) == 3
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c"), cache.get("d")) == ("A", "C", "D")


def test_overwriting_a_key_refreshes_recency_not_size(clock):
    cache: TTLCache[str, int] = TTLCache(max_size=2, ttl_seconds=100, clock=clock)
    cache.set("a", 1)
    cache.set("b", 2)
    cache.set("a", 3)
    assert len(cache) == 2
    cache.set("c", 4)
    assert cache.get("b") is None
    assert cache.get("a") == 3
    assert cache.get("c") == 4


def test_entries_expire_on_time(clock):
    cache: TTLCache[str, int] = TTLCache(max_size=3, ttl_seconds=10, clock=clock)
    cache.set("a", 1)
    clock.advance(9.999)
    assert cache.get("a") == 1
    clock.advance(0.001)  # exactly ttl seconds after the set
    assert cache.get("a") is None
    assert len(cache) == 0  # an expired entry is dropped when seen
    assert (cache.hits, cache.misses) == (1, 1)


def test_set_again_restarts_the_ttl(clock):
    cache: TTLCache[str, int] = TTLCache(max_size=3, ttl_seconds=10, clock=clock)
    cache.set("a", 1)
    clock.advance(8)
    cache.set("a", 2)
    clock.advance(8)
    assert cache.get("a") == 2
    clock.advance(2)
    assert cache.get("a") is None


def test_reading_does_not_extend_the_ttl(clock):
    cache: TTLCache[str, int] = TTLCache(max_size=3, ttl_seconds=10, clock=clock)
    cache.set("a", 1)
    for _ in range(9):
        clock.advance(1)
        assert cache.get("a") == 1
    clock.advance(1)
    assert cache.get("a") is None


def test_hit_and_miss_counters(clock):
    cache: TTLCache[str, int] = TTLCache(max_size=2, ttl_seconds=5, clock=clock)
    assert (cache.hits, cache.misses) == (0, 0)
    cache.get("x")
    cache.set("x", 1)
    cache.get("x")
    cache.get("x")
    clock.advance(5)
    cache.get("x")
    cache.get("y")
    assert (cache.hits, cache.misses) == (2, 3)


def test_stored_falsy_values_are_hits(clock):
    cache: TTLCache[str, int] = TTLCache(max_size=2, ttl_seconds=5, clock=clock)
    cache.set("zero", 0)
    assert cache.get("zero") == 0
    assert cache.hits == 1


def test_clear(clock):
    cache: TTLCache[str, int] = TTLCache(max_size=2, ttl_seconds=5, clock=clock)
    cache.set("a", 1)
    cache.clear()
    assert len(cache) == 0
    assert cache.get("a") is None


@pytest.mark.parametrize(("max_size", "ttl"), [(0, 1), (-1, 1), (1, 0), (1, -5)])
def test_rejects_bad_parameters(max_size, ttl):
    with pytest.raises(ValueError):
        TTLCache(max_size=max_size, ttl_seconds=ttl)


def test_get_or_load_loads_on_a_miss_and_again_once_expired(clock):
    cache: TTLCache[str, int] = TTLCache(max_size=2, ttl_seconds=10, clock=clock)
    loads: list[int] = []

    def load() -> int:
        loads.append(len(loads))
        return len(loads)

    assert [cache.get_or_load("a", load) for _ in range(3)] == [1, 1, 1]
    clock.advance(10)
    assert cache.get_or_load("a", load) == 2
    assert (len(loads), cache.hits, cache.misses) == (2, 2, 2)


def test_a_failed_load_is_not_cached(clock):
    cache: TTLCache[str, int] = TTLCache(max_size=2, ttl_seconds=10, clock=clock)

    def fail() -> int:
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        cache.get_or_load("a", fail)
    assert len(cache) == 0
    assert cache.get_or_load("a", lambda: 7) == 7
