"""LKH (Helsgaun's Lin-Kernighan heuristic) for tsp through ``elkai``, an optional extra.

LKH is free for academic use only, so ``elkai`` is not a core dependency. elkai has no time limit
and takes no seed: ``runs`` sets the effort, and the harness's hard kill enforces the limit.
"""

from __future__ import annotations

import time

from opsrl.core.registry import register_solver
from opsrl.core.types import Solution, Status
from opsrl.routing.distances import integer_matrix
from opsrl.routing.instances import RoutingInstance

MISSING = "lkh needs the optional extra: pip install 'opsrl[lkh]' (elkai)"


@register_solver(["tsp"], "lkh", "LKH via elkai (optional extra, non-commercial licence); effort set by runs",
                 imports=["elkai"])
def solve_tsp(instance: RoutingInstance, *, time_limit: float | None, seed: int, runs: int = 1) -> Solution:
    """TSP by LKH: ``runs`` independent LKH runs on the integer matrix, the best tour kept."""
    try:
        import elkai
    except ImportError:
        return Solution(Status.ERROR, message=MISSING)
    n = instance.num_nodes
    if n < 4:  # every tour of 3 or fewer nodes has the same length
        return Solution(Status.OPTIMAL, list(range(n)), {"solver_s": 0.0})
    dist, scale = integer_matrix(instance.distances, instance.integral)
    t0 = time.perf_counter()
    tour = elkai.DistanceMatrix(dist.tolist()).solve_tsp(runs=max(int(runs), 1))
    elapsed = time.perf_counter() - t0
    if len(tour) == n + 1 and tour[0] == tour[-1]:
        tour = tour[:-1]  # elkai closes the tour at its start
    return Solution(Status.FEASIBLE, [int(v) for v in tour], {"solver_s": elapsed, "runs": int(runs)})
