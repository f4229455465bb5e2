"""HGS-CVRP (Vidal's hybrid genetic search with SWAP*) for cvrp through ``hygese``.

HGS works on doubles, so it gets the instance's own distance matrix (its objective is then in the
instance's units). Its time limit is CPU time of this process: on a loaded machine the wall time
can run past the limit, which the harness's grace period absorbs.
"""

from __future__ import annotations

import time

import numpy as np

from opsrl.core.registry import register_solver
from opsrl.core.types import Solution, Status
from opsrl.routing.instances import CVRPInstance
from opsrl.routing.solvers._shared import fleet_bound, heuristic_budget, remaining


@register_solver(["cvrp"], "hgs", "HGS-CVRP via hygese: hybrid genetic search with restarts until the limit",
                 imports=["hygese"])
def solve_cvrp(instance: CVRPInstance, *, time_limit: float | None, seed: int,
               nb_iter: int = 20_000) -> Solution:
    """CVRP by HGS-CVRP; the population restarts after ``nb_iter`` iterations without improvement."""
    t0 = time.perf_counter()
    n = instance.num_nodes
    if n == 2:  # HGS does not return on a single customer; the one route is optimal
        return Solution(Status.OPTIMAL, [[1]], {"solver_s": 0.0})
    import hygese

    coords = instance.coords if len(instance.coords) == n else np.zeros((n, 2))
    coords = coords - coords.min(axis=0)  # hygese asserts coordinates >= 0; HGS uses them only for polar sectors
    data = {
        "distance_matrix": np.array(instance.distances, dtype=float),
        "x_coordinates": coords[:, 0], "y_coordinates": coords[:, 1],
        "demands": np.array(instance.demands, dtype=float),
        "vehicle_capacity": float(instance.capacity),
        "num_vehicles": fleet_bound(instance.demands, instance.capacity),
    }
    budget = heuristic_budget(time_limit)
    params = hygese.AlgorithmParameters(timeLimit=remaining(budget, t0), seed=int(seed), nbIter=int(nb_iter))
    t1 = time.perf_counter()
    result = hygese.Solver(parameters=params, verbose=False).solve_cvrp(data)
    stats = {"solver_s": time.perf_counter() - t1, "objective": float(result.cost)}
    routes = [[int(v) for v in r] for r in result.routes if len(r)]
    if not routes:
        return Solution(Status.TIMEOUT, None, stats, message="HGS found no feasible solution within the time limit")
    return Solution(Status.FEASIBLE, routes, stats)
