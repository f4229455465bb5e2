"""Stochastic dual dynamic programming on the stage LPs: Benders cuts from forward and backward passes.

Inflows are stagewise independent with the per-stage support of the system (one joint realisation
across plants per stage). Each stage has its own LP (built once) carrying the cuts of its future-cost
function; the lower bound is the expected first-stage objective and the upper bound a Monte Carlo
estimate from simulated forward passes, with a 95 % confidence interval.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from opsrl.hydro.lp import DispatchLP
from opsrl.hydro.problem import HydroSystem


@dataclass
class SDDPLog:
    """What one SDDP run did: bounds per iteration and the time taken."""

    lower_bounds: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    iterations: int = 0
    lp_solves: int = 0


class SDDP:
    """SDDP over ``stages`` stages of ``system`` (stage t uses the inflow support of t, tiled)."""

    def __init__(self, system: HydroSystem, stages: int, seed: int = 0):
        self.system, self.stages = system, stages
        self.lps = [DispatchLP(system, 1, future_cost=t < stages - 1) for t in range(stages)]
        self.rng = np.random.default_rng(seed)
        self.log = SDDPLog()

    def forward(self) -> list[np.ndarray]:
        """One sampled forward pass; the states (start volumes) of stages 0 .. T-1."""
        v = self.system.v0.copy()
        states = []
        for t, lp in enumerate(self.lps):
            states.append(v)
            sup, prob = self.system.support(t)
            j = self.rng.choice(len(prob), p=prob / prob.sum())
            lp.set_state(v)
            lp.set_inflows(sup[j])
            v = lp.solve(duals=False).v[0]
            self.log.lp_solves += 1
        return states

    def backward(self, states: list[np.ndarray]) -> None:
        """Add one cut to each stage's future cost at the forward states, from the last stage back."""
        for t in range(self.stages - 1, 0, -1):
            lp = self.lps[t]
            sup, prob = self.system.support(t)
            prob = prob / prob.sum()
            lp.set_state(states[t])
            alpha, pi = 0.0, np.zeros(self.system.n_hydro)
            for j in range(len(prob)):
                lp.set_inflows(sup[j])
                r = lp.solve()
                self.log.lp_solves += 1
                alpha += prob[j] * (r.objective - r.dual_balance[0] @ states[t])
                pi += prob[j] * r.dual_balance[0]
            self.lps[t - 1].add_cut(alpha, pi)

    def lower_bound(self) -> float:
        """Expected objective of the first stage (its own cost plus its future-cost cuts)."""
        lp = self.lps[0]
        sup, prob = self.system.support(0)
        prob = prob / prob.sum()
        lp.set_state(self.system.v0)
        total = 0.0
        for j in range(len(prob)):
            lp.set_inflows(sup[j])
            total += prob[j] * lp.solve(duals=False).objective
            self.log.lp_solves += 1
        return total

    def train(self, iterations: int, time_limit: float = float("inf"), tol: float = 0.0) -> SDDPLog:
        """Iterate until ``iterations``, ``time_limit`` seconds, or the bound moves less than ``tol`` (relative)
        over 5 iterations."""
        start = time.perf_counter()
        for _ in range(iterations):
            self.backward(self.forward())
            self.log.iterations += 1
            self.log.lower_bounds.append(self.lower_bound())
            self.log.times.append(time.perf_counter() - start)
            lb = self.log.lower_bounds
            if tol > 0 and len(lb) > 5 and abs(lb[-1] - lb[-6]) <= tol * max(1.0, abs(lb[-1])):
                break
            if time.perf_counter() - start >= time_limit:
                break
        return self.log

    def simulate(self, paths: np.ndarray, stages: int | None = None) -> dict[str, np.ndarray]:
        """The policy's decisions on inflow ``paths`` (S, >=stages, H) over the first ``stages`` stages."""
        stages = self.stages if stages is None else stages
        return rollout(self.lps, self.system, paths, stages)


def rollout(lps: list[DispatchLP], system: HydroSystem, paths: np.ndarray, stages: int,
            targets=None) -> dict[str, np.ndarray]:
    """Run stage LPs (``lps[t]``, or ``lps[0]`` reused) along each path; ``targets(i, t, v)`` optional."""
    n, h = len(paths), system.n_hydro
    out = {"q": np.zeros((n, stages, h)), "s": np.zeros((n, stages, h)),
           "g": np.zeros((n, stages, system.n_thermal)), "d": np.zeros((n, stages, system.n_bus)),
           "cost": np.zeros((n, stages))}
    for i in range(n):
        v = system.v0.copy()
        for t in range(stages):
            lp = lps[t] if len(lps) > 1 else lps[0]
            lp.set_state(v)
            lp.set_inflows(paths[i, t])
            r = lp.solve(duals=False)
            v = r.v[0]
            for key in ("q", "s", "g", "d"):
                out[key][i, t] = getattr(r, key)[0]
            out["cost"][i, t] = r.cost[0]
    return out
