"""PyVRP for cvrp, tsp (one uncapacitated vehicle) and op (optional clients with prizes, one
vehicle with a distance limit). PyVRP 0.14 searches by iterated local search (earlier releases
used hybrid genetic search).

The problem data is built directly as a ``pyvrp.ProblemData`` from the integer matrix (the same
data ``pyvrp.Model`` would build, without a Python call per edge). PyVRP numbers clients from 0 in
its activities, so client ``k`` is node ``k + 1`` here (node 0 is the only depot).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from opsrl.core.registry import register_solver
from opsrl.core.types import Solution, Status
from opsrl.routing.distances import integer_matrix
from opsrl.routing.instances import CVRPInstance, OPInstance, RoutingInstance
from opsrl.routing.solvers._shared import (
    fleet_bound,
    heuristic_budget,
    integer_loads,
    prize_weights,
    remaining,
)

COORD_SCALE = 10_000.0  # PyVRP keeps coordinates only for its route-overlap tests


def _solve(instance: RoutingInstance, dist: np.ndarray, *, num_vehicles: int = 1,
           demands: np.ndarray | None = None, capacity: int | None = None, prizes: np.ndarray | None = None,
           max_distance: int | None = None, budget_s: float, seed: int, t0: float,
           max_iterations: int = 0) -> tuple[list[list[int]] | None, dict[str, Any]]:
    """Run PyVRP on node 0 as depot and nodes 1..n-1 as clients; routes as node lists, or None if
    the best solution found is infeasible. ``max_iterations`` > 0 also stops after that many iterations."""
    import pyvrp
    from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria

    n = len(dist)
    coords = instance.coords if len(instance.coords) == n else np.zeros((n, 2))
    if not instance.integral:
        coords = coords * COORD_SCALE
    locations = [pyvrp.Location(float(x), float(y)) for x, y in coords]
    dims = 0 if demands is None else 1
    clients = []
    for node in range(1, n):
        kwargs: dict[str, Any] = {"delivery": [int(demands[node])] if dims else []}
        if prizes is not None:
            kwargs.update(prize=int(prizes[node]), required=False)
        clients.append(pyvrp.Client(node, **kwargs))
    vtype: dict[str, Any] = {"capacity": [int(capacity)] if dims else []}
    if max_distance is not None:
        vtype["max_distance"] = int(max_distance)
    data = pyvrp.ProblemData(locations, clients, [pyvrp.Depot(0)],
                             [pyvrp.VehicleType(num_vehicles, **vtype)],
                             [np.ascontiguousarray(dist, dtype=np.int64)], [np.zeros((n, n), np.int64)])
    stop: Any = MaxRuntime(remaining(budget_s, t0))
    if max_iterations > 0:  # an iteration cap makes a run reproducible whatever the machine's speed
        stop = MultipleCriteria([stop, MaxIterations(int(max_iterations))])
    t1 = time.perf_counter()
    result = pyvrp.solve(data, stop, seed=seed, display=False)
    best = result.best
    stats: dict[str, Any] = {"solver_s": time.perf_counter() - t1, "iterations": int(result.num_iterations),
                             "objective_int": int(result.cost()) if best.is_feasible() else None}
    if not best.is_feasible():
        return None, stats
    routes = [[a.idx + 1 for a in route if a.is_client()] for route in best.routes()]
    return [r for r in routes if r], stats


def _answer(routes: list[list[int]] | None, stats: dict[str, Any], shape: Any) -> Solution:
    if routes is None:
        return Solution(Status.TIMEOUT, None, stats, message="PyVRP found no feasible solution within the time limit")
    return Solution(Status.FEASIBLE, shape(routes), stats)


@register_solver(["cvrp"], "pyvrp", "PyVRP iterated local search until the time limit (max_iterations caps it)")
def solve_cvrp(instance: CVRPInstance, *, time_limit: float | None, seed: int, max_iterations: int = 0) -> Solution:
    """CVRP by PyVRP's iterated local search, with a fleet large enough to be always feasible."""
    t0 = time.perf_counter()
    dist, _ = integer_matrix(instance.distances, instance.integral)
    demands, capacity = integer_loads(instance.demands, instance.capacity)
    routes, stats = _solve(instance, dist, num_vehicles=fleet_bound(instance.demands, instance.capacity),
                           demands=demands, capacity=capacity, budget_s=heuristic_budget(time_limit),
                           seed=seed, t0=t0, max_iterations=max_iterations)
    return _answer(routes, stats, lambda rs: rs)


@register_solver(["tsp"], "pyvrp", "PyVRP iterated local search (one vehicle) until the time limit")
def solve_tsp(instance: RoutingInstance, *, time_limit: float | None, seed: int, max_iterations: int = 0) -> Solution:
    """TSP by PyVRP: one vehicle of unlimited capacity from node 0 visiting every other node."""
    if instance.num_nodes < 3:
        return Solution(Status.OPTIMAL, list(range(instance.num_nodes)), {"solver_s": 0.0})
    t0 = time.perf_counter()
    dist, _ = integer_matrix(instance.distances, instance.integral)
    routes, stats = _solve(instance, dist, budget_s=heuristic_budget(time_limit), seed=seed, t0=t0,
                           max_iterations=max_iterations)
    return _answer(routes, stats, lambda rs: [0, *(rs[0] if rs else [])])


@register_solver(["op"], "pyvrp", "PyVRP prize-collecting search with a distance limit until the time limit")
def solve_op(instance: OPInstance, *, time_limit: float | None, seed: int, max_iterations: int = 0) -> Solution:
    """Orienteering by PyVRP: optional clients with prizes, one vehicle whose distance is the budget."""
    t0 = time.perf_counter()
    # ceil-rounded distances and a floored budget: a tour within the integer budget is within the real one
    dist, scale = integer_matrix(instance.distances, instance.integral, ceil=True)
    budget = int(math.floor(instance.max_length * scale + 1e-9))
    routes, stats = _solve(instance, dist, prizes=prize_weights(instance.prizes, dist), max_distance=budget,
                           budget_s=heuristic_budget(time_limit), seed=seed, t0=t0, max_iterations=max_iterations)
    return _answer(routes, stats, lambda rs: rs[0] if rs else [])
