"""The auto-mix's knapsack solver on constructed tables: optimum, monotonicity, speed."""

from __future__ import annotations

import itertools
import math
import random
import statistics
import time

import pytest

from quant_core.automix.solver import Choice, InfeasibleError, Problem, solve


def _random_items(rng: random.Random, n: int, k: int, noise: float = 0.3) -> list[Choice]:
    """Items whose cost falls roughly exponentially with bytes, with noise (non-convex curves)."""
    items = []
    for _ in range(n):
        weights = sorted(rng.sample(range(10, 400), k))
        scale = rng.uniform(0.1, 10.0)
        costs = [scale * 2 ** (-w / 40) * rng.uniform(1 - noise, 1 + noise) for w in weights]
        items.append(Choice(tuple(costs), tuple(weights)))
    return items


def _brute_force(items: list[Choice], capacity: int) -> float | None:
    best = None
    for picks in itertools.product(*[range(len(it.costs)) for it in items]):
        if sum(it.weights[p] for it, p in zip(items, picks)) <= capacity:
            cost = math.fsum(it.costs[p] for it, p in zip(items, picks))
            best = cost if best is None else min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_known_optimum_by_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(60):
        items = _random_items(rng, rng.randint(1, 5), rng.randint(1, 4))
        lo = sum(min(it.weights) for it in items)
        hi = sum(max(it.weights) for it in items)
        capacity = rng.randint(lo, hi)
        s = solve(items, capacity)
        assert s.weight <= capacity
        assert s.weight == sum(it.weights[p] for it, p in zip(items, s.picks))
        assert s.exact
        assert s.cost == pytest.approx(_brute_force(items, capacity), rel=1e-12)
        assert s.lower_bound <= s.cost + 1e-12


def test_more_bytes_never_predict_worse() -> None:
    rng = random.Random(7)
    for _ in range(5):
        problem = Problem(_random_items(rng, 80, 8))
        previous = math.inf
        for capacity in range(problem.min_weight, problem.max_weight + 1, 97):
            s = problem.solve(capacity)
            assert s.exact
            assert s.weight <= capacity
            assert s.cost <= previous * (1 + 1e-12)
            previous = s.cost


def test_interchangeable_items_stay_exact() -> None:
    """Many identical tensors (one per layer) tie exactly: the search must not blow up."""
    item = Choice((9.0, 4.0, 2.0, 1.0, 0.5), (100, 140, 180, 220, 300))
    problem = Problem([item] * 200)
    for capacity in (20_000, 29_999, 35_555, 44_001):
        s = problem.solve(capacity)
        assert s.exact and s.weight <= capacity
    assert problem.solve(200 * 300).cost == pytest.approx(100.0)


def test_dominated_and_duplicate_options() -> None:
    """A heavier option that is not cheaper is never chosen; equal weights keep the cheaper."""
    items = [Choice((5.0, 6.0, 1.0, 0.5), (10, 20, 20, 30))]
    assert solve(items, 25).picks == (2,)
    assert solve(items, 15).picks == (0,)


def test_capacity_below_the_lightest_choice() -> None:
    items = [Choice((1.0, 0.5), (10, 20)), Choice((1.0,), (7,))]
    with pytest.raises(InfeasibleError) as info:
        solve(items, 16)
    assert info.value.min_weight == 17


def test_fast_enough_for_a_slider() -> None:
    """300 tensors x 15 types: once built, a budget is answered in well under 100 ms."""
    rng = random.Random(3)
    problem = Problem(_random_items(rng, 300, 15))
    span = problem.max_weight - problem.min_weight
    times = []
    for f in range(1, 40):
        start = time.perf_counter()
        s = problem.solve(problem.min_weight + span * f // 40)
        times.append(time.perf_counter() - start)
        assert s.exact
    assert statistics.median(times) < 0.05
