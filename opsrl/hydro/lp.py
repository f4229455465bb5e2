"""The stage LP (and its multi-stage deterministic equivalent) in OR-Tools GLOP, built once, updated in place.

One model holds ``n_stages`` consecutive stages of dispatch: water balance per plant, power balance
per bus (DC flows through angles, or one copper-plate row), optional target rows ``v + up - down = v_hat``
with a penalised slack (TS-DDR), and optional Benders cuts on a future-cost variable after the last
stage (SDDP). Between solves only right-hand sides and bounds change (initial state, inflows,
targets, cuts added), so a solve costs well under a millisecond on small systems. Duals follow the
convention d objective / d right-hand side (checked against finite differences in the tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ortools.linear_solver import pywraplp

from opsrl.core.errors import OpsrlError
from opsrl.hydro.problem import HydroSystem

INF = pywraplp.Solver.infinity()
RETRY_PARAMS = ("use_dual_simplex: true", "use_dual_simplex: false use_preprocessing: false",
                "use_scaling: false")
# GLOP can stall on a degenerate stage LP (seen on Bolivia after a few SDDP iterations: one solve ran for
# over 10 minutes); a solve that takes longer than this is stopped and retried with RETRY_PARAMS
SOLVE_TIME_LIMIT_S = 20.0
CUT_TOL = 1e-6  # relative: a Benders cut this close to one already held is not added again


@dataclass
class LPResult:
    """One solve: real cost per stage (no penalty, no future cost), the objective, primal values and duals."""

    objective: float
    cost: np.ndarray  # (T,)
    v: np.ndarray  # (T, H) end-of-stage volumes
    q: np.ndarray
    s: np.ndarray
    g: np.ndarray  # (T, G)
    d: np.ndarray  # (T, B)
    dual_balance: np.ndarray  # (T, H): d objective / d right-hand side of the water balance
    dual_target: np.ndarray  # (T, H): d objective / d target (zeros when targets are off)
    slack: np.ndarray  # (T, H): |v - target|


class DispatchLP:
    """``n_stages`` stages of hydrothermal dispatch in one GLOP model; see the module docstring."""

    def __init__(self, system: HydroSystem, n_stages: int = 1, *, targets: bool = False,
                 target_penalty: float | None = None, future_cost: bool = False):
        self.system = s = system
        self.n_stages = T = n_stages
        h = s.n_hydro
        solver = pywraplp.Solver.CreateSolver("GLOP")
        if solver is None:
            raise OpsrlError("OR-Tools GLOP is not available")
        solver.SetTimeLimit(int(SOLVE_TIME_LIMIT_S * 1000))
        self.solver = solver
        obj = solver.Objective()
        self.v, self.q, self.s, self.g, self.d = [], [], [], [], []
        self.balance, self.targets = [], []
        self.cuts = []
        self._cut_keys: list[np.ndarray] = []
        self.penalty = float(target_penalty if target_penalty is not None else default_penalty(s))
        for t in range(T):
            st = add_stage(solver, s, self.v[t - 1] if t > 0 else None, 1.0, targets, self.penalty)
            self.balance.append(st["balance"])
            if targets:
                self.targets.append(st["targets"])
            for key in ("v", "q", "s", "g", "d"):
                getattr(self, key).append(st[key])
        self.theta = None
        if future_cost:
            self.theta = solver.NumVar(0.0, INF, "")
            obj.SetCoefficient(self.theta, 1.0)
        obj.SetMinimization()
        self._w = np.zeros((T, h))
        self._vin = s.v0.copy()
        self._has_targets = targets
        self._targets_on = False

    # ---- updates

    def set_state(self, v_in: np.ndarray) -> None:
        """Volumes at the start of the first stage."""
        self._vin = np.asarray(v_in, float)
        self._sync_rhs(0)

    def set_inflows(self, w: np.ndarray) -> None:
        """Inflows (T, H) (or (H,) for one stage)."""
        self._w = np.asarray(w, float).reshape(self.n_stages, -1)
        for t in range(self.n_stages):
            self._sync_rhs(t)

    def _sync_rhs(self, t: int) -> None:
        rhs = self.system.k * self._w[t] + (self._vin if t == 0 else 0.0)
        for i, row in enumerate(self.balance[t]):
            row.SetBounds(float(rhs[i]), float(rhs[i]))

    def set_targets(self, vhat: np.ndarray | None) -> None:
        """Target end-of-stage volumes (T, H); None frees the target rows."""
        if not self._has_targets:
            raise ValueError("this LP was built without target rows")
        self._targets_on = vhat is not None
        vhat = None if vhat is None else np.asarray(vhat, float).reshape(self.n_stages, -1)
        for t in range(self.n_stages):
            for i, row in enumerate(self.targets[t]):
                if vhat is None:
                    row.SetBounds(-INF, INF)
                else:
                    row.SetBounds(float(vhat[t, i]), float(vhat[t, i]))

    def add_cut(self, alpha: float, pi: np.ndarray) -> bool:
        """Future cost >= alpha + pi . v (v: the last stage's end volumes); False (nothing added) when the
        model already holds the same cut to within CUT_TOL: repeated cuts make the LP degenerate and
        GLOP stalls on it."""
        pi = np.asarray(pi, float)
        key = np.concatenate([[alpha], pi])
        if self._cut_keys:
            held = np.asarray(self._cut_keys)
            if (np.abs(held - key) <= CUT_TOL * np.maximum(1.0, np.abs(key))).all(axis=1).any():
                return False
        self._cut_keys.append(key)
        row = self.solver.Constraint(float(alpha), INF)
        row.SetCoefficient(self.theta, 1.0)
        scale = max(1.0, float(np.max(np.abs(pi))) if len(pi) else 1.0)
        for i, var in enumerate(self.v[-1]):
            if abs(pi[i]) > 1e-9 * scale:  # drop dual round-off, which GLOP handles badly
                row.SetCoefficient(var, -float(pi[i]))
        self.cuts.append(row)
        return True

    # ---- solve

    def solve(self, duals: bool = True) -> LPResult:
        status = self.solver.Solve()
        for params in RETRY_PARAMS:  # rare GLOP trouble (ABNORMAL, or stalled past the limit): other algorithms
            if status == pywraplp.Solver.OPTIMAL:
                break
            self.solver.SetSolverSpecificParametersAsString(params)
            status = self.solver.Solve()
            self.solver.SetSolverSpecificParametersAsString("")
        if status != pywraplp.Solver.OPTIMAL:
            raise OpsrlError(f"stage LP of {self.system.name} not solved to optimality (status {status})")
        s, T = self.system, self.n_stages
        val = lambda rows: np.array([[x.solution_value() for x in r] for r in rows])  # noqa: E731
        v, q, sp, g, d = val(self.v), val(self.q), val(self.s), val(self.g), val(self.d)
        h = s.n_hydro
        cost = (g @ s.gcost + (s.prod * q / s.base_mva) @ s.hydro_cost + s.deficit_cost * d.sum(axis=1)
                + sp @ s.spill_cost)
        db = np.array([[r.dual_value() for r in rows] for rows in self.balance]) if duals else np.zeros((T, h))
        if self._targets_on:
            dt = np.array([[r.dual_value() for r in rows] for rows in self.targets]) if duals else np.zeros((T, h))
            slack = np.abs(np.array([[r.lb() for r in rows] for rows in self.targets]) - v)
        else:
            dt, slack = np.zeros((T, h)), np.zeros((T, h))
        return LPResult(self.solver.Objective().Value(), cost, v, q, sp, g, d, db, dt, slack)



def add_stage(solver, s: HydroSystem, prev_v, weight: float, targets: bool = False,
              penalty: float = 0.0) -> dict:
    """Add one stage's variables and rows to ``solver`` (costs scaled by ``weight``); ``prev_v`` are the
    previous stage's volume variables (None: the start volume is in the balance right-hand side)."""
    obj = solver.Objective()
    h, g, b = s.n_hydro, s.n_thermal, s.n_bus
    v = [solver.NumVar(float(s.vmin[i]), float(s.vmax[i]), "") for i in range(h)]
    q = [solver.NumVar(float(s.qmin[i]), float(s.qmax[i]), "") for i in range(h)]
    sp = [solver.NumVar(0.0, INF, "") for i in range(h)]
    gv = [solver.NumVar(float(s.gmin[j]), float(s.gmax[j]), "") for j in range(g)]
    dv = [solver.NumVar(0.0, INF, "") for _ in range(b)]
    for i in range(h):
        obj.SetCoefficient(q[i], weight * float(s.hydro_cost[i] * s.prod[i] / s.base_mva))
        obj.SetCoefficient(sp[i], weight * float(s.spill_cost[i]))
    for j in range(g):
        obj.SetCoefficient(gv[j], weight * float(s.gcost[j]))
    for bb in range(b):
        obj.SetCoefficient(dv[bb], weight * float(s.deficit_cost))
    rows = []
    for i in range(h):  # v - v_prev + k q - k up_q + s - up_s = k w (+ v_in when prev_v is None)
        row = solver.Constraint(0.0, 0.0)
        row.SetCoefficient(v[i], 1.0)
        if prev_v is not None:
            row.SetCoefficient(prev_v[i], -1.0)
        row.SetCoefficient(q[i], s.k)
        row.SetCoefficient(sp[i], 1.0)
        for u in range(h):
            if s.down_turn[u] == i:
                row.SetCoefficient(q[u], -s.k)
            if s.down_spill[u] == i:
                row.SetCoefficient(sp[u], -1.0)
        rows.append(row)
    # power balance per bus: gen + hydro + deficit - net outflow = load
    bus_rows = [solver.Constraint(float(s.load[bb]), float(s.load[bb])) for bb in range(b)]
    for i in range(h):
        bus_rows[s.hydro_bus[i]].SetCoefficient(q[i], float(s.prod[i] / s.base_mva))
    for j in range(g):
        bus_rows[s.gbus[j]].SetCoefficient(gv[j], 1.0)
    for bb in range(b):
        bus_rows[bb].SetCoefficient(dv[bb], 1.0)
    if s.has_network:
        theta = [solver.NumVar(-INF, INF, "") for _ in range(b)]
        theta[s.ref_bus].SetBounds(0.0, 0.0)
        for li in range(len(s.line_from)):
            f = solver.NumVar(-float(s.line_rate[li]), float(s.line_rate[li]), "")
            fb, tb, bl = int(s.line_from[li]), int(s.line_to[li]), float(s.line_b[li])
            row = solver.Constraint(0.0, 0.0)  # f = b (theta_from - theta_to)
            row.SetCoefficient(f, 1.0)
            row.SetCoefficient(theta[fb], -bl)
            row.SetCoefficient(theta[tb], bl)
            bus_rows[fb].SetCoefficient(f, -1.0)
            bus_rows[tb].SetCoefficient(f, 1.0)
    trow = []
    if targets:
        for i in range(h):
            up, dn = solver.NumVar(0.0, INF, ""), solver.NumVar(0.0, INF, "")
            obj.SetCoefficient(up, weight * penalty)
            obj.SetCoefficient(dn, weight * penalty)
            row = solver.Constraint(-INF, INF)
            row.SetCoefficient(v[i], 1.0)
            row.SetCoefficient(up, 1.0)
            row.SetCoefficient(dn, -1.0)
            trow.append(row)
    return {"v": v, "q": q, "s": sp, "g": gv, "d": dv, "balance": rows, "targets": trow}


def scenario_tree_value(system: HydroSystem, stages: int) -> float:
    """Exact optimum of the stagewise-independent scenario tree over ``stages`` (extensive form LP).

    The tree has prod(N_t) leaves: a reference for small cases only (SDDP's lower bound must meet it).
    """
    solver = pywraplp.Solver.CreateSolver("GLOP")
    frontier = [(None, 1.0)]
    for t in range(stages):
        sup, prob = system.support(t)
        prob = prob / prob.sum()
        nxt = []
        for prev, p in frontier:
            for j in range(len(prob)):
                st = add_stage(solver, system, prev, p * prob[j])
                rhs = system.k * sup[j] + (system.v0 if prev is None else 0.0)
                for i, row in enumerate(st["balance"]):
                    row.SetBounds(float(rhs[i]), float(rhs[i]))
                nxt.append((st["v"], p * prob[j]))
        frontier = nxt
    solver.Objective().SetMinimization()
    if solver.Solve() != pywraplp.Solver.OPTIMAL:
        raise OpsrlError("extensive form not solved to optimality")
    return solver.Objective().Value()


def default_penalty(s: HydroSystem) -> float:
    """Target slack penalty per unit of volume: above the most valuable use of stored water.

    A unit of volume turbined yields at most max(prod)/(k base) pu of power, worth at most the deficit
    cost; a penalty a few times that makes the LP meet reachable targets.
    """
    value = float(np.max(s.prod)) / (s.k * s.base_mva) * s.deficit_cost
    return 2.0 * max(value, 1.0)
