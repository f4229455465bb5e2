"""OR-Tools: the knapsack solver for kp, and the routing library with guided local search for
tsp, cvrp and op (one model builder for all three)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from opsrl.core.registry import register_solver
from opsrl.core.types import Solution, Status
from opsrl.routing.distances import integer_matrix
from opsrl.routing.instances import CVRPInstance, KPInstance, OPInstance, RoutingInstance
from opsrl.routing.solvers._shared import (
    fleet_bound,
    heuristic_budget,
    integer_loads,
    prize_weights,
    remaining,
)

ROUTING_IMPORTS = ("ortools.constraint_solver.pywrapcp", "ortools.constraint_solver.routing_enums_pb2",
                   "ortools.util.optional_boolean_pb2")


@register_solver(["kp"], "ortools", "OR-Tools knapsack solver (branch and bound, exact)", exact=True,
                 imports=["ortools.algorithms.python.knapsack_solver"])
def solve_kp(instance: KPInstance, *, time_limit: float | None, seed: int) -> Solution:
    """Solve a 0-1 knapsack with OR-Tools' multidimensional branch and bound."""
    from ortools.algorithms.python import knapsack_solver

    values = instance.values
    # integer weights are required: fractional ones are scaled (weights up, capacity down, so answers stay feasible)
    w, c = integer_loads(instance.weights, instance.capacity)
    exact = c == instance.capacity and np.array_equal(w, instance.weights)  # no rounding: optimal means optimal
    v = np.rint(values * (1.0 if np.all(np.mod(values, 1) == 0) else 1e6)).astype(np.int64)
    solver = knapsack_solver.KnapsackSolver(
        knapsack_solver.SolverType.KNAPSACK_MULTIDIMENSION_BRANCH_AND_BOUND_SOLVER, "opsrl-kp")
    if time_limit is not None:
        solver.set_time_limit(float(time_limit))
    solver.init(v.tolist(), [w.tolist()], [c])
    t0 = time.perf_counter()
    solver.solve()
    elapsed = time.perf_counter() - t0
    items = [i for i in range(instance.size) if solver.best_solution_contains(i)]
    proven = solver.is_solution_optimal()
    status = Status.OPTIMAL if proven and exact else (Status.FEASIBLE if proven else Status.TIMEOUT)
    return Solution(status, items, {"solver_s": elapsed})


OP_OPERATORS = ("use_global_cheapest_insertion_close_nodes_lns", "use_local_cheapest_insertion_close_nodes_lns")


@dataclass
class _RoutingSpec:
    """What the one OR-Tools routing model needs: integer arc costs, a fleet, optional side constraints."""

    dist: np.ndarray  # int64 arc costs, node 0 is the depot
    scale: float  # factor the distances were multiplied by
    num_vehicles: int = 1
    demands: np.ndarray | None = None  # int64 per node (capacity dimension when given)
    capacity: int = 0
    penalties: np.ndarray | None = None  # int64 per node: every customer may be dropped at this cost
    max_length: int | None = None  # distance dimension capacity (route length budget)
    first_solution: str = "PATH_CHEAPEST_ARC"  # routing_enums_pb2.FirstSolutionStrategy name
    metaheuristic: str = "GUIDED_LOCAL_SEARCH"  # routing_enums_pb2.LocalSearchMetaheuristic name
    extra_operators: tuple[str, ...] = ()  # local_search_operators fields to switch on


def _solve_routing(spec: _RoutingSpec, budget_s: float) -> tuple[list[list[int]] | None, dict[str, Any]]:
    """Build the routing model, run guided local search for ``budget_s`` seconds, return the routes
    (customer nodes per vehicle, depot excluded; empty routes dropped) and stats."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2
    from ortools.util import optional_boolean_pb2

    n = len(spec.dist)
    manager = pywrapcp.RoutingIndexManager(n, spec.num_vehicles, 0)
    routing = pywrapcp.RoutingModel(manager)
    transit = routing.RegisterTransitMatrix(spec.dist.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(transit)
    if spec.demands is not None:
        demand_cb = routing.RegisterUnaryTransitVector(spec.demands.tolist())
        routing.AddDimensionWithVehicleCapacity(demand_cb, 0, [int(spec.capacity)] * spec.num_vehicles,
                                                True, "Capacity")
    if spec.max_length is not None:
        routing.AddDimension(transit, 0, int(spec.max_length), True, "Distance")
    if spec.penalties is not None:
        for node in range(1, n):
            routing.AddDisjunction([manager.NodeToIndex(node)], int(spec.penalties[node]))

    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = getattr(routing_enums_pb2.FirstSolutionStrategy, spec.first_solution)
    params.local_search_metaheuristic = getattr(routing_enums_pb2.LocalSearchMetaheuristic, spec.metaheuristic)
    for name in spec.extra_operators:
        setattr(params.local_search_operators, name, optional_boolean_pb2.BOOL_TRUE)
    params.time_limit.FromMilliseconds(max(int(budget_s * 1000), 1))
    t0 = time.perf_counter()
    assignment = routing.SolveWithParameters(params)
    stats: dict[str, Any] = {"solver_s": time.perf_counter() - t0,
                             "ortools_status": routing_enums_pb2.RoutingSearchStatus.Value.Name(routing.status())}
    if assignment is None:
        return None, stats
    routes = []
    for v in range(spec.num_vehicles):
        index = routing.Start(v)
        route = []
        while not routing.IsEnd(index):
            node = manager.IndexToNode(index)
            if node != 0:
                route.append(node)
            index = assignment.Value(routing.NextVar(index))
        if route:
            routes.append(route)
    stats["objective_int"] = int(assignment.ObjectiveValue())
    stats["scale"] = spec.scale
    return routes, stats


def _run(instance: Any, spec_of: Callable[[Any], _RoutingSpec], time_limit: float | None,
         shape: Callable[[list[list[int]]], Any]) -> Solution:
    """Common driver: build the spec, solve within the budget, shape the routes into the answer."""
    t0 = time.perf_counter()
    budget = heuristic_budget(time_limit)
    spec = spec_of(instance)
    routes, stats = _solve_routing(spec, remaining(budget, t0))
    if routes is None:
        return Solution(Status.TIMEOUT, None, stats, message="OR-Tools found no solution within the time limit")
    return Solution(Status.FEASIBLE, shape(routes), stats)


def _tsp_spec(instance: RoutingInstance) -> _RoutingSpec:
    dist, scale = integer_matrix(instance.distances, instance.integral)
    return _RoutingSpec(dist, scale)


def _cvrp_spec(instance: CVRPInstance) -> _RoutingSpec:
    dist, scale = integer_matrix(instance.distances, instance.integral)
    demands, capacity = integer_loads(instance.demands, instance.capacity)
    demands[0] = 0
    return _RoutingSpec(dist, scale, fleet_bound(instance.demands, instance.capacity), demands, capacity)


def _op_spec(instance: OPInstance) -> _RoutingSpec:
    # ceil-rounded distances and a floored budget: a tour within the integer budget is within the real one
    dist, scale = integer_matrix(instance.distances, instance.integral, ceil=True)
    budget = int(math.floor(instance.max_length * scale + 1e-9))
    # Without the close-nodes insertion LNS, OR-Tools' local search stalls at its first local optimum
    # on the OP (OP20 3.93 against 5.16 at 1 s); with it, it matches PyVRP.
    return _RoutingSpec(dist, scale, penalties=prize_weights(instance.prizes, dist), max_length=budget,
                        extra_operators=OP_OPERATORS)


@register_solver(["tsp"], "ortools", "OR-Tools routing: cheapest arc, then guided local search until the limit",
                 imports=ROUTING_IMPORTS)
def solve_tsp(instance: RoutingInstance, *, time_limit: float | None, seed: int) -> Solution:
    """TSP by OR-Tools guided local search (OR-Tools routing takes no seed)."""
    if instance.num_nodes < 3:
        return Solution(Status.OPTIMAL, list(range(instance.num_nodes)), {"solver_s": 0.0})
    return _run(instance, _tsp_spec, time_limit, lambda routes: [0, *(routes[0] if routes else [])])


@register_solver(["cvrp"], "ortools", "OR-Tools routing: cheapest arc, then guided local search until the limit",
                 imports=ROUTING_IMPORTS)
def solve_cvrp(instance: CVRPInstance, *, time_limit: float | None, seed: int) -> Solution:
    """CVRP by OR-Tools guided local search with a capacity dimension (OR-Tools routing takes no seed)."""
    return _run(instance, _cvrp_spec, time_limit, lambda routes: routes)


@register_solver(["op"], "ortools",
                 "OR-Tools routing: prize-collecting disjunctions, guided local search until the limit",
                 imports=ROUTING_IMPORTS)
def solve_op(instance: OPInstance, *, time_limit: float | None, seed: int) -> Solution:
    """Orienteering by OR-Tools: droppable nodes penalised by their prize, a length dimension as the budget."""
    return _run(instance, _op_spec, time_limit, lambda routes: routes[0] if routes else [])
