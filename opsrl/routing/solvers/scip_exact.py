"""SCIP (through PySCIPOpt) as an exact solver: kp as a binary program, tsp as the symmetric
degree-2 model on edge variables with subtour elimination constraints added lazily.

The TSP constraint handler rejects integral solutions whose support graph is disconnected and adds
``sum_{e in E(S)} x_e <= |S| - 1`` for each component ``S``; it also separates fractional LP
solutions (disconnected support graph, then a Stoer-Wagner minimum cut below 2), which is what
makes 20-50 node instances provable in seconds.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

import numpy as np

from opsrl.core.registry import register_solver
from opsrl.core.types import Solution, Status
from opsrl.routing.instances import KPInstance, RoutingInstance
from opsrl.routing.solvers._shared import tour_from_edges

EPS = 1e-6  # support threshold and cut violation tolerance


def _new_model(time_limit: float | None, seed: int) -> Any:
    """A quiet SCIP model with the time limit and seed set."""
    from pyscipopt import Model

    model = Model()
    model.hideOutput()
    if time_limit is not None:
        model.setParam("limits/time", max(float(time_limit), 0.01))
    model.setParam("randomization/randomseedshift", int(seed) % 2**31)
    return model


def _stats(model: Any, scale: float = 1.0) -> dict[str, Any]:
    """What SCIP says about its run: time, nodes, dual bound (in the instance's units)."""
    bound = float(model.getDualbound())
    known = math.isfinite(bound) and abs(bound) < model.infinity()
    return {"solver_s": float(model.getSolvingTime()), "nodes": int(model.getNNodes()),
            "bound": bound / scale if known else math.nan, "scip_status": model.getStatus()}


def _status(model: Any) -> Status | None:
    """Status from SCIP's own; None when it stopped without a solution (the caller returns TIMEOUT)."""
    scip = model.getStatus()
    if scip == "optimal":
        return Status.OPTIMAL
    if scip in ("infeasible", "inforunbd"):
        return Status.INFEASIBLE
    return Status.TIMEOUT


@register_solver(["kp"], "scip", "SCIP: binary integer program (exact)", exact=True, imports=["pyscipopt"])
def solve_kp(instance: KPInstance, *, time_limit: float | None, seed: int) -> Solution:
    """0-1 knapsack as a binary IP: maximise value within the capacity."""
    from pyscipopt import quicksum

    model = _new_model(time_limit, seed)
    x = [model.addVar(vtype="B", name=f"x{i}", obj=float(v)) for i, v in enumerate(instance.values)]
    model.addCons(quicksum(float(w) * xi for w, xi in zip(instance.weights, x)) <= float(instance.capacity))
    model.setMaximize()
    model.optimize()
    status, stats = _status(model), _stats(model)
    if status is Status.INFEASIBLE or model.getNSols() == 0:
        return Solution(status, None, stats)
    sol = model.getBestSol()
    items = [i for i, xi in enumerate(x) if model.getSolVal(sol, xi) > 0.5]
    return Solution(status, items, stats)


def _subtour_handler(x: dict[tuple[int, int], Any], n: int) -> Any:
    """A PySCIPOpt constraint handler enforcing connectivity of the edge variables ``x``."""
    import networkx as nx
    from pyscipopt import SCIP_RESULT, Conshdlr, quicksum

    class SubtourElimination(Conshdlr):
        def _values(self, solution: Any = None) -> dict[tuple[int, int], float]:
            return {e: self.model.getSolVal(solution, var) for e, var in x.items()}

        def _components(self, values: dict[tuple[int, int], float], threshold: float) -> list[set[int]]:
            graph = nx.Graph()
            graph.add_nodes_from(range(n))
            graph.add_edges_from(e for e, v in values.items() if v > threshold)
            return [set(c) for c in nx.connected_components(graph)]

        def _cut(self, side: frozenset[int]) -> None:
            edges = combinations(sorted(side), 2)
            self.model.addCons(quicksum(x[e] for e in edges) <= len(side) - 1, removable=True)

        def _smaller_side(self, subset: set[int]) -> frozenset[int]:
            return frozenset(subset if len(subset) <= n // 2 else set(range(n)) - subset)

        def _separate(self, values: dict[tuple[int, int], float], fractional: bool) -> bool:
            """Add violated subtour constraints; True when any was added."""
            comps = self._components(values, EPS if fractional else 0.5)
            if len(comps) > 1:
                for side in {self._smaller_side(comp) for comp in comps}:  # two components give one cut
                    self._cut(side)
                return True
            if not fractional:
                return False
            graph = nx.Graph()
            graph.add_weighted_edges_from((i, j, v) for (i, j), v in values.items() if v > EPS)
            cut_value, (side, _) = nx.stoer_wagner(graph)
            if cut_value < 2.0 - 1e-4:
                self._cut(self._smaller_side(set(side)))
                return True
            return False

        def _enforce(self, solution: Any = None) -> dict[str, Any]:
            added = self._separate(self._values(solution), fractional=False)
            return {"result": SCIP_RESULT.CONSADDED if added else SCIP_RESULT.FEASIBLE}

        def conscheck(self, constraints: Any, solution: Any, checkintegrality: bool, checklprows: bool,
                      printreason: bool, completely: bool) -> dict[str, Any]:
            comps = self._components(self._values(solution), 0.5)
            return {"result": SCIP_RESULT.FEASIBLE if len(comps) == 1 else SCIP_RESULT.INFEASIBLE}

        def consenfolp(self, constraints: Any, nusefulconss: int, solinfeasible: bool) -> dict[str, Any]:
            return self._enforce()

        def consenfops(self, constraints: Any, nusefulconss: int, solinfeasible: bool,
                       objinfeasible: bool) -> dict[str, Any]:
            return self._enforce()

        def consenforelax(self, solution: Any, constraints: Any, nusefulconss: int,
                          solinfeasible: bool) -> dict[str, Any]:
            return self._enforce(solution)

        def conssepalp(self, constraints: Any, nusefulconss: int) -> dict[str, Any]:
            added = self._separate(self._values(), fractional=True)
            return {"result": SCIP_RESULT.CONSADDED if added else SCIP_RESULT.DIDNOTFIND}

        def conslock(self, constraint: Any, locktype: Any, nlockspos: int, nlocksneg: int) -> None:
            pass  # no constraints of this handler exist; dual reductions are switched off instead

    return SubtourElimination()


@register_solver(["tsp"], "scip", "SCIP: degree-2 model with lazy subtour elimination (exact)", exact=True,
                 imports=["pyscipopt", "networkx"])
def solve_tsp(instance: RoutingInstance, *, time_limit: float | None, seed: int) -> Solution:
    """Symmetric TSP to proven optimality (or the best tour and bound at the time limit)."""
    from pyscipopt import quicksum

    n = instance.num_nodes
    dist = np.asarray(instance.distances, dtype=float)
    if n < 4:  # every tour of 3 or fewer nodes has the same length
        return Solution(Status.OPTIMAL, list(range(n)), {"solver_s": 0.0, "nodes": 0})
    if not np.allclose(dist, dist.T):
        return Solution(Status.ERROR, message="scip's TSP model is symmetric; this instance's distances are not")
    model = _new_model(time_limit, seed)
    x = {(i, j): model.addVar(vtype="B", name=f"x_{i}_{j}", obj=float(dist[i, j]))
         for i, j in combinations(range(n), 2)}
    for v in range(n):
        model.addCons(quicksum(x[min(u, v), max(u, v)] for u in range(n) if u != v) == 2, name=f"deg{v}")
    model.includeConshdlr(_subtour_handler(x, n), "subtour", "subtour elimination for the TSP",
                          sepapriority=1, enfopriority=-1, chckpriority=-1, sepafreq=1, needscons=False)
    # the handler rejects solutions but has no constraints to hold variable locks: no dual reductions
    model.setBoolParam("misc/allowstrongdualreds", False)
    model.setBoolParam("misc/allowweakdualreds", False)
    model.optimize()
    status, stats = _status(model), _stats(model)
    if status is Status.INFEASIBLE or model.getNSols() == 0:
        return Solution(status, None, stats, message="" if status is Status.INFEASIBLE else "no tour found in time")
    sol = model.getBestSol()
    edges = [e for e, var in x.items() if model.getSolVal(sol, var) > 0.5]
    return Solution(status, tour_from_edges(n, edges), stats)
