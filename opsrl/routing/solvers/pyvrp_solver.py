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

from opsrl.core.errors import OpsrlError, UsageError
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

PYVRP_IMPORTS = ("pyvrp", "pyvrp.stop")  # imported lazily by every solver here (and by bq+ls through solve_from)
COORD_SCALE = 10_000.0  # PyVRP keeps coordinates only for its route-overlap tests


def _problem_data(instance: RoutingInstance, dist: np.ndarray, *, num_vehicles: int = 1,
                  demands: np.ndarray | None = None, capacity: int | None = None, prizes: np.ndarray | None = None,
                  max_distance: int | None = None) -> Any:
    """``pyvrp.ProblemData`` with node 0 as the depot and nodes 1..n-1 as clients 0..n-2."""
    import pyvrp

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
    return pyvrp.ProblemData(locations, clients, [pyvrp.Depot(0)],
                             [pyvrp.VehicleType(num_vehicles, **vtype)],
                             [np.ascontiguousarray(dist, dtype=np.int64)], [np.zeros((n, n), np.int64)])


def _solve(instance: RoutingInstance, dist: np.ndarray, *, num_vehicles: int = 1,
           demands: np.ndarray | None = None, capacity: int | None = None, prizes: np.ndarray | None = None,
           max_distance: int | None = None, budget_s: float, seed: int, t0: float,
           max_iterations: int = 0, initial: list[list[int]] | None = None) -> tuple[list[list[int]] | None, dict[str, Any]]:
    """Run PyVRP on node 0 as depot and nodes 1..n-1 as clients; routes as node lists, or None if
    the best solution found is infeasible. ``max_iterations`` > 0 also stops after that many iterations.
    ``initial`` (routes of nodes 1..n-1) is the solution the search starts from."""
    import pyvrp
    from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria

    data = _problem_data(instance, dist, num_vehicles=num_vehicles, demands=demands, capacity=capacity,
                         prizes=prizes, max_distance=max_distance)
    stop: Any = MaxRuntime(remaining(budget_s, t0))
    if max_iterations > 0:  # an iteration cap makes a run reproducible whatever the machine's speed
        stop = MultipleCriteria([stop, MaxIterations(int(max_iterations))])
    start = None
    if initial is not None:  # PyVRP's routes hold client indices: node k is client k - 1
        start = pyvrp.Solution(data, [[v - 1 for v in r] for r in initial if r])
    t1 = time.perf_counter()
    result = pyvrp.solve(data, stop, seed=seed, display=False, initial_solution=start)
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


@register_solver(["cvrp"], "pyvrp", "PyVRP iterated local search until the time limit (max_iterations caps it)",
                 imports=PYVRP_IMPORTS)
def solve_cvrp(instance: CVRPInstance, *, time_limit: float | None, seed: int, max_iterations: int = 0) -> Solution:
    """CVRP by PyVRP's iterated local search, with a fleet large enough to be always feasible."""
    t0 = time.perf_counter()
    dist, _ = integer_matrix(instance.distances, instance.integral)
    demands, capacity = integer_loads(instance.demands, instance.capacity)
    routes, stats = _solve(instance, dist, num_vehicles=fleet_bound(instance.demands, instance.capacity),
                           demands=demands, capacity=capacity, budget_s=heuristic_budget(time_limit),
                           seed=seed, t0=t0, max_iterations=max_iterations)
    return _answer(routes, stats, lambda rs: rs)


@register_solver(["tsp"], "pyvrp", "PyVRP iterated local search (one vehicle) until the time limit",
                 imports=PYVRP_IMPORTS)
def solve_tsp(instance: RoutingInstance, *, time_limit: float | None, seed: int, max_iterations: int = 0) -> Solution:
    """TSP by PyVRP: one vehicle of unlimited capacity from node 0 visiting every other node."""
    if instance.num_nodes < 3:
        return Solution(Status.OPTIMAL, list(range(instance.num_nodes)), {"solver_s": 0.0})
    t0 = time.perf_counter()
    dist, _ = integer_matrix(instance.distances, instance.integral)
    routes, stats = _solve(instance, dist, budget_s=heuristic_budget(time_limit), seed=seed, t0=t0,
                           max_iterations=max_iterations)
    return _answer(routes, stats, lambda rs: [0, *(rs[0] if rs else [])])


@register_solver(["op"], "pyvrp", "PyVRP prize-collecting search with a distance limit until the time limit",
                 imports=PYVRP_IMPORTS)
def solve_op(instance: OPInstance, *, time_limit: float | None, seed: int, max_iterations: int = 0) -> Solution:
    """Orienteering by PyVRP: optional clients with prizes, one vehicle whose distance is the budget."""
    t0 = time.perf_counter()
    # ceil-rounded distances and a floored budget: a tour within the integer budget is within the real one
    dist, scale = integer_matrix(instance.distances, instance.integral, ceil=True)
    budget = int(math.floor(instance.max_length * scale + 1e-9))
    routes, stats = _solve(instance, dist, prizes=prize_weights(instance.prizes, dist), max_distance=budget,
                           budget_s=heuristic_budget(time_limit), seed=seed, t0=t0, max_iterations=max_iterations)
    return _answer(routes, stats, lambda rs: rs[0] if rs else [])


# ---------------------------------------------------------------- warm start

def _initial_routes(problem: str, instance: RoutingInstance, initial: Any) -> list[list[int]]:
    """``initial`` (opsrl's format) as routes of nodes 1..n-1 for PyVRP; a malformed one is an OpsrlError."""
    n = instance.num_nodes
    what = f"initial {problem} solution for instance {instance.name}"
    if problem == "cvrp":
        if not isinstance(initial, (list, tuple)):
            raise OpsrlError(f"{what}: expected a list of routes, got {type(initial).__name__}")
        routes = [_node_list(r, what) for r in initial]
    else:
        routes = [_node_list(initial, what)]
    if problem == "tsp":
        tour = routes[0]
        if 0 in tour:
            k = tour.index(0)
            tour = tour[k + 1:] + tour[:k]
        routes = [tour]
    flat = [v for r in routes for v in r]
    if bad := [v for v in flat if not 1 <= v < n]:
        low = 0 if problem == "tsp" else 1
        raise OpsrlError(f"{what}: node {bad[0]} is out of range {low}..{n - 1}"
                         + (" (the depot 0 is implicit)" if problem != "tsp" else ""))
    if len(set(flat)) != len(flat):
        dup = next(v for v in flat if flat.count(v) > 1)
        raise OpsrlError(f"{what}: node {dup} is visited more than once")
    return [r for r in routes if r]


def _node_list(seq: Any, what: str) -> list[int]:
    if not isinstance(seq, (list, tuple, np.ndarray)):
        raise OpsrlError(f"{what}: expected a list of node indices, got {type(seq).__name__}")
    out = []
    for v in seq:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not float(v).is_integer():
            raise OpsrlError(f"{what}: {v!r} is not a node index")
        out.append(int(v))
    return out


def _better(a: float, b: float, sense: str) -> bool:
    """Whether objective ``a`` is strictly better than ``b``."""
    return a < b - 1e-9 * max(1.0, abs(b)) if sense == "min" else a > b + 1e-9 * max(1.0, abs(b))


def solve_from(instance: RoutingInstance, initial: Any, *, time_limit: float | None, seed: int = 0,
               max_iterations: int = 0) -> Solution:
    """Polish ``initial`` (a tsp, cvrp or op solution in opsrl's format) with PyVRP's search started from it.

    PyVRP keeps the best solution it meets, in its integer costs; the answer is the better of
    PyVRP's best and ``initial`` under the problem's own ``evaluate`` (ties keep ``initial``), so it is
    never worse than a feasible ``initial``. An infeasible (over capacity, over budget, incomplete)
    ``initial`` is still a starting point; a malformed one (indices out of range, repeats) is an
    OpsrlError. ``stats`` tell ``initial_objective`` and whether PyVRP ``improved`` it.
    """
    from opsrl.core.registry import get_problem

    problem = get_problem(instance.problem)
    if problem.name not in ("tsp", "cvrp", "op"):
        raise UsageError(f"solve_from: PyVRP warm starts solve tsp, cvrp and op, not {problem.name}")
    if time_limit is not None and not time_limit > 0:
        raise UsageError(f"time limit must be a positive number of seconds, got {time_limit}")
    t0 = time.perf_counter()
    routes = _initial_routes(problem.name, instance, initial)
    start = problem.evaluate(instance, initial)
    stats: dict[str, Any] = {"initial_objective": start.objective if start.feasible else None}
    budget = heuristic_budget(time_limit)
    found: list[list[int]] | None = None
    if problem.name == "tsp" and instance.num_nodes < 3:
        found = [list(range(1, instance.num_nodes))]
    elif problem.name == "tsp":
        dist, _ = integer_matrix(instance.distances, instance.integral)
        found, run = _solve(instance, dist, budget_s=budget, seed=seed, t0=t0, max_iterations=max_iterations,
                            initial=routes)
        stats.update(run)
    elif problem.name == "cvrp":
        dist, _ = integer_matrix(instance.distances, instance.integral)
        demands, capacity = integer_loads(instance.demands, instance.capacity)
        fleet = max(fleet_bound(instance.demands, instance.capacity), len(routes))
        found, run = _solve(instance, dist, num_vehicles=fleet, demands=demands, capacity=capacity,
                            budget_s=budget, seed=seed, t0=t0, max_iterations=max_iterations, initial=routes)
        stats.update(run)
    else:
        dist, scale = integer_matrix(instance.distances, instance.integral, ceil=True)
        limit = int(math.floor(instance.max_length * scale + 1e-9))
        found, run = _solve(instance, dist, prizes=prize_weights(instance.prizes, dist), max_distance=limit,
                            budget_s=budget, seed=seed, t0=t0, max_iterations=max_iterations, initial=routes)
        stats.update(run)
    candidate = None
    if found is not None:
        candidate = {"tsp": lambda rs: [0, *(rs[0] if rs else [])], "cvrp": lambda rs: rs,
                     "op": lambda rs: rs[0] if rs else []}[problem.name](found)
        ev = problem.evaluate(instance, candidate)
        if not ev.feasible:
            candidate = None
    if candidate is not None and (not start.feasible or _better(ev.objective, start.objective, problem.sense)):
        stats["improved"] = start.feasible
        return Solution(Status.FEASIBLE, candidate, stats)
    stats["improved"] = False
    if start.feasible:
        return Solution(Status.FEASIBLE, _plain(initial), stats)
    return Solution(Status.TIMEOUT, None, stats, message="the initial solution is infeasible ("
                    + "; ".join(start.violations) + ") and PyVRP found no feasible one within the time limit")


def _plain(solution: Any) -> Any:
    """A solution as plain Python ints (an initial one may hold numpy integers)."""
    if isinstance(solution, (list, tuple, np.ndarray)):
        return [_plain(v) for v in solution]
    return int(solution)
