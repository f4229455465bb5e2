"""Helpers shared by the routing solver wrappers: integer data, fleet sizes, prize weights, tours.

Nothing here imports a solver library, so importing it keeps ``opsrl --help`` fast.
"""

from __future__ import annotations

import math
import time

import numpy as np

DEFAULT_HEURISTIC_S = 10.0  # budget for a heuristic run when no time limit is given
MIN_HEURISTIC_S = 0.01  # no heuristic is given less, whatever its limit
LOAD_SCALE = 1_000_000.0  # scale for fractional demands or capacities
MAX_INT64_COST = 2**62


def heuristic_budget(time_limit: float | None) -> float:
    """Seconds a heuristic may run: the limit, or the default budget when there is none."""
    return DEFAULT_HEURISTIC_S if time_limit is None else max(float(time_limit), MIN_HEURISTIC_S)


def remaining(budget: float, t0: float, floor: float = 0.01) -> float:
    """What is left of ``budget`` seconds started at ``t0`` (``time.perf_counter``), at least ``floor``."""
    return max(budget - (time.perf_counter() - t0), floor)


def _is_whole(a: np.ndarray) -> bool:
    return bool(np.all(np.mod(np.asarray(a, dtype=float), 1) == 0))


def integer_loads(demands: np.ndarray, capacity: float) -> tuple[np.ndarray, int]:
    """Integer demands and capacity; fractional ones are scaled, demands up and capacity down, so
    that a route within the integer capacity is within the real one."""
    demands = np.asarray(demands, dtype=float)
    if _is_whole(demands) and float(capacity).is_integer():
        return np.rint(demands).astype(np.int64), int(capacity)
    return np.ceil(demands * LOAD_SCALE).astype(np.int64), int(math.floor(capacity * LOAD_SCALE))


def fleet_bound(demands: np.ndarray, capacity: float) -> int:
    """A number of vehicles that always admits a feasible CVRP solution, with a little slack.

    First-fit decreasing packs the demands into a feasible number of bins; the fleet is that or
    HGS's usual ``ceil(1.3 * total / capacity)``, whichever is larger, plus 3, and never more than
    one vehicle per customer (always feasible once every demand fits a vehicle).
    """
    d = np.asarray(demands, dtype=float)[1:]
    n = len(d)
    if n == 0:
        return 1
    bins: list[float] = []  # remaining room per bin
    for q in sorted(d.tolist(), reverse=True):
        for k, room in enumerate(bins):
            if q <= room + 1e-9:
                bins[k] = room - q
                break
        else:
            bins.append(capacity - q)
    rough = math.ceil(1.3 * float(d.sum()) / capacity) if capacity > 0 else n
    return max(1, min(n, max(len(bins), rough) + 3))


def prize_weights(prizes: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Integer prize weights for solvers that minimise ``distance + uncollected prize``.

    Weights are proportional to the prizes, scaled so that the smallest positive prize exceeds the
    longest possible detour (twice the longest arc of the integer matrix ``dist``): inserting a node
    into a tour always pays. Weights stay moderate on purpose: PyVRP's penalty manager cannot
    counter prizes many orders of magnitude above the distances (it then finds no feasible tour).
    """
    p = np.maximum(np.asarray(prizes, dtype=float), 0.0)
    positive = p[p > 0]
    if positive.size == 0:
        return np.zeros(len(p), np.int64)
    unit = (2.0 * float(np.max(dist)) + 1.0) / float(positive.min())
    weights = np.rint(p * unit)
    if float(weights.sum()) > MAX_INT64_COST / 4:
        weights = np.rint(p * (MAX_INT64_COST / 4 / float(p.sum())))
    return weights.astype(np.int64)


def tour_from_edges(n: int, edges: list[tuple[int, int]]) -> list[int]:
    """The Hamiltonian cycle on nodes 0..n-1 given by its ``n`` edges, as a sequence from node 0."""
    adj: list[list[int]] = [[] for _ in range(n)]
    for i, j in edges:
        adj[i].append(j)
        adj[j].append(i)
    tour, prev, cur = [0], -1, 0
    while len(tour) < n:
        nxt = adj[cur][0] if adj[cur][0] != prev else adj[cur][1]
        tour.append(nxt)
        prev, cur = cur, nxt
    return tour
