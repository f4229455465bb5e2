"""SCIP through PySCIPOpt under one protocol, with classical or learned variable branching.

The protocol lives in ``configure``: fixed random seed, time limit, one LP thread, and the
learn2branch setting of Gasse et al. as an option (cuts at the root only, no restarts). Every run
records status, objective, dual bound, gap, nodes, wall and solving time and the primal-dual integral.
"""

from __future__ import annotations

import math
import time
from typing import Any

from opsrl.core.registry import register_solver
from opsrl.core.types import Solution, Status

# SCIP branching rule made the one used (highest priority) by each classical solver
RULES = {"scip-fsb": "fullstrong", "scip-pscost": "pscost", "scip-mostinf": "mostinf"}
TOP_PRIORITY = 10_000_000


def configure(model: Any, time_limit: float | None, seed: int, learn2branch: bool) -> None:
    """The shared protocol: seed, time limit, one LP thread, quiet; learn2branch: root cuts only, no restarts."""
    model.hideOutput()
    model.setIntParam("randomization/randomseedshift", int(seed) % 2**31)
    model.setIntParam("randomization/permutationseed", int(seed) % 2**31)
    model.setIntParam("lp/threads", 1)
    if time_limit is not None:
        model.setRealParam("limits/time", float(time_limit))
    if learn2branch:
        model.setIntParam("separating/maxrounds", 0)
        model.setIntParam("presolving/maxrestarts", 0)


def solve_model(instance: Any, time_limit: float | None, seed: int, learn2branch: bool, rule: str | None = None,
                branchrule: Any = None, gap_limit: float = 0.0) -> Solution:
    """Read ``instance``, apply the protocol, make ``rule`` (a SCIP rule) or ``branchrule`` (a factory
    taking the model, returning a PySCIPOpt Branchrule) the branching, solve, and collect the record."""
    from opsrl.milp.problem import read_model

    t0 = time.perf_counter()
    model = read_model(instance.model_path())
    configure(model, time_limit, seed, learn2branch)
    if gap_limit > 0:
        model.setRealParam("limits/gap", gap_limit)
    if rule is not None:
        model.setIntParam(f"branching/{rule}/priority", TOP_PRIORITY)
    plugin = None
    if branchrule is not None:
        plugin = branchrule(model)
        model.includeBranchrule(plugin, "opsrl-learned", "opsrl learned branching", priority=TOP_PRIORITY,
                                maxdepth=-1, maxbounddist=1.0)
    model.optimize()
    stats = record(model)
    stats["wall_s"] = time.perf_counter() - t0
    if plugin is not None and hasattr(plugin, "stats"):
        stats.update(plugin.stats())
    data = best_solution(model)
    status = {"optimal": Status.OPTIMAL, "infeasible": Status.INFEASIBLE}.get(stats["scip_status"])
    if status is None:
        status = Status.TIMEOUT if stats["scip_status"] in ("timelimit", "nodelimit", "memlimit", "userinterrupt",
                                                            "gaplimit") else Status.ERROR
        if stats["scip_status"] == "gaplimit":
            status = Status.FEASIBLE
    message = "" if status is not Status.ERROR else f"SCIP ended with status {stats['scip_status']}"
    model.freeProb()
    return Solution(status, data=data, stats=stats, wall_s=stats["wall_s"], message=message)


def record(model: Any) -> dict[str, Any]:
    """What a finished SCIP run reports about itself (for the record; costs come from evaluate)."""
    has_sol = model.getNSols() > 0
    out = {
        "scip_status": model.getStatus(),
        "scip_objective": model.getObjVal() if has_sol else math.nan,
        "bound": model.getDualbound(),
        "gap": model.getGap(),
        "nodes": model.getNNodes(),
        "solver_s": model.getSolvingTime(),
        "lp_iterations": model.getNLPIterations(),
    }
    try:
        out["primal_dual_integral"] = model.getPrimalDualIntegral()
    except Exception:  # only defined once the solve has started
        out["primal_dual_integral"] = math.nan
    for key in ("bound", "gap", "scip_objective"):
        if not math.isfinite(out[key]) or abs(out[key]) >= 1e20:
            out[key] = math.nan
    return out


def best_solution(model: Any) -> dict[str, Any] | None:
    """The best solution as ``{"x": {name: value}}`` over the original variables (zeros left out)."""
    if model.getNSols() == 0:
        return None
    sol = model.getBestSol()
    values = {}
    for var in model.getVars():
        v = model.getSolVal(sol, var)
        if v != 0.0:
            values[var.name] = round(v) if var.vtype() != "CONTINUOUS" and abs(v - round(v)) < 1e-9 else v
    return {"x": values}


@register_solver(["milp"], "scip", "SCIP default (reliability pseudo-cost branching)", exact=True,
                 imports=["pyscipopt"])
def scip_default(instance: Any, *, time_limit: float | None, seed: int, learn2branch: bool = False,
                 gap_limit: float = 0.0) -> Solution:
    return solve_model(instance, time_limit, seed, learn2branch, gap_limit=gap_limit)


def _classical(rule_name: str, description: str) -> None:
    @register_solver(["milp"], rule_name, description, exact=True, imports=["pyscipopt"])
    def solve(instance: Any, *, time_limit: float | None, seed: int, learn2branch: bool = False,
              gap_limit: float = 0.0) -> Solution:
        return solve_model(instance, time_limit, seed, learn2branch, rule=RULES[rule_name], gap_limit=gap_limit)


_classical("scip-fsb", "SCIP with full strong branching")
_classical("scip-pscost", "SCIP with pseudo-cost branching")
_classical("scip-mostinf", "SCIP with most-infeasible (most fractional) branching")


@register_solver(["milp"], "scip-gnn", "SCIP with the learned GNN branching policy (shipped checkpoint by default)",
                 needs_torch=True, exact=True, imports=["pyscipopt"])
def scip_gnn(instance: Any, *, time_limit: float | None, seed: int, learn2branch: bool = False,
             gap_limit: float = 0.0, checkpoint: str = "", device: str = "cpu") -> Solution:
    """SCIP whose branching asks the learned policy (GCNN or hybrid) which candidate to branch on."""
    from opsrl.milp.policy import learned_branchrule, load_policy

    policy = load_policy(checkpoint or None, device=device)
    return solve_model(instance, time_limit, seed, learn2branch, branchrule=learned_branchrule(policy),
                       gap_limit=gap_limit)
