"""Multiple-choice knapsack: one option per item, least total cost, total weight within a capacity.

The solver is exact in practice and says so when it is:

1. Per item, dominated options go (heavier and not cheaper); the rest is a strictly decreasing
   cost curve whose lower convex hull gives the item's increments.
2. Taking hull increments in order of cost saved per byte until one does not fit gives the
   Lagrangian solution; its multiplier ``lam`` is the slope of the first increment that did not
   fit. ``lower_bound = sum_i min_o (c_io + lam * w_io) - lam * capacity`` bounds every feasible
   solution from below (weak duality), and the greedy solution, topped up with whatever still
   fits, bounds the optimum from above.
3. Any solution ``S`` costs ``lower_bound + sum_i r_i(S_i) + lam * (capacity - weight(S))`` with
   the reduced costs ``r_io = c_io + lam * w_io - min_o(...) >= 0``. Only options whose reduced
   cost is below the gap ``upper - lower`` can appear in a better solution, so a depth-first
   dynamic programme over those few options (the Pareto front of partial byte/cost sums, pruned
   by feasibility and by the bound) proves the optimum. A first pass keeping only the most
   promising states finds a near-optimal answer cheaply; its smaller gap shrinks the exact pass.
   If the front exceeds its state limit, the best solution found is returned with
   ``exact=False`` and the certified gap ``cost - lower_bound``.

Exact answers make the cost a non-increasing function of the capacity (more bytes never predict a
worse mix); costs are summed with ``math.fsum`` so equal choices give equal totals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

STATE_LIMIT = 200_000
BEAM_WIDTH = 64
_EPS = 1e-12


class InfeasibleError(ValueError):
    """Even every item's lightest option exceeds the capacity."""

    def __init__(self, min_weight: int, capacity: int) -> None:
        super().__init__(f"the lightest choice needs {min_weight} bytes, the capacity is {capacity}")
        self.min_weight = min_weight
        self.capacity = capacity


@dataclass(frozen=True)
class Choice:
    """One item's options: ``costs[o]`` (float) and ``weights[o]`` (int, bytes)."""

    costs: tuple[float, ...]
    weights: tuple[int, ...]


@dataclass(frozen=True)
class Solution:
    """The chosen option index per item, with the certificate of optimality.

    ``lower_bound`` is the Lagrangian bound; ``exact`` is True when the search proved that no
    feasible choice costs less than ``cost``; ``nodes`` counts the states the search kept.
    """

    picks: tuple[int, ...]
    cost: float
    weight: int
    lower_bound: float
    exact: bool
    nodes: int

    @property
    def gap(self) -> float:
        """Certified distance to the optimum (0 when exact)."""
        return 0.0 if self.exact else max(self.cost - self.lower_bound, 0.0)


def solve(items: Sequence[Choice], capacity: int, state_limit: int = STATE_LIMIT) -> Solution:
    """The least-cost choice of one option per item with total weight <= ``capacity``."""
    return Problem(items).solve(capacity, state_limit)


class Problem:
    """The capacity-independent part (fronts, hulls, sorted increments), built once per cost
    table so that a slider can ask :meth:`solve` for many capacities."""

    def __init__(self, items: Sequence[Choice]) -> None:
        self.items = list(items)
        self.front = [_pareto(it) for it in self.items]
        n = len(self.items)
        width = max((len(f) for f in self.front), default=0)
        self.w = np.zeros((n, width), dtype=np.int64)
        self.c = np.full((n, width), np.inf)
        for i, (it, f) in enumerate(zip(self.items, self.front)):
            self.w[i, :] = it.weights[f[-1]]
            self.w[i, : len(f)] = [it.weights[o] for o in f]
            self.c[i, : len(f)] = [it.costs[o] for o in f]
        self.min_weight = int(self.w[:, 0].sum()) if n else 0
        self.max_weight = int(self.w.max(axis=1).sum()) if n else 0
        self._steps()

    def _steps(self) -> None:
        """Hull increments sorted by decreasing saving per byte (ties: item, then hull order)."""
        steps = []
        for i, (it, f) in enumerate(zip(self.items, self.front)):
            hull = _hull(it, f)
            for k in range(1, len(hull)):
                a, b = hull[k - 1], hull[k]
                slope = (it.costs[a] - it.costs[b]) / (it.weights[b] - it.weights[a])
                steps.append((-slope, i, k, f.index(b), it.weights[b] - it.weights[a]))
        steps.sort()
        self.step_slope = np.array([-s[0] for s in steps], dtype=np.float64)
        self.step_item = np.array([s[1] for s in steps], dtype=np.int64)
        self.step_pos = np.array([s[3] for s in steps], dtype=np.int64)
        self.step_cum = np.cumsum(np.array([s[4] for s in steps], dtype=np.int64)) + self.min_weight

    def solve(self, capacity: int, state_limit: int = STATE_LIMIT) -> Solution:
        """The least-cost choice with total weight <= ``capacity`` (see the module docstring)."""
        if self.min_weight > capacity:
            raise InfeasibleError(self.min_weight, capacity)
        n_taken = int(np.searchsorted(self.step_cum, capacity, side="right"))
        lam = float(self.step_slope[n_taken]) if n_taken < len(self.step_slope) else 0.0
        pos = np.zeros(len(self.items), dtype=np.int64)
        pos[self.step_item[:n_taken]] = self.step_pos[:n_taken]  # later steps of an item overwrite
        pos = self._fill(pos, capacity)
        lower = math.fsum((self.c + lam * self.w).min(axis=1)) - lam * capacity
        picks = [f[int(p)] for f, p in zip(self.front, pos)]
        return _Search(self, lam, lower, capacity, picks, state_limit).run()

    def _fill(self, pos: np.ndarray, capacity: int) -> np.ndarray:
        """Spend leftover bytes: repeatedly make the single change that saves most and fits."""
        rows = np.arange(len(pos))
        while len(pos):
            cur_w, cur_c = self.w[rows, pos], self.c[rows, pos]
            left = capacity - int(cur_w.sum())
            saving = np.where(self.w - cur_w[:, None] <= left, cur_c[:, None] - self.c, 0.0)
            i, k = np.unravel_index(int(np.argmax(saving)), saving.shape)
            if not saving[i, k] > _EPS * max(1.0, abs(float(cur_c[i]))):
                break
            pos[i] = k
        return pos


def _pareto(it: Choice) -> list[int]:
    """Option indices by increasing weight, each strictly cheaper than the previous."""
    order = sorted(range(len(it.costs)), key=lambda o: (it.weights[o], it.costs[o], o))
    kept: list[int] = []
    for o in order:
        if kept and (it.weights[o] == it.weights[kept[-1]] or it.costs[o] >= it.costs[kept[-1]]):
            continue
        kept.append(o)
    return kept


def _hull(it: Choice, front: list[int]) -> list[int]:
    """The lower convex hull of the Pareto front (option indices, by increasing weight)."""
    hull: list[int] = []
    for o in front:
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # drop b when it lies on or above the segment a -> o
            cross = (it.costs[b] - it.costs[a]) * (it.weights[o] - it.weights[a]) - (it.costs[o] - it.costs[a]) * (
                it.weights[b] - it.weights[a]
            )
            if cross >= 0:
                hull.pop()
            else:
                break
        hull.append(o)
    return hull


class _Search:
    """Exact search over the options whose reduced cost is below the gap.

    Items with a single such option are fixed; the others are merged one by one into the Pareto
    front of partial (bytes, cost) states (Nemhauser-Ullmann), pruned by feasibility and by the
    Lagrangian identity against the best known cost. Equal partial sums collapse into one state,
    so many interchangeable tensors do not multiply the work.
    """

    def __init__(
        self, problem: Problem, lam: float, lower: float, capacity: int, picks: list[int], state_limit: int
    ) -> None:
        self.problem, self.items = problem, problem.items
        self.lam, self.lower, self.capacity = lam, lower, capacity
        self.state_limit, self.nodes = state_limit, 0
        self.best = list(picks)
        self.best_cost = _cost(self.items, picks)

    def run(self) -> Solution:
        gap = self.best_cost - self.lower
        if self.lam == 0.0 or gap <= _EPS * max(1.0, abs(self.best_cost)):
            return self._solution(exact=True)
        # a narrow pass first: a near-optimal answer shrinks the gap, hence the exact pass's work
        self._merge(*self._split(gap), beam=BEAM_WIDTH)
        exact = self._merge(*self._split(self.best_cost - self.lower))
        return self._solution(exact)

    def _split(self, gap: float) -> tuple[dict[int, int], list[tuple[int, np.ndarray]]]:
        """Fixed items (one useful option) and free ones (front positions of useful options)."""
        p = self.problem
        value = p.c + self.lam * p.w
        reduced = value - value.min(axis=1)[:, None]
        fixed: dict[int, int] = {}
        free = []
        for i in range(len(self.items)):
            ks = np.flatnonzero(reduced[i] < gap)
            if len(ks) == 1:
                fixed[i] = int(ks[0])
            else:
                free.append((i, ks))
        return fixed, free

    def _merge(self, fixed: dict[int, int], free: list[tuple[int, np.ndarray]], beam: int | None = None) -> bool:
        """Merge the free items into the Pareto front; True when the front proved the optimum.

        With ``beam``, only that many states (those with the lowest bound) survive each step: a
        fast heuristic whose answer may improve the best solution but proves nothing.
        """
        p = self.problem
        base_w = sum(int(p.w[i, k]) for i, k in fixed.items())
        base_c = math.fsum(float(p.c[i, k]) for i, k in fixed.items())
        n = len(free)
        min_rest = np.zeros(n + 1, dtype=np.int64)  # lightest completion of items j..n-1
        best_rest = np.zeros(n + 1)  # cheapest completion, capacity ignored
        lagr_rest = np.zeros(n + 1)  # sum of min(c + lam * w): with -lam * room, a bound within the room
        for j in range(n - 1, -1, -1):
            i, ks = free[j]
            min_rest[j] = min_rest[j + 1] + int(p.w[i, ks].min())
            best_rest[j] = best_rest[j + 1] + float(p.c[i, ks].min())
            lagr_rest[j] = lagr_rest[j + 1] + float((p.c[i, ks] + self.lam * p.w[i, ks]).min())
        weights = np.array([base_w], dtype=np.int64)
        costs = np.array([base_c])
        history = []
        for j, (i, ks) in enumerate(free):
            w = (weights[:, None] + p.w[i, ks][None, :]).ravel()
            c = (costs[:, None] + p.c[i, ks][None, :]).ravel()
            parent = np.repeat(np.arange(len(weights)), len(ks))
            option = np.tile(ks, len(weights))
            bound = c + np.maximum(best_rest[j + 1], lagr_rest[j + 1] - self.lam * (self.capacity - w))
            keep = (w + min_rest[j + 1] <= self.capacity) & (bound < self.best_cost)
            w, c, parent, option, bound = w[keep], c[keep], parent[keep], option[keep], bound[keep]
            order = np.lexsort((c, w))
            w, c, parent, option, bound = w[order], c[order], parent[order], option[order], bound[order]
            prior = np.minimum.accumulate(np.concatenate(([np.inf], c[:-1])))
            front = c < prior  # strictly cheaper than every lighter-or-equal state
            if beam is not None and np.count_nonzero(front) > beam:
                idx = np.flatnonzero(front)
                front = idx[np.sort(np.argpartition(bound[idx], beam)[:beam])]
            weights, costs = w[front], c[front]
            history.append((parent[front], option[front]))
            self.nodes += len(weights)
            if len(weights) == 0:
                return beam is None  # nothing beats the known solution
            if len(weights) > self.state_limit:
                return False
        k = int(np.argmin(costs))
        picks_pos = dict(fixed)
        for j in range(n - 1, -1, -1):
            parents, options = history[j]
            picks_pos[free[j][0]] = int(options[k])
            k = int(parents[k])
        picks = [p.front[i][picks_pos[i]] for i in range(len(self.items))]
        cost = _cost(self.items, picks)
        if cost < self.best_cost:
            self.best, self.best_cost = picks, cost
        return beam is None

    def _solution(self, exact: bool) -> Solution:
        weight = sum(int(it.weights[p]) for it, p in zip(self.items, self.best))
        return Solution(tuple(self.best), self.best_cost, weight, self.lower, exact, self.nodes)


def _cost(items: Sequence[Choice], picks: Sequence[int]) -> float:
    return math.fsum(it.costs[p] for it, p in zip(items, picks))
