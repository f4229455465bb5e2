"""Hydro solvers: sddp, myopic, pi-lp (perfect-information bound) and tsddr (the trained decision rule).

Each runs its policy over the instance's out-of-sample inflow paths and returns the decisions
(turbined flow, spill, thermal output, deficits) of the reported stages; ``evaluate`` re-simulates
them and computes the mean cost.
"""

from __future__ import annotations

import time

import numpy as np

from opsrl.core.errors import OpsrlError
from opsrl.core.registry import register_solver
from opsrl.core.types import Solution, Status
from opsrl.hydro.problem import HydroInstance, decisions


def _solution(inst: HydroInstance, out: dict, status: Status, stats: dict, start: float) -> Solution:
    r = inst.report
    data = decisions(out["q"][:, :r], out["s"][:, :r], out["g"][:, :r], out["d"][:, :r])
    cost = out["cost"][:, :r].sum(axis=1)
    ci = float(1.96 * cost.std(ddof=1) / np.sqrt(len(cost))) if len(cost) > 1 else float("nan")
    stats = {"own_mean_cost": float(cost.mean()), "own_cost_ci95": ci, "scenarios": inst.scenarios,
             "stages": inst.stages, "report": r, **stats}
    return Solution(status, data, stats, time.perf_counter() - start)


@register_solver(["hydro"], "myopic", "each stage minimises its own cost; stored water has no value")
def solve_myopic(instance: HydroInstance, *, time_limit: float, seed: int) -> Solution:
    from opsrl.hydro.lp import DispatchLP
    from opsrl.hydro.sddp import rollout

    start = time.perf_counter()
    out = rollout([DispatchLP(instance.system)], instance.system, instance.test_paths(), instance.report)
    n = instance.scenarios * instance.report
    return _solution(instance, out, Status.FEASIBLE, {"time_per_decision_ms": 1e3 * (time.perf_counter() - start) / n},
                     start)


@register_solver(["hydro"], "pi-lp", "perfect-information LP per scenario over the reported stages (a lower bound)",
                 exact=True)
def solve_pi_lp(instance: HydroInstance, *, time_limit: float, seed: int) -> Solution:
    from opsrl.hydro.lp import DispatchLP

    start = time.perf_counter()
    s, r = instance.system, instance.report
    lp = DispatchLP(s, r)
    lp.set_state(s.v0)
    paths = instance.test_paths()
    n = len(paths)
    out = {"q": np.zeros((n, r, s.n_hydro)), "s": np.zeros((n, r, s.n_hydro)), "g": np.zeros((n, r, s.n_thermal)),
           "d": np.zeros((n, r, s.n_bus)), "cost": np.zeros((n, r))}
    for i in range(n):
        lp.set_inflows(paths[i, :r])
        res = lp.solve(duals=False)
        for key in ("q", "s", "g", "d", "cost"):
            out[key][i] = getattr(res, key)
    return _solution(instance, out, Status.OPTIMAL, {"note": "anticipative: a bound, not a policy"}, start)


@register_solver(["hydro"], "sddp", "stochastic dual dynamic programming (Benders cuts), then simulated")
def solve_sddp(instance: HydroInstance, *, time_limit: float, seed: int, iterations: int = 200,
               tol: float = 1e-4) -> Solution:
    """Train for at most ``iterations`` (stopping early when the lower bound stalls to ``tol`` over 5
    iterations, or when the time left is what simulating the test paths needs), then simulate."""
    from opsrl.hydro.sddp import SDDP

    start = time.perf_counter()
    algo = SDDP(instance.system, instance.stages, seed)
    t0 = time.perf_counter()
    algo.forward()
    per_lp = (time.perf_counter() - t0) / instance.stages
    sim_need = 2.0 * per_lp * instance.scenarios * instance.report
    if sim_need > 0.9 * time_limit:
        raise OpsrlError(f"sddp: simulating {instance.scenarios} paths x {instance.report} stages needs about "
                         f"{sim_need:.0f} s: raise --time-limit or lower --set scenarios")
    budget = max(0.1 * time_limit, 0.85 * time_limit - sim_need - (time.perf_counter() - start))
    log = algo.train(iterations, budget, tol)
    t_train = time.perf_counter() - start
    t1 = time.perf_counter()
    out = algo.simulate(instance.test_paths(), instance.report)
    per_dec = (time.perf_counter() - t1) / (instance.scenarios * instance.report)
    stats = {"iterations": log.iterations, "lower_bound": log.lower_bounds[-1] if log.lower_bounds else None,
             "lower_bounds": log.lower_bounds, "train_s": t_train, "lp_solves": log.lp_solves,
             "time_per_decision_ms": 1e3 * per_dec}
    note = "lower bound is over all simulated stages" if instance.report < instance.stages else ""
    if note:
        stats["note"] = note
    return _solution(instance, out, Status.FEASIBLE, stats, start)


@register_solver(["hydro"], "tsddr", "TS-DDR: a trained LSTM proposes target volumes, stage LPs meet them",
                 needs_torch=True)
def solve_tsddr(instance: HydroInstance, *, time_limit: float, seed: int, checkpoint: str = "",
                train_iters: int = 0, device: str = "cpu") -> Solution:
    """The shipped (or given) checkpoint for this system; with none, train ``train_iters`` iterations here
    (default: as many as half the time limit allows). The rule runs on ``device``, the LPs on the CPU."""
    from opsrl.core.device import choose_device
    from opsrl.hydro.train import policy_for, simulate_policy

    start = time.perf_counter()
    policy, info = policy_for(instance, checkpoint, seed, train_iters, 0.5 * time_limit, choose_device(device))
    t1 = time.perf_counter()
    out = simulate_policy(policy, instance, instance.test_paths(), instance.report)
    per_dec = (time.perf_counter() - t1) / (instance.scenarios * instance.report)
    return _solution(instance, out, Status.FEASIBLE, {**info, "time_per_decision_ms": 1e3 * per_dec}, start)
