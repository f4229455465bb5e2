"""OR-Tools: the knapsack solver for kp (routing with guided local search is added beside it)."""

from __future__ import annotations

import time

import numpy as np

from opsrl.core.registry import register_solver
from opsrl.core.types import Solution, Status
from opsrl.routing.instances import KPInstance


@register_solver(["kp"], "ortools", "OR-Tools knapsack solver (branch and bound, exact)", exact=True)
def solve_kp(instance: KPInstance, *, time_limit: float | None, seed: int) -> Solution:
    from ortools.algorithms.python import knapsack_solver

    values, weights, cap = instance.values, instance.weights, instance.capacity
    scale = 1.0
    if not (np.all(np.mod(weights, 1) == 0) and float(cap).is_integer()):
        scale = 1e6  # integer weights are required: scale, flooring the capacity keeps answers feasible
    w = np.rint(weights * scale).astype(np.int64)
    c = int(np.floor(cap * scale))
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
    status = Status.OPTIMAL if proven and scale == 1.0 else (Status.FEASIBLE if proven else Status.TIMEOUT)
    return Solution(status, items, {"solver_s": elapsed})
